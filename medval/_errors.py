"""The medval error tree.

Every error medval raises derives from :class:`MedvalError` and from the
built-in exception a caller would expect, so ``except ValueError`` keeps
working. Messages say what was expected, what arrived and how to fix it.
"""

from __future__ import annotations

import enum

__all__ = [
    "BudgetExhaustedError",
    "DataError",
    "ExitCode",
    "InputError",
    "MedvalError",
    "MissingDependencyError",
    "NotCalibratedError",
    "SpecError",
    "UnsafeModelError",
]


class MedvalError(Exception):
    """Base class of every error raised by medval."""


class InputError(MedvalError, ValueError):
    """An argument (array, option, table) is not what the API accepts."""


class DataError(InputError):
    """A data file (DICOM folder, labels table, predictions file) is unusable."""


class UnsafeModelError(DataError):
    """A model file would run arbitrary code when loaded and was refused."""


class SpecError(MedvalError, ValueError):
    """A validation spec or a command line is malformed."""


class NotCalibratedError(MedvalError, RuntimeError):
    """A stateful object was used before its fitting step."""


class BudgetExhaustedError(MedvalError, RuntimeError):
    """A reusable holdout has spent its budget of overfitting detections."""


class MissingDependencyError(MedvalError, ImportError):
    """An optional package needed for this feature is not installed."""


class ExitCode(enum.IntEnum):
    """Exit codes of the ``medval`` command line."""

    OK = 0
    GATE_FAILED = 1
    USAGE_ERROR = 2
    DATA_ERROR = 3
    INTERNAL_ERROR = 4
