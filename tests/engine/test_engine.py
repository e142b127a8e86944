"""The engine's unit: manifest, parts committed whole, resume, exactly-once."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from medval import DataError, InputError, SpecError
from medval import engine as eng


def _cohort(n: int) -> tuple[pd.DataFrame, dict[str, Path], Path]:
    root = Path("/data/root")
    ids = [f"c{i:03d}" for i in range(n)]
    cohort = pd.DataFrame(
        {"patient_key": [f"pt-{i // 2}" for i in range(n)], "split": "internal",
         "sex": "F", "label": [i % 2 for i in range(n)]},
        index=pd.Index(ids, name="case_id"),
    )  # fmt: skip
    paths = {c: root / "a" / f"{c}.dcm" for c in ids}
    return cohort, paths, root


class _Unit:
    """Doubles each case's number; a case named in ``bad`` is an error row."""

    def __init__(self, bad: frozenset[str] = frozenset(), calls: list[int] | None = None) -> None:
        self.bad, self.calls = bad, calls if calls is not None else []

    def decode(self, rows: Any) -> Any:
        out = rows[["case_id", "shard"]].reset_index(drop=True)
        out["error"] = [("cannot be decoded: X" if c in self.bad else None) for c in out["case_id"]]
        return out

    def model(self) -> Any:
        def step(rows: Any) -> Any:
            self.calls.extend(int(s) for s in rows["shard"])
            out = rows.copy()
            out["value"] = [[float(str(c)[1:]) * 2] for c in rows["case_id"]]
            return out

        return step


def test_the_manifest_holds_relative_paths_shards_and_no_label(tmp_path: Path) -> None:
    cohort, paths, root = _cohort(10)
    m = eng.write_manifest(cohort, paths, root, list(cohort.index), tmp_path, shard_size=4)
    frame = eng.read_manifest(m.path)
    assert list(frame["path"]) == [f"a/c{i:03d}.dcm" for i in range(10)]
    assert list(frame["shard"]) == [0, 0, 0, 0, 1, 1, 1, 1, 2, 2]
    assert "label" not in frame.columns and "patient_key" in frame.columns
    assert not any(str(root) in str(v) for v in frame.to_numpy().ravel())
    assert m.n_shards == 3 and m.shard_cases()[2] == ["c008", "c009"]
    again = eng.write_manifest(
        cohort, paths, root, list(cohort.index), tmp_path / "b", shard_size=4
    )
    assert again.digest == m.digest
    other = eng.write_manifest(
        cohort, paths, root, list(cohort.index), tmp_path / "c", shard_size=5
    )
    assert other.digest != m.digest


def test_manifest_errors(tmp_path: Path) -> None:
    cohort, paths, root = _cohort(3)
    with pytest.raises(InputError, match="shard_size must be a positive int"):
        eng.write_manifest(cohort, paths, root, list(cohort.index), tmp_path, shard_size=0)
    with pytest.raises(InputError, match="outside the data root"):
        eng.write_manifest(cohort, {**paths, "c001": Path("/elsewhere/x.dcm")}, root,
                           list(cohort.index), tmp_path)  # fmt: skip
    with pytest.raises(InputError, match="has no image file"):
        eng.write_manifest(cohort, {}, root, ["c000"], tmp_path)
    pd.DataFrame({"case_id": ["a"]}).to_parquet(tmp_path / "bad.parquet")
    with pytest.raises(InputError, match=r"not a medval manifest: columns \['path', 'shard'\]"):
        eng.read_manifest(tmp_path / "bad.parquet")


def test_a_torn_or_foreign_part_is_not_committed(tmp_path: Path) -> None:
    cases = {0: ["a", "b"], 1: ["c"], 2: ["d"]}
    eng.commit_part(tmp_path, 0, pd.DataFrame({"case_id": ["b", "a"]}))
    eng.commit_part(tmp_path, 1, pd.DataFrame({"case_id": ["c", "c"]}))  # a case twice
    eng.part_path(tmp_path, 2).write_bytes(b"PAR1 torn")
    (tmp_path / "shard-00009.parquet").write_bytes(b"")  # not a shard of this manifest
    assert eng.committed_shards(tmp_path, cases) == {0}
    assert not [p for p in os.listdir(tmp_path) if ".tmp-" in p]


