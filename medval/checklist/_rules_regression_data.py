"""Evidence rules about a regression model and its data: outputs, passes, reference values.

See :mod:`medval.checklist._rules_regression` for how these replace the
classifier's rules on a regression result; :data:`REGRESSION_RULES` there
registers these too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from medval.checklist._model import Evidence
from medval.checklist._text import join, num, split_prefixes, split_sizes

if TYPE_CHECKING:
    from medval._result import ValidationResult

__all__ = ["REGRESSION_DATA_RULES", "target_name", "unit_suffix"]


def unit_suffix(r: ValidationResult) -> str:
    """`` months`` after a number; ``""`` without a declared unit."""
    unit = r.values.get("task.unit")
    return f" {unit}" if unit else ""


def target_name(r: ValidationResult) -> str:
    """What the model predicts (``task.name``), or ``target``."""
    return str(r.values.get("task.name") or "target")


def _outputs(r: ValidationResult) -> str:
    out: Mapping[str, Any] = r.values.get("regression.outputs") or {}
    unit = r.values.get("task.unit")
    heads = []
    if out.get("variance"):
        heads.append("a variance head")
    if out.get("quantile_levels"):
        heads.append(f"quantiles at {join(out['quantile_levels'])}")
    text = f"outputs the {target_name(r)}" + (f" in {unit}" if unit else "")
    return text + (f" with {' and '.join(heads)}" if heads else " (a point prediction)")


def operating_point(r: ValidationResult) -> Evidence | None:
    text = f"The model {_outputs(r)}; no classification threshold"
    if "regression.interval.score" in r.values:
        text += (
            f"; conformal prediction intervals at target coverage "
            f"{num(r.values.get('regression.interval.target'), 2)}"
        )
    return Evidence(text + ".", complete=False)


def model(r: ValidationResult) -> Evidence | None:
    p = r.provenance
    parts = []
    if p.get("model_file"):
        files = p["model_file"]
        files = ", ".join(map(str, files)) if isinstance(files, list) else str(files)
        parts.append(f"model file {files} ({p.get('model_kind', 'unknown kind')})")
    if p.get("model_sha256"):
        parts.append(f"SHA-256 {str(p['model_sha256'])[:16]}…")
    parts.append(_outputs(r))
    return Evidence("; ".join(parts) + ".", complete=False)


def ensembling(r: ValidationResult) -> Evidence | None:
    mc = int((r.values.get("regression.outputs") or {}).get("mc_samples") or 0)
    how = f"the mean of {mc} MC-dropout passes" if mc > 1 else "one deterministic pass"
    if r.provenance.get("model_file"):
        return Evidence(
            f"No ensemble: one model file ({r.provenance['model_file']}); predictions are {how}."
        )
    return Evidence(f"Predictions are {how}.", False) if mc > 1 else None


def _target_rows(r: ValidationResult) -> list[str]:
    u = unit_suffix(r)
    out = []
    for row in r.tables.get("cohort.table1") or []:
        if row.get("label_mean") is None:
            continue
        sd = "" if row.get("label_sd") is None else f" (SD {num(row['label_sd'], 1)})"
        out.append(
            f"{row['split']}: {row.get('n_cases')} cases, mean {num(row['label_mean'], 1)}"
            f"{u}{sd}, range {num(row.get('label_min'), 1)} to "
            f"{num(row.get('label_max'), 1)}{u}"
        )
    return out


def test_annotation(r: ValidationResult) -> Evidence | None:
    parts = []
    for name, p in split_prefixes(r):
        t = r.values.get(f"{p}regression.target")
        if t:
            parts.append(
                f"{name} {r.values.get(f'{p}regression.n_cases')} cases, mean "
                f"{num(t.get('mean'), 1)}{unit_suffix(r)} (SD {num(t.get('sd'), 1)})"
            )
    if not parts:
        return None
    return Evidence(f"Reference values of the {target_name(r)}: " + "; ".join(parts) + ".", False)


def events(r: ValidationResult) -> Evidence | None:
    rows = _target_rows(r)
    if not rows:
        sizes = split_sizes(r)
        rows = [f"{s}: {d.get('n_cases', '?')} cases" for s, d in sizes.items()]
    if not rows:
        return None
    return Evidence(f"A continuous outcome ({target_name(r)}): " + "; ".join(rows) + ".")


def characteristics(r: ValidationResult) -> Evidence | None:
    rows = r.tables.get("cohort.table1") or []
    if not rows:
        return None
    demographic = any(isinstance(row.get(c), dict) for row in rows for c in ("sex", "age_band"))
    text = "; ".join(_target_rows(r)) or "; ".join(
        f"{x['split']}: {x.get('n_cases')} cases" for x in rows
    )
    if demographic:
        text += "; sex and age bands per split in Table 1"
    return Evidence(text + ".", complete=demographic)


REGRESSION_DATA_RULES = {
    "operating_point": operating_point,
    "model": model,
    "ensembling": ensembling,
    "test_annotation": test_annotation,
    "events": events,
    "characteristics": characteristics,
}
