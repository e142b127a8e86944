"""``deployment.json``: what a validation run fixed, as data.

One document, schema ``"medval.deployment/1"``, canonical JSON (sorted keys):

- ``validation``: the run it came from (SHA-256 of its ``result.json``, spec,
  model and data manifest; gate status; primary split; medval version).
- ``preprocess.steps``: the pipeline the run recorded
  (:meth:`medval.io.Pipeline.describe`), rebuilt with
  :meth:`medval.io.Pipeline.from_steps`.
- ``model``: weight files with their SHA-256, the factory reference (a copied
  ``code/<file>.py:<name>`` or an import path) with its source SHA-256, the
  output kind and key, MC-dropout samples, seed, TTA and batch size.
- ``rules`` (read by :class:`medval.deploy.Rules`): ``task``,
  ``operating_point``, ``calibration``, ``conformal``, ``triage``,
  ``referral``: the numbers :func:`medval.evaluate` recorded.

Only base names and relative paths: no folder of the machine that exported it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from medval._errors import DataError
from medval._result import ValidationResult
from medval.gate import Spec

__all__ = ["MANIFEST", "SCHEMA", "factory_file", "read_manifest", "run_rules"]

SCHEMA = "medval.deployment/1"
MANIFEST = "deployment.json"
_AGAIN = "validate again with this version of medval, then export"


def factory_file(text: str) -> Path | None:
    """The ``.py`` file of a ``"file.py:name"`` reference; None for an import path."""
    target, sep, _ = text.rpartition(":")
    return Path(target) if sep and target.endswith(".py") else None


def read_manifest(folder: str | Path) -> dict[str, Any]:
    """``folder/deployment.json``, its schema checked.

    Raises
    ------
    DataError
        Missing, not JSON, or another schema.
    """
    path = Path(folder) / MANIFEST
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise DataError(
            f"{path.parent.name}/{MANIFEST} does not exist; pass the folder medval export wrote."
        ) from exc
    except json.JSONDecodeError as exc:
        raise DataError(f"{path.parent.name}/{MANIFEST} is not JSON ({exc}).") from exc
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        found = data.get("schema") if isinstance(data, dict) else type(data).__name__
        raise DataError(
            f"{path.parent.name}/{MANIFEST} has schema {found!r}, not {SCHEMA!r}; export "
            "the bundle again with this version of medval."
        )
    return data


def _conformal(v: dict[str, Any], settings: dict[str, Any]) -> dict[str, Any] | None:
    if "conformal.method" not in v:
        return None
    mondrian = settings.get("conformal.mondrian")
    part = {
        "method": v["conformal.method"],
        "confidence_level": v["conformal.confidence_level"],
        "randomized": bool(v.get("conformal.randomized")),
        "lambda_reg": float(v.get("conformal.lambda_reg", 0.0)),
        "k_reg": float(v.get("conformal.k_reg", 0.0)),
        "mondrian": mondrian,
        "quantile": v.get("conformal.quantile"),
        "thresholds": v.get("conformal.thresholds") or {},
        "fallback_groups": v.get("conformal.fallback_groups") or [],
        "set_seed": v.get("conformal.set_seed"),
        "temperature": v.get("conformal.temperature"),
        "calibrated_on": v.get("conformal.calibrated_on"),
        "n_calibration": v.get("conformal.n_calibration"),
    }
    if part["randomized"] and part["set_seed"] is None:
        raise DataError(f"the result has randomised sets but no conformal.set_seed; {_AGAIN}.")
    if mondrian is not None and not part["thresholds"]:
        raise DataError(f"the result has Mondrian sets but no conformal.thresholds; {_AGAIN}.")
    return part


def _uncertainty(v: dict[str, Any], settings: dict[str, Any]) -> dict[str, Any] | None:
    rec = v.get("uncertainty.referral_for_sensitivity")
    if not isinstance(rec, dict):
        return None
    return {
        "measure": settings.get("uncertainty.measure", "entropy"),
        "quantity": "total",
        "cutoff": rec.get("uncertainty_cutoff"),
        "target_sensitivity": rec.get("target_sensitivity"),
        "chosen_on": rec.get("chosen_on"),
        "reason": rec.get("reason"),
    }


def run_rules(result: ValidationResult, spec: Spec) -> dict[str, Any]:
    """The ``rules`` part of ``deployment.json`` from a run's result and spec."""
    v = result.values
    settings = dict(result.provenance.get("settings") or {})
    names = [str(c) for c in spec["task.class_names"]]
    pos = spec["task.positive_class"]
    pos_index = 1 if pos is None else names.index(pos)
    conformal = _conformal(v, settings)
    triage = None
    if "triage.threshold" in v:
        triage = {
            "max_fnr": v.get("triage.max_fnr"),
            "feasible": v.get("triage.feasible"),
            "threshold": v["triage.threshold"],  # on the model's probability scale
            # the sets' scale (temperature-scaled when conformal.temperature was applied)
            "threshold_on_set_scale": v.get("triage.threshold_scaled", v["triage.threshold"]),
        }
    return {
        "task": {
            "kind": v.get("task.kind"),
            "class_names": names,
            "positive_class": names[pos_index],
            "positive_index": pos_index,
        },
        "operating_point": {
            "threshold": v["operating_point.threshold"],
            "rule": v.get("operating_point.rule"),
            "chosen_on": v.get("operating_point.chosen_on"),
        },
        "calibration": {
            "temperature": v.get("calibration.temperature"),
            "fitted_on": v.get("calibration.temperature_fitted_on"),
        },
        "conformal": conformal,
        "triage": triage,
        "referral": {
            "set_not_singleton": conformal is not None,
            "uncertainty": _uncertainty(v, settings),
        },
    }
