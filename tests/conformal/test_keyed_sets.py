"""Sets keyed by case id, and a classifier rebuilt from its recorded thresholds."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats as sps

from medval._errors import InputError
from medval.conformal import SCORES, ConformalClassifier, case_uniforms


def _probs(rng: np.random.Generator, n: int, k: int = 4) -> tuple[np.ndarray, np.ndarray]:
    z = rng.normal(size=(n, k)) * 2
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    y = np.array([rng.choice(k, p=row) for row in p])
    return p, y


def test_case_uniforms_are_uniform_and_keyed_by_seed_and_id() -> None:
    ids = np.array([f"case-{i}" for i in range(4000)])
    u = case_uniforms(7, ids)
    assert u.dtype == np.float64 and u.shape == (4000,)
    assert ((u >= 0) & (u < 1)).all()
    assert sps.kstest(u, "uniform").pvalue > 1e-3  # scipy's reference distribution
    order = np.random.default_rng(0).permutation(4000)
    np.testing.assert_array_equal(case_uniforms(7, ids[order]), u[order])
    np.testing.assert_array_equal(case_uniforms(7, ids[:10]), u[:10])
    assert not np.array_equal(case_uniforms(8, ids[:10]), u[:10])


def test_case_uniforms_errors() -> None:
    with pytest.raises(InputError, match="repeat"):
        case_uniforms(0, ["a", "b", "a"])
    with pytest.raises(InputError, match=r"shape \(3,\)"):
        case_uniforms(0, ["a", "b"], n=3)


@pytest.mark.parametrize("method", ["aps", "raps"])
def test_a_keyed_set_does_not_depend_on_the_batch(rng: np.random.Generator, method: str) -> None:
    p, y = _probs(rng, 600)
    ids = np.array([f"c{i}" for i in range(600)])
    clf = ConformalClassifier(method, random_state=3).calibrate(p[:300], y[:300])
    whole = clf.predict_sets(p[300:], case_ids=ids[300:])
    order = rng.permutation(300)
    shuffled = clf.predict_sets(p[300:][order], case_ids=ids[300:][order])
    np.testing.assert_array_equal(shuffled, whole[order])
    np.testing.assert_array_equal(clf.predict_sets(p[550:], case_ids=ids[550:]), whole[250:])
    # Unkeyed uniforms follow the position in the call instead.
    assert not np.array_equal(clf.predict_sets(p[550:]), whole[250:])
    with pytest.raises(InputError, match="not both"):
        clf.predict_sets(p[300:], case_ids=ids[300:], random_state=1)


def _recorded(clf: ConformalClassifier) -> dict[str, object]:
    """What the evaluation records, through JSON."""
    text = json.dumps(
        {
            "quantile": None if clf.quantile_ is None else float(clf.quantile_),
            "thresholds": {str(k): float(q) for k, q in clf.quantiles_.items()},
            "lambda_reg": clf.lambda_reg_,
            "k_reg": clf.k_reg_,
            "seed": clf.predict_seed_,
        }
    )
    out: dict[str, object] = json.loads(text)
    return out


@pytest.mark.parametrize("method", sorted(SCORES))
@pytest.mark.parametrize("grouping", ["marginal", "class", "column"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rebuilt_from_thresholds_gives_the_same_sets(
    rng: np.random.Generator, method: str, grouping: str, dtype: type
) -> None:
    p, y = _probs(rng, 900)
    p = p.astype(dtype)
    p /= p.sum(axis=1, keepdims=True)
    ids = np.array([f"c{i}" for i in range(900)])
    g = np.where(np.arange(900) % 3 == 0, "GE", "Siemens")
    clf = ConformalClassifier(
        method, groups="class" if grouping == "class" else None, random_state=5
    ).calibrate(p[:450], y[:450], g[:450] if grouping == "column" else None)
    test_groups = g[450:] if grouping == "column" else None
    expected = clf.predict_sets(p[450:], test_groups, case_ids=ids[450:])
    rec = _recorded(clf)
    thresholds = rec["thresholds"]
    assert isinstance(thresholds, dict)
    rebuilt = ConformalClassifier.from_thresholds(
        method,
        confidence_level=0.9,
        n_classes=4,
        quantile=rec["quantile"],  # type: ignore[arg-type]
        quantiles={int(k) if grouping == "class" else k: q for k, q in thresholds.items()},
        groups="class" if grouping == "class" else None,
        lambda_reg=rec["lambda_reg"],  # type: ignore[arg-type]
        k_reg=rec["k_reg"],  # type: ignore[arg-type]
        predict_seed=rec["seed"],  # type: ignore[arg-type]
    )
    got = rebuilt.predict_sets(p[450:], test_groups, case_ids=ids[450:])
    np.testing.assert_array_equal(got, expected)


def test_from_thresholds_errors() -> None:
    with pytest.raises(InputError, match="needs quantile or quantiles"):
        ConformalClassifier.from_thresholds("lac", confidence_level=0.9, n_classes=3, quantile=None)
    with pytest.raises(InputError, match=r"one quantile per class 0\.\.2"):
        ConformalClassifier.from_thresholds(
            "lac", confidence_level=0.9, n_classes=3, quantile=None, quantiles={0: 0.5},
            groups="class",
        )  # fmt: skip