def test_the_collector_commits_whole_shards_once_in_any_order(tmp_path: Path) -> None:
    done: list[tuple[int, int]] = []
    c = eng.ShardCollector(tmp_path, {0: ["a", "b"], 1: ["c"]}, lambda s, n: done.append((s, n)))
    c.add(pd.DataFrame({"case_id": ["c", "a"], "shard": [1, 0], "v": [3, 1]}))
    assert done == [(1, 1)]
    c.add(pd.DataFrame({"case_id": ["a", "b"], "shard": [0, 0], "v": [9, 2]}))  # "a" again
    c.add(pd.DataFrame({"case_id": ["c"], "shard": [1], "v": [7]}))  # a re-executed task
    c.finish()
    assert done == [(1, 1), (0, 2)]
    part = pd.read_parquet(eng.part_path(tmp_path, 0))
    assert list(part["v"]) == [1, 2]  # the first row of a case is kept
    with pytest.raises(DataError, match="returned case 'z', which is not in it"):
        eng.ShardCollector(tmp_path, {3: ["y"]}).add(pd.DataFrame({"case_id": ["z"], "shard": [3]}))
    lost = eng.ShardCollector(tmp_path, {4: ["p", "q"]})
    lost.add(pd.DataFrame({"case_id": ["p"], "shard": [4]}))
    with pytest.raises(DataError, match="returned 1 of the 2 cases of shard 4; rerun"):
        lost.finish()


def _manifest(tmp_path: Path, n: int = 10, size: int = 3) -> eng.Manifest:
    cohort, paths, root = _cohort(n)
    return eng.write_manifest(cohort, paths, root, list(cohort.index), tmp_path, shard_size=size)


def test_a_rerun_runs_only_the_shards_not_committed(tmp_path: Path) -> None:
    work = eng.prepare_work(tmp_path / "work")
    m = _manifest(work)
    parts = eng.parts_folder(work, "k1", log=print)
    calls: list[int] = []
    unit = _Unit(frozenset({"c004"}), calls)
    frame = eng.read_manifest(m.path)
    eng.run_local(unit, frame, parts, [1, 3], batch_size=2)  # as if killed after 1 and 3
    first = {s: eng.part_path(parts, s).stat().st_mtime_ns for s in (1, 3)}
    calls.clear()
    log: list[str] = []
    rows = eng.run_shards(unit, m, parts, engine="local", batch_size=2, log=log.append)
    assert sorted(set(calls)) == [0, 2]
    assert "resuming: 2 of 4 shards (4 cases) already committed; running the other 2" in log
    assert {s: eng.part_path(parts, s).stat().st_mtime_ns for s in (1, 3)} == first
    assert list(rows["case_id"]) == list(m.case_ids)  # manifest order
    assert rows.loc[rows["case_id"] == "c004", "error"].item() == "cannot be decoded: X"
    assert [v[0] for v in rows["value"]] == [2.0 * i for i in range(10)]
    calls.clear()
    eng.run_shards(unit, m, parts, engine="local", batch_size=2, log=log.append)
    assert calls == []  # everything committed: nothing runs


def test_exactly_once_is_checked_when_reading_back(tmp_path: Path) -> None:
    work = eng.prepare_work(tmp_path / "w")
    m = _manifest(work, n=4, size=2)
    parts = eng.parts_folder(work, "k", log=print)
    eng.run_local(_Unit(), eng.read_manifest(m.path), parts, [0, 1], batch_size=4)
    # A part rewritten with a case of another shard: the shard is not committed, rerun.
    eng.commit_part(parts, 1, pd.DataFrame({"case_id": ["c002", "c000"], "shard": [1, 1]}))
    calls: list[int] = []
    eng.run_shards(_Unit(calls=calls), m, parts, engine="local", batch_size=4, log=print)
    assert sorted(set(calls)) == [1]
    with pytest.raises(SpecError, match="--engine must be one of"):
        eng.run_shards(_Unit(), m, parts, engine="spark", batch_size=4, log=print)


