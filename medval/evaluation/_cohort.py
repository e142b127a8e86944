"""The cohort as evaluated: flow and exclusions, Table 1, acquisition, pixel copies.

CLAIM items 8, 13 and 21: how many files were found, excluded (and why) and
included, per split and site; the cases' demographics and acquisition
protocols (aggregate counts and ranges of de-identified columns only); and
byte-identical pixel data across splits (a leak no header check finds).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from medval._result import ValidationResult
from medval.evaluation._inputs import Inputs
from medval.evaluation._section import Part, Section

__all__ = ["COHORT", "DUPLICATES", "FLOW", "cohort_tables"]

# Acquisition columns per DICOM modality, in table order; an X-ray modality shows
# its projection and exposure, MR its field and sequence, CT its beam and dose.
_XRAY = ("view_position", "detector_type", "exposure_index", "kvp", "exposure_mas", "pixel_spacing")
_MODALITY_COLUMNS: dict[str, tuple[str, ...]] = {
    "CT": ("kvp", "exposure_mas", "ctdi_vol", "convolution_kernel", "slice_thickness",
           "pixel_spacing"),
    "MR": ("magnetic_field_strength", "scanning_sequence", "sequence_name", "echo_time",
           "repetition_time", "slice_thickness", "pixel_spacing"),
    "CR": _XRAY,
    "DX": _XRAY,
    "MG": ("view_position", "compression_force", "body_part_thickness", "detector_type",
           "exposure_index", "kvp", "exposure_mas", "pixel_spacing"),
}  # fmt: skip
# Every row, whatever the modality: how the pixels are encoded.
_IMAGE_COLUMNS = ("photometric_interpretation", "bits_stored")
# Any other modality (or none recorded) shows those of these that hold a value.
_ANY_COLUMNS = tuple(dict.fromkeys(c for cols in _MODALITY_COLUMNS.values() for c in cols))
_NUMBERS = frozenset((
    "kvp", "exposure_mas", "ctdi_vol", "slice_thickness", "pixel_spacing",
    "magnetic_field_strength", "echo_time", "repetition_time", "exposure_index",
    "compression_force", "body_part_thickness", "bits_stored",
))  # fmt: skip
_MAX_TEXT_VALUES = 4
# Typed in at the console, not picked from a list: a value seen on a handful of
# images can single out a site or a patient's protocol, so it is pooled.
_FREE_TEXT = ("convolution_kernel", "sequence_name")
_SMALL_CELL = 11  # EvaluationConfig.small_cell's default


def cohort_tables(
    result: ValidationResult,
    cohort: Any,
    splits: Sequence[str],
    *,
    positive_class: int | None,
    small_cell: int = _SMALL_CELL,
) -> None:
    """ "Table 1" per split and the acquisition protocol per scanner (CLAIM item 13).

    Only aggregate counts and ranges of de-identified columns are written;
    cells under the small-cell limit are kept as counts (they describe the
    cohort, not a subgroup's performance), but a free-text value seen on
    fewer than ``small_cell`` images is pooled (:func:`acquisition_rows`).
    """
    table1: list[dict[str, Any]] = []
    for split in splits:
        part = cohort[cohort["split"] == split]
        if part.empty:
            continue
        row: dict[str, Any] = {"split": split, "n_cases": len(part)}
        if "patient_key" in part.columns:
            row["n_patients"] = int(part["patient_key"].nunique())
        if "label" in part.columns:
            row.update(_label_summary(part["label"], positive_class))
        for col in ("sex", "age_band", "manufacturer"):
            if col in part.columns:
                counts = part[col].fillna("unknown").astype(str).value_counts().sort_index()
                row[col] = {str(k): int(v) for k, v in counts.items()}
        table1.append(row)
    result.tables["cohort.table1"] = table1
    protocols = acquisition_rows(cohort, small_cell=small_cell)
    if protocols is not None:
        result.tables["cohort.acquisition"] = protocols


def acquisition_rows(cohort: Any, *, small_cell: int = _SMALL_CELL) -> list[dict[str, Any]] | None:
    """One row per (modality, manufacturer, model): counts, ranges and values.

    Each modality's rows carry that modality's columns (:data:`_MODALITY_COLUMNS`;
    for another or an unrecorded modality, those that hold a value) and the
    image encoding; a column without any value in a group is None. Numbers
    are shown as a range, text as up to four distinct values. A free-text
    value (convolution kernel, sequence name) seen on fewer than
    ``small_cell`` images of the cohort is shown as ``"other (n<11 each)"``,
    the small-cell rule of the subgroup tables. None when the cohort names no
    scanner (no manufacturer or model column).
    """
    keys = [c for c in ("manufacturer", "model_name") if c in cohort.columns]
    if not keys:
        return None
    frame = cohort.assign(**{c: cohort[c].fillna("unknown").astype(str) for c in keys})
    frame = frame.assign(**{c: _pool_rare(frame[c], small_cell) for c in _FREE_TEXT
                            if c in frame.columns})  # fmt: skip
    has_modality = "modality" in frame.columns
    frame = frame.assign(
        modality=frame["modality"].fillna("unknown").astype(str) if has_modality else "unknown"
    )
    rows: list[dict[str, Any]] = []
    for name, part in frame.groupby("modality", sort=True):
        columns = [*_modality_columns(str(name), part), *_IMAGE_COLUMNS]
        part = part.assign(**{c: _as_numbers(part[c]) for c in columns
                              if c in part.columns and c in _NUMBERS})  # fmt: skip
        for key, g in part.groupby(keys, sort=True):
            names = key if isinstance(key, tuple) else (key,)
            row: dict[str, Any] = {"modality": str(name)}
            row.update({c: str(v) for c, v in zip(keys, names, strict=True)})
            row["n_cases"] = len(g)
            for col in columns:
                row[col] = _summary(g[col]) if col in g.columns else None
            rows.append(row)
    return rows


def _pool_rare(values: Any, small_cell: int) -> Any:
    """Values seen fewer than ``small_cell`` times replaced by one "other" label."""
    counts = values.value_counts()
    rare = counts.index[counts < small_cell]
    if rare.empty:
        return values
    return values.where(~values.isin(rare), f"other (n<{small_cell} each)")


def _modality_columns(modality: str, part: Any) -> tuple[str, ...]:
    known = _MODALITY_COLUMNS.get(modality.strip().upper())
    if known is not None:
        return known
    return tuple(c for c in _ANY_COLUMNS if c in part.columns and part[c].notna().any())


def _as_numbers(values: Any) -> Any:
    """A numeric column as floats (a metadata table may hold them as text)."""
    import pandas as pd

    if values.dtype.kind in "fiu":
        return values
    numbers = pd.to_numeric(values, errors="coerce")
    return numbers if int(numbers.notna().sum()) == int(values.notna().sum()) else values


def _summary(values: Any) -> str | None:
    if values.isna().all():
        return None
    if values.dtype.kind in "fiu":
        lo, hi = float(values.min()), float(values.max())
        return f"{lo:g}" if lo == hi else f"{lo:g}-{hi:g}"
    return ", ".join(sorted(values.dropna().astype(str).unique())[:_MAX_TEXT_VALUES])


def _cohort(inputs: Inputs, earlier: Part) -> Part:
    out = Part()
    assert inputs.cohort is not None  # the section needs a cohort
    if "split" in inputs.cohort.columns:
        cohort_tables(out, inputs.cohort, inputs.present, positive_class=inputs.positive_class,
                      small_cell=inputs.config.small_cell)  # fmt: skip
    return out


def _flow(inputs: Inputs, earlier: Part) -> Part:
    out = Part()
    data, cohort = inputs.data, inputs.cohort
    assert data is not None and cohort is not None  # the section needs the file scan
    reasons: dict[str, int] = {}
    for e in data.exclusions:
        head = e.reason.split(":")[0]
        reasons[head] = reasons.get(head, 0) + 1
    # A labelled file is excluded only when it cannot be used (unreadable, undecodable).
    unusable = sum(1 for e in data.exclusions if getattr(e, "case_id", None) is not None)
    images = len(cohort) if getattr(data, "aggregation", None) is None else int(data.n_images)
    out.values["cohort.n_files"] = int(data.n_files)
    out.values["cohort.n_included"] = len(cohort)
    out.values["cohort.n_excluded"] = len(data.exclusions)
    out.values["cohort.n_unusable"] = unusable
    out.values["cohort.unusable_fraction"] = unusable / (unusable + images) if unusable else 0.0
    out.tables["cohort.exclusions"] = [{"file": e.file, "reason": e.reason}
                                       for e in data.exclusions]  # fmt: skip
    out.tables["cohort.exclusion_reasons"] = [
        {"reason": k, "count": v} for k, v in sorted(reasons.items())
    ]
    flow = [
        {"step": "files found in the data folder", "count": int(data.n_files)},
        {"step": "files excluded (unreadable, unlabelled, ...)", "count": len(data.exclusions)},
        {"step": "  labelled, but unreadable or undecodable", "count": unusable},
        *_unit_flow(out, data, len(cohort)),
    ]
    if "split" in cohort.columns:
        for split, n in cohort["split"].value_counts().sort_index().items():
            role = "evaluated" if split in inputs.test_splits else "not evaluated"
            flow.append({"step": f"  split '{split}' ({role})", "count": int(n)})
        out.tables["cohort.by_split_site"] = _by_split_site(cohort, inputs.positive_class)
    out.tables["cohort.flow"] = flow
    out.tables["cohort.deidentification"] = [
        {"attribute": attribute, **counts} for attribute, counts in data.deid_summary.items()
    ]
    out.provenance["data_manifest_sha256"] = data.manifest_sha256
    rule = getattr(data, "split_rule", None)
    out.values["cohort.split_rule"] = rule or "given by the labels (split column)"
    return out


def _unit_flow(out: Part, data: Any, n_cases: int) -> list[dict[str, Any]]:
    """The labels join in the flow: unmatched labels rows, the unit of analysis."""
    unit = getattr(data, "unit", "image")
    unmatched = tuple(getattr(data, "unmatched_labels", ()))
    key = getattr(data, "label_key", None)
    out.values["cohort.unit"] = unit
    if key is not None:
        out.values["cohort.label_key"] = key
    out.values["cohort.n_unmatched_labels"] = len(unmatched)
    out.tables["cohort.unmatched_labels"] = [
        {"row": u.line, "key": u.key, "value": u.value or "(identifier not shown)"}
        for u in unmatched
    ]
    rows: list[dict[str, Any]] = []
    if key is not None:
        rows.append({"step": f"labels rows matching no image (by {key})", "count": len(unmatched)})
    aggregation = getattr(data, "aggregation", None)
    out.values["cohort.aggregation"] = aggregation  # None: the cases are the images
    out.values["cohort.n_images"] = None if aggregation is None else int(data.n_images)
    if aggregation is None:
        return [*rows, {"step": "cases included", "count": n_cases}]
    return [
        *rows,
        {"step": "images included", "count": int(data.n_images)},
        {"step": f"{unit}s included (image predictions: {aggregation})", "count": n_cases},
    ]


def _label_summary(labels: Any, positive_class: int | None) -> dict[str, Any]:
    """Positives of a class, or a numeric target's mean, SD and range (regression)."""
    if positive_class is not None:
        return {"n_positive": int((labels == positive_class).sum())}
    values = labels.astype(float)
    return {
        "label_mean": float(values.mean()),
        "label_sd": float(values.std(ddof=1)) if len(values) > 1 else None,
        "label_min": float(values.min()),
        "label_max": float(values.max()),
    }


def _by_split_site(cohort: Any, positive_class: int | None) -> list[dict[str, Any]]:
    cols = [c for c in ("manufacturer", "model_name") if c in cohort.columns]
    if not cols:
        return []
    frame = cohort.assign(**{c: cohort[c].fillna("unknown") for c in cols})
    rows: list[dict[str, Any]] = []
    for key, g in frame.groupby(["split", *cols], sort=True):
        row = {
            "split": key[0],
            "manufacturer": key[1],
            "model_name": key[2] if len(key) > 2 else "",
            "n_cases": len(g),
            **_label_summary(g["label"], positive_class),
        }
        if "patient_key" in g.columns:  # optional in a metadata table
            row["n_patients"] = int(g["patient_key"].nunique())
        rows.append(row)
    return rows


def _duplicates(inputs: Inputs, earlier: Part) -> Part:
    """Cases whose pixel data are byte-identical (a copy across splits is a leak)."""
    from medval.shift import pixel_duplicates

    out = Part()
    assert inputs.cohort is not None  # DICOM files come with their cohort
    groups = pixel_duplicates(inputs.paths)
    # Paths name images; with study or patient labels the split is the unit's.
    unit_of = dict(getattr(inputs.data, "unit_of", None) or {})
    split = {c: str(s) for c, s in inputs.cohort["split"].items()}
    split.update({image: split[u] for image, u in unit_of.items() if u in split})
    across = [g for g in groups if len({split[c] for c in g}) > 1]
    out.values["leakage.pixel_duplicate_groups"] = len(groups)
    out.values["leakage.pixel_duplicates_across_splits"] = len(across)
    out.tables["leakage.pixel_duplicates"] = [
        {"cases": list(g), "splits": sorted({split[c] for c in g})} for g in groups[:20]
    ]
    if across:
        out.values["leakage.leak"] = True
        out.replaces.add("leakage.leak")
    return out


_TASKS = ("binary", "multiclass", "regression")
COHORT = Section("cohort", "cohort description (Table 1, acquisition)", _cohort,
                 needs=("cohort",), tasks=_TASKS)  # fmt: skip
FLOW = Section("cohort_flow", "cohort flow and exclusions", _flow, needs=("exclusions",),
               tasks=_TASKS)  # fmt: skip
DUPLICATES = Section(
    "pixel_duplicates", "pixel-identical images across splits", _duplicates,
    needs=("dicom_files",), switch=("shift", "pixel_duplicates"), tasks=_TASKS,
)  # fmt: skip
