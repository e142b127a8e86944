"""Many criteria: what a gate's verdict means, and Holm or Bonferroni across the criteria.

A fail criterion on a conservative CI bound is a one-sided test at level
``(1 - confidence_level) / 2``; each group of a group criterion is one more
test. Two readings of the same verdicts have different error rates:

- The release decision passes only when every fail comparison passes: an
  intersection-union test (Berger 1982). If the model truly misses any one
  criterion, the chance that it is released is at most that criterion's
  one-sided level, with no adjustment for the number of criteria.
- The individual verdicts read as a family ("every scanner meets its floor",
  which subgroups pass) are m claims; each wrong with probability up to the
  level, so at least one is wrong with probability up to m times it
  (Bonferroni's inequality). ``gate.multiplicity = "holm"`` (Holm 1979) or
  ``"bonferroni"`` (simultaneous bounds) controls that family-wise error at
  the one-sided level.

Criteria on a point value (``bound = "value"``, or a number without a CI)
carry no error control at all, adjusted or not; the statement names them.
Warn criteria cannot fail the gate and are not in the family.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from medval._errors import InputError
from medval.gate._adjust import bonferroni_outcomes, holm_outcomes, one_sided_level
from medval.gate._compare import judge_obs
from medval.gate._criteria import Criterion
from medval.gate._judge import Verdict, judge, verdict_of
from medval.gate._observe import JudgeError, Obs, observations
from medval.gate._spec import MULTIPLICITY, Spec, spec_criteria

if TYPE_CHECKING:
    from medval._result import ValidationResult

__all__ = [
    "MULTIPLICITY_KEY",
    "MultiplicityStatement",
    "adjust_verdicts",
    "judge_spec",
    "multiplicity_statement",
]

#: ``result.values`` key of the statement (:meth:`MultiplicityStatement.to_dict`).
MULTIPLICITY_KEY = "gate.multiplicity"
_CONSERVATIVE = {">=": "low", ">": "low", "<=": "high", "<": "high"}
_SHOWN = 5  # uncontrolled comparisons named in the text


@dataclasses.dataclass(frozen=True)
class MultiplicityStatement:
    """What the gate's verdicts mean as a family.

    Attributes
    ----------
    method : {"none", "holm", "bonferroni"}
    n_fail_comparisons : int
        Compared numbers of the fail criteria (one per group of a group
        criterion; small groups and numbers that could not be estimated are
        not compared).
    n_uncontrolled : int
        Of those, the ones on a point value or a CI without a stated level:
        no error control.
    level : float or None
        The one-sided level per comparison, ``(1 - confidence_level) / 2``
        (with mixed levels: the largest for "none", the smallest, used for
        the whole family, for "holm"/"bonferroni"); None without a CI
        comparison.
    family_wise_bound : float or None
        Bound on the chance that at least one passed claim is wrong: the sum
        of the levels (capped at 1) for "none", ``level`` otherwise.
    text : str
        The statement in words (report, JUnit property).
    summary : str
        One line for the terminal.
    uncontrolled : tuple of str
        ``criterion`` or ``criterion[group]`` of each uncontrolled comparison.
    n_warn_comparisons : int
        Compared numbers of warn criteria (outside the family).
    """

    method: str
    n_fail_comparisons: int
    n_uncontrolled: int
    level: float | None
    family_wise_bound: float | None
    text: str
    summary: str = ""
    uncontrolled: tuple[str, ...] = ()
    n_warn_comparisons: int = 0

    @property
    def n_family(self) -> int:
        """Fail comparisons on a CI bound: the family that Holm/Bonferroni adjust."""
        return self.n_fail_comparisons - self.n_uncontrolled

    def to_dict(self) -> dict[str, Any]:
        """JSON-native form (``result.values["gate.multiplicity"]``)."""
        out = dataclasses.asdict(self)
        out["uncontrolled"] = list(self.uncontrolled)
        return out


@dataclasses.dataclass(frozen=True)
class _Judged:
    """A judged criterion's outcomes (None: the verdict is an error)."""

    criterion: Criterion
    label: str
    outcomes: list[dict[str, Any]] | None


def _judged(
    result: ValidationResult, criteria: Sequence[Criterion], verdicts: Sequence[Verdict]
) -> list[_Judged]:
    if len(criteria) != len(verdicts):
        raise InputError(
            f"need one verdict per criterion; got {len(criteria)} criteria and "
            f"{len(verdicts)} verdicts. Pass judge(result, criteria) for the same criteria."
        )
    out = []
    for c, v in zip(criteria, verdicts, strict=True):
        if v.name != c.name:
            raise InputError(
                f"verdict {v.name!r} stands where criterion {c.name!r} is; pass the "
                "verdicts in the order of the criteria."
            )
        if v.status == "error":
            out.append(_Judged(c, "", None))
            continue
        try:
            label, obs = observations(result, c)
            out.append(_Judged(c, label, [judge_obs(c, label, o) for o in obs]))
        except JudgeError:  # the verdict was judged on another result
            out.append(_Judged(c, "", None))
    return out


