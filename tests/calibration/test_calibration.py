"""Calibration metrics against hand-computed cases, direct loops and scikit-learn."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.calibration import calibration_curve
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss, log_loss

from medval import InputError, NotCalibratedError
from medval.calibration import (
    TemperatureScaler,
    brier,
    calibration_slope_intercept,
    classwise_ece,
    debiased_l2_ce,
    ece,
    ece_ci,
    mce,
    nll,
    reliability_data,
)
from medval.stats import resample_counts

NETCAL = Path(__file__).resolve().parents[1] / "data" / "netcal-records"


def _random(rng: np.random.Generator, n: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    z = rng.normal(size=(n, k)) * 2
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    y = np.array([rng.choice(k, p=row) for row in p])
    return p, y


def _loop_ece(conf: np.ndarray, correct: np.ndarray, edges: np.ndarray) -> float:
    total = 0.0
    for b in range(len(edges) - 1):
        lo, hi = edges[b], edges[b + 1]
        inside = (conf > lo) & (conf <= hi) if b > 0 else (conf <= hi)
        if inside.any():
            total += inside.sum() / conf.size * abs(correct[inside].mean() - conf[inside].mean())
    return total


def test_ece_hand_computed() -> None:
    p = np.array([[0.1, 0.9], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    y = np.array([1, 0, 0, 1])
    # top-label conf 0.9, 0.8, 0.6, 0.7; correct 1, 0, 1, 1; 2 bins (0, .5], (.5, 1]
    assert ece(p, y, n_bins=2) == pytest.approx(abs(0.75 - 0.75))
    # 10 bins: 0.6 -> (0.5,0.6] gap 0.4, 0.7 gap 0.3, 0.8 gap 0.8, 0.9 gap 0.1
    assert ece(p, y, n_bins=10) == pytest.approx((0.4 + 0.3 + 0.8 + 0.1) / 4)
    assert mce(p, y, n_bins=10) == pytest.approx(0.8)


@pytest.mark.parametrize("k", [2, 5])
def test_ece_matches_loop(k: int) -> None:
    p, y = _random(np.random.default_rng(1), 400, k)
    conf, correct = p.max(1), (p.argmax(1) == y).astype(float)
    assert ece(p, y) == pytest.approx(_loop_ece(conf, correct, np.linspace(0, 1, 16)))


@pytest.mark.parametrize(
    ("binning", "strategy"), [("equal_width", "uniform"), ("equal_mass", "quantile")]
)
def test_reliability_matches_sklearn(binning: str, strategy: str) -> None:
    p, y = _random(np.random.default_rng(2), 500, 2)
    rel = reliability_data(p, y, n_bins=8, binning=binning, target="positive")
    prob_true, prob_pred = calibration_curve(y, p[:, 1], n_bins=8, strategy=strategy)
    full = rel["count"] > 0
    np.testing.assert_allclose(rel["observed_frequency"][full], prob_true)
    np.testing.assert_allclose(rel["mean_confidence"][full], prob_pred)
    assert rel["count"].sum() == 500
    assert rel["ece"] == pytest.approx(ece(p, y, n_bins=8, binning=binning, target="positive"))


def _loop_debiased_sq(conf: np.ndarray, outcome: np.ndarray, edges: np.ndarray) -> float:
    # Kumar et al. (2019), eq. for the debiased squared calibration error, bin by bin.
    total = 0.0
    for b in range(len(edges) - 1):
        lo, hi = edges[b], edges[b + 1]
        inside = (conf > lo) & (conf <= hi) if b > 0 else (conf <= hi)
        m = int(inside.sum())
        if m == 0:
            continue
        a = outcome[inside].mean()
        term = (conf[inside].mean() - a) ** 2
        if m > 1:
            term -= a * (1 - a) / (m - 1)
        total += m / conf.size * term
    return total


@pytest.mark.parametrize("k", [2, 4])
def test_equal_mass_mce_and_debiased_match_loops(k: int) -> None:
    p, y = _random(np.random.default_rng(12), 350, k)
    conf, correct = p.max(1), (p.argmax(1) == y).astype(float)
    edges = np.quantile(conf, np.linspace(0, 1, 11))
    edges[0], edges[-1] = 0.0, 1.0
    assert ece(p, y, n_bins=10, binning="equal_mass") == pytest.approx(
        _loop_ece(conf, correct, edges)
    )
    gaps = []
    for b in range(10):
        inside = (conf > edges[b]) & (conf <= edges[b + 1]) if b else (conf <= edges[1])
        if inside.any():
            gaps.append(abs(correct[inside].mean() - conf[inside].mean()))
    assert mce(p, y, n_bins=10, binning="equal_mass") == pytest.approx(max(gaps))
    sq = _loop_debiased_sq(conf, correct, edges)
    assert debiased_l2_ce(p, y, n_bins=10, squared=True) == pytest.approx(sq)
    assert debiased_l2_ce(p, y, n_bins=10) == pytest.approx(np.sqrt(max(sq, 0.0)))
    assert classwise_ece(p, y, n_bins=10, binning="equal_mass") == pytest.approx(
        np.mean(
            [
                _loop_ece(
                    p[:, c],
                    (y == c).astype(float),
                    np.r_[0.0, np.quantile(p[:, c], np.linspace(0, 1, 11))[1:-1], 1.0],
                )
                for c in range(k)
            ]
        )
    )


def _resampled_indices(n: int, seed: int, clusters: np.ndarray | None = None) -> list[np.ndarray]:
    counts = np.concatenate(
        list(
            resample_counts(
                n, n_resamples=50, random_state=np.random.default_rng(seed), clusters=clusters
            )
        )
    )
    return [np.repeat(np.arange(n), w) for w in counts]


def test_ece_ci_matches_direct_resampling() -> None:
    # Bootstrap percentiles against a loop over the same resamples of the stats resampler.
    p, y = _random(np.random.default_rng(13), 120, 2)
    conf, correct = p.max(1), (p.argmax(1) == y).astype(float)
    patients = np.repeat(np.arange(40), 3)
    for clusters in (None, patients):
        for binning in ("equal_width", "equal_mass"):
            est = ece_ci(
                p,
                y,
                n_resamples=50,
                n_bins=5,
                binning=binning,
                clusters=clusters,
                random_state=np.random.default_rng(5),
            )
            values = [
                _loop_ece(conf[i], correct[i], np.linspace(0, 1, 6))
                if binning == "equal_width"
                else ece(p[i], y[i], n_bins=5, binning="equal_mass")
                for i in _resampled_indices(120, 5, clusters)
            ]
            low, high = np.quantile(values, [0.025, 0.975])
            assert (est.low, est.high) == pytest.approx((low, high))


def test_ece_ci_one_image_per_patient_equals_unclustered() -> None:
    p, y = _random(np.random.default_rng(21), 150, 3)
    for binning in ("equal_width", "equal_mass"):
        plain = ece_ci(p, y, binning=binning, n_resamples=300, random_state=4)
        # keys in any order: patients are numbered by first appearance
        keys = np.array([f"P{i}" for i in np.random.default_rng(0).permutation(150)])
        clustered = ece_ci(p, y, binning=binning, n_resamples=300, random_state=4, clusters=keys)
        assert (clustered.low, clustered.high) == (plain.low, plain.high)
        assert clustered.value == plain.value
        assert plain.method == "bootstrap-percentile"
        assert clustered.method == "bootstrap-percentile-clustered"


def _correlated_patients(
    rng: np.random.Generator, n_patients: int, per_patient: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    # Each patient has one confidence and one outcome, copied to all its images.
    q = rng.uniform(0.5, 1.0, n_patients)
    hit = (rng.uniform(size=n_patients) < q).astype(int)
    p1 = np.repeat(q, per_patient)
    y = np.repeat(hit, per_patient)
    return np.column_stack([1 - p1, p1]), y, np.repeat(np.arange(n_patients), per_patient)


def test_ece_ci_clustered_is_wider_for_correlated_images() -> None:
    # Identical images: the n images carry the information of n/10 patients, so the
    # clustered interval is about sqrt(10) ~ 3 times wider (2.6-2.9 over seeds); require 1.5.
    p, y, patients = _correlated_patients(np.random.default_rng(31), 100, 10)
    kw = {"n_bins": 10, "binning": "equal_width", "target": "positive", "n_resamples": 1000}
    plain = ece_ci(p, y, random_state=2, **kw)
    clustered = ece_ci(p, y, random_state=2, clusters=patients, **kw)
    assert plain.low is not None and plain.high is not None
    assert clustered.low is not None and clustered.high is not None
    assert clustered.high - clustered.low > 1.5 * (plain.high - plain.low)


def test_ece_ci_clustered_needs_ten_patients_and_matching_keys() -> None:
    p, y, patients = _correlated_patients(np.random.default_rng(1), 9, 4)
    est = ece_ci(p, y, clusters=patients, n_resamples=50, random_state=0, target="positive")
    assert est.low is None and est.high is None and est.value is not None
    assert est.reason is not None and "patients" in est.reason
    with pytest.raises(InputError, match="one patient key per case"):
        ece_ci(p, y, clusters=patients[:-1], n_resamples=50, random_state=0)


@pytest.mark.slow
def test_ece_ci_clustered_covers_the_expected_ece() -> None:
    # Coverage of the sampling distribution's centre: the mean ECE over many fresh
    # cohorts (the estimand the percentile interval tracks) lies inside the clustered
    # interval in about 95% of cohorts, while the image-level interval covers less.
    rng = np.random.default_rng(77)
    kw = {"n_bins": 10, "binning": "equal_width", "target": "positive", "n_resamples": 400}
    cohorts = [_correlated_patients(rng, 80, 5) for _ in range(600)]
    centre = float(np.mean([ece(p, y, n_bins=10, target="positive") for p, y, _ in cohorts]))
    hits = {"clustered": 0, "plain": 0}
    for i, (p, y, patients) in enumerate(cohorts[:200]):
        for name, cl in (("clustered", patients), ("plain", None)):
            est = ece_ci(p, y, clusters=cl, random_state=i, **kw)
            assert est.low is not None and est.high is not None
            hits[name] += est.low <= centre <= est.high
    assert hits["clustered"] / 200 > 0.9  # 0.945 with these seeds
    assert hits["plain"] / 200 < hits["clustered"] / 200 - 0.05  # 0.82


def test_classwise_ece_is_mean_of_one_vs_rest() -> None:
    p, y = _random(np.random.default_rng(3), 300, 3)
    edges = np.linspace(0, 1, 16)
    expected = np.mean([_loop_ece(p[:, k], (y == k).astype(float), edges) for k in range(3)])
    assert classwise_ece(p, y) == pytest.approx(expected)


def test_debiased_l2_removes_small_sample_bias() -> None:
    # Perfectly calibrated: plug-in ECE is biased upward, debiased L2^2 is ~0 on average.
    rng = np.random.default_rng(4)
    sq, plug = [], []
    for _ in range(200):
        q = rng.uniform(0.5, 1.0, 200)
        y = (rng.uniform(size=200) < q).astype(int)
        p = np.column_stack([1 - q, q])
        sq.append(debiased_l2_ce(p, y, squared=True, target="positive"))
        plug.append(ece(p, y, binning="equal_mass", target="positive"))
    assert abs(np.mean(sq)) < 2e-3
    assert np.mean(plug) > 0.03


def test_brier_nll_match_sklearn() -> None:
    p, y = _random(np.random.default_rng(5), 200, 2)
    assert brier(p, y) == pytest.approx(brier_score_loss(y, p[:, 1]))
    assert nll(p, y) == pytest.approx(log_loss(y, p))
    p3, y3 = _random(np.random.default_rng(6), 200, 4)
    onehot = np.eye(4)[y3]
    assert brier(p3, y3) == pytest.approx(np.mean(np.sum((p3 - onehot) ** 2, 1)))
    assert nll(p3, y3) == pytest.approx(log_loss(y3, p3, labels=range(4)))


def test_slope_intercept_matches_sklearn() -> None:
    rng = np.random.default_rng(7)
    q = rng.uniform(0.02, 0.98, 600)
    y = (rng.uniform(size=600) < 1 / (1 + np.exp(-0.5 * np.log(q / (1 - q)) - 0.3))).astype(int)
    res = calibration_slope_intercept(np.column_stack([1 - q, q]), y, target="positive")
    lr = LogisticRegression(C=np.inf, tol=1e-10, max_iter=1000)
    lr.fit(np.log(q / (1 - q))[:, None], y)
    assert res["slope"] == pytest.approx(lr.coef_[0, 0], abs=1e-4)
    assert res["intercept"] == pytest.approx(lr.intercept_[0], abs=1e-4)
    z = np.log(q / (1 - q))
    assert np.mean(1 / (1 + np.exp(-(res["calibration_in_the_large"] + z)))) == pytest.approx(
        y.mean(), abs=1e-5
    )


def test_slope_constant_outcome_raises() -> None:
    with pytest.raises(InputError, match="not estimable"):
        calibration_slope_intercept(
            np.array([[0.2, 0.8], [0.3, 0.7]]), np.array([1, 1]), target="positive"
        )


def test_ece_ci_contains_value_and_records_seed() -> None:
    p, y = _random(np.random.default_rng(8), 300, 3)
    for binning in ("equal_width", "equal_mass"):
        est = ece_ci(p, y, binning=binning, n_resamples=200, random_state=11)
        assert est.low is not None and est.high is not None
        # ECE is biased upward, so its bootstrap distribution sits above the plug-in value.
        assert est.low < est.high
        assert est.value <= est.high
        assert est.seed == 11 and est.n_resamples == 200 and est.higher_is_better is False
        again = ece_ci(p, y, binning=binning, n_resamples=200, random_state=11)
        assert (again.low, again.high) == (est.low, est.high)
    assert ece_ci(p, y, n_resamples=20).seed is not None


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"binning": "kmeans"}, "unknown binning"),
        ({"n_bins": 0}, "n_bins"),
        ({"target": "positive"}, "binary"),
        ({"target": "other"}, "unknown target"),
    ],
)
def test_ece_errors(kwargs: dict[str, object], match: str) -> None:
    p, y = _random(np.random.default_rng(9), 20, 3)
    with pytest.raises(InputError, match=match):
        ece(p, y, **kwargs)  # type: ignore[arg-type]


def test_input_errors() -> None:
    with pytest.raises(InputError, match="sum to 1"):
        ece(np.array([[0.5, 0.6]]), np.array([0]))
    with pytest.raises(InputError, match="logits"):
        ece(np.array([[2.0, -1.0]]), np.array([0]))
    with pytest.raises(InputError, match="NaN"):
        nll(np.array([[np.nan, 1.0]]), np.array([0]))
    with pytest.raises(InputError, match=r"lie in 0\.\.1"):
        brier(np.array([[0.5, 0.5]]), np.array([2]))
    with pytest.raises(InputError, match="confidence_level"):
        ece_ci(np.array([[0.5, 0.5]]), np.array([0]), confidence_level=1.5)


def test_temperature_scaler_recovers_temperature() -> None:
    rng = np.random.default_rng(10)
    z = rng.normal(size=(4000, 4)) * 3
    true_t = 2.5
    p = np.exp(z / true_t) / np.exp(z / true_t).sum(1, keepdims=True)
    y = np.array([rng.choice(4, p=row) for row in p])
    s = TemperatureScaler().fit(z, y)
    assert s.temperature_ == pytest.approx(true_t, rel=0.08)
    assert s.nll_after_ <= s.nll_before_
    np.testing.assert_allclose(s.predict_proba(z).sum(1), 1.0)
    assert (s.predict_proba(z).argmax(1) == z.argmax(1)).all()
    # binary single logit column
    zb = rng.normal(size=500) * 4
    yb = (rng.uniform(size=500) < 1 / (1 + np.exp(-zb / 2))).astype(int)
    assert TemperatureScaler().fit(zb, yb).transform(zb).shape == (500, 2)


def test_temperature_scaler_errors() -> None:
    with pytest.raises(NotCalibratedError, match="fit"):
        TemperatureScaler().transform(np.zeros((2, 2)))
    with pytest.raises(InputError, match="bounds"):
        TemperatureScaler(bounds=(2.0, 1.0))
    with pytest.raises(InputError, match="NaN"):
        TemperatureScaler().fit(np.array([[np.nan, 1.0]]), np.array([0]))


# The README of netcal-records: fitted T, ECE (15 equal-width bins, top label) and NLL on the
# other half, before and after scaling.
_NETCAL_README = {
    "densenet-bc-100-cifar-100": (2.12, 0.1399, 0.0142, 1.226, 0.876),
    "wideresnet-16-4-cifar-10": (2.08, 0.0509, 0.0095, 0.365, 0.268),
}


@pytest.mark.parametrize("record", sorted(_NETCAL_README))
def test_netcal_records(record: str) -> None:
    path = NETCAL / f"{record}.npz"
    temperature, ece_before, ece_after, nll_before, nll_after = _NETCAL_README[record]
    data = np.load(path)
    p = data["predictions"].astype(np.float64)
    p /= p.sum(1, keepdims=True)
    y = data["ground_truth"]
    perm = np.random.default_rng(0).permutation(y.size)
    cal, test = perm[: y.size // 2], perm[y.size // 2 :]
    s = TemperatureScaler().fit(np.log(p[cal]), y[cal])
    q = s.predict_proba(np.log(p[test]))
    assert s.temperature_ == pytest.approx(temperature, abs=0.05)
    assert ece(p[test], y[test]) == pytest.approx(ece_before, abs=0.005)
    assert ece(q, y[test]) == pytest.approx(ece_after, abs=0.005)
    assert nll(p[test], y[test]) == pytest.approx(nll_before, abs=0.02)
    assert nll(q, y[test]) == pytest.approx(nll_after, abs=0.02)
    assert s.nll_after_ < s.nll_before_
