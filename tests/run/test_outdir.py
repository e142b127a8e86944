"""A run's output folder is written whole or not at all, and holds none of its inputs."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from medval import DataError, ExitCode, SpecError
from medval.cli import main
from medval.run import (
    MANIFEST,
    OutputFolder,
    _outdir,
    read_manifest,
    verify_manifest,
    write_text_atomic,
)

from .conftest import DEMO_MODEL, spec_folder, write_spec

_BASELINE = "[baseline]\npredictions = {path!r}\nmargin = 0.02\n"


def _snapshot(folder: Path) -> dict[str, bytes]:
    """Every file below ``folder``, by relative path."""
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _leftovers(parent: Path, name: str) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith(f".{name}."))


@pytest.fixture
def folder(tmp_path: Path, small_cohort: Path) -> Path:
    return spec_folder(tmp_path, small_cohort)


@pytest.fixture
def previous(folder: Path, released_run: Path) -> Path:
    """A copy of a complete run as ``folder/out``."""
    shutil.copytree(released_run, folder / "out")
    return folder / "out"


def _validate(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["validate", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# -- inputs inside the output folder (the baseline bypass of issue 15) -------------------


def test_the_baseline_bypass_is_refused_before_any_work(
    folder: Path, previous: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The released run's predictions.csv, read from the folder the candidate's run
    # replaces: the second run would compare the candidate with itself and pass.
    before = _snapshot(previous)
    extra = _BASELINE.format(path="out/predictions.csv")
    spec = write_spec(folder, "candidate", DEMO_MODEL, extra=extra)
    code, _, err = _validate(capsys, str(spec), "--out", str(previous))
    assert code == ExitCode.USAGE_ERROR, err
    assert "baseline.predictions (predictions.csv) lies inside the output folder out" in err
    assert "loading the model" not in err  # refused before any heavy work
    assert _snapshot(previous) == before


@pytest.mark.parametrize(
    ("key", "spec_line", "option"),
    [
        ("data.labels", None, None),
        ("data.dicom_dir", None, None),
        ("model.file", None, None),
        ("baseline.model", "[baseline]\nmodel = 'out/model.pt'\nmargin = 0.02\n", None),
        ("--baseline", "[baseline]\nmargin = 0.02\n", "out/predictions.csv"),
        ("the spec", None, None),
    ],
)
def test_inputs_inside_the_output_folder_are_refused(
    folder: Path,
    previous: Path,
    capsys: pytest.CaptureFixture[str],
    key: str,
    spec_line: str | None,
    option: str | None,
) -> None:
    model, data, out = DEMO_MODEL, "", previous
    if key == "data.labels":
        shutil.copy(folder / "cohort" / "labels.csv", previous / "labels.csv")
        data = 'labels = "out/labels.csv"'
    elif key == "data.dicom_dir":  # a symlink resolving into the output folder
        out = folder / "cohort" / "dicom" / ".."  # = the small cohort, through the link
    elif key == "model.file":
        shutil.copy(folder / "model.pt", previous / "model.pt")
        model = model.replace('"model.pt"', '"out/model.pt"')
    elif key == "baseline.model":
        shutil.copy(folder / "model.pt", previous / "model.pt")
    spec = write_spec(folder, "s", model, extra=spec_line or "")
    if data:
        spec.write_text(spec.read_text().replace('labels = "cohort/labels.csv"', data))
    if key == "the spec":
        out = folder
    args = [str(spec), "--out", str(out), "--quiet"]
    if option:
        args += ["--baseline", str(folder / option)]
    code, _, err = _validate(capsys, *args)
    assert code == ExitCode.USAGE_ERROR, err
    assert f"{key} (" in err and "lies inside the output folder" in err


def test_out_is_checked_before_any_work(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = write_spec(folder, "s", DEMO_MODEL)
    (folder / "a-file").write_text("x")
    (folder / "notes").mkdir()
    (folder / "notes" / "mine.txt").write_text("keep me")
    cases = [
        (folder / "a-file", "is a file, not a folder"),
        (folder / "a-file" / "sub", "cannot create its parent folder"),
        (folder / "notes", "holds no medval run (no manifest.json or result.json)"),
    ]
    for out, match in cases:
        code, _, err = _validate(capsys, str(spec), "--out", str(out))
        assert code == ExitCode.USAGE_ERROR, err
        assert "--out" in err and match in err
        assert "loading the model" not in err
    assert (folder / "notes" / "mine.txt").read_text() == "keep me"


def test_an_earlier_run_holding_other_files_is_not_replaced(
    folder: Path, previous: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = write_spec(folder, "s", DEMO_MODEL)
    (previous / "my-notes.txt").write_text("keep me")
    code, _, err = _validate(capsys, str(spec), "--out", str(previous))
    assert code == ExitCode.USAGE_ERROR, err
    assert "holds an earlier run and 1 file(s) no medval run wrote (my-notes.txt)" in err
    assert (previous / "my-notes.txt").read_text() == "keep me"
    # A run from before manifests: medval's own file names only, replaced.
    (previous / "my-notes.txt").unlink()
    (previous / MANIFEST).unlink()
    assert OutputFolder(previous, key="--out").target == previous.resolve()


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes anywhere")
def test_an_unwritable_parent_is_refused_up_front(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = write_spec(folder, "s", DEMO_MODEL)
    (folder / "ro").mkdir()
    (folder / "ro").chmod(0o500)
    try:
        code, _, err = _validate(capsys, str(spec), "--out", str(folder / "ro" / "out"))
    finally:
        (folder / "ro").chmod(0o700)
    assert code == ExitCode.USAGE_ERROR and "--out" in err and "not writable" in err


def test_a_parent_without_write_access_is_refused_up_front(
    folder: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The same check as above where the tests run as root (which writes anywhere).
    monkeypatch.setattr(_outdir.os, "access", lambda *a, **k: False)
    spec = write_spec(folder, "s", DEMO_MODEL)
    code, _, err = _validate(capsys, str(spec), "--out", str(folder / "out"))
    assert code == ExitCode.USAGE_ERROR and "--out" in err and "not writable" in err
    assert not (folder / "out").exists()


def test_demo_refuses_a_folder_that_is_not_empty(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / "x").write_text("x")
    assert main(["demo", "--out", str(tmp_path / "demo"), "--quiet"]) == ExitCode.USAGE_ERROR
    assert "--out" in capsys.readouterr().err
    assert [p.name for p in (tmp_path / "demo").iterdir()] == ["x"]


# -- written whole or not at all ------------------------------------------------------------


def test_a_complete_run_lists_every_file_with_its_digest(released_run: Path) -> None:
    listed = read_manifest(released_run)
    assert set(listed) == {"junit.xml", "predictions.csv", "report.html", "result.json", "run.log"}
    assert verify_manifest(released_run) == []
    assert _leftovers(released_run.parent, released_run.name) == []


def test_a_full_disk_leaves_the_previous_run_untouched(
    folder: Path,
    previous: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    before = _snapshot(previous)
    real = Path.write_bytes

    def full(self: Path, data: bytes) -> int:  # half the file, then the disk is full
        if self.name == "result.json":
            real(self, bytes(data)[: len(data) // 2])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))
        return real(self, data)

    monkeypatch.setattr(Path, "write_bytes", full)
    spec = write_spec(folder, "released", DEMO_MODEL)
    code, _, err = _validate(capsys, str(spec), "--out", str(previous), "--quiet")
    assert code == ExitCode.DATA_ERROR, err
    assert "the disk is full" in err and "out still holds the previous complete run" in err
    assert _snapshot(previous) == before
    assert verify_manifest(previous) == []
    assert _leftovers(folder, "out") == []


def test_a_new_run_replaces_the_old_one_whole(
    folder: Path, previous: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A stale staging folder from a SIGKILLed run (a dead pid) is cleaned up; the old
    # run's junit.xml does not survive a run that wrote none.
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    (folder / f".out.tmp-{dead}-0000").mkdir()
    (folder / f".out.tmp-{dead}-0000" / "result.json").write_text("{}")
    spec = write_spec(folder, "other", DEMO_MODEL)
    spec.write_text(spec.read_text().replace("n_resamples = 100", "n_resamples = 100\nseed = 5"))
    code, out, err = _validate(capsys, str(spec), "--out", str(previous), "--quiet")
    assert code == ExitCode.OK, err
    assert f"result: {previous / 'result.json'}" in out
    assert sorted(read_manifest(previous)) == [
        "predictions.csv", "report.html", "result.json", "run.log",
    ]  # fmt: skip
    assert verify_manifest(previous) == []
    assert json.loads((previous / "result.json").read_text())["provenance"]["seed"] == 5
    assert _leftovers(folder, "out") == []


def test_a_failed_run_leaves_the_previous_run_and_no_staging(
    folder: Path,
    previous: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import importlib

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("analysis crashed")

    monkeypatch.setattr(importlib.import_module("medval.evaluation"), "evaluate", boom)
    before = _snapshot(previous)
    spec = write_spec(folder, "released", DEMO_MODEL)
    code, _, err = _validate(capsys, str(spec), "--out", str(previous), "--quiet")
    assert code == ExitCode.INTERNAL_ERROR and "analysis crashed" in err
    assert _snapshot(previous) == before
    assert _leftovers(folder, "out") == []


# -- the swap itself --------------------------------------------------------------------------


def _complete(folder: OutputFolder, text: str) -> None:
    (folder.path / "result.json").write_text(text)
    folder.commit()


@pytest.mark.parametrize("exchange", [True, False])
def test_commit_swaps_the_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, exchange: bool
) -> None:
    if not exchange:  # the two-rename path (other systems, filesystems without it)
        monkeypatch.setattr(_outdir, "_exchange", lambda a, b: False)
    target = tmp_path / "run"
    with OutputFolder(target, key="--out") as first:
        _complete(first, "one")
    with OutputFolder(target, key="--out") as second:
        (second.path / "sub").mkdir()
        (second.path / "sub" / "extra.txt").write_text("x")
        assert (target / "result.json").read_text() == "one"  # untouched while staging
        _complete(second, "two")
    assert (target / "result.json").read_text() == "two"
    assert sorted(read_manifest(target)) == ["result.json", "sub/extra.txt"]
    assert verify_manifest(target) == []
    assert _leftovers(tmp_path, "run") == []
    with OutputFolder(target, key="--out") as third:
        (third.path / "result.json").write_text("three")  # never committed
    assert (target / "result.json").read_text() == "two"
    assert _leftovers(tmp_path, "run") == []


def test_a_previous_run_left_aside_by_a_kill_is_put_back(tmp_path: Path) -> None:
    # Killed between the two renames of the fallback path: the target is absent and
    # the previous complete run is in .run.old-<dead pid>.
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    old = tmp_path / f".run.old-{dead}"
    old.mkdir()
    (old / "result.json").write_text("previous")
    with OutputFolder(tmp_path / "run", key="--out"):
        assert (tmp_path / "run" / "result.json").read_text() == "previous"
    assert _leftovers(tmp_path, "run") == []


def test_manifest_problems_are_named(tmp_path: Path) -> None:
    with OutputFolder(tmp_path / "run", key="--out") as f:
        _complete(f, "x")
    (tmp_path / "run" / "result.json").write_text("edited")
    (tmp_path / "run" / "added.txt").write_text("y")
    assert verify_manifest(tmp_path / "run") == [
        "result.json: changed (SHA-256 differs from the manifest)",
        "added.txt: not in the manifest",
    ]
    (tmp_path / "run" / MANIFEST).unlink()
    with pytest.raises(DataError, match=r"has no manifest\.json"):
        read_manifest(tmp_path / "run")


def test_write_text_atomic_replaces_or_keeps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_text_atomic(tmp_path / "j" / "junit.xml", "old")
    assert path.read_text() == "old" and oct(path.stat().st_mode & 0o777) != "0o600"

    def fail(*args: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", fail)
    with pytest.raises(OSError, match="No space"):
        write_text_atomic(path, "new")
    assert path.read_text() == "old"
    assert [p.name for p in path.parent.iterdir()] == ["junit.xml"]


def test_a_fresh_folder_must_be_new_or_empty(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    OutputFolder(tmp_path / "empty", key="--out", fresh=True)
    (tmp_path / "empty" / "x").write_text("x")
    with pytest.raises(SpecError, match="already exists and is not empty"):
        OutputFolder(tmp_path / "empty", key="--out", fresh=True)


@pytest.mark.skipif(not hasattr(signal, "SIGINT") or os.name != "posix", reason="POSIX signals")
def test_sigint_is_held_back_across_the_two_renames() -> None:
    reached = []

    def renames() -> None:
        with _outdir._signals_held():
            os.kill(os.getpid(), signal.SIGINT)
            reached.append("after the signal")  # the second rename still happens

    with pytest.raises(KeyboardInterrupt):
        renames()
    assert reached == ["after the signal"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