def _controlled(c: Criterion, d: dict[str, Any]) -> bool:
    """Whether a compared outcome is a one-sided test at a stated level."""
    o: Obs = d["obs"]
    return (
        _CONSERVATIVE.get(c.op) == d["bound"]
        and isinstance(c.threshold, float)
        and o.confidence_level is not None
        and o.low is not None
        and o.high is not None
    )


def _name(c: Criterion, d: dict[str, Any]) -> str:
    group = d["obs"].group
    return c.name if group is None else f"{c.name}[{group}]"


def _members(judged: Sequence[_Judged], severity: str) -> list[tuple[int, int, bool]]:
    """(criterion index, outcome index, controlled) of each compared outcome."""
    return [
        (i, k, _controlled(j.criterion, d))
        for i, j in enumerate(judged)
        if j.criterion.severity == severity and j.outcomes is not None
        for k, d in enumerate(j.outcomes)
        if d["observed"] is not None and d["status"] != "skip"
    ]


def _check_method(method: str) -> None:
    if method not in MULTIPLICITY:
        raise InputError(
            f"multiplicity method {method!r} is not known; valid: {', '.join(MULTIPLICITY)} "
            "(gate.multiplicity in the spec)."
        )


def _family_text(method: str, m: int, levels: list[float]) -> tuple[str, float]:
    if method == "none":
        bound = min(1.0, sum(levels))
        same = f"{m} × {levels[0]:g} = {bound:.3g}" if len(set(levels)) == 1 else f"{bound:.3g}"
        return (
            "The individual verdicts read as a family (every group meets its floor; which "
            f"groups pass) are not adjusted: their family-wise error is up to {same} "
            '(Bonferroni\'s inequality); gate.multiplicity = "holm" or "bonferroni" '
            "controls it."
        ), bound
    alpha = min(levels)
    how = (
        f"Holm's step-down adjustment (Holm 1979) across the {m} comparisons"
        if method == "holm"
        else f"simultaneous {100 * (1 - 2 * alpha / m):.4g}% intervals (Bonferroni) for "
        f"the {m} comparisons"
    )
    verb = "keep" if method == "bonferroni" else "keeps"
    text = f"{how} {verb} the family-wise error of the passed claims at most {alpha:g}."
    return text[0].upper() + text[1:], alpha


def multiplicity_statement(
    result: ValidationResult,
    criteria: Sequence[Criterion],
    verdicts: Sequence[Verdict],
    *,
    method: str = "none",
) -> MultiplicityStatement:
    """Count the gate's comparisons and say what its error rates are.

    Parameters
    ----------
    result : ValidationResult
    criteria : sequence of Criterion
    verdicts : sequence of Verdict
        ``judge(result, criteria)``, one per criterion in the same order.
    method : {"none", "holm", "bonferroni"}, default "none"

    Returns
    -------
    MultiplicityStatement

    Raises
    ------
    InputError
        On an unknown method, or verdicts that do not match the criteria.

    References
    ----------
    Berger (1982), Technometrics 24:295-300 (intersection-union tests);
    Holm (1979), Scand. J. Statist. 6:65-70.
    """
    _check_method(method)
    judged = _judged(result, criteria, verdicts)
    fail = _members(judged, "fail")
    family = [(i, k) for i, k, ok in fail if ok]
    loose = [_name(judged[i].criterion, judged[i].outcomes[k]) for i, k, ok in fail if not ok]  # type: ignore[index]
    levels = [one_sided_level(judged[i].outcomes[k]["obs"]) for i, k in family]  # type: ignore[index]
    n_crit = len({i for i, _, _ in fail})
    parts = [
        f"The gate makes {len(fail)} fail comparison{'s' * (len(fail) != 1)} "
        f"({n_crit} criteri{'a' if n_crit != 1 else 'on'}; each group of a group criterion "
        "counts)."
    ]
    level = bound = None
    if family:
        level = max(levels) if method == "none" else min(levels)
        parts.append(
            "The release decision passes only when every one of them passes, an "
            "intersection-union test (Berger 1982): the chance of releasing a model that "
            f"truly misses any one criterion with a CI bound is at most {max(levels):g}, "
            "that criterion's one-sided CI level, with no adjustment needed (as far as "
            "each CI holds its nominal coverage)."
        )
        text, bound = _family_text(method, len(family), levels)
        parts.append(text)
    if loose:
        shown = ", ".join(loose[:_SHOWN]) + (
            f" and {len(loose) - _SHOWN} more" * (len(loose) > _SHOWN)
        )
        parts.append(
            f"{len(loose)} comparison{'s' * (len(loose) != 1)} on a point value or a CI "
            f"without a stated level carr{'y' if len(loose) != 1 else 'ies'} no error "
            f"control at all: {shown}."
        )
    n_warn = len(_members(judged, "warn"))
    if n_warn:
        parts.append(f"Warn comparisons cannot fail the gate and are not in the family ({n_warn}).")
    n_err = sum(j.outcomes is None for j in judged)
    if n_err:
        parts.append(f"{n_err} criteri{'a' if n_err != 1 else 'on'} could not be judged and "
                     "fail the gate closed.")  # fmt: skip
    summary = f"{method}; {len(fail)} fail comparisons"
    if level is not None and bound is not None:
        summary += f"; release error <= {max(levels):g} (intersection-union)"
        summary += f"; family-wise error of the verdicts <= {bound:.3g}"
    if loose:
        summary += f"; {len(loose)} without error control"
    return MultiplicityStatement(
        method=method,
        n_fail_comparisons=len(fail),
        n_uncontrolled=len(loose),
        level=None if level is None else round(level, 12),  # 0.025, not 0.025000000000000022
        family_wise_bound=None if bound is None else round(bound, 12),
        text=" ".join(parts),
        summary=summary,
        uncontrolled=tuple(loose),
        n_warn_comparisons=n_warn,
    )


