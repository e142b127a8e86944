"""The vectorised bootstrap against scipy.stats.bootstrap and explicit loops."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from scipy import stats
from sklearn import metrics as skm

from medval._errors import InputError
from medval.stats import bootstrap_ci
from medval.stats._bootstrap import prepare
from medval.stats._core import _THREAD_MEMORY_BYTES, _WORDS_PER_COUNT, _acceleration, max_workers
from medval.stats._draws import Stream
from medval.stats._resample import Design, make_design
from medval.stats._weighted import (
    COUNT_FUNCS,
    ApEvaluator,
    AurocEvaluator,
    ConfusionEvaluator,
    MacroAurocEvaluator,
    MeanLossEvaluator,
    jackknife_by_weights,
)


@pytest.fixture
def binary() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(11)
    y = rng.integers(0, 2, 300)
    s = 1.0 / (1.0 + np.exp(-np.round(rng.normal(size=300) + y, 1)))
    return y, s


def _auc_stat(pos: np.ndarray, neg: np.ndarray, axis: int = -1) -> np.ndarray:
    u = stats.mannwhitneyu(pos, neg, axis=axis).statistic
    return u / (pos.shape[axis] * neg.shape[axis])


@pytest.mark.parametrize("method", ["percentile", "bca"])
def test_auroc_ci_agrees_with_scipy(binary: tuple[np.ndarray, np.ndarray], method: str) -> None:
    y, s = binary
    ours = bootstrap_ci("auroc", y, s, method=method, n_resamples=8000, random_state=1)
    ref = stats.bootstrap(
        (s[y == 1], s[y == 0]), _auc_stat, n_resamples=8000, method=method, rng=2
    ).confidence_interval
    # Monte Carlo error of a 2.5% quantile with 8000 resamples is ~0.001 here.
    assert ours.low == pytest.approx(ref.low, abs=0.005)
    assert ours.high == pytest.approx(ref.high, abs=0.005)


@pytest.mark.parametrize("method", ["percentile", "bca", "basic"])
def test_brier_ci_agrees_with_scipy_one_sample(
    binary: tuple[np.ndarray, np.ndarray], method: str
) -> None:
    y, s = binary
    ours = bootstrap_ci(
        "brier", y, s, method=method, stratify=False, n_resamples=8000, random_state=3
    )
    ref = stats.bootstrap(
        ((s - y) ** 2,), np.mean, n_resamples=8000, method=method, rng=4
    ).confidence_interval
    assert ours.low == pytest.approx(ref.low, abs=0.003)
    assert ours.high == pytest.approx(ref.high, abs=0.003)


def test_bca_acceleration_equals_scipy_formula(binary: tuple[np.ndarray, np.ndarray]) -> None:
    # Closed-form jackknife (placements) vs an explicit leave-one-out loop of
    # sklearn calls, combined with scipy's multi-sample formula.
    y, s = binary
    y, s = y[:80], s[:80]
    order = np.lexsort((s, y))
    design = make_design(y[order], None, stratify=True)
    ev = AurocEvaluator(y[order], s[order])
    a_ours = _acceleration(ev, design, np.random.default_rng(0))
    nums = dens = 0.0
    for cls in (0, 1):
        idx = np.flatnonzero(y == cls)
        loo = np.array([skm.roc_auc_score(np.delete(y, i), np.delete(s, i)) for i in idx])
        u = (idx.size - 1) * (loo.mean() - loo)
        nums += np.sum(u**3) / idx.size**3
        dens += np.sum(u**2) / idx.size**2
    assert a_ours == pytest.approx(nums / (6 * dens**1.5), rel=1e-9)


def test_clustered_jackknife_closed_form_equals_loop() -> None:
    rng = np.random.default_rng(5)
    clusters = np.repeat(np.arange(30), rng.integers(1, 5, 30))
    n = clusters.size
    y = rng.integers(0, 2, n)
    s = np.round(rng.normal(size=n) + y, 1)
    ev = AurocEvaluator(y, s)
    jv = ev.jackknife(clusters, 30)
    for k in range(30):
        keep = clusters != k
        assert jv[k] == pytest.approx(skm.roc_auc_score(y[keep], s[keep]), abs=1e-12)
    generic = jackknife_by_weights(ev, clusters, 30)
    np.testing.assert_allclose(generic, jv, atol=1e-12)


def test_weighted_evaluators_equal_sklearn_on_repeated_cases(
    binary: tuple[np.ndarray, np.ndarray],
) -> None:
    y, s = binary
    rng = np.random.default_rng(9)
    W = rng.multinomial(y.size, np.full(y.size, 1 / y.size), size=5)
    pred = (s >= 0.6).astype(np.int64)
    evs = {
        "auroc": (AurocEvaluator(y, s), skm.roc_auc_score, s),
        "auprc": (ApEvaluator(y, s), skm.average_precision_score, s),
        "brier": (MeanLossEvaluator((s - y) ** 2), skm.brier_score_loss, s),
        "f1": (ConfusionEvaluator(y, pred, COUNT_FUNCS["f1"]), skm.f1_score, pred),
        "bacc": (
            ConfusionEvaluator(y, pred, COUNT_FUNCS["balanced_accuracy"]),
            skm.balanced_accuracy_score,
            pred,
        ),
    }
    for name, (ev, ref, x) in evs.items():
        got = ev.values(W)
        for b in range(W.shape[0]):
            idx = np.repeat(np.arange(y.size), W[b])
            assert got[b] == pytest.approx(ref(y[idx], x[idx]), abs=1e-12), name


def test_macro_auroc_evaluator_equals_sklearn() -> None:
    rng = np.random.default_rng(2)
    y = rng.integers(0, 3, 150)
    p = rng.dirichlet(np.ones(3), 150) + 0.5 * np.eye(3)[y]
    p /= p.sum(1, keepdims=True)
    ev = MacroAurocEvaluator(y, p)
    W = rng.multinomial(150, np.full(150, 1 / 150), size=3)
    for b, v in enumerate(ev.values(W)):
        idx = np.repeat(np.arange(150), W[b])
        assert v == pytest.approx(skm.roc_auc_score(y[idx], p[idx], multi_class="ovr"))
    est = bootstrap_ci("macro_auroc", y, p, n_resamples=500, random_state=0)
    assert est.low is not None and est.low < est.value < est.high  # type: ignore[operator]


def test_stratified_design_keeps_class_counts() -> None:
    y = np.array([0] * 30 + [1] * 12)
    d = make_design(y, None, stratify=True)
    w = d.counts(Stream(0), 50)
    assert np.all(w[:, :30].sum(1) == 30)
    assert np.all(w[:, 30:].sum(1) == 12)


def test_large_strata_are_counted_rowwise_and_exactly() -> None:
    d = Design(10_000, np.arange(10_000), (6_000, 4_000), clustered=False)
    w = d.counts(Stream(0), 3)
    assert np.all(w[:, :6000].sum(1) == 6000)
    assert np.all(w[:, 6000:].sum(1) == 4000)
    # multinomial(n, 1/n) cell counts have mean 1 and variance ~1
    assert w.mean() == pytest.approx(1.0)
    assert w.var() == pytest.approx(1.0, abs=0.05)


def test_clustered_design_resamples_patients() -> None:
    clusters = np.repeat(np.arange(20), 3)
    y = np.repeat(np.arange(20) % 2, 3)
    d = make_design(y, (clusters, 20), stratify=True)
    w = d.counts(Stream(1), 40)
    per_patient = w.reshape(40, 20, 3)
    assert np.all(per_patient == per_patient[:, :, :1])  # all images of a patient together
    diseased = per_patient[:, 1::2, 0].sum(1)
    assert np.all(diseased == 10)  # ten diseased patients in every resample


def test_chunking_bounds_memory() -> None:
    d = Design(1_000_000, np.arange(1_000_000), (500_000, 500_000), clustered=False)
    c = d.chunk_size(2000)
    assert c * 1_000_000 * 8 <= 1 << 27


def test_estimate_records_provenance(binary: tuple[np.ndarray, np.ndarray]) -> None:
    y, s = binary
    est = bootstrap_ci("auroc", y, s, n_resamples=300, random_state=42)
    assert est.method == "bootstrap-bca"
    assert (est.seed, est.n_resamples, est.n) == (42, 300, 300)
    assert est.higher_is_better is True
    assert est == bootstrap_ci("auroc", y, s, n_resamples=300, random_state=42)
    gen = bootstrap_ci("auroc", y, s, n_resamples=300, random_state=np.random.default_rng(1))
    assert gen.seed is None
    fresh = bootstrap_ci("auroc", y, s, n_resamples=300)
    assert isinstance(fresh.seed, int)
    again = bootstrap_ci("auroc", y, s, n_resamples=300, random_state=fresh.seed)
    assert (again.low, again.high) == (fresh.low, fresh.high)
    clustered = bootstrap_ci(
        "auroc", y, s, n_resamples=300, clusters=np.arange(300) // 3, random_state=0
    )
    assert clustered.method == "bootstrap-bca-clustered"


def test_threshold_applies_to_label_metrics(binary: tuple[np.ndarray, np.ndarray]) -> None:
    y, s = binary
    a = bootstrap_ci("sensitivity", y, s, threshold=0.6, n_resamples=300, random_state=0)
    b = bootstrap_ci("sensitivity", y, (s >= 0.6).astype(int), n_resamples=300, random_state=0)
    assert a == b
    assert a.value == pytest.approx(skm.recall_score(y, s >= 0.6))


def test_unstratified_resamples_can_lack_a_class() -> None:
    y = np.array([1] + [0] * 39)
    s = np.linspace(0, 1, 40)
    est = bootstrap_ci("auroc", y, s, stratify=False, n_resamples=500, random_state=0)
    assert est.low is None
    assert "undefined in" in (est.reason or "")


def test_one_class_is_not_estimable() -> None:
    est = bootstrap_ci("auroc", np.zeros(50, dtype=int), np.linspace(0, 1, 50), random_state=0)
    assert est.value is None
    assert "only one class" in (est.reason or "")


def test_too_few_cases_is_not_estimable() -> None:
    est = bootstrap_ci("auroc", np.array([0, 1, 0, 1, 0]), np.arange(5.0), random_state=0)
    assert est.value == pytest.approx(skm.roc_auc_score([0, 1, 0, 1, 0], np.arange(5.0)))
    assert est.low is None
    assert "only 5 cases" in (est.reason or "")


def test_degenerate_distribution_has_reason_not_nan() -> None:
    y = np.array([0] * 20 + [1] * 20)
    s = np.r_[np.zeros(20), np.ones(20)]
    est = bootstrap_ci("auroc", y, s, n_resamples=200, random_state=0)
    assert est.value == 1.0
    assert est.low is None and "same value" in (est.reason or "")
    sens = bootstrap_ci("sensitivity", y, s, threshold=0.5, n_resamples=200, random_state=0)
    assert sens.low is None and sens.reason


def test_input_errors(binary: tuple[np.ndarray, np.ndarray]) -> None:
    y, s = binary
    with pytest.raises(InputError, match="NaN or infinite"):
        bootstrap_ci("auroc", y, np.where(np.arange(300) == 3, np.nan, s))
    with pytest.raises(InputError, match=r"shape \(300,\) to match y_true"):
        bootstrap_ci("auroc", y, s[:-1])
    with pytest.raises(InputError, match=r"one patient key per case, shape \(300,\)"):
        bootstrap_ci("auroc", y, s, clusters=np.arange(10))
    with pytest.raises(InputError, match="Unknown bootstrap method 'bc'"):
        bootstrap_ci("auroc", y, s, method="bc")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="at least 100"):
        bootstrap_ci("auroc", y, s, n_resamples=10)
    with pytest.raises(InputError, match=r"not alpha=0\.05"):
        bootstrap_ci("auroc", y, s, confidence_level=5)
    with pytest.raises(InputError, match="threshold= applies to label metrics"):
        bootstrap_ci("auroc", y, s, threshold=0.5)
    with pytest.raises(InputError, match="0/1 predicted labels"):
        bootstrap_ci("ppv", y, s)
    with pytest.raises(InputError, match="random_state must be"):
        bootstrap_ci("auroc", y, s, random_state="seed")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="Unknown metric"):
        prepare("nope", y, s, threshold=None)


def test_auprc_uses_grouped_jackknife_for_many_cases() -> None:
    rng = np.random.default_rng(8)
    y = rng.integers(0, 2, 3000)
    s = rng.normal(size=3000) + y
    est = bootstrap_ci("auprc", y, s, n_resamples=400, random_state=0)
    assert est.low is not None
    assert est.low < skm.average_precision_score(y, s) < est.high  # type: ignore[operator]


def test_out_of_range_probabilities_raise_not_reason() -> None:
    y = np.array([0, 1] * 10)
    with pytest.raises(InputError, match=r"probabilities in \[0, 1\]"):
        bootstrap_ci("brier", y, np.linspace(-1, 2, 20), random_state=0)


def test_undefined_ppv_is_a_reason() -> None:
    y = np.array([0, 1] * 10)
    est = bootstrap_ci("ppv", y, np.zeros(20), threshold=0.5, random_state=0)
    assert est.value is None and "no case is predicted positive" in (est.reason or "")


def test_results_do_not_depend_on_threads() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 20_000)
    s = rng.normal(size=20_000) + y
    one = bootstrap_ci("auroc", y, s, n_resamples=500, random_state=3, n_jobs=1)
    two = bootstrap_ci("auroc", y, s, n_resamples=500, random_state=3, n_jobs=2)
    assert one == two
    with pytest.raises(InputError, match="n_jobs must be a positive int"):
        bootstrap_ci("auroc", y, s, n_jobs=0)


def test_clustered_interval_ignores_key_names() -> None:
    # Pseudonymised patient keys change with the salt; the interval must not.
    from medval.stats import bootstrap_ci

    gen = np.random.default_rng(5)
    pat = np.repeat(np.arange(60), 3)
    y = (gen.random(60) < 0.4).astype(int)[pat]
    s = gen.normal(size=pat.size) + y
    a = bootstrap_ci(
        "auroc", y, s, clusters=[f"k{p}" for p in pat], n_resamples=300, random_state=1
    )
    b = bootstrap_ci(
        "auroc", y, s, clusters=[f"z{59 - p}" for p in pat], n_resamples=300, random_state=1
    )
    assert (a.low, a.high) == (b.low, b.high)


@pytest.mark.parametrize("prevalence", [0.15, 0.85])
def test_auroc_evaluator_both_accumulation_paths(prevalence: float) -> None:
    # Fewer positives than negatives accumulates over positives, else over
    # negatives; both must equal sklearn on the repeated cases, ties included.
    rng = np.random.default_rng(23)
    y = (rng.random(400) < prevalence).astype(np.int64)
    s = np.round(rng.normal(size=400) + y, 1)
    order = np.lexsort((s, y))
    ev = AurocEvaluator(y[order], s[order])
    W = rng.multinomial(400, np.full(400, 1 / 400), size=6)
    for b, v in enumerate(ev.values(W)):
        idx = np.repeat(np.arange(400), W[b])
        assert v == pytest.approx(skm.roc_auc_score(y[order][idx], s[order][idx]), abs=1e-12)
    jv = ev.jackknife(np.arange(400), 400)
    for i in (0, 57, 399):
        keep = np.arange(400) != i
        assert jv[i] == pytest.approx(skm.roc_auc_score(y[order][keep], s[order][keep]))


def test_generic_jackknife_memory_is_bounded() -> None:
    # AUPRC has no closed-form jackknife: leave-one-group-out weight rows are
    # evaluated block by block, not all at once.
    rng = np.random.default_rng(4)
    n = 40_000
    y = (rng.random(n) < 0.3).astype(np.int64)
    s = rng.normal(size=n) + y
    tracemalloc.start()
    try:
        est = bootstrap_ci("auprc", y, s, n_resamples=100, random_state=0, n_jobs=1)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert est.low is not None
    assert peak < 128 * 2**20


def test_threads_are_capped_by_memory() -> None:
    d = Design(1_000_000, np.arange(1_000_000), (700_000, 300_000), clustered=False)
    step = d.chunk_size(2000)
    workers = max_workers(d, step)
    assert 1 <= workers < 64
    assert workers * _WORDS_PER_COUNT * 8 * step * d.n <= _THREAD_MEMORY_BYTES
    small = Design(1_000, np.arange(1_000), (700, 300), clustered=False)
    assert max_workers(small, small.chunk_size(2000)) >= 16


@pytest.mark.slow
@pytest.mark.parametrize(("metric", "method"), [("auroc", "bca"), ("auprc", "percentile")])
def test_peak_memory_under_1_gib_at_one_million_images(metric: str, method: str) -> None:
    # The bound, measured: n = 1,000,000 images of 20,000 patients,
    # with more threads than any CI runner has. AUROC with its closed-form
    # BCa jackknife; AUPRC, whose blocks need the most memory per count (its
    # generic jackknife is bounded in test_generic_jackknife_memory_is_bounded).
    rng = np.random.default_rng(6)
    n, patients = 1_000_000, 20_000
    status = (rng.random(patients) < 0.3).astype(np.int64)
    clusters = rng.integers(0, patients, n)
    y = status[clusters]
    s = y + rng.normal(size=n)
    tracemalloc.start()
    try:
        est = bootstrap_ci(
            metric,
            y,
            s,
            method=method,  # type: ignore[arg-type]
            clusters=clusters,
            n_resamples=100,
            random_state=0,
            n_jobs=64,
        )
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    print(f"\n{metric} clustered {method}, n = 1e6: peak traced memory {peak / 2**20:.0f} MiB")
    assert est.low is not None
    assert peak < 2**30
