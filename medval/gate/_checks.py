"""Settings checked against the cohort as soon as it is scanned, before any model runs.

Every value that names a split or a cohort column is checked here, for
:func:`medval.evaluate` and for a spec (its ``[[criteria]]`` and
``[baseline]`` too): a typo is a :class:`~medval.SpecError` (exit 2) naming
the key, the value, the allowed names and the closest one. It never turns
an analysis off silently, and it never waits until after inference.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from medval._errors import SpecError
from medval._types import COHORT_COLUMNS
from medval.gate._config import SPEC_KEYS, EvaluationConfig
from medval.gate._criteria import Criterion
from medval.gate._settings import (
    Namer,
    check_values,
    did_you_mean,
    evaluated_splits,
    not_one_of,
)
from medval.gate._spec import Spec

__all__ = ["check_settings", "check_spec_against_cohort"]

_CROSS = "\u00d7"  # shift.SEP: joins the two columns of an intersection
# Names that identify people (raw identifiers, names, dates, ages in years).
# Matched against the lower-cased name without separators ("Patient Name" -> "patientname").
_IDENTIFYING = re.compile(
    r"patients?name|^name$|(first|last|given|family|full|sur)name|birth|^dob$|mrn|medicalrecord"
    r"|address|phone|email|accession|ssn|socialsecurity|patients?id|studyid|^id$|uid$"
    r"|^age$|patients?age|physician|operator|institutionname"
)
# Drift table rows also cover the model's outputs (medval._eval_shift).
_OUTPUT_COLUMNS = ("max_probability", "entropy", "epistemic")
# subgroup.<segment> keys whose segment is not a column.
_SUBGROUP_VALUES = ("overall", "scope", "columns", "min_cell", "min_events", "min_non_events",
                    "adjust")  # fmt: skip


@dataclasses.dataclass(frozen=True)
class _Names:
    """What a cohort and the settings make available, for the criteria checks."""

    splits: list[str]  # splits of the evaluated cases, in order of appearance
    evaluated: list[str]  # the reported splits, primary first
    columns: list[str]  # de-identified cohort columns
    subgroups: list[str]  # subgroup columns and intersections that will be analysed
    groups: list[str]  # columns of the conformal coverage diagnostics


def _allowed(values: Sequence[str]) -> str:
    return ", ".join(repr(v) for v in values) if values else "(none)"


def _cohort_splits(cohort: Any | None) -> list[str]:
    if cohort is None or "split" not in cohort.columns:
        return ["all"]  # as evaluate: without splits every case is one split
    return list(dict.fromkeys(str(v) for v in cohort["split"].dropna()))


def _split(name: str, value: str, splits: Sequence[str]) -> None:
    if value not in splits:
        raise not_one_of(name, value, "a split of the evaluated cases", splits)


def _column(name: str, value: str, columns: Sequence[str], *, what: str = "a cohort column",
            extra: Sequence[str] = ()) -> None:  # fmt: skip
    allowed = [*extra, *columns]
    if value in allowed:
        return
    if value not in COHORT_COLUMNS and _IDENTIFYING.search(re.sub(r"[^a-z0-9]", "", value.lower())):
        raise SpecError(
            f"{name} = {value!r} is an identifying column, and identifying columns are never "
            "analysed: medval keeps only de-identified columns (identifiers become salted "
            f"*_key columns, ages become age_band). Allowed: {_allowed(allowed)}."
        )
    raise not_one_of(name, value, what, allowed)


def _column_list(
    n: Namer, field: str, values: Sequence[str], columns: Sequence[str], given: Collection[str]
) -> list[str]:
    """The columns analysed: every one of a given list, the cohort's ones of the default."""
    if field not in given:
        return [c for c in values if c in columns]
    for i, value in enumerate(values):
        _column(n(field, i), value, columns)
    return list(values)


