"""Bootstrap of cell tables: replicates against weighted references, the in-memory
bootstrap, designs that must agree, coverage, records and refusals."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps
from scipy.special import ndtr
from sklearn.metrics import roc_auc_score

from medval._errors import InputError
from medval.calibration import ece_ci
from medval.stats import ScoreCells, bootstrap_ci, cell_bootstrap, cell_statistics
from medval.stats import _cell_bootstrap as cbs
from medval.stats import _cell_resample as cb
from medval.stats._cell_stats import check_statistics


def _patients(
    rng: np.random.Generator, k: int, images: int = 4, effect: float = 1.0
) -> dict[str, np.ndarray]:
    """``k`` patients with ``images`` cases each, correlated through a patient effect.

    Positive cases come from diseased patients only, so that resampling
    patients rather than cases matters.
    """
    pat = np.repeat(np.arange(k), images)
    diseased = rng.random(k) < 0.4
    y = (diseased[pat] & (rng.random(k * images) < 0.8)).astype(np.int64)
    z = 1.2 * y + effect * rng.normal(size=k)[pat] + rng.normal(size=k * images)
    return {"s": 1.0 / (1.0 + np.exp(-z)), "y": y, "p": pat}


def _weighted_ece(s: np.ndarray, y: np.ndarray, w: np.ndarray, n_bins: int = 15) -> float:
    ids = np.searchsorted(np.arange(1, n_bins) / n_bins, s, side="left")  # (lower, upper]
    gap = np.bincount(ids, weights=w * (y - s), minlength=n_bins)
    return float(np.abs(gap).sum() / w.sum())


def test_a_replicate_equals_the_weighted_case_statistics(rng: np.random.Generator) -> None:
    d = _patients(rng, 3000, images=5)
    cells = ScoreCells.from_arrays(d["s"], d["y"], patients=d["p"])  # 96000 bins
    units = cb.Units(cells, clustered=True, stratify=True)
    names = ["auroc", "sensitivity", "specificity", "ece", "mean_predicted"]
    stats = check_statistics(names)
    (scope,) = cb.make_scopes(
        cells, units, stats, by_group=False, threshold=0.5, calibration_bins=15
    )
    counts = rng.integers(0, 4, size=(3000, 3))  # three resamples' counts per patient
    w_units = counts[units.order].astype(np.float32)  # units are patients in stratum order
    got = cb.replicate_values([scope], stats, w_units)[0]
    for r in range(3):
        w = counts[d["p"], r].astype(np.float64)
        pos, neg = d["y"] == 1, d["y"] == 0
        exact = roc_auc_score(d["y"], d["s"], sample_weight=w)
        assert got[0, r] == pytest.approx(exact, abs=1e-6)
        # exact counts for the threshold metrics
        assert got[1, r] == np.sum(w[pos & (d["s"] >= 0.5)]) / np.sum(w[pos])
        assert got[2, r] == np.sum(w[neg & (d["s"] < 0.5)]) / np.sum(w[neg])
        # calibration from the slots' mean scores: within one bin width
        assert got[3, r] == pytest.approx(_weighted_ece(d["s"], d["y"], w), abs=1 / 96000)
        assert got[4, r] == pytest.approx(np.average(d["s"], weights=w), abs=1 / 96000)


def test_binned_replicates_stay_within_the_binning_bound(rng: np.random.Generator) -> None:
    d = _patients(rng, 400, images=3)
    cells = ScoreCells.from_arrays(d["s"], d["y"], patients=d["p"], bins=50)
    units = cb.Units(cells, clustered=True, stratify=False)
    stats = check_statistics(["auroc"])
    (scope,) = cb.make_scopes(cells, units, stats, by_group=False, threshold=None,
                              calibration_bins=15)  # fmt: skip
    counts = rng.integers(0, 3, size=400)
    got = cb.replicate_values([scope], stats, counts[units.order][:, None].astype(np.float32))
    w = counts[d["p"]].astype(float)
    slot = cells.bins.slots(d["s"])
    pos = np.bincount(slot, weights=w * d["y"], minlength=cells.bins.n_slots)
    neg = np.bincount(slot, weights=w * (1 - d["y"]), minlength=cells.bins.n_slots)
    bound = 0.5 * np.dot(pos[1::2], neg[1::2]) / (pos.sum() * neg.sum())
    diff = abs(got[0, 0, 0] - roc_auc_score(d["y"], d["s"], sample_weight=w))
    assert 0 < diff <= bound


def test_clustered_interval_agrees_with_bootstrap_ci(rng: np.random.Generator) -> None:
    # 2 * 10^4 cases; clustering doubles the interval's width here
    d = _patients(rng, 2500, images=8, effect=1.5)
    cells = ScoreCells.from_arrays(d["s"], d["y"], patients=d["p"])
    res = cell_bootstrap(
        cells, ["auroc", "sensitivity"], threshold=0.5, n_resamples=2000, random_state=1
    )
    for name, thr in (("auroc", None), ("sensitivity", 0.5)):
        ref = bootstrap_ci(
            name, d["y"], d["s"], threshold=thr, clusters=d["p"], method="percentile",
            n_resamples=2000, random_state=2,
        )  # fmt: skip
        mine = res.estimates[name]
        assert ref.low is not None and ref.high is not None and mine.low is not None
        width = ref.high - ref.low
        # endpoints of two independent 2000-resample runs: sd about 2% of the width
        # (resampling cases instead would move them by a quarter of it)
        assert mine.low == pytest.approx(ref.low, abs=0.1 * width)
        assert mine.high == pytest.approx(ref.high, abs=0.1 * width)
        assert mine.value == pytest.approx(ref.value, abs=1e-6)


def test_clustered_ece_interval_agrees_with_ece_ci(rng: np.random.Generator) -> None:
    d = _patients(rng, 2500, images=8, effect=1.5)
    cells = ScoreCells.from_arrays(d["s"], d["y"], patients=d["p"])
    # ece_ci resamples patients unstratified
    mine = cell_bootstrap(cells, "ece", stratify=False, n_resamples=2000, random_state=5)
    e = mine.estimates["ece"]
    ref = ece_ci(np.c_[1 - d["s"], d["s"]], d["y"], target="positive", clusters=d["p"],
                 n_resamples=2000, random_state=6)  # fmt: skip
    assert ref.low is not None and ref.high is not None and e.low is not None
    width = ref.high - ref.low
    assert e.value == pytest.approx(ref.value, abs=1e-12)
    assert e.low == pytest.approx(ref.low, abs=0.1 * width)
    assert e.high == pytest.approx(ref.high, abs=0.1 * width)


def test_one_case_per_patient_matches_the_case_bootstrap(rng: np.random.Generator) -> None:
    d = _patients(rng, 3000, images=1)
    cells = ScoreCells.from_arrays(d["s"], d["y"], patients=d["p"], bins=3000)
    kw = {"statistics": ["auroc", "ece"], "n_resamples": 2000}
    a = cell_bootstrap(cells, clustered=True, random_state=3, **kw).replicates
    b = cell_bootstrap(cells, clustered=False, random_state=4, **kw).replicates
    for name in ("auroc", "ece"):
        assert sps.ks_2samp(a[name], b[name]).pvalue > 1e-3
        assert np.std(a[name]) == pytest.approx(np.std(b[name]), rel=0.1)


def test_multinomial_draws_by_cases_and_by_binomials_agree(rng: np.random.Generator) -> None:
    freq = rng.integers(1, 30, size=200)
    n = int(freq.sum())
    p = freq / n
    for draws in (
        cb._multinomial(np.random.default_rng(5), freq, n, 4000),  # by cases: n < 20 m
        np.random.default_rng(6).multinomial(n, p, size=4000),
    ):
        assert np.all(draws.sum(1) == n)
        np.testing.assert_allclose(draws.mean(0), n * p, atol=5 * np.sqrt(n * p / 4000).max())
        np.testing.assert_allclose(draws.var(0), n * p * (1 - p), rtol=0.25)
    big = cb._multinomial(np.random.default_rng(7), np.array([5000, 3000]), 8000, 50)
    assert np.all(big.sum(1) == 8000)


def test_clustered_interval_covers_the_auroc() -> None:
    # a patient effect independent of the labels: AUROC = Phi(b / sqrt(2 (1 + t^2)))
    truth = float(ndtr(1.2 / np.sqrt(2 * (1 + 1.0**2))))
    hits = np.zeros(2)
    runs = 120
    for i in range(runs):
        d = _patients(np.random.default_rng(1000 + i), 80, images=5)
        cells = ScoreCells.from_arrays(d["s"], d["y"], patients=d["p"], bins=2000)
        for j, clustered in enumerate((True, False)):
            res = cell_bootstrap(cells, "auroc", clustered=clustered, n_resamples=400,
                                 random_state=i)  # fmt: skip
            e = res.estimates["auroc"]
            assert e.low is not None and e.high is not None
            hits[j] += e.low <= truth <= e.high
    # 95% nominal (the percentile interval runs a little short at 80 patients);
    # binomial sd 2% at 120 runs. Resampling images instead misses far more often.
    assert 0.87 <= hits[0] / runs <= 0.995
    assert hits[1] / runs < 0.8


def test_results_do_not_depend_on_threads(
    rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch
) -> None:
    d = _patients(rng, 300, images=3)
    cells = ScoreCells.from_arrays(d["s"], d["y"], patients=d["p"])
    base = cell_bootstrap(cells, "auroc", n_resamples=200, random_state=9, n_jobs=1)
    monkeypatch.setattr(cbs, "_MIN_PARALLEL_WORK", 0)
    two = cell_bootstrap(cells, "auroc", n_resamples=200, random_state=9, n_jobs=2)
    np.testing.assert_array_equal(base.replicates["auroc"], two.replicates["auroc"])
    # float32 products redone in float64 give the same counts
    monkeypatch.setattr(cb, "_FLOAT32_EXACT", 1.0)
    wide = cell_bootstrap(cells, "auroc", n_resamples=200, random_state=9)
    np.testing.assert_array_equal(base.replicates["auroc"], wide.replicates["auroc"])


def test_estimates_record_the_design(rng: np.random.Generator) -> None:
    d = _patients(rng, 200, images=3)
    g = np.where(d["p"] % 3 == 0, "north", "south")
    cells = ScoreCells.from_arrays(d["s"], d["y"], patients=d["p"], groups=g)
    names = ["auroc", "specificity", "ece", "observed_expected_ratio"]
    res = cell_bootstrap(
        cells, names, threshold=0.5, n_resamples=300, random_state=11, by_group=True
    )
    e = res.estimates["auroc"]
    assert e.method == "cell-bootstrap-percentile-clustered"
    assert (e.seed, e.n_resamples, e.n, e.higher_is_better) == (11, 300, 600, True)
    assert res.estimates["ece"].higher_is_better is False
    assert res.n_patients == 200 and "within disease status" in res.design
    lo, hi = np.quantile(res.replicates["auroc"], [0.025, 0.975])
    assert (e.low, e.high) == (lo, hi)
    assert set(res.groups) == {"north", "south"}
    north = res.groups["north"]
    assert north.n_patients == 67 and north.n_cases == 201
    point = cell_statistics(cells, names, threshold=0.5, group="north")
    assert {k: v.value for k, v in north.estimates.items()} == point
    basic = cell_bootstrap(cells, "auroc", method="basic", n_resamples=300, random_state=11)
    assert basic.estimates["auroc"].low == pytest.approx(2 * e.value - hi)
    gen = cell_bootstrap(cells, "auroc", n_resamples=100, random_state=np.random.default_rng(0))
    assert gen.estimates["auroc"].seed is None
    flat = cell_bootstrap(cells, "auroc", clustered=False, stratify=False, n_resamples=100)
    assert flat.estimates["auroc"].method == "cell-bootstrap-percentile"
    assert flat.n_patients is None and flat.design.startswith("cases resampled")


def test_intervals_that_cannot_be_estimated_say_why(rng: np.random.Generator) -> None:
    few = _patients(rng, 8, images=3)
    cells = ScoreCells.from_arrays(few["s"], few["y"], patients=few["p"])
    e = cell_bootstrap(cells, "auroc", n_resamples=100).estimates["auroc"]
    assert e.value is not None and e.low is None
    assert e.reason is not None and "only 8 patients" in e.reason
    y = np.zeros(60, dtype=np.int64)
    y[0] = 1  # one positive patient: stratified resamples always repeat it
    cells = ScoreCells.from_arrays(rng.random(60), y, patients=np.arange(60) // 3)
    e = cell_bootstrap(cells, "auroc", n_resamples=100).estimates["auroc"]
    assert e.reason is not None and "a single patient" in e.reason
    y = np.zeros(100, dtype=np.int64)
    y[:1] = 1  # unstratified: about 37% of resamples without the positive case
    cells = ScoreCells.from_arrays(rng.random(100), y)
    e = cell_bootstrap(cells, "auroc", stratify=False, n_resamples=200, random_state=rng).estimates[
        "auroc"
    ]
    assert e.reason is not None and "undefined in" in e.reason
    cells = ScoreCells.from_arrays(rng.random(30), np.ones(30, dtype=np.int64))
    e = cell_bootstrap(cells, "auroc", n_resamples=100).estimates["auroc"]
    assert e.value is None and e.reason is not None and "needs positive and negative" in e.reason
    cells = ScoreCells.from_arrays(np.full(30, 0.5), np.arange(30) % 2)
    e = cell_bootstrap(cells, "sensitivity", threshold=0.5, n_resamples=100).estimates
    assert e["sensitivity"].reason is not None and "degenerate" in e["sensitivity"].reason


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"clustered": True}, "clustered=True needs the patients"),
        ({"method": "bca"}, "valid: percentile, basic"),
        ({"n_resamples": 50}, "at least 100"),
        ({"confidence_level": 95}, r"confidence_level must be in \(0, 1\)"),
        ({"n_jobs": 0}, "n_jobs must be a positive int"),
        ({"random_state": -1}, "non-negative int"),
        ({"statistics": "auprc"}, "unknown cell statistic"),
    ],
)
def test_bad_arguments_are_refused(rng: np.random.Generator, kwargs: dict, match: str) -> None:
    cells = ScoreCells.from_arrays(rng.random(40), np.arange(40) % 2)
    with pytest.raises(InputError, match=match):
        cell_bootstrap(cells, **kwargs)


def test_cells_must_be_a_table() -> None:
    with pytest.raises(InputError, match="must be a ScoreCells table"):
        cell_bootstrap(np.zeros(3))  # type: ignore[arg-type]
