"""The validated pipeline, deployable as it was validated.

:func:`export_deployment` turns a validation run (its ``result.json`` and
spec) into a bundle of data: ``deployment.json`` (preprocessing steps,
temperature, operating threshold, conformal thresholds per group, referral
rule, MC-dropout settings, digests), the weights as safetensors and the
``.py`` files the spec named. :func:`load_deployment` checks every digest
before any code runs and returns a :class:`Deployment`: call it on images
for the run's probabilities, decision, conformal set and referral.
"""

from medval.deploy._export import export_deployment
from medval.deploy._manifest import MANIFEST, SCHEMA, read_manifest
from medval.deploy._rules import DeploymentOutput, Rules
from medval.deploy._runtime import Deployment, load_deployment

__all__ = [
    "MANIFEST",
    "SCHEMA",
    "Deployment",
    "DeploymentOutput",
    "Rules",
    "export_deployment",
    "load_deployment",
    "read_manifest",
]
