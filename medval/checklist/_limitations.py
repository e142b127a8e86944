"""Limitations suggested from the flags of a :class:`~medval.ValidationResult`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from medval.checklist._limitations_regression import regression_limitations
from medval.checklist._text import ci, est, join, num, split_prefixes, subgroup_rows

if TYPE_CHECKING:
    from medval._result import ValidationResult

__all__ = ["suggest_limitations"]

#: Expected calibration error above which calibration is called poor.
ECE_LIMIT = 0.1


def _disjoint(a: object, b: object) -> bool:
    """True when two Estimates' intervals do not overlap."""
    lo_a, hi_a = getattr(a, "low", None), getattr(a, "high", None)
    lo_b, hi_b = getattr(b, "low", None), getattr(b, "high", None)
    if None in (lo_a, hi_a, lo_b, hi_b):
        return False
    return bool(hi_a < lo_b or hi_b < lo_a)  # type: ignore[operator]


def suggest_limitations(
    result: ValidationResult, *, ece_limit: float = ECE_LIMIT
) -> list[dict[str, str]]:
    """Limitations a reader should see, each from a flag in the result.

    Parameters
    ----------
    result : ValidationResult
    ece_limit : float, default 0.1
        An expected calibration error above this counts as poor calibration.

    Returns
    -------
    list of dict
        ``{"flag", "text", "anchor"}``, in a fixed order: external testing,
        leakage, performance drop, drift, label-free disagreement, subgroups
        (underpowered, suppressed), conformal coverage, calibration; then a
        regression model's (:func:`regression_limitations`). The text
        holds numbers from the result and no PHI; a person decides what to
        write in the discussion.
    """
    r, v = result, result.values
    out: list[dict[str, str]] = []

    def add(flag: str, text: str, anchor: str) -> None:
        out.append({"flag": flag, "text": text, "anchor": anchor})

    prefixes = split_prefixes(r)
    if len(prefixes) <= 1:
        only = prefixes[0][0] if prefixes else "one"
        add(
            "no_external",
            f"Only the '{only}' split was evaluated: performance on other sites, scanners or "
            "periods is unknown.",
            "#performance",
        )
    if v.get("leakage.leak"):
        shared = [
            f"{v[k]} {label}"
            for k, label in (
                ("leakage.patient_key.n_overlap", "patient keys"),
                ("leakage.study_key.n_overlap", "study keys"),
                ("leakage.pixel_duplicates_across_splits", "pixel-identical images"),
            )
            if v.get(k)
        ]
        add(
            "leakage",
            f"Development and test data overlap ({join(shared) or 'see the leakage table'}): "
            "test performance may be optimistic.",
            "#shift",
        )
    primary = est(r, "discrimination.auroc")
    for name, prefix in prefixes[1:]:
        other = est(r, f"{prefix}discrimination.auroc")
        if (
            primary is not None
            and other is not None
            and _disjoint(primary, other)
            and (other.value or 0.0) < (primary.value or 0.0)
        ):
            add(
                "performance_drop",
                f"AUROC on '{name}' ({ci(other)}) is below '{prefixes[0][0]}' "
                f"({ci(primary)}); the intervals do not overlap.",
                "#performance",
            )
    for name, prefix in prefixes[1:]:
        signals = []
        if v.get(f"{prefix}shift.drifted"):
            signals.append(
                f"{v.get(f'{prefix}shift.n_drifted')} of {v.get(f'{prefix}shift.n_tested')} "
                "monitored features"
            )
        if v.get(f"{prefix}shift.bbsd_shift"):
            signals.append("model outputs (BBSD)")
        if v.get(f"{prefix}shift.mmd_shift"):
            signals.append("image embeddings (MMD)")
        if signals:
            add(
                "drift",
                f"'{name}' differs from '{v.get('shift.reference_split')}' in {join(signals)}: "
                "results may not transfer between them.",
                "#shift",
            )
    for name, prefix in prefixes[1:]:
        guess = est(r, f"{prefix}shift.estimated_accuracy")
        seen = est(r, f"{prefix}shift.observed_accuracy")
        if guess is not None and seen is not None and _disjoint(guess, seen):
            add(
                "label_free_disagrees",
                f"On '{name}' the label-free accuracy estimate {ci(guess)} disagrees with the "
                f"observed accuracy {ci(seen)}: monitoring without labels would mislead there.",
                "#shift",
            )
    rows = subgroup_rows(r)
    under = [f"{row['column']}={row['value']}" for row in rows if row.get("underpowered")]
    if under:
        add(
            "underpowered_subgroups",
            f"{len(under)} of {len(rows)} subgroups have fewer than {v.get('subgroup.min_events')} "
            f"events or {v.get('subgroup.min_non_events')} non-events (e.g. {join(under, 3)}): "
            "their intervals are wide and real gaps may go undetected.",
            "#subgroups",
        )
    suppressed = sum(1 for row in rows if row.get("suppressed"))
    if suppressed:
        add(
            "suppressed_subgroups",
            f"{suppressed} subgroup{'s' if suppressed > 1 else ''} had fewer than "
            f"{v.get('subgroup.min_cell')} cases and were suppressed: performance there is "
            "unknown.",
            "#subgroups",
        )
    target = v.get("conformal.confidence_level")
    for name, prefix in prefixes:
        low = [
            f"{row['column']}={row['group']}"
            for row in r.tables.get(f"{prefix}conformal.by_group") or []
            if row.get("flag") and row.get("direction") == "under"
        ]
        if low:
            add(
                "coverage_gap",
                f"On '{name}' conformal coverage is below the {num(target, 2)} target for "
                f"{join(low, 4)}: prediction sets under-cover there.",
                "#conformal",
            )
    high = []
    for name, prefix in prefixes:
        e = est(r, f"{prefix}calibration.ece")
        if e is not None and e.value is not None and e.value > ece_limit:
            high.append(f"{name} {ci(e)}")
    if high:
        add(
            "calibration",
            f"Expected calibration error exceeds {ece_limit:g} ({join(high)}): probabilities "
            "should not be read as risks without recalibration.",
            "#calibration",
        )
    return out + regression_limitations(result)
