"""medval's conformity scores and sets equal MAPIE 1.6's on the same inputs.

MAPIE's ``SplitConformalClassifier`` runs on a prefit adapter whose
``predict_proba`` returns the stored probabilities (as for a torch model's
outputs). MAPIE draws its uniforms from ``RandomState(random_state)`` afresh at
calibration and at prediction; the same draws are fed to medval's score
functions, so the randomised variants are compared exactly too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.model_selection import StratifiedShuffleSplit

from medval._errors import InputError, MissingDependencyError
from medval.conformal import (
    ConformalClassifier,
    Regularization,
    conformal_quantile,
    get_score,
    mapie_prediction_sets,
    mapie_split_conformal,
    prefit_adapter,
)

DATA = Path(__file__).resolve().parents[1] / "data" / "netcal-records"
RECORDS = ["wideresnet-16-4-cifar-10", "densenet-bc-100-cifar-100"]
SEED = 7


@pytest.fixture(scope="module", params=RECORDS)
def record(request: pytest.FixtureRequest) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    path = DATA / f"{request.param}.npz"
    with np.load(path) as d:
        P, Y = d["predictions"], d["ground_truth"]
    perm = np.random.default_rng(0).permutation(Y.shape[0])
    cal, test = perm[:5000], perm[5000:]
    return P[cal], Y[cal], P[test], Y[test]


def _mapie(method: str, pc: np.ndarray, yc: np.ndarray, pt: np.ndarray, ill: Any) -> Any:
    m = mapie_split_conformal(pc, yc, method=method, confidence_level=0.9, random_state=SEED)
    _, sets = m.predict_set(pt, conformity_score_params={"include_last_label": ill})
    return m, sets[:, :, 0]


def _degenerate(pt: np.ndarray, q: float, pen: np.ndarray | None = None) -> np.ndarray:
    """Rows where the rank reaching q shares its cumulated sum with the next rank.

    There MAPIE's argmin picks the tied rank with the lowest label index, a
    near-zero label, and returns sets medval deliberately does not.
    """
    s = np.sort(pt, axis=1)[:, ::-1]
    c = np.cumsum(s, axis=1)
    if pen is not None:
        c = c + pen
    last = np.minimum(np.argmax(c - q >= -1e-8, axis=1), pt.shape[1] - 2)
    rows = np.arange(pt.shape[0])
    return c[rows, last] == c[rows, last + 1]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    ("method", "ill"),
    [("lac", True), ("top_k", True), ("aps", True), ("aps", False), ("aps", "randomized")],
)
def test_scores_and_sets_equal_mapie(
    record: tuple[np.ndarray, ...], dtype: type, method: str, ill: Any
) -> None:
    pc, yc, pt, _ = record
    pc, pt = pc.astype(dtype), pt.astype(dtype)
    m, mapie_sets = _mapie(method, pc, yc, pt, ill)
    score = get_score("topk" if method == "top_k" else method)
    u_cal = np.random.RandomState(SEED).uniform(size=yc.shape[0]) if method == "aps" else None
    scores = score.calibration_scores(pc, yc, u=u_cal)
    np.testing.assert_array_equal(scores, np.asarray(m.conformity_scores, scores.dtype).ravel())
    q = conformal_quantile(scores, confidence_level=0.9)
    assert q == m._mapie_classifier.quantiles_[0]
    u_test = np.random.RandomState(SEED).uniform(size=pt.shape[0]) if ill == "randomized" else None
    sets = score.row_sets(pt, np.full(pt.shape[0], q), u=u_test, include_last_label=bool(ill))
    differ = (sets != mapie_sets).any(axis=1)
    if method == "aps":
        # only degenerate rows may differ, and they are rare
        assert not np.any(differ & ~_degenerate(pt, q))
        assert differ.mean() < 1e-3
    else:
        np.testing.assert_array_equal(sets, mapie_sets)


@pytest.mark.parametrize("ill", [True, False, "randomized"])
def test_raps_equals_mapie_with_its_lambda_and_k(record: tuple[np.ndarray, ...], ill: Any) -> None:
    pc, yc, pt, _ = record
    m, mapie_sets = _mapie("raps", pc, yc, pt, ill)
    cs = m._mapie_classifier.conformity_score_function_
    reg = Regularization(float(np.ravel(cs.lambda_star)[0]), float(np.ravel(cs.k_star)[0]))
    # MAPIE's SplitConformalClassifier holds out 10% (stratified) to tune RAPS
    keep, _ = next(
        StratifiedShuffleSplit(n_splits=1, test_size=None, random_state=SEED).split(pc, yc)
    )
    u_cal = np.random.RandomState(SEED).uniform(size=keep.shape[0])
    score = get_score("raps")
    scores = score.calibration_scores(pc[keep], yc[keep], u=u_cal, regularization=reg)
    np.testing.assert_array_equal(
        np.sort(scores),
        np.sort(
            np.ravel(
                cs._regularize_conformity_score(
                    cs.k_star,
                    cs.lambda_star,
                    np.asarray(m.conformity_scores).reshape(-1, 1).copy(),
                    cs.cutoff,
                )
            )
        ),
    )
    q = conformal_quantile(scores, confidence_level=0.9)
    assert q == m._mapie_classifier.quantiles_[0]
    u_test = np.random.RandomState(SEED).uniform(size=pt.shape[0]) if ill == "randomized" else None
    sets = score.row_sets(
        pt, np.full(pt.shape[0], q), u=u_test, include_last_label=bool(ill), regularization=reg
    )
    differ = (sets != mapie_sets).any(axis=1)
    assert not np.any(differ & ~_degenerate(pt, q, reg.penalty(pt.shape[1])))
    assert differ.mean() < 1e-3


def test_classifier_lac_equals_split_conformal_classifier(record: tuple[np.ndarray, ...]) -> None:
    pc, yc, pt, _ = record
    _, mapie_sets = _mapie("lac", pc, yc, pt, True)
    ours = ConformalClassifier("lac", confidence_level=0.9).calibrate(pc, yc).predict_sets(pt)
    np.testing.assert_array_equal(ours, mapie_sets)


@pytest.mark.parametrize("method", ["lac", "aps"])
def test_boundary_cases_equal_mapie_when_predicting_the_calibration_cases(
    record: tuple[np.ndarray, ...], method: str
) -> None:
    # predicting the calibration cases puts a score exactly on the threshold:
    # MAPIE compares in float64 at prediction even for float32 input
    pc, yc, _, _ = record
    _, mapie_sets = _mapie(method, pc, yc, pc, True)
    score = get_score(method)
    u = np.random.RandomState(SEED).uniform(size=yc.shape[0]) if method == "aps" else None
    q = conformal_quantile(score.calibration_scores(pc, yc, u=u), confidence_level=0.9)
    sets = score.row_sets(pc, np.full(pc.shape[0], q))
    differ = (sets != mapie_sets).any(axis=1)
    assert not np.any(differ & ~_degenerate(pc, q))


def test_mapie_prediction_sets_helper(record: tuple[np.ndarray, ...]) -> None:
    pc, yc, pt, _ = record
    ours = ConformalClassifier("lac", confidence_level=0.9).calibrate(pc, yc).predict_sets(pt)
    np.testing.assert_array_equal(mapie_prediction_sets(pc, yc, pt, method="lac"), ours)
    adapter = prefit_adapter(pc.shape[1])
    np.testing.assert_array_equal(adapter.predict_proba(pt[:3]), pt[:3])
    np.testing.assert_array_equal(adapter.classes_, np.arange(pc.shape[1]))


def test_mapie_helper_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    p = np.full((20, 2), 0.5)
    y = np.arange(20) % 2
    with pytest.raises(InputError, match=r"Unknown method 'softmax' for MAPIE"):
        mapie_split_conformal(p, y, method="softmax")
    with pytest.raises(InputError, match="sum to 1"):
        mapie_split_conformal(p * 0.5, y)
    monkeypatch.setattr("medval.conformal._mapie.metadata.version", lambda _: "1.5.2")
    with pytest.raises(MissingDependencyError, match=r"mapie 1\.5\.2 .* needs mapie >= 1\.6"):
        mapie_split_conformal(p, y)
