"""Evaluation settings that name splits or cohort columns, or pick from a closed set.

Declared once here: the spec reader (``SCHEMA``), the JSON Schema and
:func:`medval.evaluate` take these defaults and choices from this module.
:func:`check_values` checks what needs no data (choices, the threshold rule
and its target, the shape of the lists); :func:`medval.gate.check_settings`
checks the names against the cohort before any model runs.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Mapping, Sequence
from typing import Any

from medval._errors import SpecError

__all__ = [
    "ADJUSTMENTS",
    "CONFORMAL_METHODS",
    "DEFAULT_CALIBRATION_SPLIT",
    "DEFAULT_COLUMNS",
    "DEFAULT_INTERSECTIONS",
    "OUTPUTS",
    "SPEC_KEYS",
    "THRESHOLD_RULES",
    "EvaluationSettings",
    "check_values",
    "evaluated_splits",
]

DEFAULT_CALIBRATION_SPLIT = "calibration"
#: Subgroup and coverage columns by default: those of these the cohort has.
DEFAULT_COLUMNS: tuple[str, ...] = ("manufacturer", "model_name", "sex", "age_band")
DEFAULT_INTERSECTIONS: tuple[tuple[str, str], ...] = (("manufacturer", "sex"),)
_PRIMARY_SPLITS = ("internal", "test")

OUTPUTS: tuple[str, ...] = ("logits", "probabilities")
THRESHOLD_RULES: tuple[str, ...] = ("youden", "sensitivity", "specificity")
_TARGET_RULES = ("sensitivity", "specificity")
CONFORMAL_METHODS: tuple[str, ...] = ("aps", "raps", "lac", "topk")  # conformal.SCORES
ADJUSTMENTS: tuple[str, ...] = ("holm", "bh")  # shift.subgroup_table's adjust

#: :func:`medval.evaluate` keyword -> the spec key that sets it.
SPEC_KEYS: dict[str, str] = {
    "calibration_split": "analysis.calibration_split",
    "test_splits": "analysis.test_splits",
    "threshold": "analysis.threshold",
    "threshold_rule": "analysis.threshold_rule",
    "threshold_target": "analysis.threshold_target",
    "conformal_method": "conformal.method",
    "conformal_mondrian": "conformal.mondrian",
    "group_columns": "conformal.group_columns",
    "subgroup_columns": "shift.subgroup_columns",
    "subgroup_intersections": "shift.intersections",
    "subgroup_adjust": "shift.adjust",
    "drift_reference": "shift.reference_split",
}


@dataclasses.dataclass(frozen=True)
class EvaluationSettings:
    """The settings of :func:`medval.evaluate` that are checked before any work.

    Fields and defaults are :func:`medval.evaluate`'s keywords; see its
    docstring. A list equal to its default may name columns the cohort lacks
    (those are skipped); any other value must exist in the cohort.
    """

    calibration_split: str | None = DEFAULT_CALIBRATION_SPLIT
    test_splits: Sequence[str] | None = None
    threshold: float | None = None
    threshold_rule: str = "youden"
    threshold_target: float | None = None
    conformal_method: str | None = "aps"
    conformal_mondrian: str | None = None
    group_columns: Sequence[str] = DEFAULT_COLUMNS
    subgroup_columns: Sequence[str] = DEFAULT_COLUMNS
    subgroup_intersections: Sequence[Sequence[str]] = DEFAULT_INTERSECTIONS
    subgroup_adjust: str = "holm"
    drift_reference: str | None = None

    @classmethod
    def from_sections(cls, sections: Mapping[str, Mapping[str, Any]]) -> EvaluationSettings:
        """The settings of a checked spec's sections (:data:`SPEC_KEYS`)."""
        values = {}
        for field, dotted in SPEC_KEYS.items():
            section, key = dotted.split(".")
            values[field] = sections[section][key]
        return cls(**values)


class Namer:
    """How a setting is named in messages: the spec key or the keyword."""

    def __init__(self, keys: Mapping[str, str] | None, source: str | None) -> None:
        self.keys = keys or {}
        self.prefix = f"{source}: " if source else ""

    def __call__(self, field: str, *index: int) -> str:
        """The name opening a message: with the source prefix."""
        return self.prefix + self.key(field, *index)

    def key(self, field: str, *index: int) -> str:
        """The name inside a message."""
        return self.keys.get(field, field) + "".join(f"[{i}]" for i in index)


def did_you_mean(value: object, allowed: Sequence[str]) -> str:
    """``"; did you mean 'x'?"`` for the closest allowed value, else ``"."``."""
    close = difflib.get_close_matches(str(value), list(allowed), n=1)
    return f"; did you mean {close[0]!r}?" if close else "."


def not_one_of(name: str, value: object, what: str, allowed: Sequence[str]) -> SpecError:
    """``name = value is not <what>; did you mean ...? Allowed: ...``."""
    shown = ", ".join(repr(a) for a in allowed) if allowed else "(none)"
    return SpecError(f"{name} = {value!r} is not {what}{did_you_mean(value, allowed)} "
                     f"Allowed: {shown}.")  # fmt: skip


