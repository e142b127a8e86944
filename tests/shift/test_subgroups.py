from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from medval._errors import InputError
from medval._types import Estimate
from medval.shift import intersect, subgroup_keys, subgroup_table, subgroup_table_multiclass
from medval.shift._subgroups import clustered_auroc_variance
from medval.stats import (
    auroc_ci,
    benjamini_hochberg,
    bootstrap_ci,
    case_proportion_ci,
    delong_covariance,
    holm,
    threshold_metric_ci,
)


def _data(rng: np.random.Generator, n: int = 600) -> tuple[Any, Any, Any]:
    y = rng.integers(0, 2, n)
    g = rng.choice(np.array(["a", "b", "c"]), n)
    s = rng.normal(size=n) + y * np.where(g == "c", 0.3, 1.5)
    return y, s, g


def test_metrics_equal_direct_computation(rng: np.random.Generator) -> None:
    y, s, g = _data(rng)
    rows = subgroup_table(y, s, {"g": g}, threshold=0.5, min_events=10, min_non_events=10)["g"]
    assert [r["value"] for r in rows] == ["a", "b", "c"]
    for row in rows:
        m = g == row["value"]
        assert row["n"] == m.sum() and row["events"] == y[m].sum()
        auc = row["metrics"]["auroc"]["estimate"]
        assert auc["value"] == pytest.approx(roc_auc_score(y[m], s[m]))
        assert auc == auroc_ci(y[m], s[m]).to_dict()
        sens = row["metrics"]["sensitivity"]["estimate"]
        assert sens["value"] == pytest.approx(np.mean(s[m][y[m] == 1] >= 0.5))
        assert sens == threshold_metric_ci("sensitivity", y[m], s[m], threshold=0.5).to_dict()
        spec = row["metrics"]["specificity"]["estimate"]
        assert spec["value"] == pytest.approx(np.mean(s[m][y[m] == 0] < 0.5))
    worst = [r["value"] for r in rows if r["metrics"]["auroc"]["worst"]]
    best = [r["value"] for r in rows if r["metrics"]["auroc"]["best"]]
    assert worst == ["c"] and len(best) == 1


def test_clustered_metrics_match_stats(rng: np.random.Generator) -> None:
    y, s, g = _data(rng, 400)
    pid = rng.integers(0, 150, 400)
    rows = subgroup_table(y, s, {"g": g}, threshold=0.5, clusters=pid, random_state=3)["g"]
    m = g == "a"
    assert rows[0]["patients"] == np.unique(pid[m]).size
    ref = threshold_metric_ci("specificity", y[m], s[m], threshold=0.5, clusters=pid[m])
    assert rows[0]["metrics"]["specificity"]["estimate"] == ref.to_dict()
    assert rows[0]["metrics"]["auroc"]["estimate"]["method"] == "bootstrap-bca-clustered"


def test_multiclass_intervals_resample_patients_through_stats(rng: np.random.Generator) -> None:
    # Subgroup intervals come from the statistics room, patient-clustered with keys.
    pid = np.repeat(np.arange(120), 3)
    y = rng.integers(0, 3, 120)[pid]
    p = rng.dirichlet([1, 1, 1], pid.size) + np.eye(3)[y]
    p /= p.sum(1, keepdims=True)
    g = np.where(pid % 2 == 0, "a", "b")
    rows = subgroup_table_multiclass(y, p, {"g": g}, clusters=pid, n_resamples=200)["g"]
    m = g == "a"
    auc = rows[0]["metrics"]["auroc"]["estimate"]
    assert auc["method"] == "bootstrap-bca-clustered"
    ref = bootstrap_ci("macro_auroc", y[m], p[m], clusters=pid[m], n_resamples=200, random_state=0)
    assert auc == ref.to_dict()
    acc = case_proportion_ci(p[m].argmax(1) == y[m], clusters=pid[m])
    assert rows[0]["metrics"]["accuracy"]["estimate"] == acc.to_dict()
    assert acc.method != case_proportion_ci(p[m].argmax(1) == y[m]).method
    assert rows[0]["patients"] == 60


def test_difference_is_unpaired_delong(rng: np.random.Generator) -> None:
    y, s, g = _data(rng)
    row = subgroup_table(y, s, {"g": g}, threshold=0.5)["g"][2]
    m = g == "c"
    (a,), va = delong_covariance(y[m], s[m])
    (b,), vb = delong_covariance(y[~m], s[~m])
    diff = row["metrics"]["auroc"]["difference"]
    assert diff["value"] == pytest.approx(a - b)
    se = np.sqrt(va[0, 0] + vb[0, 0])
    assert diff["high"] - diff["low"] == pytest.approx(2 * 1.959964 * se, rel=1e-5)
    from scipy.stats import norm

    assert row["metrics"]["auroc"]["p_value"] == pytest.approx(2 * norm.sf(abs(a - b) / se))
    # proportions: difference of two independent proportions
    sens = row["metrics"]["sensitivity"]["difference"]["value"]
    direct = np.mean(s[m & (y == 1)] >= 0.5) - np.mean(s[~m & (y == 1)] >= 0.5)
    assert sens == pytest.approx(direct)


