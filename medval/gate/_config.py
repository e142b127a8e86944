"""The evaluation's configuration, declared once.

Every setting of :func:`medval.evaluate` is a field of
:class:`EvaluationConfig`: its keyword is the field's name, its spec key,
TOML types, allowed values, range and one-line description are the field's
metadata. The spec reader's tables (``SCHEMA``), the JSON Schema, the
value checks (:func:`medval.gate.check_values`), the keywords
:func:`medval.evaluate` accepts, the README's spec reference and the
report's settings table are all generated from this declaration.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

__all__ = [
    "ADJUSTMENTS",
    "BOOTSTRAP_METHODS",
    "CONFORMAL_METHODS",
    "CONNECTIVITIES",
    "DEFAULT_CALIBRATION_SPLIT",
    "DEFAULT_COLUMNS",
    "DEFAULT_INTERSECTIONS",
    "HEALTHY_RULES",
    "LESION_MATCHES",
    "OUTPUTS",
    "SPEC_KEYS",
    "THRESHOLD_RULES",
    "UNCERTAINTY_MEASURES",
    "EvaluationConfig",
    "Setting",
    "settings",
]

DEFAULT_CALIBRATION_SPLIT = "calibration"
#: Subgroup and coverage columns by default: those of these the cohort has.
DEFAULT_COLUMNS: tuple[str, ...] = ("manufacturer", "model_name", "sex", "age_band")
DEFAULT_INTERSECTIONS: tuple[tuple[str, str], ...] = (("manufacturer", "sex"),)

OUTPUTS: tuple[str, ...] = ("logits", "probabilities", "dirichlet", "sigmoid")
THRESHOLD_RULES: tuple[str, ...] = ("youden", "sensitivity", "specificity")
CONFORMAL_METHODS: tuple[str, ...] = ("aps", "raps", "lac", "topk")  # conformal.SCORES
ADJUSTMENTS: tuple[str, ...] = ("holm", "bh")  # shift.subgroup_table's adjust
BOOTSTRAP_METHODS: tuple[str, ...] = ("bca", "percentile", "basic")  # stats.bootstrap_ci
UNCERTAINTY_MEASURES: tuple[str, ...] = ("entropy", "variance")  # uncertainty.decompose
# Segmentation: lesion components and matching (segmentation.CONNECTIVITY, MATCH_RULES),
# healthy images in the mask guarantees (conformal.MaskRiskControl); tests check they agree.
CONNECTIVITIES: tuple[str, ...] = ("face", "edge", "vertex")
LESION_MATCHES: tuple[str, ...] = ("iou", "overlap")
HEALTHY_RULES: tuple[str, ...] = ("exclude", "include")
# Regression intervals: conformal.REGRESSION_SCORES and "auto" (tests check they agree).
INTERVAL_SCORES: tuple[str, ...] = ("auto", "absolute", "normalized", "cqr")


def _s(
    default: Any,
    key: str,
    types: tuple[type, ...],
    doc: str,
    *,
    choices: tuple[str, ...] = (),
    interval: str = "",
) -> Any:
    """A field with its spec key, TOML types, choices, range (``"(0, 1)"``) and doc."""
    meta = {"key": key, "types": types, "doc": doc, "choices": choices, "interval": interval}
    if isinstance(default, (list, dict)):
        raise TypeError("mutable defaults: give a tuple")
    return dataclasses.field(default=default, metadata=meta)


@dataclasses.dataclass(frozen=True)
class EvaluationConfig:
    """Every setting of :func:`medval.evaluate`, as one frozen value.

    Field names are ``evaluate``'s keywords; ``Setting.key`` (see
    :func:`settings`) is the spec key. A list left at its default may name
    columns the cohort lacks (those are skipped); any other value must exist
    in the cohort, or :func:`medval.gate.check_settings` refuses it.
    """

    seed: int = _s(
        0,
        "analysis.seed",
        (int,),
        "Seed of every resampling and random split; recorded in each estimate.",
        interval="[0, inf)",
    )
    n_resamples: int = _s(
        2000,
        "analysis.n_resamples",
        (int,),
        "Bootstrap resamples, where a bootstrap is used.",
        interval="[100, inf)",
    )
    confidence_level: float = _s(
        0.95,
        "analysis.confidence_level",
        (float,),
        "Level of every confidence interval.",
        interval="[0.5, 1)",
    )
    bootstrap_method: str = _s(
        "bca",
        "analysis.bootstrap_method",
        (str,),
        "Interval of the bootstrapped metrics (AUPRC, accuracy, F1...).",
        choices=BOOTSTRAP_METHODS,
    )
    calibration_split: str | None = _s(
        DEFAULT_CALIBRATION_SPLIT,
        "analysis.calibration_split",
        (str,),
        "Split on which the threshold, temperature and conformal quantile are fitted.",
    )
    test_splits: tuple[str, ...] | None = _s(
        None,
        "analysis.test_splits",
        (list,),
        "Splits to evaluate, the primary one first (default: all but train and calibration).",
    )
    threshold: float | None = _s(
        None,
        "analysis.threshold",
        (float,),
        "A fixed operating threshold (else chosen by threshold_rule).",
        interval="[0, 1]",
    )
    threshold_rule: str = _s(
        "youden",
        "analysis.threshold_rule",
        (str,),
        "How the threshold is chosen on the calibration split.",
        choices=THRESHOLD_RULES,
    )
    threshold_target: float | None = _s(
        None,
        "analysis.threshold_target",
        (float,),
        "The sensitivity or specificity the 'sensitivity'/'specificity' rule reaches.",
        interval="(0, 1]",
    )
    conformal: bool = _s(
        True, "conformal.enabled", (bool,), "Conformal prediction sets (needs a calibration split)."
    )
    conformal_method: str = _s(
        "aps",
        "conformal.method",
        (str,),
        "Conformity score of the prediction sets.",
        choices=CONFORMAL_METHODS,
    )
    conformal_level: float = _s(
        0.9,
        "conformal.confidence_level",
        (float,),
        "Target coverage of the prediction sets.",
        interval="[0.5, 1)",
    )
    conformal_mondrian: str | None = _s(
        None,
        "conformal.mondrian",
        (str,),
        "'class' or a cohort column: one conformal quantile per group.",
    )
    triage_max_fnr: float | None = _s(
        0.05,
        "conformal.triage_max_fnr",
        (float,),
        "Triage threshold by conformal risk control: expected false-negative rate at most this.",
        interval="(0, 0.5)",
    )
    conformal_temperature: bool = _s(
        True,
        "conformal.temperature",
        (bool,),
        "Temperature on one half of the calibration patients, the sets on the other.",
    )
    group_columns: tuple[str, ...] = _s(
        DEFAULT_COLUMNS,
        "conformal.group_columns",
        (list,),
        "Cohort columns whose groups get their own coverage diagnostics.",
    )
    uncertainty_measure: str = _s(
        "entropy",
        "uncertainty.measure",
        (str,),
        "Decomposition of MC-dropout uncertainty: entropy (nats) or variance.",
        choices=UNCERTAINTY_MEASURES,
    )
    referral_sensitivity: float = _s(
        0.95,
        "uncertainty.referral_sensitivity",
        (float,),
        "Sensitivity the referral policy must keep on the automated cases.",
        interval="(0, 1)",
    )
    shift: bool = _s(
        True, "shift.enabled", (bool,), "Subgroup, drift and leakage analyses (needs a cohort)."
    )
    subgroup_columns: tuple[str, ...] = _s(
        DEFAULT_COLUMNS,
        "shift.subgroup_columns",
        (list,),
        "De-identified cohort columns of the subgroup tables.",
    )
    subgroup_intersections: tuple[tuple[str, ...], ...] = _s(
        DEFAULT_INTERSECTIONS,
        "shift.intersections",
        (list,),
        "Pairs of subgroup columns whose intersections get their own rows.",
    )
    subgroup_min_events: int = _s(
        100,
        "shift.min_events",
        (int,),
        "Fewer events in a subgroup: flagged underpowered.",
        interval="[0, inf)",
    )
    subgroup_min_non_events: int = _s(
        100,
        "shift.min_non_events",
        (int,),
        "Fewer non-events in a subgroup: flagged underpowered.",
        interval="[0, inf)",
    )
    small_cell: int = _s(
        11,
        "shift.small_cell",
        (int,),
        "Subgroups with fewer cases are suppressed in every table; free-text acquisition "
        "values (kernel, sequence name) seen in fewer images are pooled as 'other'.",
        interval="[1, inf)",
    )
    subgroup_adjust: str = _s(
        "holm",
        "shift.adjust",
        (str,),
        "Multiplicity adjustment of the subgroup-versus-rest p-values.",
        choices=ADJUSTMENTS,
    )
    drift_confidence_level: float = _s(
        0.95,
        "shift.drift_confidence_level",
        (float,),
        "Drift tests keep the family-wise false-alarm rate at 1 - this.",
        interval="[0.5, 1)",
    )
    drift_reference: str | None = _s(
        None,
        "shift.reference_split",
        (str,),
        "The split drift is measured against (default: the primary test split).",
    )
    pixel_duplicates: bool = _s(
        True,
        "shift.pixel_duplicates",
        (bool,),
        "Hash the DICOM pixel data for copies across splits.",
    )
    reference_margin: float | None = _s(
        None,
        "baseline.margin",
        (float,),
        "Non-inferiority margin against the baseline, in metric units, declared up front.",
        interval="[0, 1)",
    )
    reference_metric: str = _s(
        "auroc",
        "baseline.metric",
        (str,),
        "Metric of the baseline comparison (a medval.stats metric).",
    )
    reference_split: str | None = _s(
        None,
        "baseline.split",
        (str,),
        "Split of the baseline comparison (default: the primary test split).",
    )
    nsd_tolerance_mm: float = _s(
        2.0,
        "segmentation.nsd_tolerance_mm",
        (float,),
        "Tolerance of the normalised surface distance (NSD), in mm.",
        interval="(0, inf)",
    )
    distance_cap_mm: float | None = _s(
        None,
        "segmentation.distance_cap_mm",
        (float,),
        "Distance given a structure present in one mask only (default: the image diagonal).",
        interval="(0, inf)",
    )
    mask_threshold: float = _s(
        0.5,
        "segmentation.threshold",
        (float,),
        "Foreground probability at or above which a voxel is in the predicted mask.",
        interval="(0, 1)",
    )
    lesion_connectivity: str = _s(
        "vertex",
        "segmentation.lesion_connectivity",
        (str,),
        "Neighbours joining voxels into one lesion: face, edge or vertex (3D: 6, 18, 26).",
        choices=CONNECTIVITIES,
    )
    lesion_min_size_mm3: float = _s(
        0.0,
        "segmentation.lesion_min_size_mm3",
        (float,),
        "Components smaller than this (mm³) are not lesions, on both sides.",
        interval="[0, inf)",
    )
    lesion_match: str = _s(
        "iou",
        "segmentation.lesion_match",
        (str,),
        "A predicted lesion detects a reference lesion by IoU or by any overlap.",
        choices=LESION_MATCHES,
    )
    lesion_match_threshold: float = _s(
        0.1,
        "segmentation.lesion_match_threshold",
        (float,),
        "Least IoU for a detection (lesion_match = 'iou').",
        interval="(0, 1]",
    )
    lesion_size_bands_ml: tuple[float, ...] = _s(
        (0.1, 1.0),
        "segmentation.lesion_size_bands_ml",
        (list,),
        "Edges (ml) of the lesion-size bands of detection by size.",
    )
    mask_risk_level: float = _s(
        0.9,
        "segmentation.risk_confidence_level",
        (float,),
        "Conformal risk control: expected per-image false-negative rate at most 1 - this.",
        interval="[0.5, 1)",
    )
    mask_healthy: str = _s(
        "exclude",
        "segmentation.healthy",
        (str,),
        "Images without the structure: left out of the mask guarantees, or counted (FNR 0).",
        choices=HEALTHY_RULES,
    )
    mask_mondrian: str | None = _s(
        None,
        "segmentation.mondrian",
        (str,),
        "A cohort column (e.g. manufacturer): one risk-control threshold and margin per group.",
    )
    margin_max_steps: int = _s(
        20,
        "segmentation.margin_max_steps",
        (int,),
        "Most dilations tried by the morphological margins.",
        interval="[1, 200]",
    )
    calibration_margin_mm: float = _s(
        5.0,
        "segmentation.calibration_margin_mm",
        (float,),
        "Voxel calibration inside both masks dilated by this (mm): background would dominate.",
        interval="[0, inf)",
    )
    border_mm: float = _s(
        3.0,
        "segmentation.border_mm",
        (float,),
        "Width of the border band around the predicted mask for case uncertainty (mm).",
        interval="(0, inf)",
    )
    bad_dice: float = _s(
        0.5,
        "segmentation.bad_dice",
        (float,),
        "A case with Dice below this is a failure that uncertainty should flag.",
        interval="(0, 1)",
    )
    interval_score: str = _s(
        "auto",
        "regression.interval",
        (str,),
        "Conformal interval score: absolute residual, residual / the model's sigma, CQR "
        "(auto: cqr with quantile heads, normalized with a sigma, else absolute).",
        choices=INTERVAL_SCORES,
    )
    interval_level: float = _s(
        0.9,
        "regression.confidence_level",
        (float,),
        "Target coverage of the conformal prediction intervals.",
        interval="(0, 1)",
    )
    interval_mondrian: str | None = _s(
        None,
        "regression.mondrian",
        (str,),
        "A cohort column (e.g. manufacturer): one interval quantile per group (Mondrian).",
    )
    error_bins: int = _s(
        5,
        "regression.bins",
        (int,),
        "Bins (quantiles) of the true value and of sigma for the conditional error and coverage.",
        interval="[2, 50]",
    )
    gaussian_levels: tuple[float, ...] = _s(
        (0.5, 0.8, 0.9, 0.95),
        "regression.gaussian_levels",
        (list,),
        "Nominal levels at which the Gaussian intervals mean +- z sigma are checked.",
    )

    def __post_init__(self) -> None:
        # Lists become tuples, so the config stays hashable and frozen.
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, list):
                tupled = tuple(tuple(v) if isinstance(v, list) else v for v in value)
                object.__setattr__(self, f.name, tupled)

    @classmethod
    def from_sections(cls, sections: Mapping[str, Mapping[str, Any]]) -> EvaluationConfig:
        """The config of a checked spec's sections (absent ``[baseline]``: its defaults)."""
        values: dict[str, Any] = {}
        for s in settings():
            section, key = s.key.split(".")
            table = sections.get(section) or {}
            if key in table:
                values[s.name] = table[key]
        return cls(**values)

    def as_spec(self) -> dict[str, Any]:
        """Spec key -> value (JSON-native), in declaration order."""
        return {s.key: _plain(getattr(self, s.name)) for s in settings()}


