"""Evidence rules for segmentation results: the same checklist items, from the mask metrics.

Each rule here replaces the classifier's rule of the same name when the result
is a segmentation (``task.kind = "segmentation"``):
:func:`medval.checklist._rules.for_task` picks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from medval.checklist._model import Evidence
from medval.checklist._text import ci, est, join, split_prefixes

if TYPE_CHECKING:
    from medval._result import ValidationResult

__all__ = ["SEGMENTATION_RULES"]

Rule = Callable[["ValidationResult"], Evidence | None]


def _structures(r: ValidationResult) -> list[str]:
    return [str(s) for s in r.values.get("segmentation.structures") or []]


def _line(r: ValidationResult, name: str, prefix: str) -> str:
    parts = []
    for s in _structures(r):
        key = f"{prefix}segmentation.{s}"
        n = r.values.get(f"{key}.n_cases")
        parts.append(
            f"'{name}' {s} ({n} cases): Dice {ci(est(r, f'{key}.dice'))}, NSD "
            f"{ci(est(r, f'{key}.nsd'))}, HD95 {ci(est(r, f'{key}.hd95'), 1)} mm"
        )
    return "; ".join(parts)


def metrics(r: ValidationResult) -> Evidence | None:
    if not _structures(r):
        return None
    tol = (r.values.get("segmentation.settings") or {}).get("nsd_tolerance_mm")
    return Evidence(
        "Per-case Dice, IoU, NSD at "
        f"{tol} mm, HD95 and HD (larger of the two directed percentiles), ASSD and volume "
        "errors, averaged over cases with patient-clustered bootstrap intervals; empty masks "
        "by declared rules (both empty: overlap 1, distances 0; one empty: overlap 0, "
        "distances at the cap), counted per split; lesion sensitivity, false positives per "
        "scan and the FROC score; voxel calibration near the structures."
    )


def internal(r: ValidationResult) -> Evidence | None:
    prefixes = split_prefixes(r)
    if not prefixes or not _structures(r):
        return None
    return Evidence(f"Primary test split {_line(r, *prefixes[0])}.")


def external(r: ValidationResult) -> Evidence | None:
    prefixes = split_prefixes(r)
    if not prefixes or not _structures(r):
        return None
    if len(prefixes) == 1:
        return Evidence(
            f"Only '{prefixes[0][0]}' was evaluated: no external test split; state why.", False
        )
    return Evidence(
        "Further test splits: " + "; ".join(_line(r, n, p) for n, p in prefixes[1:]) + "."
    )


def performance(r: ValidationResult) -> Evidence | None:
    lines = [_line(r, n, p) for n, p in split_prefixes(r)]
    if not lines or not _structures(r):
        return None
    rows = [g for g in r.tables.get("segmentation.by_group") or [] if g["metric"] == "dice"]
    columns = sorted({g["column"] for g in rows})
    text = "; ".join(lines)
    if columns:
        text += f"; mean Dice with CIs by {join(columns)}"
    return Evidence(text + ".", complete=bool(columns))


def failure(r: ValidationResult) -> Evidence | None:
    parts = []
    for name, prefix in split_prefixes(r):
        for s in _structures(r):
            empty = r.values.get(f"{prefix}segmentation.{s}.empty") or {}
            worst = r.tables.get(f"{prefix}segmentation.worst_cases") or []
            parts.append(
                f"'{name}' {s}: {empty.get('reference', 0)} false positives on healthy cases, "
                f"{empty.get('prediction', 0)} missed entirely, {len(worst)} lowest-Dice cases "
                "listed by path"
            )
    if not parts:
        return None
    return Evidence("; ".join(parts) + ".")


def structured_summary(r: ValidationResult) -> Evidence | None:
    lines = [_line(r, n, p) for n, p in split_prefixes(r)]
    if not lines or not _structures(r):
        return None
    status = r.values.get("gate.status")
    tail = f"; acceptance criteria: {status}" if status else ""
    return Evidence("; ".join(lines) + tail + ".", complete=False)


SEGMENTATION_RULES: dict[str, Rule] = {
    "metrics": metrics,
    "internal": internal,
    "external": external,
    "performance": performance,
    "failure": failure,
    "structured_summary": structured_summary,
}
