"""Operating points against brute force over scikit-learn's ROC curve."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_curve

from medval._errors import InputError
from medval.stats import (
    choose_threshold,
    sensitivity_at_specificity,
    specificity_at_sensitivity,
)
from medval.stats._operating import _SensAtSpec


@pytest.fixture
def scored() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(13)
    y = rng.integers(0, 2, 300)
    return y, np.round(rng.normal(size=300) + 1.2 * y, 1)


def _rates(y: np.ndarray, s: np.ndarray, t: float) -> tuple[float, float]:
    p = s >= t
    return float(p[y == 1].mean()), float((~p[y == 0]).mean())


def test_youden_matches_roc_curve(scored: tuple[np.ndarray, np.ndarray]) -> None:
    y, s = scored
    fpr, tpr, _thr = roc_curve(y, s)
    best = np.max(tpr - fpr)
    t = choose_threshold(y, s, rule="youden")
    sens, spec = _rates(y, s, t)
    assert sens + spec - 1 == pytest.approx(best)


@pytest.mark.parametrize("target", [0.5, 0.8, 0.9, 0.95, 1.0])
def test_fixed_rules_are_optimal(scored: tuple[np.ndarray, np.ndarray], target: float) -> None:
    y, s = scored
    cand = np.r_[np.unique(s), np.inf]
    t = choose_threshold(y, s, rule="specificity", target=target)
    sens, spec = _rates(y, s, t)
    assert spec >= target
    # no threshold reaching the target has higher sensitivity
    feasible = [c for c in cand if _rates(y, s, c)[1] >= target]
    assert sens == pytest.approx(max(_rates(y, s, c)[0] for c in feasible))
    t2 = choose_threshold(y, s, rule="sensitivity", target=target)
    sens2, spec2 = _rates(y, s, t2)
    assert sens2 >= target
    feasible = [c for c in cand if _rates(y, s, c)[0] >= target]
    assert spec2 == pytest.approx(max(_rates(y, s, c)[1] for c in feasible))
    est = sensitivity_at_specificity(y, s, specificity=target, n_resamples=200, random_state=0)
    assert est.value == pytest.approx(sens)
    est2 = specificity_at_sensitivity(y, s, sensitivity=target, n_resamples=200, random_state=0)
    assert est2.value == pytest.approx(spec2)


def test_resampled_sens_at_spec_equals_repeated_data(
    scored: tuple[np.ndarray, np.ndarray],
) -> None:
    y, s = scored
    rng = np.random.default_rng(1)
    W = rng.multinomial(300, np.full(300, 1 / 300), size=4)
    got = _SensAtSpec(y, s, 0.9).values(W)
    for b in range(4):
        idx = np.repeat(np.arange(300), W[b])
        t = choose_threshold(y[idx], s[idx], rule="specificity", target=0.9)
        assert got[b] == pytest.approx(_rates(y[idx], s[idx], t)[0])


def test_interval_and_provenance(scored: tuple[np.ndarray, np.ndarray]) -> None:
    y, s = scored
    est = sensitivity_at_specificity(
        y, s, specificity=0.9, clusters=np.arange(300) // 3, n_resamples=300, random_state=5
    )
    assert est.method == "bootstrap-percentile-clustered" and est.seed == 5
    assert est.low is not None and est.low <= est.value <= est.high  # type: ignore[operator]


def test_operating_errors(scored: tuple[np.ndarray, np.ndarray]) -> None:
    y, s = scored
    with pytest.raises(InputError, match=r"target in \(0, 1\]"):
        choose_threshold(y, s, rule="sensitivity")
    with pytest.raises(InputError, match="Unknown rule 'f1'"):
        choose_threshold(y, s, rule="f1")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="positive and negative cases"):
        choose_threshold(np.zeros(10, dtype=int), np.arange(10.0))
    with pytest.raises(InputError, match=r"target in \(0, 1\]"):
        sensitivity_at_specificity(y, s, specificity=1.5)


def test_target_must_be_a_number(scored: tuple[np.ndarray, np.ndarray]) -> None:
    y, s = scored
    with pytest.raises(InputError, match=r"target in \(0, 1\]"):
        specificity_at_sensitivity(y, s, sensitivity="high")  # type: ignore[arg-type]
    with pytest.raises(InputError, match=r"target in \(0, 1\]"):
        choose_threshold(y, s, rule="specificity", target=np.nan)
