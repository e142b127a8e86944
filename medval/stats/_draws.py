"""Exact uniform draws from 32-bit random words: the source of every resample.

A resample of a design whose strata hold ``m_1, ..., m_k`` units reads
``m_1 + ... + m_k`` words (rounded up to an even number) from its
:class:`Stream`, stratum after stratum, resample after resample. Word
``x`` becomes the unit ``x // q`` with ``q = floor(2**32 / m)``: each of
the ``m`` units is hit by exactly ``q`` of the ``2**32`` words, so it is
drawn with probability exactly ``1 / m``; the ``2**32 - m q < m`` words
``x >= m q`` (a share below ``m / 2**32``) are rejected and redrawn from
the stream's second generator, rejected draw after rejected draw in
resample, stratum and word order. Every resample so depends only on its
stream and its place in it, never on how resamples are split into blocks
or threads, and every path (count vectors, the rank-based AUROC) reads
the same resamples from the same stream.

The division by a scalar is one vectorised pass (numpy divides by a
constant with a multiply and a shift), so a draw costs about half of
``Generator.integers``; the words come from ``numpy.random.SFC64``, the
fastest of numpy's bit generators.

References
----------
Lemire (2019), "Fast random integer generation in an interval", ACM
Trans. Model. Comput. Simul. 29(1):3 (exact bounded integers by
rejection); O'Neill (2018), "Efficiently generating a number in a range",
pcg-random.org (the division method); Doty-Humphrey, *PractRand* (SFC64).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from medval.stats._validate import IntArray

__all__ = ["WORD_RANGE", "Stream", "Words", "draw_units", "rejection_limit", "word_width"]

Words = NDArray[np.uint32]
# Number of distinct 32-bit words.
WORD_RANGE = 1 << 32


def word_width(strata: tuple[int, ...]) -> int:
    """Words one resample reads: one per unit, rounded up to an even number."""
    total = int(sum(strata))
    return total + (total & 1)


def rejection_limit(m: int) -> int:
    """Words at or above this are rejected when drawing from ``m`` units."""
    if not 1 <= m < WORD_RANGE:
        raise ValueError(f"a stratum must hold 1 to 2**32 - 1 units; got {m}")
    return m * (WORD_RANGE // m)


def draw_units(x: Words, m: int, out: NDArray[Any] | None = None) -> NDArray[Any]:
    """Units ``x // floor(2**32 / m)`` of words ``x``, same shape.

    Values ``>= m`` mark rejected words (see :func:`rejection_limit`).
    uint32, or written into ``out`` (any integer dtype).
    """
    if out is None:
        out = np.empty(x.shape, dtype=np.uint32)
    q = WORD_RANGE // m
    if q >= WORD_RANGE:  # a single unit: every word draws it
        out[...] = 0
        return out
    np.floor_divide(x, np.uint32(q), out=out, casting="unsafe")
    return out


class Stream:
    """The random source of a run of resamples.

    Parameters
    ----------
    seed : int
        Non-negative; the words and the redraws come from two independent
        SFC64 generators spawned from ``SeedSequence(seed)``.
    """

    def __init__(self, seed: int) -> None:
        words, redraws = np.random.SeedSequence(seed).spawn(2)
        self._bits = np.random.SFC64(words)
        self._redraws = np.random.Generator(np.random.SFC64(redraws))

    @classmethod
    def from_generator(cls, rng: np.random.Generator) -> Stream:
        """A stream seeded by one draw from ``rng``."""
        return cls(int(rng.integers(0, 2**63 - 1, dtype=np.int64)))

    def words(self, c: int, width: int) -> Words:
        """The next ``c`` resamples' words, shape (c, width); ``width`` even."""
        raw = self._bits.random_raw(c * width // 2)
        return np.asarray(raw, dtype=np.uint64).view(np.uint32).reshape(c, width)

    def row(self, width: int) -> Words:
        """The next resample's words, shape (width,): ``words(1, width)[0]``."""
        raw: NDArray[np.uint64] = self._bits.random_raw(width // 2)
        return raw.view(np.uint32)

    def redraw(self, highs: IntArray) -> IntArray:
        """One uniform unit in ``[0, highs[i])`` per rejected word, in order."""
        if highs.size == 0:
            return np.zeros(0, dtype=np.int64)
        return self._redraws.integers(0, highs, dtype=np.int64)
