"""Checks of the evaluation settings that need no data.

The settings are declared once, in :mod:`medval.gate._config`.
:func:`check_values` checks what needs no data (types of numbers, ranges,
choices, the threshold rule and its target, the shape of the lists);
:func:`medval.gate.check_settings` checks the names against the cohort
before any model runs.
"""

from __future__ import annotations

import difflib
import itertools
from collections.abc import Mapping, Sequence
from typing import Any

from medval._errors import SpecError
from medval.gate._config import EvaluationConfig, settings

__all__ = ["EvaluationSettings", "check_values", "evaluated_splits"]

_PRIMARY_SPLITS = ("internal", "test")
_TARGET_RULES = ("sensitivity", "specificity")
# How a choice is named in "... is not <what>" messages.
_WHAT = {
    "threshold_rule": "a threshold rule",
    "subgroup_adjust": "an adjustment",
    "conformal_method": "a conformal method",
    "bootstrap_method": "a bootstrap method",
    "uncertainty_measure": "an uncertainty measure",
}
#: The old name of :class:`EvaluationConfig`.
EvaluationSettings = EvaluationConfig


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


def _as_list(value: Any) -> Any:
    return [_as_list(v) for v in value] if isinstance(value, (list, tuple)) else value


def _names(name: str, value: Any, *, what: str) -> None:
    if not isinstance(value, (list, tuple)):
        raise SpecError(f"{name} must be a list of {what}; got {value!r}.")
    for i, item in enumerate(value):
        if not isinstance(item, str) or not item:
            raise SpecError(f"{name}[{i}] must be a {what[:-1]} name (a string); got {item!r}.")
    if len(set(value)) != len(value):
        raise SpecError(f"{name} repeats a name: {list(value)!r}.")


def _in_interval(name: str, value: Any, interval: str, integer: bool) -> None:
    """``value`` a number (an integer where ``integer``) inside ``"[lo, hi)"``."""
    lo_text, hi_text = (t.strip() for t in interval[1:-1].split(","))
    lo, hi = float(lo_text), float(hi_text)
    kind = "an integer" if integer else "a number"
    ok_type = isinstance(value, int if integer else (int, float)) and not isinstance(value, bool)
    ok = ok_type and value == value  # NaN is no number here
    if ok:
        ok = (value >= lo if interval[0] == "[" else value > lo) and (
            value <= hi if interval[-1] == "]" else value < hi
        )
    if not ok:
        where = f"in {interval}" if hi != float("inf") else f">= {lo_text}"
        if interval[0] == "(" and hi == float("inf"):
            where = f"> {lo_text}"
        raise SpecError(f"{name} must be {kind} {where}; got {value!r}.")


def _metric(name: str, value: Any) -> None:
    from medval.stats import METRICS

    if value not in METRICS:
        raise not_one_of(name, value, "a metric", sorted(METRICS))


def check_values(
    config: EvaluationConfig,
    *,
    keys: Mapping[str, str] | None = None,
    source: str | None = None,
) -> None:
    """Check the settings that need no data: numbers and ranges, choices, lists, threshold rule.

    Parameters
    ----------
    config : EvaluationConfig
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
    n, s = Namer(keys, source), config
    for setting in settings():
        value = getattr(s, setting.name)
        if setting.choices and value not in setting.choices:
            what = _WHAT.get(setting.name, "an allowed value")
            raise not_one_of(n(setting.name), value, what, setting.choices)
        if setting.interval and value is not None:
            _in_interval(n(setting.name), value, setting.interval, int in setting.types)
        if setting.types == (bool,) and not isinstance(value, bool):
            raise SpecError(f"{n(setting.name)} must be true or false; got {value!r}.")
    _metric(n("reference_metric"), s.reference_metric)
    _threshold(s, n)
    if s.test_splits is not None:
        _names(n("test_splits"), s.test_splits, what="splits")
        if not s.test_splits:
            raise SpecError(f"{n('test_splits')} is empty; name at least one split to evaluate.")
    _levels(n("gaussian_levels"), s.gaussian_levels)
    for field in ("calibration_split", "drift_reference", "conformal_mondrian",
                  "interval_mondrian"):  # fmt: skip
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
                f"{n('subgroup_intersections', i)} = {_as_list(pair)!r} must name exactly two "
                "columns "
                '(e.g. ["manufacturer", "sex"]); for three, cross two of them into one column.'
            )
        _names(n("subgroup_intersections", i), pair, what="columns")


def _levels(name: str, levels: Any) -> None:
    ok = (
        isinstance(levels, (list, tuple))
        and len(levels) >= 1
        and all(isinstance(v, float) and 0.0 < v < 1.0 for v in levels)
        and all(b > a for a, b in itertools.pairwise(levels))
    )
    if not ok:
        raise SpecError(
            f"{name} must list increasing nominal levels in (0, 1), e.g. [0.5, 0.8, 0.9, 0.95]; "
            f"got {_as_list(levels)!r}."
        )


def _threshold(s: EvaluationConfig, n: Namer) -> None:
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
