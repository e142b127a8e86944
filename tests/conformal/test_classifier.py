"""ConformalClassifier: API, Mondrian calibration, error paths."""

from __future__ import annotations

import math

import numpy as np
import pytest

from medval._errors import InputError, NotCalibratedError
from medval.conformal import (
    RAPS_LAMBDA_GRID,
    SCORES,
    ConformalClassifier,
    Regularization,
    conformal_quantile,
    get_score,
)


def _probs(rng: np.random.Generator, n: int, k: int = 5) -> tuple[np.ndarray, np.ndarray]:
    z = rng.normal(size=(n, k)) * 2
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    y = np.array([rng.choice(k, p=row) for row in p])
    return p, y


def test_quantile_is_the_conformal_order_statistic(rng: np.random.Generator) -> None:
    s = rng.random(99)
    k = math.ceil(100 * 0.9)
    assert conformal_quantile(s, confidence_level=0.9) == np.sort(s)[k - 1]
    # same as numpy's 'lower' quantile at ceil((n+1)c)/n, MAPIE's rule
    assert conformal_quantile(s, confidence_level=0.9) == np.quantile(s, k / 99, method="lower")


def test_quantile_needs_enough_cases() -> None:
    with pytest.raises(InputError, match=r"n >= 9"):
        conformal_quantile(np.arange(8.0), confidence_level=0.9)
    assert conformal_quantile(np.arange(9.0), confidence_level=0.9) == 8.0


@pytest.mark.parametrize("method", sorted(SCORES))
def test_sets_shape_dtype_and_determinism(rng: np.random.Generator, method: str) -> None:
    p, y = _probs(rng, 400)
    clf = ConformalClassifier(method, random_state=1).calibrate(p[:200], y[:200])
    a, b = clf.predict_sets(p[200:]), clf.predict_sets(p[200:])
    assert a.shape == (200, 5)
    assert a.dtype == np.bool_
    np.testing.assert_array_equal(a, b)
    assert clf.n_calibration_ <= 200
    assert clf.quantile_ is not None


def test_float32_input_stays_float32(rng: np.random.Generator) -> None:
    p, y = _probs(rng, 300)
    clf = ConformalClassifier("aps", random_state=0).calibrate(p.astype(np.float32), y)
    assert np.asarray(clf.quantile_).dtype == np.float32


def test_non_randomized_aps_covers_at_least_randomized(rng: np.random.Generator) -> None:
    p, y = _probs(rng, 2000)
    det = ConformalClassifier("aps", randomized=False).calibrate(p[:1000], y[:1000])
    ran = ConformalClassifier("aps", random_state=0).calibrate(p[:1000], y[:1000])
    s_det, s_ran = det.predict_sets(p[1000:]), ran.predict_sets(p[1000:])
    assert s_det.sum(axis=1).min() >= 1  # never empty
    assert s_det.sum() >= s_ran.sum()


def test_raps_tunes_on_a_held_out_share(rng: np.random.Generator) -> None:
    p, y = _probs(rng, 500)
    clf = ConformalClassifier("raps", random_state=0).calibrate(p, y)
    assert clf.n_tuning_ == 100
    assert clf.n_calibration_ == 400
    assert clf.lambda_reg_ in (0.001, 0.01, 0.1, 0.2, 0.5)
    assert 1 <= clf.k_reg_ <= 5
    given = ConformalClassifier("raps", lambda_reg=0.1, k_reg=2).calibrate(p, y)
    assert given.n_tuning_ == 0
    assert (given.lambda_reg_, given.k_reg_) == (0.1, 2.0)


