"""Rules: the run's decision rules on probabilities, without a model."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest

from medval import InputError
from medval.calibration import TemperatureScaler
from medval.conformal import ConformalClassifier
from medval.deploy import Rules
from medval.uncertainty import decompose


def _rules(**parts: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "task": {"class_names": ["neg", "pos"], "positive_index": 1},
        "operating_point": {"threshold": 0.3},
        "calibration": {"temperature": None},
        "conformal": None,
        "triage": None,
        "referral": {"set_not_singleton": False, "uncertainty": None},
    }
    base.update(parts)
    return base


def _probs(rng: np.random.Generator, n: int, k: int = 2) -> np.ndarray:
    z = rng.normal(size=(n, k)) * 2
    return np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)


def test_the_decision_is_at_or_above_the_operating_threshold() -> None:
    p = np.array([[0.7, 0.3], [0.71, 0.29], [0.2, 0.8]])
    out = Rules(_rules()).decide(p, case_ids=["a", "b", "c"])
    assert out.decision.tolist() == [1, 0, 1]  # 0.3 itself is positive
    assert out.decisions() == ["pos", "neg", "pos"]
    assert out.sets is None and out.labels() == [(), (), ()]
    assert not out.refer.any() and out.uncertainty is None and out.calibrated is None
    # The positive class in column 0: its probability is compared with the threshold.
    task = {"class_names": ["pos", "neg"], "positive_index": 0}
    out = Rules(_rules(task=task)).decide(p, case_ids=["a", "b", "c"])
    assert out.decision.tolist() == [0, 0, 1]


def test_multiclass_decides_the_most_probable_class(rng: np.random.Generator) -> None:
    p = _probs(rng, 20, 3)
    task = {"class_names": ["a", "b", "c"], "positive_index": 0}
    out = Rules(_rules(task=task)).decide(p, case_ids=[str(i) for i in range(20)])
    np.testing.assert_array_equal(out.decision, p.argmax(axis=1))


def test_calibrated_probabilities_are_the_temperature_scaled_ones(
    rng: np.random.Generator,
) -> None:
    p = _probs(rng, 30)
    out = Rules(_rules(calibration={"temperature": 1.7})).decide(p, case_ids=range(30))
    ref = TemperatureScaler()
    ref.temperature_ = 1.7
    np.testing.assert_allclose(out.calibrated, ref.predict_proba(np.log(p)), rtol=1e-12)


def test_sets_and_referral_follow_the_recorded_rules(rng: np.random.Generator) -> None:
    p, p_cal = _probs(rng, 200), _probs(rng, 300)
    y_cal = (rng.random(300) < p_cal[:, 1]).astype(int)
    cp = ConformalClassifier("lac", confidence_level=0.8).calibrate(p_cal, y_cal)
    conformal = {
        "method": "lac", "confidence_level": 0.8, "randomized": False, "lambda_reg": 0.0,
        "k_reg": 0.0, "mondrian": None, "quantile": float(cp.quantile_), "thresholds": {},
        "set_seed": None, "temperature": None,
    }  # fmt: skip
    mc = np.stack([_probs(rng, 200) for _ in range(5)])
    u = decompose(mc).total
    cutoff = float(np.quantile(u, 0.7))
    rules = _rules(
        conformal=conformal,
        referral={
            "set_not_singleton": True,
            "uncertainty": {"measure": "entropy", "cutoff": cutoff},
        },
        triage={"threshold_on_set_scale": 0.2},
    )
    ids = [f"c{i}" for i in range(200)]
    out = Rules(rules).decide(p, case_ids=ids, mc_probabilities=mc)
    np.testing.assert_array_equal(out.sets, cp.predict_sets(p))
    np.testing.assert_array_equal(out.refer_set, out.sets.sum(axis=1) != 1)
    np.testing.assert_array_equal(out.refer_uncertainty, u >= cutoff)
    np.testing.assert_array_equal(out.refer, out.refer_set | out.refer_uncertainty)
    np.testing.assert_array_equal(out.triage, p[:, 1] >= 0.2)
    # No cutoff (the target needed no referral): the uncertainty is reported, nobody referred.
    rules["referral"]["uncertainty"]["cutoff"] = None
    out = Rules(rules).decide(p, case_ids=ids, mc_probabilities=mc)
    assert out.uncertainty is not None and not out.refer_uncertainty.any()


def test_errors(rng: np.random.Generator) -> None:
    bad = _rules()
    del bad["referral"]
    with pytest.raises(InputError, match="incomplete or malformed"):
        Rules(bad)
    with pytest.raises(InputError, match="gave 3 classes but the run validated 2"):
        Rules(_rules()).decide(_probs(rng, 4, 3), case_ids=list("abcd"))
    referral = {"set_not_singleton": False, "uncertainty": {"measure": "entropy", "cutoff": 0.1}}
    with pytest.raises(InputError, match="MC samples are missing"):
        Rules(_rules(referral=referral)).decide(_probs(rng, 4), case_ids=list("abcd"))
    conformal = {
        "method": "lac", "confidence_level": 0.8, "randomized": False, "lambda_reg": 0.0,
        "k_reg": 0.0, "mondrian": "manufacturer", "quantile": 0.5, "thresholds": {"GE": 0.4},
        "set_seed": None, "temperature": None,
    }  # fmt: skip
    rules = Rules(_rules(conformal=copy.deepcopy(conformal)))
    assert rules.mondrian_column == "manufacturer"
    with pytest.raises(InputError, match="pass each case's manufacturer value"):
        rules.decide(_probs(rng, 4), case_ids=list("abcd"))
    out = rules.decide(_probs(rng, 2), case_ids=list("ab"), groups=["GE", "GE"])
    assert out.sets is not None
