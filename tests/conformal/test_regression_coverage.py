"""The coverage guarantee of ConformalRegressor on a real dataset, over 1000 random splits.

scikit-learn's bundled diabetes data (442 patients, disease progression
after one year; no download): half the patients train a Ridge model, a
sigma model (Ridge on the log of out-of-fold absolute residuals) and two
gradient-boosted quantile models (5 % and 95 %), once. The other 221 are
split at random 1000 times into 110 calibration and 111 test cases. Given
the pool, a random split makes calibration and test exchangeable, so the
mean test coverage over splits lies in ``[c, c + 1/(n_cal + 1)]`` (no tied
scores: the outcomes are integers, the predictions continuous); it is
checked within 3 Monte Carlo standard errors. Mondrian calibration by sex
must hold the band within each sex, with ``1/(n_g + 1)`` averaged over the
splits' group sizes.

All splits run in one call: calibrating per (split, group) key with
Mondrian groups is the same as calibrating each split alone
(``test_stacked_splits_equal_one_split_at_a_time`` checks it).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from medval.conformal import REGRESSION_SCORES, ConformalRegressor, interval_coverage

N_SPLITS, N_CAL = 1000, 110
LEVELS = (0.8, 0.9)


@pytest.fixture(scope="module")
def pool() -> dict[str, Any]:
    from sklearn.datasets import load_diabetes
    from sklearn.ensemble import GradientBoostingRegressor
    from sklearn.linear_model import Ridge
    from sklearn.model_selection import cross_val_predict

    X, y = load_diabetes(return_X_y=True)
    sex = (X[:, 1] > 0).astype(int)  # the scaled sex column takes two values
    perm = np.random.default_rng(2019).permutation(y.shape[0])
    train, rest = perm[:221], perm[221:]
    ridge = Ridge(alpha=0.1).fit(X[train], y[train])
    oof = cross_val_predict(Ridge(alpha=0.1), X[train], y[train], cv=5)
    spread = Ridge(alpha=1.0).fit(X[train], np.log1p(np.abs(y[train] - oof)))
    quantiles = [
        GradientBoostingRegressor(
            loss="quantile",
            alpha=a,
            n_estimators=100,
            max_depth=2,
            learning_rate=0.05,
            random_state=0,
        ).fit(X[train], y[train])
        for a in (0.05, 0.95)
    ]
    Xr = X[rest]
    order = np.argsort(np.random.default_rng(7).random((N_SPLITS, rest.shape[0])), axis=1)
    return {
        "y": y[rest],
        "y_pred": ridge.predict(Xr),
        "sigma": np.exp(spread.predict(Xr)),
        "quantiles": np.column_stack([m.predict(Xr) for m in quantiles]),
        "sex": sex[rest],
        "train_mean": float(y[train].mean()),
        "cal": order[:, :N_CAL],
        "test": order[:, N_CAL:],
    }


def _outputs(pool: dict[str, Any], score: str, rows: np.ndarray) -> dict[str, Any]:
    flat = rows.ravel()
    out: dict[str, Any] = {"y_pred": pool["y_pred"][flat]}
    if score == "normalized":
        out["sigma"] = pool["sigma"][flat]
    if score == "cqr":
        out["quantiles"] = pool["quantiles"][flat]
    return out


def _run(pool: dict[str, Any], score: str, level: float, by_sex: bool) -> dict[str, Any]:
    """Every split at once: groups are (split, sex) or the split alone."""
    cal, test = pool["cal"], pool["test"]
    split = np.arange(N_SPLITS)[:, None]
    keys_cal = split * 2 + pool["sex"][cal] if by_sex else np.broadcast_to(split, cal.shape)
    keys_test = split * 2 + pool["sex"][test] if by_sex else np.broadcast_to(split, test.shape)
    model = ConformalRegressor(score, confidence_level=level)
    model.conformalize(
        pool["y"][cal].ravel(), groups=keys_cal.ravel(), **_outputs(pool, score, cal)
    )
    iv = model.predict_interval(groups=keys_test.ravel(), **_outputs(pool, score, test))
    assert model.small_groups_ == [] and model.fallback_groups_ == []
    iv = iv.reshape(*test.shape, 2)
    y = pool["y"][test]
    return {"hit": (iv[..., 0] <= y) & (y <= iv[..., 1]), "iv": iv, "model": model}


def _in_band(coverage: np.ndarray, level: float, upper_slack: float) -> tuple[float, float, float]:
    mean = float(coverage.mean())
    se = float(coverage.std(ddof=1) / np.sqrt(coverage.shape[0]))
    assert level - 3 * se <= mean <= level + upper_slack + 3 * se, (mean, se, level, upper_slack)
    return mean, level, level + upper_slack


def _baseline_width(pool: dict[str, Any], level: float) -> float:
    """Mean width without a model: absolute score around the training mean."""
    constant = np.full(pool["y"].shape, pool["train_mean"])
    run = _run({**pool, "y_pred": constant}, "absolute", level, by_sex=False)
    return float(np.diff(run["iv"], axis=-1).mean())


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("score", REGRESSION_SCORES)
def test_marginal_coverage_in_the_band(pool: dict[str, Any], score: str, level: float) -> None:
    run = _run(pool, score, level, by_sex=False)
    coverage = run["hit"].mean(axis=1)
    _in_band(coverage, level, 1 / (N_CAL + 1))
    # not vacuous: finite intervals, narrower than without a model, rarely all covered
    assert np.isfinite(run["iv"]).all()
    assert np.mean(coverage == 1.0) < 0.01
    assert np.diff(run["iv"], axis=-1).mean() < _baseline_width(pool, level)


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("score", REGRESSION_SCORES)
def test_mondrian_coverage_in_the_band_for_each_sex(
    pool: dict[str, Any], score: str, level: float
) -> None:
    run = _run(pool, score, level, by_sex=True)
    sex_test = pool["sex"][pool["test"]]
    sizes = run["model"].group_sizes_
    for g in (0, 1):
        member = sex_test == g
        assert member.sum(axis=1).min() > 0
        coverage = (run["hit"] & member).sum(axis=1) / member.sum(axis=1)
        n_g = np.array([sizes[2 * r + g] for r in range(N_SPLITS)])
        _in_band(coverage, level, float(np.mean(1 / (n_g + 1))))
        assert np.mean(coverage == 1.0) < 0.05
    assert np.isfinite(run["iv"]).all()


def test_stacked_splits_equal_one_split_at_a_time(pool: dict[str, Any]) -> None:
    for score in REGRESSION_SCORES:
        stacked = _run(pool, score, 0.9, by_sex=False)["iv"]
        for r in (0, 1, N_SPLITS - 1):
            cal, test = pool["cal"][r], pool["test"][r]
            model = ConformalRegressor(score, confidence_level=0.9)
            model.conformalize(pool["y"][cal], **_outputs(pool, score, cal))
            np.testing.assert_array_equal(
                model.predict_interval(**_outputs(pool, score, test)), stacked[r]
            )


def test_interval_coverage_on_one_split(pool: dict[str, Any]) -> None:
    run = _run(pool, "normalized", 0.9, by_sex=True)
    test = pool["test"][0]
    out = interval_coverage(pool["y"][test], run["iv"][0], groups=pool["sex"][test])
    assert out["coverage"]["value"] == run["hit"][0].mean()
    assert [row["group"] for row in out["by_group"]] == [0, 1]
    assert sum(row["n"] for row in out["by_group"]) == test.shape[0]
