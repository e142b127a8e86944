"""Obuchowski's clustered AUROC variance against DeLong and the former copy in shift/."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import rankdata

from medval._errors import InputError
from medval.stats import auroc, clustered_auroc_variance, delong_covariance


def _former_shift_copy(y: np.ndarray, s: np.ndarray, codes: np.ndarray) -> float:
    # shift/_subgroups.py before the move (codes 0..K-1, every code present)
    pos, neg = y == 1, y == 0
    n1, n0 = int(pos.sum()), int(neg.sum())
    r = rankdata(s)
    v10 = (r[pos] - rankdata(s[pos])) / n0
    v01 = 1.0 - (r[neg] - rankdata(s[neg])) / n1
    auc = float(v10.mean())
    k = int(codes.max()) + 1
    v10_c = np.bincount(codes[pos], weights=v10, minlength=k)
    v01_c = np.bincount(codes[neg], weights=v01, minlength=k)
    m1 = np.bincount(codes[pos], minlength=k).astype(float)
    m0 = np.bincount(codes[neg], minlength=k).astype(float)
    d10, d01 = v10_c - m1 * auc, v01_c - m0 * auc
    k1, k0 = int((m1 > 0).sum()), int((m0 > 0).sum())
    s10 = k1 / ((k1 - 1) * n1) * float(np.sum(d10**2))
    s01 = k0 / ((k0 - 1) * n0) * float(np.sum(d01**2))
    s11 = k / (k - 1) * float(np.sum(d10 * d01))
    return s10 / n1 + s01 / n0 + 2.0 * s11 / (n1 * n0)


def _clustered(rng: np.random.Generator, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    sizes = rng.integers(1, 5, k)
    codes = np.repeat(np.arange(k), sizes)
    y = rng.integers(0, 2, codes.size)
    s = rng.normal(size=codes.size) + y + np.repeat(rng.normal(size=k), sizes)
    return y, s, codes


def test_equals_former_copy_on_random_data() -> None:
    rng = np.random.default_rng(3)
    for _ in range(20):
        y, s, codes = _clustered(rng, int(rng.integers(10, 80)))
        perm = rng.permutation(codes.size)  # patients' images need not be adjacent
        y, s, codes = y[perm], s[perm], codes[perm]
        assert clustered_auroc_variance(y, s, codes) == pytest.approx(
            _former_shift_copy(y, s, codes), rel=1e-12
        )


def test_one_image_per_patient_is_delong() -> None:
    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, 200)
    s = rng.normal(size=200) + y
    _, cov = delong_covariance(y, s)
    assert clustered_auroc_variance(y, s, np.arange(200)) == pytest.approx(cov[0, 0])


def test_patient_keys_only_group_images() -> None:
    # Any keys naming the same grouping give the same variance; absent keys do not count.
    rng = np.random.default_rng(5)
    y, s, codes = _clustered(rng, 30)
    base = clustered_auroc_variance(y, s, codes)
    assert clustered_auroc_variance(y, s, np.array([f"P{c}" for c in codes])) == base
    assert clustered_auroc_variance(y, s, codes * 7 + 100) == base


def test_correlated_images_inflate_the_variance() -> None:
    rng = np.random.default_rng(6)
    k = 100
    y = np.repeat(rng.integers(0, 2, k), 6)
    s = np.repeat(rng.normal(size=k), 6) + y + 0.1 * rng.normal(size=6 * k)
    codes = np.repeat(np.arange(k), 6)
    assert clustered_auroc_variance(y, s, codes) > 3 * clustered_auroc_variance(
        y, s, np.arange(6 * k)
    )


def test_point_estimate_shared_with_rank_auroc() -> None:
    # the rank-sum AUROC the shift and uncertainty rooms now call
    rng = np.random.default_rng(7)
    y, s, _ = _clustered(rng, 50)
    pos = y == 1
    former = float(np.mean((rankdata(s)[pos] - rankdata(s[pos])) / int((~pos).sum())))
    assert auroc(y, s) == pytest.approx(former, rel=1e-14)


def test_undefined_and_bad_input() -> None:
    y = np.array([0, 1, 0, 1, 1])
    s = np.arange(5.0)
    assert np.isnan(clustered_auroc_variance(y, s, np.array([0, 0, 0, 0, 1])))
    assert np.isnan(clustered_auroc_variance(np.ones(5, int), s, np.arange(5)))
    with pytest.raises(InputError, match="clusters is None"):
        clustered_auroc_variance(y, s, None)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="one patient key per case"):
        clustered_auroc_variance(y, s, np.arange(4))