def _given(settings: EvaluationConfig) -> set[str]:
    """The fields whose value differs from the default."""
    return {
        f.name
        for f in dataclasses.fields(settings)
        if _normal(getattr(settings, f.name)) != _normal(f.default)
    }


def _normal(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return tuple(_normal(v) for v in value)
    return value


def _resolve(
    settings: EvaluationConfig, cohort: Any | None, n: Namer, given: Collection[str]
) -> _Names:
    s = settings
    splits = _cohort_splits(cohort)
    columns = [] if cohort is None else sorted(c for c in map(str, cohort.columns)
                                               if c in COHORT_COLUMNS)  # fmt: skip
    cal = s.calibration_split
    if cal is not None and "calibration_split" in given:
        _split(n("calibration_split"), cal, splits)
    if s.threshold is None and s.threshold_rule != "youden" and cal not in splits:
        lacks = "none is set" if cal is None else f"the evaluated cases have no split {cal!r}"
        raise SpecError(
            f"{n('threshold_rule')} = {s.threshold_rule!r} chooses the threshold on the "
            f"calibration split, and {lacks}; set {n.key('calibration_split')} to one of "
            f"{_allowed(splits)}, or a fixed {n.key('threshold')}."
        )
    for i, split in enumerate(s.test_splits or ()):
        _split(n("test_splits", i), split, splits)
    if s.drift_reference is not None:
        _split(n("drift_reference"), s.drift_reference, splits)
    if s.reference_split is not None:
        _split(n("reference_split"), s.reference_split, splits)
    groups = _column_list(n, "group_columns", s.group_columns, columns, given)
    if s.conformal_mondrian is not None and s.conformal_mondrian != "class":
        _column(n("conformal_mondrian"), s.conformal_mondrian, columns,
                what="'class' or a cohort column", extra=("class",))  # fmt: skip
        groups.append(s.conformal_mondrian)
    if s.mask_mondrian is not None:
        _column(n("mask_mondrian"), s.mask_mondrian, columns, what="a cohort column")
        groups.append(s.mask_mondrian)
    if s.interval_mondrian is not None:
        _column(n("interval_mondrian"), s.interval_mondrian, columns, what="a cohort column")
        groups.append(s.interval_mondrian)
    subgroups = _column_list(n, "subgroup_columns", s.subgroup_columns, columns, given)
    for i, pair in enumerate(s.subgroup_intersections):
        if "subgroup_intersections" not in given:
            if all(c in subgroups for c in pair):
                subgroups.append(_CROSS.join(pair))
            continue
        for j, value in enumerate(pair):
            _column(n("subgroup_intersections", i, j), value, columns)
            if value not in subgroups:
                raise SpecError(
                    f"{n('subgroup_intersections', i, j)} = {value!r} is not one of "
                    f"{n.key('subgroup_columns')} {subgroups!r}: an intersection crosses two "
                    "subgroup columns, so add it there."
                )
        subgroups.append(_CROSS.join(pair))
    evaluated = evaluated_splits(splits, calibration_split=cal, test_splits=s.test_splits)
    return _Names(splits, evaluated, columns, subgroups, groups)


def check_settings(
    settings: EvaluationConfig,
    cohort: Any | None,
    *,
    keys: Mapping[str, str] | None = None,
    source: str | None = None,
    given: Collection[str] | None = None,
) -> None:
    """Check the settings, then every split and column they name against the cohort.

    A setting the caller gave must name what exists. One left at its default
    may name splits or columns the cohort lacks: the default calibration
    split, subgroup and coverage columns and intersections are used where
    the cohort has them.

    Parameters
    ----------
    settings : EvaluationConfig
    cohort : pandas.DataFrame or None
        The cases to evaluate (a Cohort, or its rows that have predictions);
        None: no cohort (every case in one split ``"all"``, no columns).
    keys : mapping, optional
        Field -> the name shown in messages (:data:`SPEC_KEYS` for a spec);
        default the :func:`medval.evaluate` keyword.
    source : str, optional
        Prefix of every message (the spec file's name).
    given : collection of str, optional
        The fields the caller set; default those that differ from the
        default value.

    Raises
    ------
    SpecError
        A value outside its choices; a split the cases lack; a column that
        is not a de-identified column of the cohort (an identifying one is
        never analysed); an intersection that is not two subgroup columns;
        a threshold rule without its target or its calibration split. The
        message names the key, the value, the allowed values and the closest.
    """
    check_values(settings, keys=keys, source=source)
    _resolve(settings, cohort, Namer(keys, source), _given(settings) if given is None else given)


def check_spec_against_cohort(spec: Spec, cohort: Any) -> None:
    """:func:`check_settings` for a spec, plus its criteria and baseline.

    Run as soon as the cohort is scanned, before the model is loaded or a
    pixel read. ``cohort`` holds the cases the model will be run on (no
    ``train`` split).

    Raises
    ------
    SpecError
        As :func:`check_settings`, with the spec's keys
        (``shift.subgroup_columns[1]``); also a criterion whose key names a
        split that is not evaluated (``split.<name>.``) or a subgroup column
        that is not analysed (``subgroup.<column>={group}``), a criterion
        ``column`` that names no analysed column, and a ``baseline.split``
        the cases lack.
    """
    source = spec.path.name
    settings = EvaluationConfig.from_sections(spec.sections)
    check_values(settings, keys=SPEC_KEYS, source=source)
    given = {field for field, key in SPEC_KEYS.items() if key in spec.given}
    names = _resolve(settings, cohort, Namer(SPEC_KEYS, source), given)
    for i, criterion in enumerate(spec.criteria):
        _criterion(f"{source}: criteria[{i}] ({criterion.name!r})", criterion, names, spec)


def _criterion(where: str, c: Criterion, names: _Names, spec: Spec) -> None:
    key = c.key
    if key.startswith("split."):
        rest = key[len("split.") :]
        if not any(rest.startswith(f"{s}.") for s in names.evaluated):
            guess = rest.split(".")[0]
            primary = (
                f" (the first, {names.evaluated[0]!r}, is the primary split: its keys carry "
                "no 'split.' prefix)" if names.evaluated else ""
            )  # fmt: skip
            raise SpecError(
                f"{where}: criteria.key {key!r} names split {guess!r}, which is not an "
                f"evaluated split{did_you_mean(guess, names.evaluated)} Allowed: "
                f"{_allowed(names.evaluated)}{primary}."
            )
    if key.startswith("subgroup."):
        segment = key[len("subgroup.") :].split(".")[0].split("=")[0]
        if segment not in _SUBGROUP_VALUES and "{" not in segment:
            if not spec["shift.enabled"]:
                raise SpecError(
                    f"{where}: criteria.key {key!r} needs the subgroup analysis, and "
                    "shift.enabled = false."
                )
            if segment not in names.subgroups:
                raise SpecError(
                    f"{where}: criteria.key {key!r} names subgroup column {segment!r}, which "
                    f"is not analysed{did_you_mean(segment, names.subgroups)} Allowed: "
                    f"{_allowed(names.subgroups)} (shift.subgroup_columns and "
                    "shift.intersections)."
                )
    if c.column is None:
        return
    if key.endswith("conformal.by_group"):
        allowed, what = names.groups, "a conformal.group_columns column (or conformal.mondrian)"
    elif key.startswith("subgroup."):
        allowed, what = names.subgroups, "an analysed subgroup column"
    elif "shift.drift" in key:
        allowed, what = [*names.columns, *_OUTPUT_COLUMNS], "a cohort column or model output"
    else:
        allowed = [*names.columns, *(g for g in names.subgroups if _CROSS in g)]
        what = "a cohort column"
    if c.column not in allowed:
        for part in c.column.split(_CROSS):
            _column(f"{where}: criteria.column", part, names.columns)
        raise not_one_of(f"{where}: criteria.column", c.column, what, allowed)
