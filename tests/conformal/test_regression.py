"""ConformalRegressor against MAPIE 1.6 and a hand loop; properties and every error path.

MAPIE runs on prefit scikit-learn estimators that return stored columns
(``prefit_column``): ``SplitConformalRegressor`` with the ``"absolute"``
score and with ``ResidualNormalisedScore`` whose prefit residual estimator
returns the given sigma (MAPIE then scores ``|y - y_pred| / sigma``, our
``"normalized"``), and ``ConformalizedQuantileRegressor`` with three prefit
estimators and ``symmetric_correction=True`` (Romano et al.'s CQR; MAPIE's
default corrects each side separately). MAPIE takes the same order statistic
through ``np.nanquantile(..., ceil((n+1)c)/n, method="lower")``; where that
rank exceeds n it raises, and medval returns infinite intervals.
"""

from __future__ import annotations

import itertools
import math
from fractions import Fraction
from importlib import metadata

import numpy as np
import pytest

from medval._errors import InputError, MissingDependencyError, NotCalibratedError
from medval.conformal import (
    REGRESSION_SCORES,
    ConformalRegressor,
    mapie_cqr,
    mapie_split_regression,
    prefit_column,
)

LEVELS = (0.8, 0.9, 0.95)


def _data(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Heteroscedastic outcomes, a point prediction, its sigma and two quantiles."""
    x = rng.uniform(0, 4, n)
    sigma = 0.3 + 0.5 * x
    y_pred = np.sin(x) * 3
    y = y_pred + sigma * rng.standard_normal(n) + 0.2
    # the quantile model is off in scale and crosses on some cases
    q = np.column_stack((y_pred - 1.2 * sigma, y_pred + 1.5 * sigma))
    q[:5] = q[:5, ::-1]
    return {"y": y, "y_pred": y_pred, "sigma": sigma, "quantiles": q, "groups": (x > 1.5) * 1}


def _outputs(d: dict[str, np.ndarray], score: str, rows: slice | np.ndarray) -> dict[str, object]:
    out: dict[str, object] = {"y_pred": d["y_pred"][rows]}
    if score == "normalized":
        out["sigma"] = d["sigma"][rows]
    if score == "cqr":
        out["quantiles"] = d["quantiles"][rows]
    return out


def _ours(
    d: dict[str, np.ndarray], score: str, cal: slice, test: slice, level: float
) -> np.ndarray:
    model = ConformalRegressor(score, confidence_level=level)
    model.conformalize(d["y"][cal], **_outputs(d, score, cal))
    return model.predict_interval(**_outputs(d, score, test))


def _mapie(
    d: dict[str, np.ndarray], score: str, cal: slice, test: slice, level: float
) -> np.ndarray:
    if score == "cqr":
        return mapie_cqr(
            d["y"][cal], d["quantiles"][cal], d["quantiles"][test], confidence_level=level
        )
    sig = score == "normalized"
    return mapie_split_regression(
        d["y"][cal],
        d["y_pred"][cal],
        d["y_pred"][test],
        sigma=d["sigma"][cal] if sig else None,
        sigma_test=d["sigma"][test] if sig else None,
        confidence_level=level,
    )


def _hand(d: dict[str, np.ndarray], score: str, cal: np.ndarray, test: slice, level: float):
    """A plain-Python split-conformal loop: sorted scores, the k-th smallest."""
    y, yp, s, q = d["y"], d["y_pred"], d["sigma"], d["quantiles"]
    if score == "absolute":
        scores = [abs(y[i] - yp[i]) for i in cal]
    elif score == "normalized":
        scores = [abs(y[i] - yp[i]) / s[i] for i in cal]
    else:
        scores = [max(q[i, 0] - y[i], y[i] - q[i, 1]) for i in cal]
    k = math.ceil((len(scores) + 1) * Fraction(str(level)))
    Q = sorted(scores)[k - 1] if k <= len(scores) else math.inf
    if score == "absolute":
        return np.column_stack((yp[test] - Q, yp[test] + Q))
    if score == "normalized":
        return np.column_stack((yp[test] - Q * s[test], yp[test] + Q * s[test]))
    return np.column_stack((q[test, 0] - Q, q[test, 1] + Q))


@pytest.mark.parametrize("score", REGRESSION_SCORES)
@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("n_cal", [20, 101, 1000])
def test_matches_mapie(rng: np.random.Generator, score: str, level: float, n_cal: int) -> None:
    d = _data(rng, n_cal + 300)
    cal, test = slice(0, n_cal), slice(n_cal, None)
    ours, theirs = _ours(d, score, cal, test, level), _mapie(d, score, cal, test, level)
    assert ours.shape == theirs.shape == (300, 2)
    assert np.max(np.abs(ours - theirs)) <= 1e-9


@pytest.mark.parametrize("score", REGRESSION_SCORES)
@pytest.mark.parametrize("level", LEVELS)
def test_matches_hand_loop_with_groups(rng: np.random.Generator, score: str, level: float) -> None:
    d = _data(rng, 700)
    cal, test = slice(0, 400), slice(400, None)
    model = ConformalRegressor(score, confidence_level=level)
    model.conformalize(d["y"][cal], groups=d["groups"][cal], **_outputs(d, score, cal))
    got = model.predict_interval(groups=d["groups"][test], **_outputs(d, score, test))
    np.testing.assert_array_equal(
        _ours(d, score, cal, test, level), _hand(d, score, np.arange(400), test, level)
    )
    for g in (0, 1):
        members = np.flatnonzero(d["groups"][cal] == g)
        rows = np.flatnonzero(d["groups"][test] == g)
        want = _hand(d, score, members, slice(400, None), level)[rows]
        np.testing.assert_array_equal(got[rows], want)
        assert model.group_sizes_[g] == members.size
    assert model.fallback_groups_ == []


def test_mondrian_groups_match_mapie_per_group(rng: np.random.Generator) -> None:
    d = _data(rng, 900)
    cal, test = slice(0, 600), slice(600, None)
    g_cal, g_test = d["groups"][cal], d["groups"][test]
    model = ConformalRegressor("normalized", confidence_level=0.9)
    model.conformalize(d["y"][cal], d["y_pred"][cal], sigma=d["sigma"][cal], groups=g_cal)
    got = model.predict_interval(d["y_pred"][test], sigma=d["sigma"][test], groups=g_test)
    for g in (0, 1):
        c, t = np.flatnonzero(g_cal == g), np.flatnonzero(g_test == g)
        want = mapie_split_regression(
            d["y"][cal][c],
            d["y_pred"][cal][c],
            d["y_pred"][test][t],
            sigma=d["sigma"][cal][c],
            sigma_test=d["sigma"][test][t],
        )
        assert np.max(np.abs(got[t] - want)) <= 1e-9


def test_mapie_default_cqr_is_the_asymmetric_variant(rng: np.random.Generator) -> None:
    # documents why the cross-check passes symmetric_correction=True
    d = _data(rng, 600)
    y, q = d["y"], d["quantiles"]
    asym = mapie_cqr(y[:400], q[:400], q[400:], symmetric_correction=False)
    k = math.ceil(401 * 0.95)
    lo_q = np.sort(q[:400, 0] - y[:400])[k - 1]
    hi_q = np.sort(y[:400] - q[:400, 1])[k - 1]
    np.testing.assert_allclose(asym, np.column_stack((q[400:, 0] - lo_q, q[400:, 1] + hi_q)))
    assert not np.allclose(asym, _ours(d, "cqr", slice(0, 400), slice(400, None), 0.9))


@pytest.mark.parametrize("score", REGRESSION_SCORES)
def test_too_few_cases_give_infinite_intervals_where_mapie_raises(
    rng: np.random.Generator, score: str
) -> None:
    d = _data(rng, 30)
    cal, test = slice(0, 8), slice(8, None)  # 0.9 needs n >= 9
    model = ConformalRegressor(score, confidence_level=0.9)
    model.conformalize(d["y"][cal], **_outputs(d, score, cal))
    assert model.quantile_ == np.inf
    iv = model.predict_interval(**_outputs(d, score, test))
    assert np.all(iv[:, 0] == -np.inf) and np.all(iv[:, 1] == np.inf)
    with pytest.raises(ValueError, match=r"too low"):
        _mapie(d, score, cal, test, 0.9)
    # at the smallest size the quantile is the largest score, finite
    nine = ConformalRegressor(score, confidence_level=0.9)
    nine.conformalize(d["y"][:9], **_outputs(d, score, slice(0, 9)))
    assert np.isfinite(nine.quantile_)
    np.testing.assert_array_equal(
        nine.predict_interval(**_outputs(d, score, test)),
        _hand(d, score, np.arange(9), test, 0.9),
    )


@pytest.mark.parametrize("score", REGRESSION_SCORES)
def test_order_invariance(rng: np.random.Generator, score: str) -> None:
    d = _data(rng, 500)
    perm = rng.permutation(300)
    a = ConformalRegressor(score).conformalize(
        d["y"][:300], groups=d["groups"][:300], **_outputs(d, score, slice(0, 300))
    )
    b = ConformalRegressor(score).conformalize(
        d["y"][perm], groups=d["groups"][perm], **_outputs(d, score, perm)
    )
    assert a.quantile_ == b.quantile_
    assert a.group_quantiles_ == b.group_quantiles_
    test = 300 + rng.permutation(200)
    iv = a.predict_interval(groups=d["groups"][test], **_outputs(d, score, test))
    iv_sorted = a.predict_interval(groups=d["groups"][300:], **_outputs(d, score, slice(300, None)))
    np.testing.assert_array_equal(iv, iv_sorted[test - 300])


@pytest.mark.parametrize("score", REGRESSION_SCORES)
def test_intervals_grow_with_the_level(rng: np.random.Generator, score: str) -> None:
    d = _data(rng, 800)
    widths = [
        np.diff(_ours(d, score, slice(0, 500), slice(500, None), c), axis=1)
        for c in (0.5, 0.8, 0.9, 0.99)
    ]
    for narrow, wide in itertools.pairwise(widths):
        assert np.all(wide >= narrow)


def test_crossing_quantiles_can_give_an_empty_interval() -> None:
    y = np.zeros(19)
    q = np.column_stack((np.full(19, -1.0), np.full(19, 1.0)))
    model = ConformalRegressor("cqr", confidence_level=0.9).conformalize(y, None, quantiles=q)
    assert model.quantile_ == -1.0  # every case is inside its band by 1
    iv = model.predict_interval(None, quantiles=[[0.5, -0.5], [-2.0, 2.0]])
    np.testing.assert_array_equal(iv, [[1.5, -1.5], [-1.0, 1.0]])
    # y_pred is checked, not used
    with_point = model.predict_interval([0.0, 9.0], quantiles=[[0.5, -0.5], [-2.0, 2.0]])
    np.testing.assert_array_equal(iv, with_point)


def test_group_fallbacks(rng: np.random.Generator) -> None:
    d = _data(rng, 300)
    groups = np.where(np.arange(200) < 195, "big", "small")  # 5 < 9 cases
    kw = {"y_pred": d["y_pred"][:200], "groups": groups}
    marginal = ConformalRegressor().conformalize(d["y"][:200], **kw)
    assert marginal.small_groups_ == ["small"]
    assert marginal.group_quantiles_["small"] == np.inf
    test_groups = np.array(["big", "small", "new", "big"])
    iv = marginal.predict_interval(d["y_pred"][200:204], groups=test_groups)
    q, q_big = marginal.quantile_, marginal.group_quantiles_["big"]
    np.testing.assert_array_equal(iv[:, 1], d["y_pred"][200:204] + np.array([q_big, q, q, q_big]))
    assert marginal.fallback_groups_ == ["new", "small"]
    marginal.predict_interval(d["y_pred"][200:201], groups=["big"])
    assert marginal.fallback_groups_ == []  # the last call's

    infinite = ConformalRegressor(min_group_size_policy="infinite").conformalize(d["y"][:200], **kw)
    iv = infinite.predict_interval(d["y_pred"][200:203], groups=["small", "new", "big"])
    assert iv[0, 0] == -np.inf and iv[0, 1] == np.inf
    assert np.isfinite(iv[1:]).all()
    assert infinite.fallback_groups_ == ["new"]

    with pytest.raises(InputError, match=r"1 group\(s\) have too few .*'small': 5.*n >= 9"):
        ConformalRegressor(min_group_size_policy="error").conformalize(d["y"][:200], **kw)


def test_attributes(rng: np.random.Generator) -> None:
    d = _data(rng, 100)
    model = ConformalRegressor("absolute", confidence_level=0.9)
    model.conformalize(d["y"], d["y_pred"], groups=d["groups"])
    assert model.n_calibration_ == 100
    assert sum(model.group_sizes_.values()) == 100
    assert set(model.group_quantiles_) == {0, 1}
    assert model.quantile_ == np.sort(np.abs(d["y"] - d["y_pred"]))[math.ceil(101 * 0.9) - 1]
    assert model.confidence_level == 0.9 and model.score == "absolute"
    assert model.small_groups_ == [] and model.fallback_groups_ == []


def test_errors(rng: np.random.Generator) -> None:
    d = _data(rng, 50)
    y, yp, s, q = d["y"], d["y_pred"], d["sigma"], d["quantiles"]
    with pytest.raises(InputError, match=r"Unknown regression conformity score 'gamma'; valid: "):
        ConformalRegressor("gamma")
    with pytest.raises(InputError, match=r"absolute, normalized, cqr"):
        ConformalRegressor("residual_normalized")
    with pytest.raises(InputError, match=r"confidence_level must be in \(0, 1\)"):
        ConformalRegressor(confidence_level=90)
    with pytest.raises(InputError, match=r"min_group_size_policy must be one of"):
        ConformalRegressor(min_group_size_policy="drop")
    with pytest.raises(NotCalibratedError, match=r"not conformalized yet; call \.conformalize"):
        ConformalRegressor().predict_interval(yp)

    abs_, norm, cqr = (ConformalRegressor(x) for x in REGRESSION_SCORES)
    bad = y.copy()
    bad[3] = np.nan
    with pytest.raises(InputError, match=r"y_true must be finite; case 3 is nan"):
        abs_.conformalize(bad, yp)
    with pytest.raises(InputError, match=r"y_pred must be finite; case 3 is inf"):
        abs_.conformalize(y, np.where(np.arange(50) == 3, np.inf, yp))
    with pytest.raises(InputError, match=r"y_pred must have shape \(50,\).*got \(49,\)"):
        abs_.conformalize(y, yp[:49])
    with pytest.raises(InputError, match=r"y_true must have shape \(n,\).*got \(50, 1\)"):
        abs_.conformalize(y[:, None], yp)
    with pytest.raises(InputError, match=r"y_true must be numeric; got dtype <U"):
        abs_.conformalize(y.astype(str), yp)
    with pytest.raises(InputError, match=r"at least one calibration case; got 0"):
        abs_.conformalize([], [])
    with pytest.raises(InputError, match=r"sigma is used by score 'normalized' only"):
        abs_.conformalize(y, yp, sigma=s)
    with pytest.raises(InputError, match=r"quantiles are used by score 'cqr' only"):
        abs_.conformalize(y, yp, quantiles=q)
    with pytest.raises(InputError, match=r"score 'absolute' needs y_pred"):
        abs_.conformalize(y, None)
    with pytest.raises(InputError, match=r"score 'normalized' needs sigma"):
        norm.conformalize(y, yp)
    with pytest.raises(InputError, match=r"sigma must be > 0; case 7 has sigma = 0\.0"):
        norm.conformalize(y, yp, sigma=np.where(np.arange(50) == 7, 0.0, s))
    with pytest.raises(InputError, match=r"sigma must be > 0; case 0 has sigma = -1\.0"):
        norm.conformalize(y, yp, sigma=-np.ones(50))
    with pytest.raises(InputError, match=r"sigma must be finite; case 2 is nan"):
        norm.conformalize(y, yp, sigma=np.where(np.arange(50) == 2, np.nan, s))
    with pytest.raises(InputError, match=r"sigma must have shape \(50,\)"):
        norm.conformalize(y, yp, sigma=s[:10])
    with pytest.raises(InputError, match=r"score 'cqr' needs quantiles: shape \(n, 2\)"):
        cqr.conformalize(y, yp)
    with pytest.raises(InputError, match=r"score 'cqr' takes quantiles, not sigma"):
        cqr.conformalize(y, yp, quantiles=q, sigma=s)
    with pytest.raises(InputError, match=r"quantiles must have shape \(50, 2\).*got \(50, 3\)"):
        cqr.conformalize(y, None, quantiles=np.column_stack((q, yp)))
    with pytest.raises(InputError, match=r"quantiles must have shape \(50, 2\).*got \(50,\)"):
        cqr.conformalize(y, None, quantiles=q[:, 0])
    bad_q = q.copy()
    bad_q[4, 1] = np.nan
    with pytest.raises(InputError, match=r"quantiles\[:, 1\] \(upper\) must be finite; case 4"):
        cqr.conformalize(y, None, quantiles=bad_q)
    with pytest.raises(InputError, match=r"y_pred must have shape \(50,\)"):
        cqr.conformalize(y, yp[:3], quantiles=q)
    with pytest.raises(InputError, match=r"groups must have shape \(50,\)"):
        abs_.conformalize(y, yp, groups=d["groups"][:10])
    with pytest.raises(InputError, match=r"groups contain NaN"):
        abs_.conformalize(y, yp, groups=np.full(50, np.nan))


def test_predict_errors(rng: np.random.Generator) -> None:
    d = _data(rng, 60)
    y, yp, g = d["y"], d["y_pred"], d["groups"]
    marginal = ConformalRegressor().conformalize(y, yp)
    with pytest.raises(InputError, match=r"calibration was marginal; pass groups to conformalize"):
        marginal.predict_interval(yp, groups=g)
    with pytest.raises(InputError, match=r"one row per case; got a scalar"):
        marginal.predict_interval(1.0)
    with pytest.raises(InputError, match=r"needs the model outputs"):
        marginal.predict_interval(None)
    with pytest.raises(InputError, match=r"sigma is used by score 'normalized' only"):
        marginal.predict_interval(yp, sigma=d["sigma"])
    mondrian = ConformalRegressor().conformalize(y, yp, groups=g)
    with pytest.raises(InputError, match=r"conformalized per group; pass the test cases' groups"):
        mondrian.predict_interval(yp)
    with pytest.raises(InputError, match=r"groups must have shape \(60,\)"):
        mondrian.predict_interval(yp, groups=g[:5])
    cqr = ConformalRegressor("cqr").conformalize(y, None, quantiles=d["quantiles"])
    with pytest.raises(InputError, match=r"score 'cqr' needs quantiles"):
        cqr.predict_interval(yp)
    assert cqr.predict_interval(None, quantiles=np.empty((0, 2))).shape == (0, 2)


def test_prefit_column_and_mapie_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    X = np.arange(12.0).reshape(4, 3)
    np.testing.assert_array_equal(prefit_column(2).fit(X).predict(X), X[:, 2])
    y = np.arange(20.0)
    with pytest.raises(InputError, match=r"score 'normalized' needs sigma"):
        mapie_split_regression(y, y, y, sigma_test=np.ones(20))
    with pytest.raises(InputError, match=r"quantiles must have shape \(20, 2\)"):
        mapie_cqr(y, y, np.ones((3, 2)))
    monkeypatch.setattr("medval.conformal._mapie.metadata.version", lambda _: "1.5.2")
    with pytest.raises(MissingDependencyError, match=r"mapie 1\.5\.2 .* needs mapie >= 1\.6"):
        mapie_split_regression(y, y, y)

    def missing(_: str) -> str:
        raise metadata.PackageNotFoundError("mapie")

    monkeypatch.setattr("medval.conformal._mapie.metadata.version", missing)
    with pytest.raises(MissingDependencyError, match=r"install it with `pip install"):
        mapie_cqr(y, np.ones((20, 2)), np.ones((2, 2)))