def _names(name: str, value: Any, *, what: str) -> None:
    if not isinstance(value, (list, tuple)):
        raise SpecError(f"{name} must be a list of {what}; got {value!r}.")
    for i, item in enumerate(value):
        if not isinstance(item, str) or not item:
            raise SpecError(f"{name}[{i}] must be a {what[:-1]} name (a string); got {item!r}.")
    if len(set(value)) != len(value):
        raise SpecError(f"{name} repeats a name: {list(value)!r}.")


def check_values(
    settings: EvaluationSettings,
    *,
    keys: Mapping[str, str] | None = None,
    source: str | None = None,
) -> None:
    """Check the settings that need no data: choices, list shapes, threshold rule and target.

    Parameters
    ----------
    settings : EvaluationSettings
    keys : mapping, optional
        Field -> the name shown in messages (:data:`SPEC_KEYS` for a spec);
        default the :func:`medval.evaluate` keyword.
    source : str, optional
        Prefix of every message (the spec file's name).

    Raises
    ------
    SpecError
        Naming the setting, the bad value and the allowed ones.
    """
    n, s = Namer(keys, source), settings
    if s.threshold_rule not in THRESHOLD_RULES:
        raise not_one_of(n("threshold_rule"), s.threshold_rule, "a threshold rule", THRESHOLD_RULES)
    if s.subgroup_adjust not in ADJUSTMENTS:
        raise not_one_of(n("subgroup_adjust"), s.subgroup_adjust, "an adjustment", ADJUSTMENTS)
    if s.conformal_method is not None and s.conformal_method not in CONFORMAL_METHODS:
        raise not_one_of(
            n("conformal_method"), s.conformal_method, "a conformal method", CONFORMAL_METHODS
        )
    _threshold(s, n)
    if s.test_splits is not None:
        _names(n("test_splits"), s.test_splits, what="splits")
        if not s.test_splits:
            raise SpecError(f"{n('test_splits')} is empty; name at least one split to evaluate.")
    for field in ("calibration_split", "drift_reference", "conformal_mondrian"):
        value = getattr(s, field)
        if value is not None and (not isinstance(value, str) or not value):
            raise SpecError(f"{n(field)} must be a non-empty string; got {value!r}.")
    _names(n("group_columns"), s.group_columns, what="columns")
    _names(n("subgroup_columns"), s.subgroup_columns, what="columns")
    if not isinstance(s.subgroup_intersections, (list, tuple)):
        raise SpecError(
            f"{n('subgroup_intersections')} must be a list of column pairs; "
            f"got {s.subgroup_intersections!r}."
        )
    for i, pair in enumerate(s.subgroup_intersections):
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise SpecError(
                f"{n('subgroup_intersections', i)} = {pair!r} must name exactly two columns "
                '(e.g. ["manufacturer", "sex"]); for three, cross two of them into one column.'
            )
        _names(n("subgroup_intersections", i), pair, what="columns")


def _threshold(s: EvaluationSettings, n: Namer) -> None:
    target = s.threshold_target
    if s.threshold is not None and (
        isinstance(s.threshold, bool)
        or not isinstance(s.threshold, (int, float))
        or not 0.0 <= s.threshold <= 1.0
    ):
        raise SpecError(f"{n('threshold')} must be a probability in [0, 1]; got {s.threshold!r}.")
    if s.threshold is not None and s.threshold_rule != "youden":
        raise SpecError(
            f"{n('threshold')} fixes the operating threshold, so {n.key('threshold_rule')} = "
            f"{s.threshold_rule!r} would be ignored; give one of them."
        )
    if s.threshold_rule in _TARGET_RULES:
        if target is None:
            raise SpecError(
                f"{n('threshold_rule')} = {s.threshold_rule!r} needs {n.key('threshold_target')}: "
                f"the {s.threshold_rule} to reach on the calibration split, e.g. 0.9."
            )
        if isinstance(target, bool) or not isinstance(target, (int, float)):
            raise SpecError(f"{n('threshold_target')} must be a number; got {target!r}.")
        if not 0.0 < target <= 1.0:
            raise SpecError(f"{n('threshold_target')} must be in (0, 1]; got {target!r}.")
    elif target is not None:
        raise SpecError(
            f"{n('threshold_target')} = {target!r} applies only to {n.key('threshold_rule')} "
            f"'sensitivity' or 'specificity'; the rule is {s.threshold_rule!r}."
        )


def evaluated_splits(
    present: Sequence[str], *, calibration_split: str | None, test_splits: Sequence[str] | None
) -> list[str]:
    """The splits :func:`medval.evaluate` reports, the primary one first.

    ``test_splits`` when given; else every present split except ``train``
    and the calibration split, ``internal`` (or ``test``) first, then in
    order of appearance.
    """
    if test_splits is not None:
        return list(test_splits)
    out = [s for s in present if s not in ("train", calibration_split)]
    out.sort(key=lambda s: (s not in _PRIMARY_SPLITS, list(present).index(s)))
    return out
