"""Coverage guarantees over many random calibration/test splits of real network outputs.

Oracle: given a calibration set of n exchangeable cases, the coverage of the
split-conformal set is Beta(n + 1 - l, l) distributed with l = floor((n+1) alpha)
(Vovk 2012; Angelopoulos & Bates 2023, sec. 3.2) for continuous scores, so its
mean lies in [1 - alpha, 1 - alpha + 1/(n + 1)]. The test-set coverage adds
binomial noise. Tolerances: 4 standard deviations of the mean over the splits.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from medval.conformal import ConformalClassifier, conformal_risk_control

DATA = Path(__file__).resolve().parents[1] / "data" / "netcal-records"
N_SPLITS = 200
N_CAL = 1000
LEVEL = 0.9


def _load(name: str) -> tuple[np.ndarray, np.ndarray]:
    path = DATA / f"{name}.npz"
    with np.load(path) as d:
        return d["predictions"], d["ground_truth"]


def _beta_oracle(n: int, level: float) -> tuple[float, float]:
    l_ = math.floor((n + 1) * (1 - level))
    law = stats.beta(n + 1 - l_, l_)
    return float(law.mean()), float(law.std())


def _simulate(name: str, make: dict[str, object], seed: int) -> tuple[np.ndarray, np.ndarray, int]:
    P, Y = _load(name)
    rng = np.random.default_rng(seed)
    cov = np.empty(N_SPLITS)
    size = np.empty(N_SPLITS)
    n_used = N_CAL
    for i in range(N_SPLITS):
        perm = rng.permutation(Y.shape[0])
        cal, test = perm[:N_CAL], perm[N_CAL:]
        clf = ConformalClassifier(random_state=rng, **make)  # type: ignore[arg-type]
        clf.calibrate(P[cal], Y[cal])
        n_used = clf.n_calibration_
        sets = clf.predict_sets(P[test], random_state=rng)
        cov[i] = sets[np.arange(test.size), Y[test]].mean()
        size[i] = sets.sum(axis=1).mean()
    return cov, size, n_used


CASES = [
    # (record, options, exact: upper bound holds too)
    ("wideresnet-16-4-cifar-10", {"method": "lac"}, True),
    ("densenet-bc-100-cifar-100", {"method": "lac"}, True),
    ("wideresnet-16-4-cifar-10", {"method": "aps"}, True),
    ("densenet-bc-100-cifar-100", {"method": "aps"}, True),
    ("densenet-bc-100-cifar-100", {"method": "aps", "randomized": False}, False),
    ("densenet-bc-100-cifar-100", {"method": "raps"}, True),
    ("densenet-bc-100-cifar-100", {"method": "raps", "randomized": False}, False),
    ("wideresnet-16-4-cifar-10", {"method": "raps"}, True),
    ("wideresnet-16-4-cifar-10", {"method": "topk"}, False),
    ("densenet-bc-100-cifar-100", {"method": "topk"}, False),
]


@pytest.mark.slow
@pytest.mark.parametrize(("name", "make", "exact"), CASES)
def test_marginal_coverage_over_splits(name: str, make: dict[str, object], exact: bool) -> None:
    cov, size, n = _simulate(name, {"confidence_level": LEVEL, **make}, seed=11)
    _, sd_b = _beta_oracle(n, LEVEL)
    n_test = 10_000 - N_CAL
    sd_total = math.sqrt(sd_b**2 + LEVEL * (1 - LEVEL) / n_test)
    tol = 4 * sd_total / math.sqrt(N_SPLITS)
    assert cov.mean() >= LEVEL - tol
    if make.get("randomized") is False:
        # deterministic APS/RAPS keep the label that crosses the threshold:
        # they over-cover, beyond the randomised upper bound
        assert cov.mean() > LEVEL + 1 / (n + 1) + tol
    if exact:
        assert cov.mean() <= LEVEL + 1 / (n + 1) + tol
        # spread of the per-split coverage follows the Beta law (plus test noise;
        # the finite test pool shrinks it a little)
        assert 0.7 * sd_total <= cov.std(ddof=1) <= 1.3 * sd_total
    assert size.mean() >= 1.0 - 0.2  # sets are not degenerate


@pytest.mark.slow
@pytest.mark.parametrize("method", ["lac", "aps"])
def test_class_conditional_coverage_over_splits(method: str) -> None:
    P, Y = _load("wideresnet-16-4-cifar-10")
    rng = np.random.default_rng(5)
    k = P.shape[1]
    cov = np.zeros((N_SPLITS, k))
    upper = np.zeros((N_SPLITS, k))
    for i in range(N_SPLITS):
        perm = rng.permutation(Y.shape[0])
        cal, test = perm[:N_CAL], perm[N_CAL:]
        clf = ConformalClassifier(method, confidence_level=LEVEL, groups="class", random_state=rng)
        sets = clf.calibrate(P[cal], Y[cal]).predict_sets(P[test], random_state=rng)
        hit = sets[np.arange(test.size), Y[test]]
        for c in range(k):
            cov[i, c] = hit[Y[test] == c].mean()
            upper[i, c] = LEVEL + 1 / (clf.group_sizes_[c] + 1)
    # per class: Beta(n_c+1-l, l) sd with n_c ~ 100, plus ~900 test cases per class
    sd = math.sqrt(_beta_oracle(N_CAL // k, LEVEL)[1] ** 2 + 0.09 / 900)
    tol = 4 * sd / math.sqrt(N_SPLITS)
    assert np.all(cov.mean(axis=0) >= LEVEL - tol)
    assert np.all(cov.mean(axis=0) <= upper.mean(axis=0) + tol)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("method", "exact"), [("lac", True), ("aps", True), ("raps", True), ("topk", False)]
)
def test_group_mondrian_coverage_over_splits(method: str, exact: bool) -> None:
    P, Y = _load("densenet-bc-100-cifar-100")
    rng = np.random.default_rng(9)
    # two artificial "scanners" that differ in difficulty: confident vs not
    group = np.where(P.max(axis=1) > 0.9, "A", "B")
    keys = ("A", "B")
    cov = np.zeros((N_SPLITS, 2))
    upper = np.zeros((N_SPLITS, 2))
    var = np.zeros((N_SPLITS, 2))  # oracle variance of each split's coverage
    for i in range(N_SPLITS):
        perm = rng.permutation(Y.shape[0])
        cal, test = perm[:N_CAL], perm[N_CAL:]
        clf = ConformalClassifier(method, confidence_level=LEVEL, random_state=rng)
        clf.calibrate(P[cal], Y[cal], groups=group[cal])
        sets = clf.predict_sets(P[test], groups=group[test], random_state=rng)
        hit = sets[np.arange(test.size), Y[test]]
        for j, key in enumerate(keys):
            n_g, m_g = clf.group_sizes_[key], int(np.sum(group[test] == key))
            cov[i, j] = hit[group[test] == key].mean()
            upper[i, j] = LEVEL + 1 / (n_g + 1)
            var[i, j] = _beta_oracle(n_g, LEVEL)[1] ** 2 + LEVEL * (1 - LEVEL) / m_g
    sd = np.sqrt(var.mean(axis=0))
    tol = 4 * sd / math.sqrt(N_SPLITS)
    assert np.all(cov.mean(axis=0) >= LEVEL - tol)
    if exact:
        assert np.all(cov.mean(axis=0) <= upper.mean(axis=0) + tol)
        # per-group spread follows the Beta(n_g + 1 - l, l) law (plus test noise)
        assert np.all(cov.std(axis=0, ddof=1) >= 0.7 * sd)
        assert np.all(cov.std(axis=0, ddof=1) <= 1.3 * sd)


@pytest.mark.slow
def test_risk_control_keeps_fnr_under_target() -> None:
    P, Y = _load("wideresnet-16-4-cifar-10")
    score, pos = P[:, 3].astype(np.float64), (Y == 3).astype(int)  # "cat" vs rest
    rng = np.random.default_rng(3)
    target = 0.1
    fnr = np.empty(500)
    for i in range(fnr.size):
        perm = rng.permutation(Y.shape[0])
        cal, test = perm[:N_CAL], perm[N_CAL:]
        res = conformal_risk_control(score[cal], pos[cal], target=target)
        fnr[i] = np.mean(score[test][pos[test] == 1] < res.threshold_)
    # FNR of a conformal rule: mean within [target - 2/(n+1), target]; n ~ 100 positives
    tol = 4 * fnr.std(ddof=1) / math.sqrt(fnr.size)
    assert fnr.mean() <= target + tol
    assert fnr.mean() >= target - 2 / (0.1 * N_CAL + 1) - tol
