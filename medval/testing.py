"""Helpers for users' test suites.

>>> from medval.testing import assert_results_agree
>>> assert_results_agree("baseline/result.json", "rerun/result.json")  # doctest: +SKIP
"""

from medval.diff import DEFAULT_TOLERANCE, assert_results_agree

__all__ = ["DEFAULT_TOLERANCE", "assert_results_agree"]