@dataclasses.dataclass(frozen=True)
class Setting:
    """One field of :class:`EvaluationConfig` with its metadata."""

    name: str
    key: str
    types: tuple[type, ...]
    default: Any
    doc: str
    choices: tuple[str, ...]
    interval: str


def settings() -> Iterator[Setting]:
    """The fields of :class:`EvaluationConfig`, in declaration order."""
    for f in dataclasses.fields(EvaluationConfig):
        m = f.metadata
        yield Setting(f.name, m["key"], m["types"], f.default, m["doc"], m["choices"],
                      m["interval"])  # fmt: skip


def _plain(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


#: :func:`medval.evaluate` keyword -> the spec key that sets it.
SPEC_KEYS: dict[str, str] = {s.name: s.key for s in settings()}


def spec_fields(section: str) -> dict[str, tuple[tuple[type, ...], Any]]:
    """The spec table fields of one section: key -> (TOML types, default)."""
    out: dict[str, tuple[tuple[type, ...], Any]] = {}
    for s in settings():
        table, key = s.key.split(".")
        if table == section:
            out[key] = (s.types, _plain(s.default))
    return out


def spec_choices() -> dict[str, dict[str, tuple[str, ...]]]:
    """section -> key -> allowed values, of the settings that have choices."""
    out: dict[str, dict[str, tuple[str, ...]]] = {}
    for s in settings():
        if s.choices:
            table, key = s.key.split(".")
            out.setdefault(table, {})[key] = s.choices
    return out


def _shown(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'`"{value}"`'
    if isinstance(value, (list, tuple)):
        return "`" + repr(_plain(value)).replace("'", '"') + "`"
    return f"`{value}`"


def reference_table(keys: Sequence[str] | None = None) -> str:
    """The README's spec reference (Markdown) of the evaluation settings."""
    rows = ["| spec key | `evaluate` keyword | default | allowed | what it does |",
            "|---|---|---|---|---|"]  # fmt: skip
    for s in settings():
        if keys is not None and s.key not in keys:
            continue
        allowed = ", ".join(f"`{c}`" for c in s.choices) or s.interval or ""
        rows.append(f"| `{s.key}` | `{s.name}` | {_shown(s.default)} | {allowed} | {s.doc} |")
    return "\n".join(rows) + "\n"
