"""Cell tables: bins and slots, builders (arrays, Parquet), shards that add."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from medval._errors import InputError
from medval.stats import ScoreBins, ScoreCells
from medval.stats._cell_build import CellBuilder

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")


def _cohort(rng: np.random.Generator, n: int = 3000, k: int = 400) -> dict[str, np.ndarray]:
    patients = np.sort(rng.integers(0, k, size=n))  # rows grouped by patient, as files are
    y = (rng.random(n) < 0.3).astype(np.int64)
    s = rng.random(n)
    s[::17] = np.round(s[::17], 2)  # some scores exactly on edges
    s[:3] = [0.0, 1.0, 0.5]
    return {
        "scores": s,
        "labels": y,
        "patients": np.char.add("pt-", patients.astype(str)),
        "groups": rng.choice(np.array(["x", "y", "z"]), size=n),
    }


def _direct(d: dict[str, np.ndarray], bins: ScoreBins) -> tuple[np.ndarray, np.ndarray]:
    """Counts and sums per (group, slot, label) by searching the edges."""
    e = bins.edges
    k = np.searchsorted(e, d["scores"], side="right") - 1
    slot = 2 * k + (d["scores"] != e[k])
    names = sorted(set(d["groups"].tolist()))
    g = np.searchsorted(names, d["groups"])
    counts = np.zeros((len(names), bins.n_slots, 2), dtype=np.int64)
    sums = np.zeros((len(names), bins.n_slots, 2))
    np.add.at(counts, (g, slot, d["labels"]), 1)
    np.add.at(sums, (g, slot, d["labels"]), d["scores"])
    return counts, sums


def _same(a: ScoreCells, b: ScoreCells) -> None:
    assert a.groups == b.groups
    np.testing.assert_array_equal(a.counts, b.counts)
    np.testing.assert_allclose(a.score_sums, b.score_sums, rtol=1e-12, atol=1e-12)
    assert (a.patients is None) == (b.patients is None)
    if a.patients is not None and b.patients is not None:
        np.testing.assert_array_equal(a.patients.keys, b.patients.keys)
        assert (a.patients.matrix != b.patients.matrix).nnz == 0


# -- bins ---------------------------------------------------------------------


def test_default_edges_hold_decimal_thresholds_and_fifteenths() -> None:
    bins = ScoreBins.equal_width()
    edges = set(bins.edges.tolist())
    assert all(float(f"0.{k:03d}") in edges for k in range(1000))
    assert all(j / 15 in edges for j in range(16))
    assert bins.n_slots == 2 * 96_000 + 1


def test_slots_mark_edges_and_open_bins(rng: np.random.Generator) -> None:
    bins = ScoreBins.equal_width(1000)
    s = np.concatenate([rng.random(5000), bins.edges, np.nextafter(bins.edges[1:], 0)])
    slot = bins.slots(s)
    k = slot // 2
    on_edge = slot % 2 == 0
    np.testing.assert_array_equal(s[on_edge], bins.edges[k[on_edge]])
    assert np.all(s[~on_edge] > bins.edges[k[~on_edge]])
    assert np.all(s[~on_edge] < bins.edges[k[~on_edge] + 1])
    # arithmetic slots (uniform) equal binary search on the same edges
    np.testing.assert_array_equal(slot, ScoreBins.from_edges(bins.edges).slots(s))


def test_score_range_bins_logits(rng: np.random.Generator) -> None:
    bins = ScoreBins.equal_width(640, (-8.0, 8.0))
    z = np.concatenate([rng.normal(0, 3, 2000).clip(-8, 8), [-8.0, 8.0, 0.0, 0.025]])
    np.testing.assert_array_equal(bins.slots(z), ScoreBins.from_edges(bins.edges).slots(z))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_bins": 0}, "between 1 and"),
        ({"n_bins": True}, "must be an int"),
        ({"n_bins": 5_000_000}, "between 1 and"),
        ({"n_bins": 10, "score_range": (1.0, 0.0)}, "low < high"),
        ({"n_bins": 10, "score_range": "ab"}, "two numbers"),
    ],
)
def test_bad_equal_width_bins_are_refused(kwargs: dict, match: str) -> None:
    with pytest.raises(InputError, match=match):
        ScoreBins.equal_width(**kwargs)


@pytest.mark.parametrize(
    ("edges", "match"),
    [([0.0, 0.5, 0.5, 1.0], "strictly increasing"), ([0.5], "at least 2"), (["a", "b"], "1-D")],
)
def test_bad_edges_are_refused(edges: list, match: str) -> None:
    with pytest.raises(InputError, match=match):
        ScoreBins.from_edges(edges)


@pytest.mark.parametrize(
    ("bad", "match"),
    [(1.5, r"range \[0, 1\]; row 1 is 1.5"), (-0.1, r"range \[0, 1\]"), (np.nan, "NaN")],
)
def test_scores_outside_the_bins_are_refused(bad: float, match: str) -> None:
    with pytest.raises(InputError, match=match):
        ScoreCells.from_arrays([0.2, bad, 0.3], [0, 1, 0], bins=10)


# -- from_arrays --------------------------------------------------------------


def test_counts_and_sums_equal_a_direct_count(rng: np.random.Generator) -> None:
    d = _cohort(rng)
    cells = ScoreCells.from_arrays(d["scores"], d["labels"], groups=d["groups"], bins=200)
    counts, sums = _direct(d, cells.bins)
    assert cells.groups == ("x", "y", "z")
    np.testing.assert_array_equal(cells.counts, counts)
    np.testing.assert_allclose(cells.score_sums, sums, rtol=1e-12)
    assert cells.n_cases == d["scores"].size and cells.n_patients is None
    again = ScoreCells.from_arrays(d["scores"], d["labels"], groups=d["groups"], bins=cells.bins)
    _same(again, cells)


def test_patient_matrix_counts_each_patients_cases(rng: np.random.Generator) -> None:
    d = _cohort(rng)
    cells = ScoreCells.from_arrays(
        d["scores"], d["labels"], patients=d["patients"], groups=d["groups"], bins=200
    )
    p = cells.patients
    assert p is not None
    first = sorted(np.unique(d["patients"], return_index=True)[1])
    np.testing.assert_array_equal(p.keys, d["patients"][first])  # first appearance
    dense = p.matrix.toarray()
    counts, _ = _direct(d, cells.bins)
    np.testing.assert_array_equal(dense.sum(0), counts.ravel())
    # one patient, directly
    key = d["patients"][100]
    mine = d["patients"] == key
    sub = {k: v[mine] for k, v in d.items()}
    direct, _ = _direct(sub, cells.bins)
    row = dense[list(p.keys).index(key)].reshape(3, cells.bins.n_slots, 2)
    g = np.isin(np.array(cells.groups), sub["groups"])
    np.testing.assert_array_equal(row[g], direct)
    assert row[~g].sum() == 0


def test_integer_patient_keys_stay_integers(rng: np.random.Generator) -> None:
    cells = ScoreCells.from_arrays(rng.random(50), rng.integers(0, 2, 50), patients=[7, 3] * 25)
    assert cells.patients is not None
    assert cells.patients.keys.dtype == np.int64
    assert cells.patients.keys.tolist() == [7, 3]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"patients": np.arange(4)}, r"one key per case, shape \(5,\)"),
        ({"patients": np.array([1.0, np.nan, 2.0, 3.0, 4.0])}, "patient contains NaN"),
        ({"patients": np.array(["a", None, "b", "c", "d"], dtype=object)}, "contains None"),
        ({"groups": ["a", "b"]}, r"one key per case"),
        ({"bins": "fine"}, "bins must be an int"),
    ],
)
def test_bad_keys_are_refused(kwargs: dict, match: str) -> None:
    with pytest.raises(InputError, match=match):
        ScoreCells.from_arrays([0.1, 0.2, 0.3, 0.4, 0.5], [0, 1, 0, 1, 0], **kwargs)


def test_labels_must_be_binary() -> None:
    with pytest.raises(InputError, match="binary labels 0/1"):
        ScoreCells.from_arrays([0.1, 0.2], [0, 2])


def test_too_many_groups_are_refused() -> None:
    n = 300
    with pytest.raises(InputError, match="at most 255 subgroups"):
        ScoreCells.from_arrays(np.full(n, 0.5), np.zeros(n), groups=np.arange(n), bins=4)


def test_batches_must_carry_the_keys_the_table_keeps() -> None:
    b = CellBuilder(ScoreBins.equal_width(4), patients=True, grouped=True)
    with pytest.raises(InputError, match="needs group keys"):
        b.add([0.5], [1])
    with pytest.raises(InputError, match="needs patient keys"):
        b.add([0.5], [1], groups=(["a"], np.zeros(1, np.int64)))


# -- shards add ---------------------------------------------------------------


def test_shards_add_to_the_one_shot_table(rng: np.random.Generator) -> None:
    d = _cohort(rng)
    whole = ScoreCells.from_arrays(
        d["scores"], d["labels"], patients=d["patients"], groups=d["groups"], bins=200
    )
    cuts = [0, 700, 701, 1900, d["scores"].size]  # cuts through patients' rows
    shards = []
    for lo, hi in itertools.pairwise(cuts):
        part = {k: v[lo:hi] for k, v in d.items()}
        if lo == 700:
            part["groups"] = np.array(["w"])  # a group only this shard has
        shards.append(
            ScoreCells.from_arrays(
                part["scores"], part["labels"], patients=part["patients"], groups=part["groups"],
                bins=200,
            )
        )  # fmt: skip
    d["groups"] = d["groups"].copy()
    d["groups"][700] = "w"
    whole = ScoreCells.from_arrays(
        d["scores"], d["labels"], patients=d["patients"], groups=d["groups"], bins=200
    )
    spanning = set(d["patients"][699:702])
    assert len(spanning) >= 1 and d["patients"][699] == d["patients"][700]
    merged = shards[0]
    for s in shards[1:]:
        merged = merged + s
    _same(merged, whole)
    assert merged.groups == ("w", "x", "y", "z")


def test_merging_integer_keys_keeps_integers(rng: np.random.Generator) -> None:
    a = ScoreCells.from_arrays(rng.random(20), np.arange(20) % 2, patients=np.arange(20) // 4)
    b = ScoreCells.from_arrays(rng.random(20), np.arange(20) % 2, patients=np.arange(20) // 3)
    m = a + b
    assert m.patients is not None and m.patients.keys.dtype == np.int64
    assert m.patients.keys.tolist() == list(range(7))
    np.testing.assert_array_equal(m.patients.matrix.sum(1).A1, [7, 7, 7, 7, 7, 3, 2])


def test_mismatched_tables_do_not_add(rng: np.random.Generator) -> None:
    s, y = rng.random(10), np.arange(10) % 2
    plain = ScoreCells.from_arrays(s, y, bins=10)
    with pytest.raises(InputError, match="different bins"):
        plain + ScoreCells.from_arrays(s, y, bins=20)
    with pytest.raises(InputError, match="subgroups and the other not"):
        plain + ScoreCells.from_arrays(s, y, groups=y, bins=10)
    with pytest.raises(InputError, match="keeps patients and the other not"):
        plain + ScoreCells.from_arrays(s, y, patients=y, bins=10)
    with pytest.raises(InputError, match="only ScoreCells add"):
        plain.merge(3)  # type: ignore[arg-type]


def test_inconsistent_parts_are_refused(rng: np.random.Generator) -> None:
    cells = ScoreCells.from_arrays(rng.random(10), np.arange(10) % 2, bins=10)
    with pytest.raises(InputError, match="must have shape"):
        ScoreCells(cells.bins, ("a", "b"), cells.counts, cells.score_sums)


# -- Parquet ------------------------------------------------------------------


def _write(d: dict[str, np.ndarray], folder: Path, cuts: list[int]) -> list[Path]:
    paths = []
    for j, (lo, hi) in enumerate(itertools.pairwise(cuts)):
        table = pa.table(
            {
                "p": d["patients"][lo:hi],
                "grp": d["groups"][lo:hi],
                "y": d["labels"][lo:hi].astype(bool),
                "s": d["scores"][lo:hi],
                "other": np.zeros(hi - lo),
            }
        )
        path = folder / f"part-{j}.parquet"
        pq.write_table(table, path)
        paths.append(path)
    return paths


def test_parquet_stream_equals_arrays(rng: np.random.Generator, tmp_path: Path) -> None:
    d = _cohort(rng)
    paths = _write(d, tmp_path, [0, 1000, 1001, 2500, d["scores"].size])
    ref = ScoreCells.from_arrays(
        d["scores"], d["labels"], patients=d["patients"], groups=d["groups"], bins=300
    )
    folder = ScoreCells.from_parquet(
        tmp_path, score="s", label="y", patient="p", group="grp", bins=300, batch_rows=333
    )
    listed = ScoreCells.from_parquet(
        [str(p) for p in paths], score="s", label="y", patient="p", group="grp", bins=300
    )
    _same(folder, ref)
    _same(listed, ref)
    plain = ScoreCells.from_parquet(paths[0], score="s", label="y", bins=300)
    _same(plain, ScoreCells.from_arrays(d["scores"][:1000], d["labels"][:1000], bins=300))


def test_parquet_integer_keys(rng: np.random.Generator, tmp_path: Path) -> None:
    d = _cohort(rng, n=500, k=50)
    keys = np.array([int(k[3:]) for k in d["patients"]])
    pq.write_table(
        pa.table({"p": keys, "y": d["labels"], "s": d["scores"]}), tmp_path / "a.parquet"
    )
    got = ScoreCells.from_parquet(tmp_path, score="s", label="y", patient="p", batch_rows=64)
    _same(got, ScoreCells.from_arrays(d["scores"], d["labels"], patients=keys))


def test_parquet_errors_name_the_fix(rng: np.random.Generator, tmp_path: Path) -> None:
    d = _cohort(rng, n=100, k=10)
    _write(d, tmp_path, [0, 100])
    with pytest.raises(InputError, match=r"has no column \['score'\]; its columns are"):
        ScoreCells.from_parquet(tmp_path, score="score", label="y")
    with pytest.raises(InputError, match="does not exist"):
        ScoreCells.from_parquet(tmp_path / "nope.parquet", score="s", label="y")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="holds no"):
        ScoreCells.from_parquet(empty, score="s", label="y")
    with pytest.raises(InputError, match="no Parquet files"):
        ScoreCells.from_parquet([], score="s", label="y")
    with pytest.raises(InputError, match="batch_rows must be a positive int"):
        ScoreCells.from_parquet(tmp_path, score="s", label="y", batch_rows=0)
    nulls = tmp_path / "nulls"
    nulls.mkdir()
    pq.write_table(pa.table({"s": [0.1, None], "y": [0, 1]}), nulls / "n.parquet")
    with pytest.raises(InputError, match=r"column 's' has 1 missing values \(file n.parquet"):
        ScoreCells.from_parquet(nulls, score="s", label="y")
    bad = tmp_path / "bad"
    bad.mkdir()
    pq.write_table(pa.table({"s": [0.1, 1.7], "y": [0, 1]}), bad / "b.parquet")
    with pytest.raises(InputError, match=r"\(file b.parquet, rows 0..1\); row 1"):
        ScoreCells.from_parquet(bad, score="s", label="y")
