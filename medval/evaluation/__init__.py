"""The evaluation core: inputs built once, one section per analysis, one config.

:func:`evaluate` builds the frozen :class:`Inputs` (every check first), runs
the registered :data:`SECTIONS` and merges their parts into one
:class:`~medval.ValidationResult`; sections whose needs are unmet are listed
in ``evaluation.skipped`` with the reason and the fix. The settings are the
fields of :class:`~medval.gate.EvaluationConfig` (declared once).
"""

from medval.evaluation._evaluate import evaluate
from medval.evaluation._input import InputStatistics
from medval.evaluation._inputs import Inputs, build_inputs
from medval.evaluation._registry import SECTIONS
from medval.evaluation._section import NEEDS, TASKS, Part, Section, missing
from medval.gate import EvaluationConfig

__all__ = [
    "NEEDS",
    "SECTIONS",
    "TASKS",
    "EvaluationConfig",
    "InputStatistics",
    "Inputs",
    "Part",
    "Section",
    "build_inputs",
    "evaluate",
    "missing",
]