def test_work_folder_rules(tmp_path: Path) -> None:
    (tmp_path / "theirs").mkdir()
    (tmp_path / "theirs" / "notes.txt").write_text("x")
    with pytest.raises(SpecError, match="holds files medval did not write"):
        eng.prepare_work(tmp_path / "theirs")
    (tmp_path / "file").write_text("x")
    with pytest.raises(SpecError, match="is a file"):
        eng.prepare_work(tmp_path / "file")
    work = eng.prepare_work(tmp_path / "w")
    parts = eng.parts_folder(work, "k1", log=print)
    eng.commit_part(parts, 0, pd.DataFrame({"case_id": ["a"]}))
    log: list[str] = []
    parts = eng.parts_folder(eng.prepare_work(work), "k2", log=log.append)
    assert not list(parts.iterdir()) and "starting afresh" in log[0]


def test_ray_options_are_checked() -> None:
    with pytest.raises(SpecError, match="--workers must be a positive int"):
        eng.RayOptions(workers=0)
    with pytest.raises(SpecError, match="--gpus-per-worker must be >= 0"):
        eng.RayOptions(gpus_per_worker=-1)


class _FakeRay:
    def __init__(self, gpus: float) -> None:
        self.gpus, self.inits = gpus, []

    def cluster_resources(self) -> dict[str, float]:
        return {"CPU": 2.0, **({"GPU": self.gpus} if self.gpus else {})}

    def is_initialized(self) -> bool:
        return False

    def init(self, **kwargs: Any) -> None:
        self.inits.append(kwargs)


def test_a_gpu_request_the_cluster_cannot_meet_fails_fast() -> None:
    from medval.engine._ray import _gpus

    none = _FakeRay(0)
    assert _gpus(none, eng.RayOptions(), "auto") == 0
    with pytest.raises(SpecError, match="the Ray cluster has no GPU"):
        _gpus(none, eng.RayOptions(), "cuda")
    with pytest.raises(SpecError, match=r"need 2 GPUs; the Ray cluster has 0"):
        _gpus(none, eng.RayOptions(workers=2, gpus_per_worker=1), "auto")
    assert _gpus(_FakeRay(4), eng.RayOptions(workers=2), "auto") == 1
    assert _gpus(_FakeRay(4), eng.RayOptions(), "cpu") == 0


def test_usage_statistics_are_turned_off_unless_the_user_chose(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sys
    import types

    fake = _FakeRay(0)
    module = types.SimpleNamespace(
        __file__="ray/__init__.py", is_initialized=fake.is_initialized, init=fake.init,
        data=types.SimpleNamespace(DataContext=types.SimpleNamespace(
            get_current=lambda: types.SimpleNamespace())),
    )  # fmt: skip
    monkeypatch.setitem(sys.modules, "ray", module)
    monkeypatch.delenv("RAY_USAGE_STATS_ENABLED", raising=False)
    log: list[str] = []
    eng.start_ray(eng.RayOptions(num_cpus=2), log=log.append)
    assert os.environ["RAY_USAGE_STATS_ENABLED"] == "0"
    assert log == ["Ray usage statistics are off (RAY_USAGE_STATS_ENABLED=0)"]
    assert fake.inits[0]["num_cpus"] == 2 and "address" not in fake.inits[0]
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "1")
    eng.start_ray(eng.RayOptions("auto"), log=log.append)
    assert log[-1].startswith("WARNING: Ray usage statistics are on")
    assert fake.inits[1]["address"] == "auto"


def test_a_missing_ray_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys
    import types

    from medval import MissingDependencyError

    monkeypatch.setitem(sys.modules, "ray", None)  # not installed
    with pytest.raises(MissingDependencyError, match=r"pip install 'medval\[ray\]'"):
        eng.start_ray(eng.RayOptions(), log=print)
    # a folder named "ray" in the working directory imports as an empty namespace package
    monkeypatch.setitem(sys.modules, "ray", types.ModuleType("ray"))
    with pytest.raises(MissingDependencyError, match="found a folder named 'ray'"):
        eng.start_ray(eng.RayOptions(), log=print)
