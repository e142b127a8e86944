"""Point metrics against scikit-learn, and the registry."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from medval._errors import InputError
from medval.stats import (
    METRICS,
    accuracy,
    auprc,
    auroc,
    balanced_accuracy,
    brier_score,
    f1,
    get_metric,
    log_loss,
    macro_auroc,
    npv,
    ovr_auroc,
    ppv,
    sensitivity,
    specificity,
)


@pytest.fixture
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    y = rng.integers(0, 2, 500)
    # rounded scores: many ties, the hard case for rank metrics
    s = 1.0 / (1.0 + np.exp(-np.round(rng.normal(size=500) + 1.2 * y, 1)))
    return y, s


def test_score_metrics_equal_sklearn(data: tuple[np.ndarray, np.ndarray]) -> None:
    y, s = data
    assert auroc(y, s) == pytest.approx(skm.roc_auc_score(y, s), abs=1e-12)
    assert auprc(y, s) == pytest.approx(skm.average_precision_score(y, s), abs=1e-12)
    assert brier_score(y, s) == pytest.approx(skm.brier_score_loss(y, s), abs=1e-12)
    assert log_loss(y, s) == pytest.approx(skm.log_loss(y, s), abs=1e-12)


def test_log_loss_clips_like_sklearn() -> None:
    y = np.array([0, 1, 1, 0])
    s = np.array([0.0, 1.0, 0.0, 0.3])
    assert log_loss(y, s) == pytest.approx(skm.log_loss(y, s), rel=1e-12)


def test_label_metrics_equal_sklearn(data: tuple[np.ndarray, np.ndarray]) -> None:
    y, s = data
    p = (s >= 0.6).astype(int)
    tn, fp, fn, _tp = skm.confusion_matrix(y, p).ravel()
    assert sensitivity(y, p) == pytest.approx(skm.recall_score(y, p))
    assert specificity(y, p) == pytest.approx(tn / (tn + fp))
    assert ppv(y, p) == pytest.approx(skm.precision_score(y, p))
    assert npv(y, p) == pytest.approx(tn / (tn + fn))
    assert accuracy(y, p) == pytest.approx(skm.accuracy_score(y, p))
    assert balanced_accuracy(y, p) == pytest.approx(skm.balanced_accuracy_score(y, p))
    assert f1(y, p) == pytest.approx(skm.f1_score(y, p))


def test_macro_auroc_equals_sklearn() -> None:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 3, 300)
    logits = rng.normal(size=(300, 3)) + np.eye(3)[y]
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    ref = skm.roc_auc_score(y, p, multi_class="ovr", average="macro")
    assert macro_auroc(y, p) == pytest.approx(ref, abs=1e-12)
    assert ovr_auroc(y, p).shape == (3,)


def test_registry_directions_and_kinds() -> None:
    assert get_metric("AUC").name == "auroc"
    assert get_metric("recall") is METRICS["sensitivity"]
    assert not get_metric("brier").higher_is_better
    assert not get_metric("log_loss").higher_is_better
    assert get_metric("f1").kind == "label"
    assert get_metric("brier").kind == "probability"
    assert get_metric("macro_auroc").multiclass
    m = get_metric("auroc")
    assert m(np.array([0, 1]), np.array([0.1, 0.9])) == 1.0


def test_unknown_alias_lists_valid() -> None:
    with pytest.raises(InputError, match=r"Unknown metric 'kappa'; valid aliases: .*auroc"):
        get_metric("kappa")


def test_auroc_one_class_raises() -> None:
    with pytest.raises(InputError, match="only one class is present"):
        auroc(np.ones(20, dtype=int), np.linspace(0, 1, 20))


def test_auprc_without_positives_raises() -> None:
    with pytest.raises(InputError, match="without positive cases"):
        auprc(np.zeros(5, dtype=int), np.linspace(0, 1, 5))


def test_nan_scores_raise() -> None:
    with pytest.raises(InputError, match="NaN or infinite"):
        auroc(np.array([0, 1, 0]), np.array([0.1, np.nan, 0.2]))
    with pytest.raises(InputError, match="NaN or infinite"):
        auroc(np.array([0, 1, 0]), np.array([0.1, np.inf, 0.2]))


def test_mismatched_lengths_raise() -> None:
    with pytest.raises(InputError, match=r"shape \(3,\) to match y_true"):
        auroc(np.array([0, 1, 0]), np.array([0.1, 0.2]))


def test_two_column_scores_hint() -> None:
    with pytest.raises(InputError, match=r"y_score\[:, 1\]"):
        auroc(np.array([0, 1]), np.array([[0.9, 0.1], [0.2, 0.8]]))


def test_non_binary_labels_raise() -> None:
    with pytest.raises(InputError, match="binary labels 0/1; row 2 is 2"):
        auroc(np.array([0, 1, 2]), np.array([0.1, 0.2, 0.3]))


def test_ppv_without_predicted_positive_raises() -> None:
    with pytest.raises(InputError, match="no case is predicted positive"):
        ppv(np.array([0, 1]), np.array([0, 0]))


def test_predictions_must_be_binary() -> None:
    with pytest.raises(InputError, match="0/1 predicted labels"):
        sensitivity(np.array([0, 1]), np.array([0.2, 0.7]))


def test_probability_metrics_reject_out_of_range() -> None:
    with pytest.raises(InputError, match=r"probabilities in \[0, 1\]"):
        brier_score(np.array([0, 1]), np.array([-1.0, 2.0]))


def test_auroc_order_invariant(data: tuple[np.ndarray, np.ndarray]) -> None:
    y, s = data
    perm = np.random.default_rng(1).permutation(y.size)
    assert auroc(y[perm], s[perm]) == pytest.approx(auroc(y, s), abs=1e-14)


# canonical name -> (higher_is_better, undefined with only negatives, only positives)
REGISTRY = {
    "auroc": (True, True, True),
    "auprc": (True, True, False),
    "sensitivity": (True, True, False),
    "specificity": (True, False, True),
    "ppv": (True, False, False),
    "npv": (True, False, False),
    "accuracy": (True, False, False),
    "balanced_accuracy": (True, True, True),
    "f1": (True, False, False),
    "brier": (False, False, False),
    "log_loss": (False, False, False),
    "macro_auroc": (True, True, True),
}


def test_registry_holds_every_metric_of_the_issue() -> None:
    assert {m.name for m in METRICS.values()} == set(REGISTRY)
    for alias, m in METRICS.items():
        assert get_metric(alias.upper()) is m
        assert isinstance(m.higher_is_better, bool)


@pytest.mark.parametrize("name", sorted(REGISTRY))
@pytest.mark.parametrize("label", [0, 1])
def test_single_class_is_a_clear_error_or_defined(name: str, label: int) -> None:
    m = get_metric(name)
    higher, undefined_neg, undefined_pos = REGISTRY[name]
    assert m.higher_is_better is higher
    y = np.full(12, label)
    if m.multiclass:
        x = np.tile([0.2, 0.3, 0.5], (12, 1))
    elif m.kind == "label":
        x = np.r_[np.zeros(6, dtype=int), np.ones(6, dtype=int)]
    else:
        x = np.linspace(0.05, 0.95, 12)
    if (undefined_neg, undefined_pos)[label]:
        # the bootstrap relies on the word "undefined" to report "not estimable"
        with pytest.raises(InputError, match="undefined"):
            m(y, x)
    else:
        assert np.isfinite(m(y, x))