def adjust_verdicts(
    result: ValidationResult,
    criteria: Sequence[Criterion],
    verdicts: Sequence[Verdict],
    *,
    method: str,
) -> tuple[Verdict, ...]:
    """Re-judge the fail comparisons on a CI bound as one family.

    Parameters
    ----------
    result : ValidationResult
    criteria : sequence of Criterion
    verdicts : sequence of Verdict
        ``judge(result, criteria)``, one per criterion in the same order.
    method : {"none", "holm", "bonferroni"}
        ``"none"`` returns the verdicts unchanged. ``"holm"``: a one-sided
        p-value per comparison (:func:`medval.gate._adjust.p_value`: exact
        binomial for a proportion with its count, else a normal
        approximation from the CI), Holm-adjusted across the family; a
        comparison passes when its adjusted p-value is at most
        ``(1 - confidence_level) / 2``. ``"bonferroni"``: each bound
        recomputed at the two-sided level ``1 - (1 - confidence_level) / m``
        (:func:`medval.gate._adjust.simultaneous_bound`) and compared with
        the threshold.

    Returns
    -------
    tuple of Verdict
        In the order of ``criteria``. Warn criteria, errors, small groups and
        comparisons without a CI at a stated level stay as they were; the
        reasons of the adjusted groups give the adjusted figure.

    Raises
    ------
    InputError
        On an unknown method, or verdicts that do not match the criteria.

    References
    ----------
    Holm (1979), Scand. J. Statist. 6:65-70; Dunn (1961), JASA 56:52-64.
    """
    _check_method(method)
    judged = _judged(result, criteria, verdicts)
    family = [(i, k) for i, k, ok in _members(judged, "fail") if ok]
    if method == "none" or not family:
        return tuple(verdicts)
    items = [(judged[i].criterion, judged[i].outcomes[k], judged[i].label) for i, k in family]  # type: ignore[index]
    redone = holm_outcomes(items) if method == "holm" else bonferroni_outcomes(items)
    outcomes = {i: list(j.outcomes or ()) for i, j in enumerate(judged)}
    for (i, k), d in zip(family, redone, strict=True):
        outcomes[i][k] = d
    touched = {i for i, _ in family}
    return tuple(
        verdict_of(c, outcomes[i]) if i in touched else v
        for i, (c, v) in enumerate(zip(criteria, verdicts, strict=True))
    )


def judge_spec(result: ValidationResult, spec: Spec) -> tuple[Verdict, ...]:
    """Judge a spec's criteria, adjusted as ``gate.multiplicity`` says, and state the family.

    :func:`judge` on :func:`spec_criteria`, then :func:`adjust_verdicts`;
    writes :func:`multiplicity_statement` (always, "none" included) to
    ``result.values["gate.multiplicity"]``. Store the verdicts with
    :func:`record` as before.
    """
    method = str((spec.sections.get("gate") or {}).get("multiplicity", "none"))
    criteria = spec_criteria(spec)
    verdicts = judge(result, criteria)
    statement = multiplicity_statement(result, criteria, verdicts, method=method)
    result.values[MULTIPLICITY_KEY] = statement.to_dict()
    return adjust_verdicts(result, criteria, verdicts, method=method)
