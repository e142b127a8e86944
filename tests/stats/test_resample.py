"""The shared resampler, ``resample_counts``: strata, patients, reproducibility."""

from __future__ import annotations

import numpy as np
import pytest

from medval._errors import InputError
from medval.stats import resample_counts
from medval.stats._draws import Stream
from medval.stats._resample import Design


def _counts(
    n: int,
    seed: int,
    *,
    clusters: np.ndarray | None = None,
    strata: np.ndarray | None = None,
) -> np.ndarray:
    """60 resamples from a fresh generator, all blocks stacked."""
    rng = np.random.default_rng(seed)
    blocks = resample_counts(n, n_resamples=60, random_state=rng, clusters=clusters, strata=strata)
    return np.concatenate(list(blocks))


def test_unstratified_draws_are_the_designs() -> None:
    # strata=None draws as the plain design does, from a stream seeded by one draw.
    w = _counts(50, 3)
    stream = Stream.from_generator(np.random.default_rng(3))
    ref = Design(50, np.arange(50), (50,), clustered=False).counts(stream, 60)
    np.testing.assert_array_equal(w, ref)
    assert np.all(w.sum(1) == 50)


def test_strata_keep_each_stratum_size_in_every_resample(rng: np.random.Generator) -> None:
    y = (rng.random(97) < 0.3).astype(np.int64)  # classes interleaved, not sorted
    w = _counts(y.size, 0, strata=y)
    assert w.shape == (60, 97)
    assert np.all(w[:, y == 1].sum(1) == (y == 1).sum())
    assert np.all(w[:, y == 0].sum(1) == (y == 0).sum())
    # three strata with string keys
    site = np.array(["b", "a", "c"] * 20 + ["a"] * 7)
    w = _counts(site.size, 1, strata=site)
    for v in ("a", "b", "c"):
        assert np.all(w[:, site == v].sum(1) == (site == v).sum())


def test_strata_counts_do_not_depend_on_how_strata_interleave(rng: np.random.Generator) -> None:
    # Cases keep their order within a stratum; how strata interleave does not matter.
    y = (rng.random(80) < 0.4).astype(np.int64)
    order = np.argsort(y, kind="stable")
    a = _counts(80, 5, strata=y)
    b = _counts(80, 5, strata=y[order])
    np.testing.assert_array_equal(a[:, order], b)


def test_clustered_strata_keep_patient_counts_and_images_together(
    rng: np.random.Generator,
) -> None:
    k = 40
    images = rng.integers(1, 5, size=k)
    pid = np.repeat(np.arange(k), images)
    perm = rng.permutation(pid.size)  # a patient's images are not adjacent
    pid = pid[perm]
    sick = rng.random(k) < 0.35
    y = sick[pid].astype(np.int64)
    # a mixed patient (one positive image among negatives) is a positive patient
    mixed = int(np.flatnonzero(~sick & (images >= 2))[0])
    y[np.flatnonzero(pid == mixed)[0]] = 1
    positive = sick.copy()
    positive[mixed] = True
    w = _counts(pid.size, 2, clusters=pid, strata=y)
    first = np.array([np.flatnonzero(pid == p)[0] for p in range(k)])
    per_patient = w[:, first]
    for p in range(k):  # all images of a patient drawn together
        assert np.all(w[:, pid == p] == per_patient[:, [p]])
    assert np.all(per_patient[:, positive].sum(1) == positive.sum())
    assert np.all(per_patient[:, ~positive].sum(1) == (~positive).sum())


def test_one_image_per_patient_equals_case_resampling(rng: np.random.Generator) -> None:
    y = (rng.random(70) < 0.5).astype(np.int64)
    keys = np.array([f"pt-{i:03d}" for i in rng.permutation(70)])
    np.testing.assert_array_equal(_counts(70, 9, strata=y), _counts(70, 9, strata=y, clusters=keys))


def test_equal_seeds_equal_counts_and_blocks_add_up(rng: np.random.Generator) -> None:
    y = (rng.random(200_000) < 0.1).astype(np.int64)
    blocks = list(
        resample_counts(y.size, n_resamples=25, random_state=np.random.default_rng(4), strata=y)
    )
    assert len(blocks) > 1  # large n: several blocks
    assert sum(b.shape[0] for b in blocks) == 25
    again = list(
        resample_counts(y.size, n_resamples=25, random_state=np.random.default_rng(4), strata=y)
    )
    for a, b in zip(blocks, again, strict=True):
        np.testing.assert_array_equal(a, b)
        assert np.all(a[:, y == 1].sum(1) == y.sum())


def test_strata_errors() -> None:
    with pytest.raises(InputError, match=r"one stratum per case, shape \(5,\)"):
        _counts(5, 0, strata=np.zeros(4))
    with pytest.raises(InputError, match="strata contains NaN"):
        _counts(3, 0, strata=np.array([0.0, np.nan, 1.0]))
    with pytest.raises(InputError, match="strata contains None"):
        _counts(3, 0, strata=np.array(["a", None, "b"], dtype=object))
