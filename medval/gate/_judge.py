"""Verdicts: each criterion of a spec judged against a :class:`ValidationResult`.

Fail closed: a missing key, a value of the wrong kind or an analysis that
recorded an error gives the verdict ``error``, never ``pass``.

This module builds the :class:`Verdict` of a criterion from its groups'
outcomes (the worst group decides) and sums verdicts up into a gate status
and exit code. Reading the numbers a key names is in
:mod:`medval.gate._observe`; comparing one group with the threshold is in
:mod:`medval.gate._compare`.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Literal

from medval._errors import ExitCode
from medval._text import one_line
from medval.gate._compare import distance, judge_obs
from medval.gate._criteria import Criterion
from medval.gate._observe import JudgeError, Obs, observations

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
    "verdict_of",
]

Status = Literal["pass", "fail", "warn", "error"]
_RANK = {"pass": 0, "warn": 1, "fail": 2, "error": 3}
# An absolute path (POSIX, ~, or a Windows drive) inside a message: folder
# names can identify people, so a verdict keeps only the last part.
_PATH = re.compile(r"(?<![\w.~/\\])(?:[A-Za-z]:[\\/]|~?/)(?:[^\s'\"/\\]+[\\/])+([^\s'\"/\\]+)")


def _without_paths(text: str) -> str:
    """``text`` with every absolute path reduced to its last part, as one printable line.

    Messages may quote group names from DICOM headers and labels: a terminal
    escape or a line break in one must not reach the console verdict table.
    """
    return one_line(_PATH.sub(r"\1", text))


def _group(name: str | None) -> str | None:
    return None if name is None else one_line(name)


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


def _base(c: Criterion) -> dict[str, Any]:
    return {"name": c.name, "key": c.key, "op": c.op, "threshold": c.threshold,
            "severity": c.severity}  # fmt: skip


def _judge_one(result: ValidationResult, c: Criterion) -> Verdict:
    base = _base(c)
    errors = result.values.get(ANALYSIS_ERRORS) or {}
    for prefix, message in sorted(errors.items()):
        if c.key == prefix or c.key.startswith(prefix + "."):
            reason = _without_paths(f"analysis {prefix} failed: {message}")
            return Verdict(status="error", reason=reason, **base)
    try:
        label, obs = observations(result, c)
        outcomes = [judge_obs(c, label, o) for o in obs]
    except JudgeError as exc:
        return Verdict(status="error", reason=_without_paths(str(exc)), **base)
    return verdict_of(c, outcomes)


def verdict_of(c: Criterion, outcomes: Sequence[dict[str, Any]]) -> Verdict:
    """The verdict of a criterion from its groups' outcomes (the worst group decides).

    ``outcomes`` are :func:`medval.gate._compare.judge_obs` dicts, one per group;
    :mod:`medval.gate._multiplicity` passes them re-judged at adjusted levels.
    """
    base = _base(c)
    counted = [d for d in outcomes if d["status"] != "skip"]
    details = tuple(
        {
            "group": _group(d["obs"].group),
            "n": d["obs"].n,
            "observed": d["observed"],
            "status": d["status"],
            "reason": one_line(d["reason"]),
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
    pick = min(worst, key=lambda d: distance(c, d))
    reason = one_line(pick["reason"])
    if len(worst) > 1 and worst_rank > 0:
        reason += f"; {len(worst) - 1} more group(s) {pick['status']}"
    elif len(counted) > 1 and worst_rank == 0:
        reason += f"; worst of {len(counted)} groups"
    o: Obs = pick["obs"]
    return Verdict(
        status=pick["status"],
        reason=reason,
        bound=pick["bound"],
        observed=pick["observed"],
        value=o.value if isinstance(o.value, float) else None,
        low=o.low,
        high=o.high,
        group=_group(o.group),
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
