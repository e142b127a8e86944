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

_PROTOCOL_COLUMNS = ("kvp", "slice_thickness", "pixel_spacing", "convolution_kernel")


def cohort_tables(
    result: ValidationResult, cohort: Any, splits: Sequence[str], *, positive_class: int
) -> None:
    """ "Table 1" per split and the acquisition protocol per scanner (CLAIM item 13).

    Only aggregate counts and ranges of de-identified columns are written;
    cells under the small-cell limit are kept as counts (they describe the
    cohort, not a subgroup's performance).
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
            row["n_positive"] = int((part["label"] == positive_class).sum())
        for col in ("sex", "age_band", "manufacturer"):
            if col in part.columns:
                counts = part[col].fillna("unknown").astype(str).value_counts().sort_index()
                row[col] = {str(k): int(v) for k, v in counts.items()}
        table1.append(row)
    result.tables["cohort.table1"] = table1
    keys = [c for c in ("manufacturer", "model_name") if c in cohort.columns]
    if not keys:
        return
    protocols: list[dict[str, Any]] = []
    frame = cohort.assign(**{c: cohort[c].fillna("unknown").astype(str) for c in keys})
    for key, g in frame.groupby(keys, sort=True):
        names = key if isinstance(key, tuple) else (key,)
        row = {c: str(v) for c, v in zip(keys, names, strict=True)}
        row["n_cases"] = len(g)
        for col in _PROTOCOL_COLUMNS:
            if col not in g.columns or g[col].isna().all():
                row[col] = None
            elif g[col].dtype.kind in "fi":
                lo, hi = float(g[col].min()), float(g[col].max())
                row[col] = f"{lo:g}" if lo == hi else f"{lo:g}-{hi:g}"
            else:
                row[col] = ", ".join(sorted(g[col].dropna().astype(str).unique())[:4])
        protocols.append(row)
    result.tables["cohort.acquisition"] = protocols


def _cohort(inputs: Inputs, earlier: Part) -> Part:
    out = Part()
    assert inputs.cohort is not None  # the section needs a cohort
    if "split" in inputs.cohort.columns:
        cohort_tables(out, inputs.cohort, inputs.present, positive_class=inputs.positive_class)
    return out


def _flow(inputs: Inputs, earlier: Part) -> Part:
    out = Part()
    data, cohort = inputs.data, inputs.cohort
    assert data is not None and cohort is not None  # the section needs the file scan
    reasons: dict[str, int] = {}
    for e in data.exclusions:
        head = e.reason.split(":")[0]
        reasons[head] = reasons.get(head, 0) + 1
    out.values["cohort.n_files"] = int(data.n_files)
    out.values["cohort.n_included"] = len(cohort)
    out.values["cohort.n_excluded"] = len(data.exclusions)
    out.tables["cohort.exclusions"] = [{"file": e.file, "reason": e.reason}
                                       for e in data.exclusions]  # fmt: skip
    out.tables["cohort.exclusion_reasons"] = [
        {"reason": k, "count": v} for k, v in sorted(reasons.items())
    ]
    flow = [
        {"step": "files found in the data folder", "count": int(data.n_files)},
        {"step": "files excluded (unreadable, unlabelled, ...)", "count": len(data.exclusions)},
        {"step": "cases included", "count": len(cohort)},
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
    return out


def _by_split_site(cohort: Any, positive_class: int) -> list[dict[str, Any]]:
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
            "n_positive": int((g["label"] == positive_class).sum()),
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
    split = inputs.cohort["split"]
    across = [g for g in groups if len({str(split[c]) for c in g}) > 1]
    out.values["leakage.pixel_duplicate_groups"] = len(groups)
    out.values["leakage.pixel_duplicates_across_splits"] = len(across)
    out.tables["leakage.pixel_duplicates"] = [
        {"cases": list(g), "splits": sorted({str(split[c]) for c in g})} for g in groups[:20]
    ]
    if across:
        out.values["leakage.leak"] = True
        out.replaces.add("leakage.leak")
    return out


COHORT = Section("cohort", "cohort description (Table 1, acquisition)", _cohort,
                 needs=("cohort",))  # fmt: skip
FLOW = Section("cohort_flow", "cohort flow and exclusions", _flow, needs=("exclusions",))
DUPLICATES = Section(
    "pixel_duplicates", "pixel-identical images across splits", _duplicates,
    needs=("dicom_files",), switch=("shift", "pixel_duplicates"),
)  # fmt: skip
