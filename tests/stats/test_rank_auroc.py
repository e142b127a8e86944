"""The rank-based stratified AUROC bootstrap: the same resamples, exactly."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score

from medval.stats import bootstrap_ci, delong_ci
from medval.stats._core import CountReplicator, replicates, replicator
from medval.stats._draws import WORD_RANGE, Stream, Words
from medval.stats._rank_auroc import MIN_CASES, RankAuroc
from medval.stats._resample import Design, make_design
from medval.stats._weighted import AurocEvaluator


def _sorted_case(n: int, prevalence: float, ties: bool, seed: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < prevalence).astype(np.int64)
    s = rng.normal(size=n) + y
    if ties:
        s = np.round(s, 1)
    order = np.lexsort((s, y))
    return y[order], s[order]


def _setup(y: np.ndarray, s: np.ndarray) -> tuple[Design, AurocEvaluator]:
    return make_design(y, None, stratify=True), AurocEvaluator(y, s)


@pytest.mark.parametrize("prevalence", [0.3, 0.7])  # count negatives, count positives
@pytest.mark.parametrize("ties", [False, True])
def test_equals_sklearn_with_the_resample_counts(prevalence: float, ties: bool) -> None:
    # The same stream drawn as count vectors: sklearn's AUROC weighted by the
    # counts is the brute-force value of each resample.
    y, s = _sorted_case(401, prevalence, ties, seed=1)
    design, ev = _setup(y, s)
    fast = RankAuroc(ev).values(Stream(7), 25)
    counts = design.counts(Stream(7), 25)
    assert np.all(counts[:, y == 0].sum(1) == (y == 0).sum())
    for b in range(25):
        ref = roc_auc_score(y, s, sample_weight=counts[b])
        assert fast[b] == pytest.approx(ref, abs=1e-12)
    np.testing.assert_array_equal(fast, ev.values(counts))


class _FixedWords(Stream):
    """A stream whose words are given, read in order (redraws still random)."""

    def __init__(self, seed: int, words: Words) -> None:
        super().__init__(seed)
        self._given, self._read = words, 0

    def words(self, c: int, width: int) -> Words:
        assert width == self._given.shape[1]
        out = self._given[self._read : self._read + c]
        self._read += c
        return out

    def row(self, width: int) -> Words:
        return self.words(1, width)[0]


@pytest.mark.parametrize("prevalence", [0.3, 0.7])
@pytest.mark.parametrize("n", [120, 9000])  # counted in one block, or resample by resample
def test_rejected_words_are_redrawn_alike_in_both_paths(prevalence: float, n: int) -> None:
    y, s = _sorted_case(n, prevalence, True, seed=2)
    design, ev = _setup(y, s)
    words = Stream(5).words(6, design.width)
    n0 = int((y == 0).sum())
    words[0, [1, 2]] = WORD_RANGE - 1  # negatives' words: always rejected
    words[0, n0 + 3] = WORD_RANGE - 1  # a positive's
    words[3, [0, n0, n0 + 1]] = WORD_RANGE - 1
    counts = design.counts(_FixedWords(9, words.copy()), 6)
    fast = RankAuroc(ev).values(_FixedWords(9, words.copy()), 6)
    assert np.all(counts[:, y == 1].sum(1) == (y == 1).sum())
    assert np.all(counts[:, y == 0].sum(1) == n0)
    for b in range(6):
        assert fast[b] == pytest.approx(roc_auc_score(y, s, sample_weight=counts[b]), abs=1e-12)


def test_bootstrap_ci_takes_the_rank_path_only_where_it_applies() -> None:
    y, s = _sorted_case(MIN_CASES, 0.4, False, seed=3)
    design, ev = _setup(y, s)
    assert isinstance(replicator(ev, design), RankAuroc)
    few = _setup(y[: MIN_CASES - 1], s[: MIN_CASES - 1])  # the count path is the faster
    assert isinstance(replicator(few[1], few[0]), CountReplicator)
    clustered = make_design(y, (np.arange(y.size) // 3, -(-y.size // 3)), stratify=True)
    assert isinstance(replicator(ev, clustered), CountReplicator)
    assert isinstance(replicator(ev, make_design(y, None, stratify=False)), CountReplicator)
    shuffled = AurocEvaluator(y[::-1].copy(), s[::-1].copy())
    assert not RankAuroc.applies(shuffled, design)
    with pytest.raises(ValueError, match="class-blocked, score-sorted"):
        RankAuroc(shuffled)


def test_replicates_equal_the_count_path_for_any_threads_and_blocks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    y, s = _sorted_case(30_001, 0.35, True, seed=4)
    design, ev = _setup(y, s)
    fast = replicates(RankAuroc(ev), np.random.default_rng(0), 300, n_jobs=1)
    count = replicates(CountReplicator(ev, design), np.random.default_rng(0), 300, n_jobs=1)
    np.testing.assert_array_equal(fast, count)
    monkeypatch.setattr(RankAuroc, "min_thread_cases", 0)  # threads even at this size
    two = replicates(RankAuroc(ev), np.random.default_rng(0), 300, n_jobs=2)
    np.testing.assert_array_equal(fast, two)
    # smaller blocks (the memory budget) read the same resamples
    monkeypatch.setattr("medval.stats._resample.BLOCK_BYTES", 1 << 18)
    assert design.chunk_size(300) == 1
    np.testing.assert_array_equal(
        fast, replicates(CountReplicator(ev, design), np.random.default_rng(0), 300, n_jobs=1)
    )


def _previous_replicates(y: np.ndarray, s: np.ndarray, b: int, seed: int) -> np.ndarray:
    """The resampler before the streams: Generator.integers per class, counted."""
    rng = np.random.default_rng(seed)
    ev = AurocEvaluator(y, s)
    n0 = int((y == 0).sum())
    counts = np.zeros((b, y.size), dtype=np.int64)
    for r in range(b):
        counts[r, :n0] = np.bincount(rng.integers(0, n0, n0), minlength=n0)
        counts[r, n0:] = np.bincount(
            rng.integers(0, y.size - n0, y.size - n0), minlength=y.size - n0
        )
    return ev.values(counts)


def test_distribution_agrees_with_the_previous_resampler_and_delong() -> None:
    y, s = _sorted_case(500, 0.3, True, seed=5)
    ev = AurocEvaluator(y, s)
    new = replicates(RankAuroc(ev), np.random.default_rng(1), 4000)
    old = _previous_replicates(y, s, 4000, seed=2)
    assert stats.ks_2samp(new, old).pvalue > 1e-3
    # Monte Carlo error of a standard deviation from 4000 replicates is ~1.1%.
    assert np.std(new) == pytest.approx(np.std(old), rel=0.05)
    assert np.mean(new) == pytest.approx(np.mean(old), abs=0.1 * np.std(old))
    # the bootstrap SD is DeLong's standard error, to first order
    delong = delong_ci(y, s)
    assert delong.low is not None and delong.high is not None
    se = (delong.high - delong.low) / (2 * stats.norm.ppf(0.975))
    assert np.std(new) == pytest.approx(se, rel=0.08)


def test_bootstrap_ci_is_the_same_on_either_path(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(6)
    y = rng.integers(0, 2, 5000)
    s = np.round(rng.normal(size=5000) + y, 1)
    fast = bootstrap_ci("auroc", y, s, n_resamples=500, random_state=3)
    monkeypatch.setattr(RankAuroc, "applies", staticmethod(lambda ev, design: False))
    slow = bootstrap_ci("auroc", y, s, n_resamples=500, random_state=3)
    assert fast == slow
    assert fast.low is not None and fast.low < fast.value < fast.high  # type: ignore[operator]


def test_clustered_resamples_are_whole_patients_within_status() -> None:
    # The patient-clustered design keeps its count path: every image of a drawn
    # patient counts as often as the patient, diseased and healthy patients are
    # drawn within their stratum, and the AUROC is sklearn's with those weights.
    rng = np.random.default_rng(7)
    k = 60
    pid = np.repeat(np.arange(k), rng.integers(1, 6, k))
    status = (rng.random(k) < 0.4).astype(np.int64)
    y = status[pid]
    s = np.round(rng.normal(size=pid.size) + y, 1)
    order = np.lexsort((s, y))
    y, s, pid = y[order], s[order], pid[order]
    design = make_design(y, (pid, k), stratify=True)
    ev = AurocEvaluator(y, s)
    rep = replicator(ev, design)
    assert isinstance(rep, CountReplicator)
    counts = design.counts(Stream(2), 40)
    first = np.array([np.flatnonzero(pid == p)[0] for p in range(k)])
    per_patient = counts[:, first]
    np.testing.assert_array_equal(counts, per_patient[:, pid])
    assert np.all(per_patient[:, status == 1].sum(1) == status.sum())
    values = rep.values(Stream(2), 40)
    for b in range(40):
        ref = roc_auc_score(y, s, sample_weight=counts[b])
        assert values[b] == pytest.approx(ref, abs=1e-12)
    # patients' counts are multinomial(m, 1/m) within a stratum: mean 1, var 1 - 1/m
    many = design.counts(Stream(3), 2000)[:, first[status == 1]]
    m1 = int(status.sum())
    assert many.mean() == pytest.approx(1.0)
    assert many.var() == pytest.approx(1 - 1 / m1, rel=0.05)
