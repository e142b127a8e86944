"""Verdicts: each criterion of a spec judged against a :class:`ValidationResult`.

Fail closed: a missing key, a value of the wrong kind or an analysis that
recorded an error gives the verdict ``error``, never ``pass``.
"""

from __future__ import annotations

import dataclasses
import math
import operator
import re
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Literal

from medval._errors import ExitCode
from medval._types import Estimate
from medval.gate._criteria import Criterion

if TYPE_CHECKING:
    from medval._result import ValidationResult

__all__ = [
    "ANALYSIS_ERRORS",
    "Verdict",
    "error_verdicts",
    "exit_code",
    "gate_status",
    "judge",
    "record",
]

Status = Literal["pass", "fail", "warn", "error"]
_RANK = {"pass": 0, "warn": 1, "fail": 2, "error": 3}
_CMP: dict[str, Callable[[Any, Any], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
    "==": operator.eq,
}
_NEGATED = {">=": "<", "<=": ">", ">": "<=", "<": ">=", "==": "!="}
_BOUND_TEXT = {"low": "CI low ", "high": "CI high ", "value": ""}

#: ``result.values`` key of a mapping ``key prefix -> error message``; an
#: analysis that failed records itself here so that its criteria become errors.
ANALYSIS_ERRORS = "analysis.errors"


@dataclasses.dataclass(frozen=True)
class Verdict:
    """The outcome of one criterion.

    Attributes
    ----------
    name, key, op, threshold, severity : as in the :class:`Criterion`
    status : {"pass", "fail", "warn", "error"}
        ``warn``: violated with severity "warn", or a small group counted as
        a warning. ``error``: the criterion could not be judged.
    bound : {"low", "value", "high"} or None
        The number that was compared (None when nothing was).
    observed : float, bool, str or None
        The compared number of the deciding group (the worst one).
    value, low, high : float or None
        Point estimate and CI of the deciding group.
    group : str or None
        The deciding group (``"manufacturer=GE"``), for group criteria.
    n : int or None
        Cases behind the deciding number.
    reason : str
        One line: "auroc CI low 0.842 < 0.85 on manufacturer=GE (n=412)".
    groups : tuple of dict
        Per-group outcomes (group, n, observed, status, reason).
    """

    name: str
    status: Status
    key: str
    op: str
    threshold: float | bool | str
    severity: str
    reason: str
    bound: str | None = None
    observed: float | bool | str | None = None
    value: float | None = None
    low: float | None = None
    high: float | None = None
    group: str | None = None
    n: int | None = None
    groups: tuple[dict[str, Any], ...] = ()

    @property
    def passed(self) -> bool:
        """True for "pass" and "warn" (what lets a release through)."""
        return self.status in ("pass", "warn")

    def to_row(self) -> dict[str, Any]:
        """A flat, JSON-native row (for ``gate.verdicts`` and JUnit)."""
        row = dataclasses.asdict(self)
        del row["groups"]
        return row


@dataclasses.dataclass(frozen=True)
class _Obs:
    group: str | None
    n: int | None
    value: Any
    low: float | None
    high: float | None
    has_ci: bool
    reason: str | None = None  # why the CI is missing


def _from_estimate(e: Estimate, group: str | None) -> _Obs:
    return _Obs(group, e.n, e.value, e.low, e.high, True, e.reason)


def _from_mapping(d: dict[str, Any], field: str, group: str | None, n: Any) -> _Obs:
    v = d.get(field)
    if isinstance(v, dict) and "value" in v:  # an Estimate stored as a dict
        return _Obs(group, v.get("n", n), v["value"], v.get("low"), v.get("high"), True)
    low = d.get(f"{field}_low", d.get("low"))
    high = d.get(f"{field}_high", d.get("high"))
    has_ci = f"{field}_low" in d or "low" in d
    return _Obs(group, n if isinstance(n, int) else None, v, low, high, has_ci)


class _JudgeError(Exception):
    pass


def _label(key: str) -> str:
    parts = key.split(".")
    if len(parts) > 2 and parts[0] == "split":
        return f"{parts[-1]} ({parts[1]})"
    return parts[-1]


def _pattern_obs(result: ValidationResult, c: Criterion) -> tuple[str, list[_Obs]]:
    head, tail = c.key.split("{group}")
    rx = re.compile(re.escape(head) + "(?P<g>.+)" + re.escape(tail) + r"\Z")
    seg_head = head.rsplit(".", 1)[-1]
    seg_tail = tail.split(".", 1)[0]
    label = tail.rsplit(".", 1)[-1] if "." in tail else "value"
    obs = []
    for k in sorted({*result.estimates, *result.values}):
        m = rx.match(k)
        if m is None:
            continue
        group = f"{seg_head}{m['g']}{seg_tail}"
        if k in result.estimates:
            obs.append(_from_estimate(result.estimates[k], group))
        else:
            obs.append(_Obs(group, None, result.values[k], None, None, False))
    if not obs:
        raise _JudgeError(
            f"no result key matches {c.key!r}; known keys start with {_heads(result)}"
        )
    return label, obs


def _heads(result: ValidationResult) -> list[str]:
    keys: list[str] = result.keys()
    return sorted({k.split(".")[0] for k in keys})


def _table_obs(rows: Sequence[dict[str, Any]], c: Criterion) -> tuple[str, list[_Obs]]:
    if not rows:
        raise _JudgeError(f"table {c.key} has no rows")
    if c.column is not None:
        present = sorted({str(r.get("column")) for r in rows})
        rows = [r for r in rows if r.get("column") == c.column]
        if not rows:
            raise _JudgeError(f"table {c.key} has no rows with column={c.column!r}; has {present}")
    field = c.field
    if field is None:
        if "value" not in rows[0]:
            raise _JudgeError(
                f"table {c.key} needs criteria.field (the value column); row fields: "
                f"{sorted(rows[0])}"
            )
        field = "value"
    obs = []
    for r in rows:
        if field not in r:
            raise _JudgeError(f"table {c.key} rows have no field {field!r}; have {sorted(r)}")
        g = r.get("group")
        group = None if g is None else (f"{r['column']}={g}" if "column" in r else str(g))
        obs.append(_from_mapping(r, field, group, r.get("n")))
    return field, obs


def _observations(result: ValidationResult, c: Criterion) -> tuple[str, list[_Obs]]:
    if "{group}" in c.key:
        return _pattern_obs(result, c)
    if c.key in result.estimates:
        if c.column or c.field:
            raise _JudgeError(f"{c.key} is an estimate; criteria.column/field apply to tables")
        return _label(c.key), [_from_estimate(result.estimates[c.key], None)]
    if c.key in result.values:
        v = result.values[c.key]
        if isinstance(v, dict):
            if c.field is None:
                raise _JudgeError(f"{c.key} is a mapping; name its entry with criteria.field")
            return c.field, [_from_mapping(v, c.field, None, v.get("n"))]
        if isinstance(v, list):
            raise _JudgeError(f"{c.key} is a list, not a number")
        return _label(c.key), [_Obs(None, None, v, None, None, False)]
    if c.key in result.tables:
        return _table_obs(result.tables[c.key], c)
    raise _JudgeError(
        f"key {c.key!r} is not in the result (analysis not run, or a typo); "
        f"known keys start with {_heads(result)}"
    )


def _pick_bound(c: Criterion, o: _Obs) -> str:
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


def _where(o: _Obs) -> str:
    out = f" on {o.group}" if o.group else ""
    return out + (f" (n={o.n})" if o.n is not None else "")


def _judge_obs(c: Criterion, label: str, o: _Obs) -> dict[str, Any]:
    """One group's outcome: status (or "skip"), compared number, reason."""
    if o.n is not None and o.n < c.min_n:
        status = {"skip": "skip", "warn": "warn", "fail": c.severity}[c.small_groups]
        why = f"{label}: too few cases{_where(o)} < min_n {c.min_n}"
        return {"status": status, "bound": None, "observed": None, "reason": why, "obs": o}
    bound = _pick_bound(c, o)
    if bound != "value" and not o.has_ci:
        raise _JudgeError(f"{c.key} has no confidence interval; use bound = 'value'")
    x = o.value if bound == "value" else (o.low if bound == "low" else o.high)
    if x is None:
        why = f"{label} {_BOUND_TEXT[bound]}not estimable{_where(o)}: {o.reason or 'no value'}"
        return {"status": c.severity, "bound": bound, "observed": None, "reason": why, "obs": o}
    numeric = isinstance(x, (int, float)) and not isinstance(x, bool)
    if c.op != "==" and not numeric:
        raise _JudgeError(f"{c.key} holds {x!r}, not a number")
    if numeric and not math.isfinite(float(x)):
        raise _JudgeError(f"{c.key} holds a non-finite number {x!r}")
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


def _distance(c: Criterion, d: dict[str, Any]) -> float:
    """How close a group is to failing (smaller = worse), for picking the worst."""
    x = d["observed"]
    if not isinstance(x, (int, float)) or isinstance(x, bool) or isinstance(c.threshold, str):
        return 0.0
    return float(x) - float(c.threshold) if c.op in (">=", ">") else float(c.threshold) - float(x)


def _judge_one(result: ValidationResult, c: Criterion) -> Verdict:
    base: dict[str, Any] = {
        "name": c.name,
        "key": c.key,
        "op": c.op,
        "threshold": c.threshold,
        "severity": c.severity,
    }
    errors = result.values.get(ANALYSIS_ERRORS) or {}
    for prefix, message in sorted(errors.items()):
        if c.key == prefix or c.key.startswith(prefix + "."):
            return Verdict(status="error", reason=f"analysis {prefix} failed: {message}", **base)
    try:
        label, obs = _observations(result, c)
        outcomes = [_judge_obs(c, label, o) for o in obs]
    except _JudgeError as exc:
        return Verdict(status="error", reason=str(exc), **base)
    counted = [d for d in outcomes if d["status"] != "skip"]
    details = tuple(
        {
            "group": d["obs"].group,
            "n": d["obs"].n,
            "observed": d["observed"],
            "status": d["status"],
            "reason": d["reason"],
        }
        for d in outcomes
    )
    if not counted:
        return Verdict(
            status="warn",
            reason=f"every group has fewer than min_n={c.min_n} cases; nothing was checked",
            groups=details,
            **base,
        )
    worst_rank = max(_RANK[d["status"]] for d in counted)
    worst = [d for d in counted if _RANK[d["status"]] == worst_rank]
    pick = min(worst, key=lambda d: _distance(c, d))
    reason = pick["reason"]
    if len(worst) > 1 and worst_rank > 0:
        reason += f"; {len(worst) - 1} more group(s) {pick['status']}"
    elif len(counted) > 1 and worst_rank == 0:
        reason += f"; worst of {len(counted)} groups"
    o: _Obs = pick["obs"]
    return Verdict(
        status=pick["status"],
        reason=reason,
        bound=pick["bound"],
        observed=pick["observed"],
        value=o.value if isinstance(o.value, float) else None,
        low=o.low,
        high=o.high,
        group=o.group,
        n=o.n,
        groups=details if len(outcomes) > 1 or o.group else (),
        **base,
    )


def judge(result: ValidationResult, criteria: Iterable[Criterion]) -> list[Verdict]:
    """Judge every criterion against a result.

    Parameters
    ----------
    result : ValidationResult
    criteria : iterable of Criterion
        E.g. :func:`medval.gate.spec_criteria` of a spec.

    Returns
    -------
    list of Verdict
        In the order of ``criteria``. Never raises for a criterion that
        cannot be judged: its verdict is ``error``.
    """
    return [_judge_one(result, c) for c in criteria]


def error_verdicts(criteria: Iterable[Criterion], reason: str) -> list[Verdict]:
    """Every criterion as an ``error`` verdict: the run stopped before judging.

    Lets a CI system see one errored testcase per criterion (rather than no
    JUnit file at all) when the validation itself crashed or its data was
    unreadable.
    """
    return [
        Verdict(
            name=c.name,
            status="error",
            key=c.key,
            op=c.op,
            threshold=c.threshold,
            severity=c.severity,
            reason=reason,
        )
        for c in criteria
    ]


def exit_code(verdicts: Sequence[Verdict]) -> ExitCode:
    """4 if any verdict is an error, 1 if any failed, else 0."""
    statuses = {v.status for v in verdicts}
    if "error" in statuses:
        return ExitCode.INTERNAL_ERROR
    if "fail" in statuses:
        return ExitCode.GATE_FAILED
    return ExitCode.OK


def gate_status(verdicts: Sequence[Verdict]) -> str:
    """ "error", "failed", "passed with warnings", "passed" or "not gated"."""
    if not verdicts:
        return "not gated"
    statuses = {v.status for v in verdicts}
    for status, word in (("error", "error"), ("fail", "failed"), ("warn", "passed with warnings")):
        if status in statuses:
            return word
    return "passed"


def record(result: ValidationResult, verdicts: Sequence[Verdict]) -> None:
    """Store verdicts in a result (replacing earlier ones).

    Writes ``values["gate.status"]``, ``values["gate.counts"]`` (status ->
    count), ``tables["gate.verdicts"]`` (one :meth:`Verdict.to_row` per
    criterion) and ``tables["gate.groups"]`` (one row per judged group).
    """
    result.values["gate.status"] = gate_status(verdicts)
    result.values["gate.counts"] = {s: sum(v.status == s for v in verdicts) for s in _RANK}
    result.tables["gate.verdicts"] = [v.to_row() for v in verdicts]
    result.tables["gate.groups"] = [{"criterion": v.name, **g} for v in verdicts for g in v.groups]
