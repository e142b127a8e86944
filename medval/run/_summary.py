"""The terminal summary of a run."""

from __future__ import annotations

from medval._result import ValidationResult
from medval._text import one_line

__all__ = ["summary_table"]


#: The terminal's segmentation columns: (key under segmentation.<structure>., label).
SEGMENTATION_METRICS = (("dice", "Dice"), ("nsd", "NSD"), ("hd95", "HD95 mm"),
                        ("lesions.sensitivity", "Lesion sens."),
                        ("lesions.fp_per_scan", "FP/scan"), ("risk.fnr", "FNR (CRC)"))  # fmt: skip


def _cell(result: ValidationResult, key: str) -> str:
    e = result.estimates.get(key)
    if e is None or e.value is None:
        return "n/a"
    if e.low is None or e.high is None:
        return f"{e.value:.3f}"
    return f"{e.value:.3f} [{e.low:.3f}, {e.high:.3f}]"


def _regression(result: ValidationResult) -> tuple[list[str], list[list[str]]]:
    """Header and rows of a regression result: errors in the unit, interval coverage."""
    from medval.report import UnitFormat

    f = UnitFormat.of(result)
    head = ["split", "cases", *(f"{m}{f.suffix}" for m in ("MAE", "RMSE", "bias"))]
    target = result.values.get("regression.interval.target")
    if target is not None:
        head.append(f"coverage (target {target:.2f})")
    rows = []
    for name, p in result.split_prefixes():
        e = result.estimates
        cells = [one_line(name), str(result.values.get(f"{p}regression.n_cases", ""))]
        cells.append(f.bracket(e.get(f"{p}regression.mae")))
        for key in ("rmse", "bias"):
            x = e.get(f"{p}regression.{key}")
            cells.append("n/a" if x is None or x.value is None else f.num(x.value))
        if target is not None:
            cells.append(_cell(result, f"{p}regression.interval.coverage"))
        rows.append(cells)
    return head, rows


def summary_table(result: ValidationResult) -> str:
    """A plain-text table of the key numbers, for the terminal.

    Per evaluated split: AUROC and the operating point of a classifier; per
    structure the mask metrics of a segmentation; MAE with its interval, RMSE,
    bias (in the target's unit) and conformal interval coverage of a regression.
    """
    from medval.report import SUMMARY_METRICS as _METRICS

    if result.values.get("task.kind") == "regression":
        return _layout(*_regression(result))
    segmentation = result.values.get("task.kind") == "segmentation"
    labels = [label for _, label in (SEGMENTATION_METRICS if segmentation else _METRICS)]
    head = ["split", *(["structure"] if segmentation else []), "cases", *labels]
    rows = []
    for name, prefix in result.split_prefixes():
        # Split names come from the labels table: one printable line each.
        if segmentation:
            for s in result.values.get("segmentation.structures") or []:
                key = f"{prefix}segmentation.{s}"
                cells = [one_line(name), one_line(str(s)), str(result.values.get(f"{key}.n_cases"))]
                cells += [_cell(result, f"{key}.{m}") for m, _ in SEGMENTATION_METRICS]
                rows.append(cells)
            continue
        cells = [one_line(name), str(result.values.get(f"{prefix}cohort.n_cases", ""))]
        cells += [_cell(result, prefix + key) for key, _ in _METRICS]
        rows.append(cells)
    return _layout(head, rows)


def _layout(head: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in [head, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
