"""Exact uniform draws from 32-bit words, and the streams they come from."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from medval.stats._draws import WORD_RANGE, Stream, draw_units, rejection_limit, word_width


@pytest.mark.parametrize("m", [2, 3, 7, 30_000, 70_001, 2**31 - 1, 2**32 - 1])
def test_every_unit_has_exactly_q_words_and_the_rest_are_rejected(m: int) -> None:
    # Word x draws unit x // q: unit i owns the words [i q, (i + 1) q), exactly q
    # of them, and the words from m q on (fewer than m) are rejected.
    q = WORD_RANGE // m
    limit = rejection_limit(m)
    assert limit == m * q and 0 <= WORD_RANGE - limit < m
    i = np.array([0, 1, m // 2, m - 1], dtype=np.uint64)
    first = (i * q).astype(np.uint32)
    last = ((i + 1) * q - 1).astype(np.uint32)
    np.testing.assert_array_equal(draw_units(first, m), i)
    np.testing.assert_array_equal(draw_units(last, m), i)
    if limit < WORD_RANGE:
        rejected = np.array([limit, WORD_RANGE - 1], dtype=np.uint32)
        assert np.all(draw_units(rejected, m) >= m)


def test_a_single_unit_is_always_drawn() -> None:
    x = np.array([0, 12345, WORD_RANGE - 1], dtype=np.uint32)
    np.testing.assert_array_equal(draw_units(x, 1), 0)
    assert rejection_limit(1) == WORD_RANGE  # no word is rejected


def test_stratum_size_out_of_range_raises() -> None:
    with pytest.raises(ValueError, match="1 to 2\\*\\*32 - 1 units; got 0"):
        rejection_limit(0)
    with pytest.raises(ValueError, match="got 4294967296"):
        rejection_limit(WORD_RANGE)


def test_draws_are_uniform() -> None:
    # Chi-square goodness of fit of 70,000 draws over 7 units (seeded: fixed).
    words = Stream(3).words(10, 7000)
    units = draw_units(words, 7)
    assert units.max() < 7  # a rejection needs a word >= 7 * 613566756: p ~ 1e-9 here
    counts = np.bincount(units.ravel(), minlength=7)
    assert stats.chisquare(counts).pvalue > 1e-3


def test_words_do_not_depend_on_the_block_size() -> None:
    a = Stream(11).words(5, 8)
    s = Stream(11)
    b = np.concatenate([s.words(2, 8), s.row(8)[None, :], s.words(2, 8)])
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(Stream(12).words(5, 8), a)


def test_redraws_read_in_order_whatever_the_calls() -> None:
    highs = np.array([5, 7, 7, 100_000, 3, 70_000, 2], dtype=np.int64)
    one = Stream(4).redraw(highs)
    s = Stream(4)
    parts = np.concatenate([s.redraw(highs[:1]), s.redraw(highs[1:4]), s.redraw(highs[4:])])
    np.testing.assert_array_equal(one, parts)
    assert np.all((one >= 0) & (one < highs))
    assert Stream(4).redraw(np.zeros(0, dtype=np.int64)).size == 0


def test_stream_from_generator_takes_one_draw() -> None:
    g = np.random.default_rng(8)
    a = Stream.from_generator(g).words(1, 4)
    h = np.random.default_rng(8)
    b = Stream(int(h.integers(0, 2**63 - 1, dtype=np.int64))).words(1, 4)
    np.testing.assert_array_equal(a, b)
    assert word_width((3, 4)) == 8 and word_width((3, 3)) == 6
