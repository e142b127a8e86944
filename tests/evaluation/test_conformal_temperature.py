"""Temperature before conformal: halves by patient, exact coverage, thresholds mapped back."""

from __future__ import annotations

import numpy as np
import pytest

from medval import conformal
from medval.calibration import TemperatureScaler
from medval.evaluation._conformal import raw_threshold, temperature_for_conformal


def _overconfident(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    y = (rng.random(n) < 0.4).astype(np.int64)
    z = 3.0 * (rng.normal(size=n) + 1.2 * y - 0.6)  # logits three times too sharp
    p1 = 1 / (1 + np.exp(-z))
    return np.c_[1 - p1, p1], y


def test_halves_are_patient_disjoint_and_the_fit_uses_one_half(rng: np.random.Generator) -> None:
    p, y = _overconfident(rng, 600)
    patients = np.repeat(np.arange(200), 3).astype(str)
    splits = np.where(np.arange(600) < 300, "calibration", "internal")
    out = temperature_for_conformal(p, y, splits, patients, calibration_split="calibration", seed=4)
    assert out is not None
    scaled, new_splits, info = out
    fit = new_splits == "calibration (temperature half)"
    keep = new_splits == "calibration"
    assert fit.sum() + keep.sum() == 300 and abs(int(fit.sum()) - 150) <= 3
    assert not set(patients[fit]) & set(patients[keep])
    assert (new_splits[300:] == "internal").all()
    want = TemperatureScaler().fit(np.log(p[fit]), y[fit]).temperature_
    assert info["conformal.temperature"] == pytest.approx(want)
    assert info["conformal.temperature"] > 1.5  # the over-confidence is found
    np.testing.assert_allclose(scaled.sum(axis=1), 1.0)
    again = temperature_for_conformal(
        p, y, splits, patients, calibration_split="calibration", seed=4
    )
    assert again is not None and (again[1] == new_splits).all()


def test_too_small_to_halve(rng: np.random.Generator) -> None:
    p, y = _overconfident(rng, 30)
    splits = np.where(np.arange(30) < 15, "calibration", "internal")
    assert temperature_for_conformal(p, y, splits, None, calibration_split="calibration",
                                     seed=0) is None  # fmt: skip


def test_raw_threshold_flags_the_same_cases(rng: np.random.Generator) -> None:
    p, _ = _overconfident(rng, 2000)
    for temperature in (0.5, 1.0, 2.7):
        scaled = TemperatureScaler()
        scaled.temperature_ = temperature
        q = scaled.predict_proba(np.log(p))[:, 1]
        for t in (0.05, 0.3, 0.5, 0.9):
            assert ((q >= t) == (p[:, 1] >= raw_threshold(t, temperature) - 1e-12)).all()


def test_coverage_guarantee_holds_with_the_temperature_half(rng: np.random.Generator) -> None:
    alpha, covered, n_keep = 0.1, [], []
    for _ in range(300):
        p, y = _overconfident(rng, 500)
        splits = np.where(np.arange(500) < 200, "calibration", "internal")
        out = temperature_for_conformal(p, y, splits, None, calibration_split="calibration",
                                        seed=int(rng.integers(1 << 30)))  # fmt: skip
        assert out is not None
        scaled, new_splits, _ = out
        cal, test = new_splits == "calibration", new_splits == "internal"
        cp = conformal.ConformalClassifier("aps", confidence_level=1 - alpha, random_state=0)
        sets = cp.calibrate(scaled[cal], y[cal]).predict_sets(scaled[test])
        covered.append(sets[np.arange(test.sum()), y[test]].mean())
        n_keep.append(int(cal.sum()))
    mean = float(np.mean(covered))
    tol = 3 * float(np.std(covered)) / np.sqrt(len(covered))
    assert 1 - alpha - tol <= mean <= 1 - alpha + 1 / (min(n_keep) + 1) + tol
