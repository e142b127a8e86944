"""Tabular drift between a reference and a current cohort frame, via evidently.

Only de-identified columns reach evidently: the Cohort whitelist
(:data:`medval._types.COHORT_COLUMNS`) and the model-output summaries in
:data:`MODEL_OUTPUT_COLUMNS`. evidently is imported inside the function
(it takes seconds to import) and its HTML is never produced.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

from medval._errors import InputError, MissingDependencyError
from medval._types import COHORT_COLUMNS
from medval.stats import check_confidence_level

__all__ = ["DRIFT_TESTS", "MODEL_OUTPUT_COLUMNS", "drift_report"]

#: Per-case model summaries that may join the cohort columns in a drift frame.
MODEL_OUTPUT_COLUMNS: frozenset[str] = frozenset(("max_probability", "entropy", "epistemic"))
#: medval alias -> (evidently stattest name, column kind). All are p-value tests,
#: so the per-column error rate is set by ``confidence_level``.
#: ``"chi2"`` is medval's two-sample test of homogeneity (registered with
#: evidently on first use); evidently's ``"chisquare"`` is a goodness-of-fit
#: test that treats the reference proportions as known, which raises false
#: alarms when the reference is itself a sample.
DRIFT_TESTS: dict[str, tuple[str, str]] = {
    "ks": ("ks", "numerical"),
    "mannw": ("mannw", "numerical"),
    "chi2": ("medval_chi2_homogeneity", "categorical"),
    "chisquare": ("chisquare", "categorical"),
    "z": ("z", "categorical"),
}
# Identifiers and bookkeeping: always different between cohorts, never drift.
_NOT_DRIFT = frozenset(("patient_key", "study_key", "split"))
_ADJUST = ("bonferroni", "none")


def _check_test(alias: str, kind: str) -> str:
    valid = sorted(a for a, (_, k) in DRIFT_TESTS.items() if k == kind)
    if alias not in valid:
        raise InputError(f"Unknown {kind} drift test {alias!r}; valid: {valid}.")
    return DRIFT_TESTS[alias][0]


def _columns(reference: Any, current: Any, columns: Sequence[str] | None) -> list[str]:
    allowed = COHORT_COLUMNS | MODEL_OUTPUT_COLUMNS
    for what, frame in (("reference", reference), ("current", current)):
        extra = sorted(set(map(str, frame.columns)) - allowed)
        if extra:
            raise InputError(
                f"{what} frame has columns {extra} outside the de-identified whitelist "
                f"(Cohort columns plus {sorted(MODEL_OUTPUT_COLUMNS)}); drop them before "
                "drift_report: they could carry PHI."
            )
    if columns is None:
        both = set(map(str, reference.columns)) & set(map(str, current.columns))
        return sorted(both - _NOT_DRIFT)
    cols = list(columns)
    for col in cols:
        if col not in allowed:
            raise InputError(f"drift column {col!r} is not on the whitelist {sorted(allowed)}.")
        if col not in reference.columns or col not in current.columns:
            raise InputError(
                f"drift column {col!r} must be in both the reference and the current frame."
            )
    return cols


def drift_report(
    reference: Any,
    current: Any,
    *,
    columns: Sequence[str] | None = None,
    confidence_level: float = 0.95,
    numerical_test: str = "ks",
    categorical_test: str = "chi2",
    adjust: str = "bonferroni",
) -> dict[str, Any]:
    """Per-column drift tests of ``current`` against ``reference`` (evidently).

    Parameters
    ----------
    reference, current : pandas.DataFrame
        De-identified frames (e.g. ``CohortData.cohort`` rows plus the
        columns of :data:`MODEL_OUTPUT_COLUMNS`). Every column must be on the
        whitelist.
    columns : sequence of str, optional
        Columns to test; default every column in both frames except
        ``patient_key``, ``study_key`` and ``split``.
    confidence_level : float, default 0.95
        The false-alarm rate is ``1 - confidence_level``: per column with
        ``adjust="none"``, for the whole report (family-wise) with
        ``"bonferroni"``.
    numerical_test : {"ks", "mannw"}, default "ks"
        evidently stattest for numeric columns.
    categorical_test : {"chi2", "chisquare", "z"}, default "chi2"
        For text, categorical and boolean columns: ``"chi2"`` is Pearson's
        test of homogeneity on the 2 x C table of counts (scipy
        ``chi2_contingency``, no continuity correction).
    adjust : {"bonferroni", "none"}, default "bonferroni"

    Returns
    -------
    dict
        ``columns`` (list of dicts: ``column``, ``kind``, ``test``,
        ``p_value``, ``threshold``, ``drifted``, ``reason``), ``n_tested``,
        ``n_drifted``, ``drift_share`` (drifted / tested), ``drifted`` (any
        column drifted), ``confidence_level``, ``adjust``, ``n_reference``,
        ``n_current``, ``engine``. Columns constant in both frames, or empty
        in either, are listed untested with a reason.

    Notes
    -----
    The tests assume independent rows; several images of one patient
    make them anti-conservative. Random splits of one population should
    alarm at most ``1 - confidence_level`` of the time (checked in the
    test suite).

    References
    ----------
    Rabanser, Günnemann & Lipton (2019), "Failing loudly", NeurIPS;
    Pearson (1900) / Agresti (2013), *Categorical Data Analysis*, sec. 3.2;
    evidently (https://docs.evidentlyai.com), data drift presets.
    """
    cl = check_confidence_level(confidence_level)
    num = _check_test(numerical_test, "numerical")
    cat = _check_test(categorical_test, "categorical")
    if adjust not in _ADJUST:
        raise InputError(f"Unknown adjust {adjust!r}; valid: {list(_ADJUST)}.")
    cols = _columns(reference, current, columns)
    if len(reference) == 0 or len(current) == 0:
        raise InputError(
            f"drift needs rows in both frames; got {len(reference)} reference and "
            f"{len(current)} current rows."
        )
    import pandas as pd

    entries: dict[str, dict[str, Any]] = {}
    kinds: dict[str, str] = {}
    for col in cols:
        ref, cur = reference[col], current[col]
        kind = (
            "numerical"
            if pd.api.types.is_numeric_dtype(ref) and not pd.api.types.is_bool_dtype(ref)
            else "categorical"
        )
        alias = numerical_test if kind == "numerical" else categorical_test
        entry: dict[str, Any] = {
            "column": col, "kind": kind, "test": alias,
            "p_value": None, "threshold": None, "drifted": False, "reason": None,
        }  # fmt: skip
        if ref.notna().sum() == 0 or cur.notna().sum() == 0:
            entry["reason"] = "no values in one of the frames"
        elif pd.concat([ref, cur]).dropna().astype(str).nunique() < 2:
            entry["reason"] = "constant in both frames"
        else:
            kinds[col] = kind
        entries[col] = entry
    alpha = 1.0 - cl
    thr = alpha / len(kinds) if adjust == "bonferroni" and kinds else alpha
    if kinds:
        for col, p in _run_evidently(reference, current, kinds, num, cat, thr).items():
            e = entries[col]
            e["threshold"] = thr
            if p is None:
                e["reason"] = "evidently returned no p-value"
            else:
                e["p_value"], e["drifted"] = p, p < thr
    n_drifted = sum(bool(e["drifted"]) for e in entries.values())
    return {
        "columns": [entries[c] for c in cols],
        "n_tested": len(kinds),
        "n_drifted": n_drifted,
        "drift_share": n_drifted / len(kinds) if kinds else 0.0,
        "drifted": n_drifted > 0,
        "confidence_level": cl,
        "adjust": adjust,
        "n_reference": len(reference),
        "n_current": len(current),
        "engine": "evidently",
    }


def _run_evidently(
    reference: Any, current: Any, kinds: dict[str, str], num: str, cat: str, thr: float
) -> dict[str, float | None]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # deprecation noise from evidently's imports
            from evidently import DataDefinition, Dataset, Report
            from evidently.metrics import ValueDrift
    except ImportError as exc:  # pragma: no cover - evidently is a dependency
        raise MissingDependencyError("drift_report needs evidently: pip install evidently") from exc

    _register_chi2()
    numeric = [c for c, k in kinds.items() if k == "numerical"]
    categorical = [c for c, k in kinds.items() if k == "categorical"]
    cols = numeric + categorical

    def frame(df: Any) -> Any:
        # evidently plots against the index; case_id strings break it.
        out = df[cols].reset_index(drop=True)
        for c in categorical:
            out[c] = out[c].astype(object).where(out[c].notna(), None).astype(str)
        return out

    definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
    metrics = [
        ValueDrift(column=c, method=num if c in numeric else cat, threshold=thr) for c in cols
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy divide-by-zero on unseen categories
        snapshot = Report(metrics).run(
            Dataset.from_pandas(frame(current), data_definition=definition),
            Dataset.from_pandas(frame(reference), data_definition=definition),
        )
    out: dict[str, float | None] = {}
    for item in snapshot.dict()["metrics"]:
        col = item["config"]["column"]
        value = item.get("value")
        p = float(value) if isinstance(value, (int, float)) else math.nan
        out[col] = None if math.isnan(p) else p
    return out


def _chi2_homogeneity(
    ref: Any, cur: Any, feature_type: Any, threshold: float
) -> tuple[float, bool]:
    import pandas as pd
    from scipy.stats import chi2_contingency

    table = pd.concat([ref.value_counts(), cur.value_counts()], axis=1).fillna(0).to_numpy()
    if table.shape[0] < 2:
        return 1.0, False
    p = float(chi2_contingency(table.T, correction=False).pvalue)
    return p, p < threshold


def _register_chi2() -> None:
    """Register medval's homogeneity test with evidently's stattest registry (once)."""
    from evidently.legacy.calculations.stattests import registry
    from evidently.legacy.core import ColumnType

    name = DRIFT_TESTS["chi2"][0]
    try:
        registry.get_registered_stattest(name, ColumnType.Categorical)
    except Exception:
        test = registry.StatTest(
            name=name,
            display_name="chi-square homogeneity p_value (medval)",
            allowed_feature_types=[ColumnType.Categorical],
        )
        registry.register_stattest(test, default_impl=_chi2_homogeneity)
