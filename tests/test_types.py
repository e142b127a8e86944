from __future__ import annotations

import numpy as np
import pytest

from medval import Estimate, InputError, Predictions
from medval._types import check_cohort


def _probs(rng: np.random.Generator, n: int = 6, k: int = 3) -> np.ndarray:
    p = rng.random((n, k))
    return p / p.sum(axis=1, keepdims=True)


def test_predictions_valid(rng: np.random.Generator) -> None:
    p = Predictions(case_ids=list("abcdef"), probabilities=_probs(rng), labels=[0, 1, 2, 0, 1, 2])
    assert p.n_cases == 6 and p.n_classes == 3
    assert p.class_names == ("0", "1", "2")
    sub = p.subset(np.array([True, False, True, False, False, False]))
    assert sub.case_ids.tolist() == ["a", "c"] and sub.labels is not None


def test_rows_must_sum_to_one_with_logit_hint(rng: np.random.Generator) -> None:
    with pytest.raises(InputError, match=r"from_logits"):
        Predictions(case_ids=list("ab"), probabilities=np.array([[0.2, 0.2], [0.5, 0.5]]))
    with pytest.raises(InputError, match=r"must lie in \[0, 1\].*from_logits"):
        Predictions(case_ids=list("ab"), probabilities=np.array([[2.0, -1.0], [0.5, 0.5]]))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"labels": [0, 3]}, r"labels must lie in 0\.\.1.*row 1 has 3"),
        ({"labels": [0.5, 1]}, r"whole class indices"),
        ({"case_ids": ["a", "a"]}, r"unique; duplicated: \['a'\]"),
        ({"case_ids": ["a"]}, r"case_ids must have shape \(2,\)"),
        ({"class_names": ["x"]}, r"class_names has 1 names"),
        ({"mc_probabilities": np.full((3, 2, 3), 1 / 3)}, r"mc_probabilities must have shape"),
    ],
)
def test_predictions_errors(kwargs: dict[str, object], match: str) -> None:
    base: dict[str, object] = {"case_ids": ["a", "b"], "probabilities": [[0.3, 0.7], [0.9, 0.1]]}
    base.update(kwargs)
    with pytest.raises(InputError, match=match):
        Predictions(**base)  # type: ignore[arg-type]


def test_nan_probabilities_rejected() -> None:
    with pytest.raises(InputError, match="NaN"):
        Predictions(case_ids=["a", "b"], probabilities=[[np.nan, 1.0], [0.5, 0.5]])


def test_from_logits_matches_scipy_softmax(rng: np.random.Generator) -> None:
    from scipy.special import expit, softmax

    z = rng.normal(size=(5, 4)) * 30
    p = Predictions.from_logits(list("abcde"), z)
    np.testing.assert_allclose(p.probabilities, softmax(z, axis=1), rtol=1e-12)
    one = rng.normal(size=5)
    q = Predictions.from_logits(list("abcde"), one)
    np.testing.assert_allclose(q.probabilities[:, 1], expit(one), rtol=1e-12)


def test_from_dirichlet_mean_and_concentrations(rng: np.random.Generator) -> None:
    alpha = rng.gamma(2.0, size=(6, 3)) + 1.0
    labels = [0, 1, 2, 0, 1, 2]
    p = Predictions.from_dirichlet(list("abcdef"), alpha, labels=labels, class_names="xyz")
    np.testing.assert_allclose(p.probabilities, alpha / alpha.sum(1, keepdims=True), rtol=1e-15)
    np.testing.assert_array_equal(p.concentrations, alpha)
    assert p.class_names == ("x", "y", "z") and p.labels is not None
    sub = p.subset(np.array([1, 4]))
    np.testing.assert_array_equal(sub.concentrations, alpha[[1, 4]])
    assert p.with_labels([2, 2, 2, 2, 2, 2]).concentrations is p.concentrations
    binary = Predictions.from_dirichlet(["a", "b"], [[1.0, 1.0], [9.0, 1.0]])
    np.testing.assert_allclose(binary.probabilities, [[0.5, 0.5], [0.9, 0.1]])
    assert Predictions(["a"], [[0.5, 0.5]]).concentrations is None  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("alpha", "match"),
    [
        ([[1.0, 2.0], [1.0, 0.0]], r"positive Dirichlet.*evidence \+ 1.*<= 0 in row 1"),
        ([[1.0, 2.0], [np.nan, 1.0]], r"NaN, infinite.*row 1"),
        ([1.0, 2.0], r"shape \(n, K\) with K >= 2"),
        ([[3.0], [1.0]], r"K >= 2"),
    ],
)
def test_from_dirichlet_errors(alpha: object, match: str) -> None:
    with pytest.raises(InputError, match=match):
        Predictions.from_dirichlet(["a", "b"], alpha)  # type: ignore[arg-type]


def test_concentrations_must_match_probabilities() -> None:
    ids, half = np.array(["a", "b"]), np.full((2, 2), 0.5)
    with pytest.raises(InputError, match=r"Dirichlet whose mean.*from_dirichlet"):
        Predictions(ids, half, concentrations=np.array([[1.0, 3.0], [2.0, 2.0]]))
    with pytest.raises(InputError, match=r"concentrations \(2, 3\) must be"):
        Predictions(ids, half, concentrations=np.ones((2, 3)))
    with pytest.raises(InputError, match=r"concentrations must be positive"):
        Predictions(ids, half, concentrations=np.zeros((2, 2)))
    assert Predictions(ids, half, concentrations=np.full((2, 2), 7.0)).concentrations is not None


def test_estimate_rules() -> None:
    e = Estimate(0.8, 0.7, 0.9, method="wilson", n=100)
    assert e.estimable and "95% CI 0.700, 0.900" in str(e)
    assert Estimate.from_dict(e.to_dict()) == e
    assert not Estimate(0.8, reason="one class").estimable
    with pytest.raises(InputError, match="needs a reason"):
        Estimate(None)
    with pytest.raises(InputError, match="both bounds"):
        Estimate(0.5, 0.1, None)
    with pytest.raises(InputError, match="NaN"):
        Estimate(float("nan"), reason="x")
    with pytest.raises(InputError, match=r"confidence_level must be in \(0, 1\)"):
        Estimate(0.5, 0.4, 0.6, confidence_level=95)
    with pytest.raises(InputError, match="Unknown Estimate fields"):
        Estimate.from_dict({"value": 1.0, "bogus": 1})


def test_check_cohort_refuses_non_whitelisted_columns() -> None:
    import pandas as pd

    ok = pd.DataFrame({"case_id": ["a"], "sex": ["F"]}).set_index("case_id")
    assert check_cohort(ok) is ok
    bad = ok.assign(PatientName=["X"])
    with pytest.raises(InputError, match=r"\['PatientName'\] are not on the de-identified"):
        check_cohort(bad)
    with pytest.raises(InputError, match="indexed by 'case_id'"):
        check_cohort(ok.reset_index())
    dup = pd.DataFrame({"case_id": ["a", "a"], "sex": ["F", "M"]}).set_index("case_id")
    with pytest.raises(InputError, match="unique"):
        check_cohort(dup)
