"""End-to-end jobs: a spec on the user's data, and the embedded demo.

Orchestrates io → inference → :func:`medval.evaluate` → gate → report; holds
no statistics.
"""

from medval.run._demo import run_demo, spec_template
from medval.run._integrity import GateIntegrity, gate_integrity
from medval.run._log import Log, RunOutcome
from medval.run._manifest import MANIFEST, read_manifest, verify_manifest
from medval.run._outdir import OutputFolder, write_text_atomic
from medval.run._plan import plan_from_options, plan_table
from medval.run._register import (
    RegistrationCheck,
    check_registration,
    register_spec,
    spec_manifests,
)
from medval.run._shards import EngineRun
from medval.run._spec import read_data, run_spec
from medval.run._summary import summary_table
from medval.run._verify import Checked, read_checked

__all__ = [
    "MANIFEST",
    "Checked",
    "EngineRun",
    "GateIntegrity",
    "Log",
    "OutputFolder",
    "RegistrationCheck",
    "RunOutcome",
    "check_registration",
    "gate_integrity",
    "plan_from_options",
    "plan_table",
    "read_checked",
    "read_data",
    "read_manifest",
    "register_spec",
    "run_demo",
    "run_spec",
    "spec_manifests",
    "spec_template",
    "summary_table",
    "verify_manifest",
    "write_text_atomic",
]
