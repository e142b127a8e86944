"""Compare two validation results: did a rerun reproduce the numbers?

``medval diff A/result.json B/result.json`` and :func:`diff_results` list
every estimate, value, table cell, gate verdict and model/data hash that
differs between two runs beyond a tolerance. Import-light: stdlib and
medval's result type.
"""

from medval.diff._assert import assert_results_agree
from medval.diff._compare import DEFAULT_TOLERANCE, diff_results, within
from medval.diff._model import (
    DECISIVE_HASHES,
    INFORMATIONAL_HASHES,
    Difference,
    HashCheck,
    Informational,
    ResultDiff,
)

__all__ = [
    "DECISIVE_HASHES",
    "DEFAULT_TOLERANCE",
    "INFORMATIONAL_HASHES",
    "Difference",
    "HashCheck",
    "Informational",
    "ResultDiff",
    "assert_results_agree",
    "diff_results",
    "within",
]