def test_mondrian_groups_have_their_own_threshold(rng: np.random.Generator) -> None:
    p, y = _probs(rng, 600)
    g = np.where(np.arange(600) % 3 == 0, "GE", "Siemens")
    clf = ConformalClassifier("lac").calibrate(p, y, groups=g)
    assert set(clf.quantiles_) == {"GE", "Siemens"}
    for key in ("GE", "Siemens"):
        scores = get_score("lac").calibration_scores(p[g == key], y[g == key])
        assert clf.quantiles_[key] == conformal_quantile(scores, confidence_level=0.9)
    sets = clf.predict_sets(p[:10], groups=g[:10])
    assert sets.shape == (10, 5)


def test_small_group_errors_or_falls_back(rng: np.random.Generator) -> None:
    p, y = _probs(rng, 300)
    g = np.array(["big"] * 295 + ["tiny"] * 5)
    with pytest.raises(InputError, match=r"'tiny': 5.*n >= 9"):
        ConformalClassifier("lac").calibrate(p, y, groups=g)
    clf = ConformalClassifier("lac", min_group_size_policy="marginal").calibrate(p, y, groups=g)
    assert clf.fallback_groups_ == ["tiny"]
    assert clf.quantiles_["tiny"] == clf.quantile_


def test_class_conditional(rng: np.random.Generator) -> None:
    p, y = _probs(rng, 1000)
    clf = ConformalClassifier("aps", groups="class", random_state=0).calibrate(p, y)
    assert sorted(clf.quantiles_) == list(range(5))
    assert clf.predict_sets(p[:50]).shape == (50, 5)


def test_error_probabilities_not_summing_to_one_hints_at_logits(
    rng: np.random.Generator,
) -> None:
    p, y = _probs(rng, 50)
    with pytest.raises(InputError, match=r"sum to 1.*logits.*softmax"):
        ConformalClassifier("lac").calibrate(p * 2 / 2.5, y)
    with pytest.raises(InputError, match=r"\[0, 1\].*logits"):
        ConformalClassifier("lac").calibrate(np.log(p), y)
    bad = p.copy()
    bad[3, 1] = np.nan
    with pytest.raises(InputError, match="NaN"):
        ConformalClassifier("lac").calibrate(bad, y)
    with pytest.raises(InputError, match=r"shape \(n, K\)"):
        ConformalClassifier("lac").calibrate(p[:, 0], y)


def test_error_labels(rng: np.random.Generator) -> None:
    p, y = _probs(rng, 50)
    bad = y.copy()
    bad[7] = 5
    with pytest.raises(InputError, match=r"0\.\.4.*row 7 has 5"):
        ConformalClassifier("lac").calibrate(p, bad)
    with pytest.raises(InputError, match=r"shape \(50,\)"):
        ConformalClassifier("lac").calibrate(p, y[:10])
    with pytest.raises(InputError, match="whole class indices"):
        ConformalClassifier("lac").calibrate(p, y + 0.5)


def test_error_predict_before_calibrate(rng: np.random.Generator) -> None:
    p, _ = _probs(rng, 10)
    with pytest.raises(NotCalibratedError, match=r"calibrate"):
        ConformalClassifier().predict_sets(p)


def test_error_unseen_or_missing_groups(rng: np.random.Generator) -> None:
    p, y = _probs(rng, 200)
    g = np.array(["a", "b"] * 100)
    clf = ConformalClassifier("lac").calibrate(p, y, groups=g)
    with pytest.raises(InputError, match=r"\['c'\] were not seen at calibration"):
        clf.predict_sets(p[:3], groups=np.array(["a", "c", "b"]))
    with pytest.raises(InputError, match="pass the test cases' groups"):
        clf.predict_sets(p[:3])
    marginal = ConformalClassifier("lac").calibrate(p, y)
    with pytest.raises(InputError, match="calibration was marginal"):
        marginal.predict_sets(p[:2], groups=np.array(["a", "b"]))
    with pytest.raises(InputError, match=r"shape \(200,\)"):
        ConformalClassifier("lac").calibrate(p, y, groups=g[:5])


