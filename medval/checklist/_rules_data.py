"""Evidence rules about the data: sources, exclusions, partitions, acquisition, flow.

Each rule reads a :class:`~medval.ValidationResult` and returns an
:class:`Evidence` (short PHI-free text with numbers from the result) or None
when the result holds nothing for the item. File names, case ids and patient
keys are never read here: only counts, split names and scanner names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from medval.checklist._model import Evidence
from medval.checklist._text import join, split_prefixes, split_sizes

if TYPE_CHECKING:
    from medval._result import ValidationResult

__all__ = ["DATA_RULES"]

# (column, label, unit) of the acquisition table; a row carries its modality's.
_ACQ_FIELDS = (
    ("kvp", "kVp", ""),
    ("exposure_mas", "exposure", " mAs"),
    ("ctdi_vol", "CTDIvol", " mGy"),
    ("slice_thickness", "slice", " mm"),
    ("pixel_spacing", "pixel", " mm"),
    ("magnetic_field_strength", "field", " T"),
    ("scanning_sequence", "sequence", ""),
    ("echo_time", "TE", " ms"),
    ("repetition_time", "TR", " ms"),
    ("convolution_kernel", "kernel", ""),
    ("view_position", "view", ""),
    ("exposure_index", "exposure index", ""),
    ("compression_force", "compression", " N"),
)


def _roles(r: ValidationResult) -> dict[str, list[str]]:
    """What each split was used for, from the keys that name splits."""
    roles: dict[str, list[str]] = {}
    v = r.values
    for key, role in (
        ("operating_point.chosen_on", "threshold"),
        ("calibration.temperature_fitted_on", "temperature scaling"),
        ("conformal.calibrated_on", "conformal calibration"),
    ):
        if v.get(key):
            roles.setdefault(str(v[key]), []).append(role)
    for i, (name, _) in enumerate(split_prefixes(r)):
        roles.setdefault(name, []).append("primary test" if i == 0 else "test")
    return roles


def _scanners(r: ValidationResult) -> dict[str, list[str]]:
    """Scanner (manufacturer and model) names per split."""
    out: dict[str, list[str]] = {}
    for row in r.tables.get("cohort.by_split_site") or []:
        known = row.get("modality") not in (None, "unknown")
        name = " ".join(str(row[c]) for c in ("modality", "manufacturer", "model_name")
                        if row.get(c) and (c != "modality" or known))  # fmt: skip
        out.setdefault(str(row["split"]), []).append(name)
    if not out:
        for row in r.tables.get("cohort.table1") or []:
            makers = row.get("manufacturer")
            if isinstance(makers, dict):
                out[str(row["split"])] = sorted(makers)
    return out


def _exclusion_text(r: ValidationResult) -> str | None:
    n_files = r.values.get("cohort.n_files")
    if n_files is None:
        return None
    reasons = r.tables.get("cohort.exclusion_reasons") or []
    by = "; ".join(f"{row['reason']}: {row['count']}" for row in reasons)
    n_ex = r.values.get("cohort.n_excluded", 0)
    text = f"{n_files} files read, {n_ex} excluded"
    return text + (f" ({by})" if by else "") + f", {r.values.get('cohort.n_included')} included"


def data_sources(r: ValidationResult) -> Evidence | None:
    scanners = _scanners(r)
    if not scanners:
        return None
    parts = [f"{split}: {join(names)}" for split, names in scanners.items()]
    n = len({s for names in scanners.values() for s in names})
    return Evidence(f"{n} scanner types by split: " + "; ".join(parts), complete=False)


def exclusions(r: ValidationResult) -> Evidence | None:
    text = _exclusion_text(r)
    return None if text is None else Evidence(text + ".", complete=False)


def _step_text(step: dict[str, Any]) -> str:
    shown = [f"{k}={v}" for k, v in step.items()
             if k not in ("op", "implicit", "note", "rule") and v is not None]  # fmt: skip
    text = f"{step.get('op', '?')}" + (f" ({', '.join(shown)})" if shown else "")
    if step.get("implicit"):
        text += f" [{step.get('note') or 'implicit'}]"
    return text


def preprocessing(r: ValidationResult) -> Evidence | None:
    pre = r.provenance.get("preprocess")
    if not isinstance(pre, dict):
        pre = {k.split(".", 1)[1]: v for k, v in r.values.items() if k.startswith("preprocess.")}
    if not pre:
        return None
    parts = []
    steps = pre.get("pipeline")
    if steps:
        parts.append("Applied at evaluation, in order: " + "; ".join(
            f"{i}. {_step_text(s)}" for i, s in enumerate(steps, start=1)
        ))  # fmt: skip
    parts += [f"Warning: {w.rstrip('.')}" for w in pre.get("warnings") or []]
    rest = {k: v for k, v in pre.items() if k not in ("pipeline", "warnings")}
    if rest:
        parts.append("; ".join(f"{k} {v}" for k, v in sorted(rest.items())))
    expected, mismatch = r.values.get("input.expected"), r.values.get("input.mismatch")
    if isinstance(expected, dict) and mismatch is not None:
        groups = ", ".join(r.values.get("input.mismatch_groups") or [])
        parts.append(
            f"Input intensities {'did NOT match' if mismatch else 'matched'} the declared "
            f"training input (mean {expected.get('mean')}, sd {expected.get('std')})"
            + (f" on {groups}" if mismatch else "")
        )
    return Evidence(". ".join(parts) + ".", complete=False)


def subsets(r: ValidationResult) -> Evidence | None:
    sizes = split_sizes(r)
    if not sizes:
        return None
    roles = _roles(r)
    parts = []
    for split, d in sizes.items():
        use = ", ".join(roles.get(split, ["not evaluated"]))
        parts.append(f"{split} {d.get('n_cases', '?')} cases ({use})")
    return Evidence("Subsets by the split column: " + "; ".join(parts) + ".", complete=False)


def deidentification(r: ValidationResult) -> Evidence | None:
    parts = []
    for row in r.tables.get("cohort.deidentification") or []:
        counts = ", ".join(f"{k} {v}" for k, v in sorted(row.items()) if k != "attribute")
        parts.append(f"{row.get('attribute', '?')}: {counts}")
    if r.provenance.get("data_manifest_sha256"):
        parts.append(
            "headers read by medval.io keep whitelisted fields only; patient keys are salted "
            "hashes; ages are banded (90+ grouped)"
        )
    if not parts:
        return None
    return Evidence("; ".join(parts) + ".", complete=False)


def missing_data(r: ValidationResult) -> Evidence | None:
    text = _exclusion_text(r)
    unknown = 0
    for row in r.tables.get("cohort.table1") or []:
        for col in ("sex", "age_band", "manufacturer"):
            cell = row.get(col)
            if isinstance(cell, dict):
                unknown += int(cell.get("unknown", 0))
    tail = (
        f"missing cohort fields are kept as 'unknown' ({unknown or 'no'} such values in Table 1) "
        "and form their own subgroup; nothing is imputed"
    )
    if text is None:
        if not r.tables.get("cohort.table1"):
            return None
        return Evidence(f"No file-level exclusion record; {tail}.", complete=False)
    return Evidence(f"{text}; unusable files are excluded and counted; {tail}.")


def acquisition(r: ValidationResult) -> Evidence | None:
    rows = r.tables.get("cohort.acquisition") or []
    if not rows:
        return None
    parts = []
    for row in rows:
        known = row.get("modality") not in (None, "unknown")
        name = " ".join(str(row[c]) for c in ("modality", "manufacturer", "model_name")
                        if row.get(c) and (c != "modality" or known))  # fmt: skip
        fields = [f"{label} {row[k]}{unit}" for k, label, unit in _ACQ_FIELDS if row.get(k)]
        parts.append(f"{name} ({row.get('n_cases', '?')} cases" + "".join(f", {f}" for f in fields))
    return Evidence(f"{len(rows)} scanner types: " + join([p + ")" for p in parts], 4) + ".")


def partitions(r: ValidationResult) -> Evidence | None:
    sizes = split_sizes(r)
    splits = [name for name, _ in split_prefixes(r)]
    if not sizes or splits == ["all"]:
        if splits:
            return Evidence("No split column: every case was evaluated together.", False)
        return None
    total = sum(int(d.get("n_cases", 0)) for d in sizes.values())
    roles = _roles(r)
    parts = []
    for split, d in sizes.items():
        n = int(d.get("n_cases", 0))
        share = f" ({100 * n / total:.0f}%)" if total else ""
        use = ", ".join(roles.get(split, ["development"]))
        parts.append(f"{split} {n} cases{share}, {use}")
    return Evidence("Assigned by the split column: " + "; ".join(parts) + ".")


def disjointness(r: ValidationResult) -> Evidence | None:
    v = r.values
    if "leakage.checked" not in v:
        return None
    if not v["leakage.checked"]:
        return Evidence(
            "Not checked: the cohort has no patient or study keys or no development split.", False
        )
    dev = join(v.get("leakage.reference_splits") or [])
    parts = [
        f"{v[f'leakage.{k}.n_overlap']} {label} shared"
        for k, label in (("patient_key", "patient keys"), ("study_key", "study keys"))
        if f"leakage.{k}.n_overlap" in v
    ]
    if "leakage.pixel_duplicates_across_splits" in v:
        parts.append(f"{v['leakage.pixel_duplicates_across_splits']} pixel-identical images")
    patients = "leakage.patient_key.n_overlap" in v
    if v.get("leakage.leak"):
        verdict = "LEAK found"
    elif patients:
        verdict = "disjoint at patient level"
    else:
        verdict = "no shared study, but patients unknown (no patient key): not checked"
    clustered = v.get("evaluation.clustered_by")
    tail = f"; intervals clustered by {clustered}" if clustered else ""
    return Evidence(
        f"Development ({dev}) vs evaluated splits: {join(parts)}: {verdict}{tail}.",
        patients or bool(v.get("leakage.leak")),
    )


def flow(r: ValidationResult) -> Evidence | None:
    text = _exclusion_text(r)
    sizes = split_sizes(r)
    if text is None and not sizes:
        return None
    per = "; ".join(f"{s} {d.get('n_cases', '?')}" for s, d in sizes.items())
    if text is None:
        return Evidence(f"Cases per split: {per} (no file-level exclusion record).", False)
    return Evidence(f"{text}; per split: {per}.")


def characteristics(r: ValidationResult) -> Evidence | None:
    rows = r.tables.get("cohort.table1") or []
    if not rows:
        return None
    parts, demographic = [], False
    for row in rows:
        bits = [f"{row.get('n_cases')} cases"]
        if row.get("n_positive") is not None:
            bits.append(f"{row['n_positive']} positive")
        sex = row.get("sex")
        if isinstance(sex, dict):
            demographic = True
            bits.append("sex " + "/".join(f"{k} {v}" for k, v in sorted(sex.items())))
        ages = row.get("age_band")
        if isinstance(ages, dict):
            demographic = True
            bits.append(f"{len(ages)} age bands")
        parts.append(f"{row['split']}: " + ", ".join(bits))
    return Evidence("; ".join(parts) + ".", complete=demographic)


def events(r: ValidationResult) -> Evidence | None:
    sizes = split_sizes(r)
    if not sizes:
        return None
    roles = _roles(r)
    parts = [
        f"{s} ({', '.join(roles.get(s, ['development']))}): {d.get('n_cases', '?')} cases, "
        f"{d.get('n_positive', '?')} events"
        for s, d in sizes.items()
    ]
    return Evidence("; ".join(parts) + ".")


def test_annotation(r: ValidationResult) -> Evidence | None:
    parts = []
    for name, prefix in split_prefixes(r):
        n, pos = r.values.get(f"{prefix}cohort.n_cases"), r.values.get(f"{prefix}cohort.n_positive")
        if n is not None:
            parts.append(f"{name} {pos} of {n}")
    if not parts:
        return None
    return Evidence("Reference labels (positive of labelled): " + "; ".join(parts) + ".", False)


def annotators(r: ValidationResult) -> Evidence | None:
    facts = {k: v for k, v in r.values.items() if k.startswith("reference.")}
    if not facts:
        return None
    return Evidence("; ".join(f"{k[10:]}: {v}" for k, v in sorted(facts.items())) + ".", False)


def reader_agreement(r: ValidationResult) -> Evidence | None:
    parts = [f"{k[10:]} {e}" for k, e in sorted(r.estimates.items()) if k.startswith("agreement.")]
    for row in r.tables.get("reference.agreement") or []:
        parts.append(", ".join(f"{k} {v}" for k, v in sorted(row.items())))
    if not parts:
        return None
    return Evidence("Reader agreement: " + "; ".join(parts) + ".")


def development_comparison(r: ValidationResult) -> Evidence | None:
    scanners = _scanners(r)
    dev = set(r.values.get("leakage.reference_splits") or [])
    dev_scanners = {s for split in dev for s in scanners.get(split, [])}
    parts = []
    for name, prefix in split_prefixes(r):
        if name in dev:
            continue
        bits = []
        if dev_scanners and name in scanners:
            new = [s for s in scanners[name] if s not in dev_scanners]
            bits.append(f"scanners unseen in development: {join(new) or 'none'}")
        if prefix and f"{prefix}shift.n_drifted" in r.values:
            bits.append(
                f"{r.values[f'{prefix}shift.n_drifted']} of {r.values[f'{prefix}shift.n_tested']}"
                f" features drifted against {r.values.get('shift.reference_split')}"
            )
        if bits:
            parts.append(f"{name}: " + "; ".join(bits))
    if not parts:
        return None
    return Evidence("; ".join(parts) + ".")


DATA_RULES: dict[str, Any] = {
    "data_sources": data_sources,
    "exclusions": exclusions,
    "preprocessing": preprocessing,
    "subsets": subsets,
    "deidentification": deidentification,
    "missing_data": missing_data,
    "acquisition": acquisition,
    "partitions": partitions,
    "disjointness": disjointness,
    "flow": flow,
    "characteristics": characteristics,
    "events": events,
    "test_annotation": test_annotation,
    "annotators": annotators,
    "reader_agreement": reader_agreement,
    "development_comparison": development_comparison,
}
