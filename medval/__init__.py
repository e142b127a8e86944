"""medval: clinical validation of medical-imaging AI.

``import medval`` is light: torch, pydicom, evidently and matplotlib load
only when a name that needs them is first used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from medval._errors import (
    DataError,
    ExitCode,
    InputError,
    MedvalError,
    MissingDependencyError,
    NotCalibratedError,
    SpecError,
    UnsafeModelError,
)
from medval._targets import RegressionPredictions
from medval._types import Estimate, Predictions

__version__ = "0.1.0"

__all__ = [
    "DataError",
    "Estimate",
    "EvaluationConfig",
    "ExitCode",
    "InputError",
    "MedvalError",
    "MissingDependencyError",
    "NotCalibratedError",
    "Predictions",
    "RegressionPredictions",
    "SpecError",
    "UnsafeModelError",
    "ValidationResult",
    "__version__",
    "assert_results_agree",
    "diff_results",
    "evaluate",
    "export_deployment",
    "load_deployment",
    "predict",
    "wrap",
]

# name -> module that defines it; imported on first attribute access.
_LAZY = {
    "predict": "medval.inference",
    "evaluate": "medval.evaluation",
    "EvaluationConfig": "medval.gate",
    "ValidationResult": "medval._result",
    "wrap": "medval._wrap",
    "diff_results": "medval.diff",
    "assert_results_agree": "medval.diff",
    "export_deployment": "medval.deploy",
    "load_deployment": "medval.deploy",
}

if TYPE_CHECKING:
    from medval._result import ValidationResult
    from medval._wrap import wrap
    from medval.deploy import export_deployment, load_deployment
    from medval.diff import assert_results_agree, diff_results
    from medval.evaluation import evaluate
    from medval.gate import EvaluationConfig
    from medval.inference import predict


_SUBPACKAGES = frozenset(
    {
        "calibration",
        "conformal",
        "demo",
        "deploy",
        "evaluation",
        "inference",
        "io",
        "regression",
        "report",
        "shift",
        "stats",
        "uncertainty",
        "gate",
        "checklist",
        "diff",
    }
)


def __getattr__(name: str) -> Any:
    if name in _SUBPACKAGES:
        return importlib.import_module(f"medval.{name}")
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'medval' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*__all__, *_SUBPACKAGES})
