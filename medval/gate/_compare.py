"""One group's observation compared with a criterion's threshold.

Picks the bound to compare (CI low, point value or CI high), applies the
operator and words the one-line reason ("auroc CI low 0.842 < 0.85 on
manufacturer=GE (n=412)"); groups under ``min_n`` are skipped or warned.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from typing import Any

from medval.gate._criteria import Criterion
from medval.gate._observe import JudgeError, Obs

__all__ = ["distance", "judge_obs"]

_CMP: dict[str, Callable[[Any, Any], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
    "==": operator.eq,
}
_NEGATED = {">=": "<", "<=": ">", ">": "<=", "<": ">=", "==": "!="}
_BOUND_TEXT = {"low": "CI low ", "high": "CI high ", "value": ""}


def _pick_bound(c: Criterion, o: Obs) -> str:
    if c.bound != "auto":
        return c.bound
    if c.op == "==" or not o.has_ci:
        return "value"
    return "low" if c.op in (">=", ">") else "high"


def _fmt(x: Any) -> str:
    if isinstance(x, (bool, str)):
        return repr(x) if isinstance(x, str) else str(x).lower()
    if isinstance(x, int):
        return str(x)
    return f"{x:.3f}"


def _where(o: Obs) -> str:
    out = f" on {o.group}" if o.group else ""
    return out + (f" (n={o.n})" if o.n is not None else "")


def judge_obs(c: Criterion, label: str, o: Obs) -> dict[str, Any]:
    """One group's outcome: status (or "skip"), compared number, reason.

    Raises
    ------
    JudgeError
        If a CI bound is asked for but absent, or the number is not a
        finite number where the operator needs one.
    """
    if o.n is not None and o.n < c.min_n:
        status = {"skip": "skip", "warn": "warn", "fail": c.severity}[c.small_groups]
        why = f"{label}: too few cases{_where(o)} < min_n {c.min_n}"
        return {"status": status, "bound": None, "observed": None, "reason": why, "obs": o}
    bound = _pick_bound(c, o)
    if bound != "value" and not o.has_ci:
        raise JudgeError(f"{c.key} has no confidence interval; use bound = 'value'")
    x = o.value if bound == "value" else (o.low if bound == "low" else o.high)
    if x is None:
        why = f"{label} {_BOUND_TEXT[bound]}not estimable{_where(o)}: {o.reason or 'no value'}"
        return {"status": c.severity, "bound": bound, "observed": None, "reason": why, "obs": o}
    numeric = isinstance(x, (int, float)) and not isinstance(x, bool)
    if c.op != "==" and not numeric:
        raise JudgeError(f"{c.key} holds {x!r}, not a number")
    if numeric and not math.isfinite(float(x)):
        raise JudgeError(f"{c.key} holds a non-finite number {x!r}")
    ok = _CMP[c.op](x, c.threshold)
    sym = c.op if ok else _NEGATED[c.op]
    thr = f"{c.threshold:g}" if isinstance(c.threshold, float) else _fmt(c.threshold)
    why = f"{label} {_BOUND_TEXT[bound]}{_fmt(x)} {sym} {thr}{_where(o)}"
    return {
        "status": "pass" if ok else c.severity,
        "bound": bound,
        "observed": x,
        "reason": why,
        "obs": o,
    }


def distance(c: Criterion, d: dict[str, Any]) -> float:
    """How close a group is to failing (smaller = worse), for picking the worst."""
    x = d["observed"]
    if not isinstance(x, (int, float)) or isinstance(x, bool) or isinstance(c.threshold, str):
        return 0.0
    return float(x) - float(c.threshold) if c.op in (">=", ">") else float(c.threshold) - float(x)