def test_error_options() -> None:
    with pytest.raises(InputError, match=r"valid methods: \['aps', 'lac', 'raps', 'topk'\]"):
        ConformalClassifier("softmax")
    with pytest.raises(InputError, match="confidence_level"):
        ConformalClassifier(confidence_level=90)
    with pytest.raises(InputError, match="'aps' and 'raps' only"):
        ConformalClassifier("lac", randomized=True)
    with pytest.raises(InputError, match="groups must be None or 'class'"):
        ConformalClassifier(groups="site")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="min_group_size_policy"):
        ConformalClassifier(min_group_size_policy="skip")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="lambda_reg"):
        ConformalClassifier("raps", lambda_reg=-1.0)


def test_error_class_count_mismatch(rng: np.random.Generator) -> None:
    p, y = _probs(rng, 100)
    clf = ConformalClassifier("lac").calibrate(p, y)
    with pytest.raises(InputError, match="5"):
        clf.predict_sets(np.full((2, 4), 0.25))


def test_raps_tuning_equals_the_papers_rule_computed_directly(rng: np.random.Generator) -> None:
    # k_reg = conformal quantile of the true label's 0-based rank + 1; lambda the
    # grid value with the smallest mean non-randomised set on the tuning cases
    p, y = _probs(rng, 1500, k=20)
    clf = ConformalClassifier("raps", random_state=3).calibrate(p, y)
    perm = np.random.default_rng(3).permutation(1500)
    tune = np.sort(perm[:300])
    pt, yt = p[tune], y[tune]
    ranks = get_score("topk").calibration_scores(pt, yt)
    k_reg = float(conformal_quantile(ranks, confidence_level=0.9)) + 1
    assert clf.k_reg_ == k_reg
    aps = get_score("aps")
    sizes = []
    for lam in RAPS_LAMBDA_GRID:
        reg = Regularization(lam, k_reg)
        q = conformal_quantile(
            aps.calibration_scores(pt, yt, regularization=reg), confidence_level=0.9
        )
        sizes.append(aps.row_sets(pt, np.full(300, q), regularization=reg).sum(axis=1).mean())
    assert clf.lambda_reg_ == RAPS_LAMBDA_GRID[int(np.argmin(sizes))]
    # the threshold comes from the other cases only
    keep = np.sort(perm[300:])
    reg = Regularization(clf.lambda_reg_, clf.k_reg_)
    u = np.random.default_rng(3)
    u.permutation(1500)
    scores = get_score("raps").calibration_scores(
        p[keep], y[keep], u=u.random(1200), regularization=reg
    )
    assert clf.quantile_ == conformal_quantile(scores, confidence_level=0.9)


def test_more_error_paths(rng: np.random.Generator) -> None:
    p, y = _probs(rng, 100)
    with pytest.raises(InputError, match="raps_tuning_fraction"):
        ConformalClassifier("raps", raps_tuning_fraction=1.0)
    with pytest.raises(InputError, match="do not pass groups as well"):
        ConformalClassifier("lac", groups="class").calibrate(p, y, groups=y)
    with pytest.raises(InputError, match="groups contain NaN"):
        ConformalClassifier("lac").calibrate(p, y, groups=np.where(y == 0, np.nan, 1.0))
    with pytest.raises(InputError, match="groups contain None"):
        ConformalClassifier("lac").calibrate(p, y, groups=np.array([None, *["a"] * 99]))
    with pytest.raises(InputError, match="must be numeric"):
        ConformalClassifier("lac").calibrate(p.astype(str), y)
    with pytest.raises(InputError, match="integer class indices"):
        ConformalClassifier("lac").calibrate(p, y.astype(str))
    with pytest.raises(InputError, match=r"too few calibration cases.*n >= 9"):
        ConformalClassifier("lac", groups="class").calibrate(p[:8], y[:8])
    # too few overall: no marginal threshold to fall back to
    with pytest.raises(InputError, match="n >= 9"):
        ConformalClassifier("lac").calibrate(p[:5], y[:5])
