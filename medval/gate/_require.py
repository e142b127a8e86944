"""``require``: one criterion as a plain assertion, for hand-written tests."""

from __future__ import annotations

from typing import TYPE_CHECKING

from medval.gate._criteria import check_criteria
from medval.gate._judge import Verdict, judge

if TYPE_CHECKING:
    from medval._result import ValidationResult

__all__ = ["require"]


def require(
    result: ValidationResult,
    key: str,
    op: str,
    threshold: float | bool | str,
    *,
    bound: str = "auto",
    column: str | None = None,
    field: str | None = None,
    min_n: int = 0,
    small_groups: str = "warn",
) -> Verdict:
    """Assert one criterion on a result; return its verdict when it holds.

    Parameters are those of a ``[[criteria]]`` table (see
    :class:`medval.gate.Criterion`); a violated criterion (or one that
    cannot be judged) raises ``AssertionError`` with the verdict's one-line
    reason, e.g. ``"coverage CI high 0.892 < 0.9 on manufacturer=GE (n=67)"``.
    A warning (small group) passes and is returned.

    Raises
    ------
    AssertionError
        Status ``fail`` or ``error``.
    medval.SpecError
        Malformed arguments (unknown op, bound, ...).

    Examples
    --------
    >>> require(result, "discrimination.auroc", ">=", 0.85)  # doctest: +SKIP
    """
    __tracebackhide__ = True
    raw = {
        "name": "require",
        "key": key,
        "op": op,
        "threshold": threshold,
        "bound": bound,
        "min_n": min_n,
        "small_groups": small_groups,
    }
    raw.update({k: v for k, v in (("column", column), ("field", field)) if v is not None})
    (crit,) = check_criteria([raw], source="require()")
    (verdict,) = judge(result, [crit])
    if verdict.status in ("fail", "error"):
        raise AssertionError(
            verdict.reason if verdict.status == "fail" else f"cannot judge: {verdict.reason}"
        )
    return verdict