def test_clustered_variance_reduces_to_delong(rng: np.random.Generator) -> None:
    y, s, _ = _data(rng, 300)
    _, cov = delong_covariance(y, s)
    assert clustered_auroc_variance(y, s, np.arange(300)) == pytest.approx(cov[0, 0])


@pytest.mark.parametrize(("adjust", "fn"), [("holm", holm), ("bh", benjamini_hochberg)])
def test_adjusted_p_values(rng: np.random.Generator, adjust: str, fn: Any) -> None:
    y, s, g = _data(rng)
    rows = subgroup_table(y, s, {"g": g}, threshold=0.5, adjust=adjust)["g"]
    for metric in ("auroc", "sensitivity"):
        p = [r["metrics"][metric]["p_value"] for r in rows]
        adj = [r["metrics"][metric]["p_adjusted"] for r in rows]
        np.testing.assert_allclose(adj, fn(p))


def test_small_cells_suppressed_and_underpowered(rng: np.random.Generator) -> None:
    y, s, g = _data(rng, 300)
    g = g.astype(object)
    g[:5] = "tiny"
    g[5] = None
    tables = subgroup_table(y, s, {"g": g}, threshold=0.5)
    rows = {r["value"]: r for r in tables["g"]}
    assert rows["tiny"]["suppressed"] and rows["(missing)"]["suppressed"]
    assert "value" not in rows["tiny"]["metrics"]["auroc"]["estimate"]
    assert not rows["tiny"]["metrics"]["auroc"]["worst"]
    assert rows["a"]["underpowered"]  # < 100 events
    keys = subgroup_keys(tables)
    assert keys["subgroup.g=tiny.auroc"].value is None
    assert "suppressed" in (keys["subgroup.g=tiny.auroc"].reason or "")
    assert isinstance(keys["subgroup.g=a.specificity"], Estimate)
    assert keys == subgroup_keys(tables["g"])


def test_null_p_values_keep_their_level() -> None:
    # Groups unrelated to performance: the unadjusted test rejects ~5 %.
    rng = np.random.default_rng(11)
    rejections, total = 0, 0
    for _ in range(150):
        y = rng.integers(0, 2, 400)
        s = rng.normal(size=400) + y
        g = rng.choice(np.array(["a", "b"]), 400)
        for row in subgroup_table(y, s, {"g": g}, threshold=0.5, metrics=("auroc",))["g"][:1]:
            rejections += row["metrics"]["auroc"]["p_value"] < 0.05
            total += 1
    assert rejections / total < 0.1


def test_intersect() -> None:
    name, values = intersect(
        {"manufacturer": ["A", "B"], "sex": ["F", None]}, "manufacturer", "sex"
    )
    assert name == "manufacturer\u00d7sex"
    assert values.tolist() == ["A\u00d7F", "B\u00d7(missing)"]
    with pytest.raises(InputError, match="no grouping column 'age'"):
        intersect({"sex": ["F"]}, "sex", "age")


def test_demo_external_scanner_is_worst(demo_cohort: Any) -> None:
    f = demo_cohort[demo_cohort["split"] != "train"]
    name, inter = intersect(
        {"manufacturer": f["manufacturer"], "sex": f["sex"]}, "manufacturer", "sex"
    )
    groups = {
        "manufacturer": f["manufacturer"],
        "sex": f["sex"],
        "age_band": f["age_band"],
        name: inter,
    }
    tables = subgroup_table(
        f["label"], f["score"], groups, threshold=0.5, clusters=f["patient_key"], n_resamples=300
    )
    worst = [r["value"] for r in tables["manufacturer"] if r["metrics"]["auroc"]["worst"]]
    assert worst == ["Cygnus Systems"]
    cyg = next(r for r in tables["manufacturer"] if r["value"] == "Cygnus Systems")
    assert cyg["metrics"]["auroc"]["p_adjusted"] < 0.05
    assert cyg["metrics"]["auroc"]["difference"]["high"] < 0
    keys = subgroup_keys(tables)
    assert "subgroup.manufacturer=Cygnus Systems.auroc" in keys


def test_errors(rng: np.random.Generator) -> None:
    y, s, g = _data(rng, 100)
    with pytest.raises(InputError, match="Unknown subgroup metrics"):
        subgroup_table(y, s, {"g": g}, threshold=0.5, metrics=("auprc",))
    with pytest.raises(InputError, match="Unknown adjust"):
        subgroup_table(y, s, {"g": g}, threshold=0.5, adjust="bonf")
    with pytest.raises(InputError, match="groups is empty"):
        subgroup_table(y, s, {}, threshold=0.5)
    with pytest.raises(InputError, match="expected one per case"):
        subgroup_table(y, s, {"g": g[:50]}, threshold=0.5)
    with pytest.raises(InputError, match="min_cell"):
        subgroup_table(y, s, {"g": g}, threshold=0.5, min_cell=0)
    with pytest.raises(InputError, match="threshold must be a finite"):
        subgroup_table(y, s, {"g": g}, threshold=float("nan"))
    with pytest.raises(InputError, match="1-D"):
        subgroup_table(y, s, {"g": np.zeros((100, 2))}, threshold=0.5)
