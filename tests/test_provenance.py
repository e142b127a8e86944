"""The git commit recorded in provenance."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from medval._provenance import git_commit


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_git_commit_clean_dirty_and_absent(tmp_path: Path) -> None:
    assert git_commit(tmp_path) is None
    repo = tmp_path / "repo"
    repo.mkdir()
    env = ["-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / "medval.toml").write_text("x = 1\n", encoding="utf-8")
    subprocess.run(["git", "-C", str(repo), "add", "."], check=True)
    subprocess.run(["git", *env, "-C", str(repo), "commit", "-qm", "m"], check=True)
    sha = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "HEAD"], check=True, capture_output=True, text=True
    ).stdout.strip()
    assert git_commit(repo) == sha
    (repo / "medval.toml").write_text("x = 2\n", encoding="utf-8")
    assert git_commit(repo) == f"{sha}-dirty"


def _git(repo: Path, *args: str) -> str:
    env = ["-c", "user.name=t", "-c", "user.email=t@example.invalid", "-c", "core.fsmonitor="]
    out = subprocess.run(["git", *env, "-C", str(repo), *args], check=True, capture_output=True,
                         text=True)  # fmt: skip
    return out.stdout.strip()


def _repo(path: Path) -> str:
    path.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(path)], check=True)
    (path / "sub" / "deeper").mkdir(parents=True)
    for rel in ("medval.toml", "sub/a.py", "sub/deeper/b.txt", "z" * 120 + ".txt"):
        (path / rel).write_text(f"{rel}\n", encoding="utf-8")
    _git(path, "add", ".")
    _git(path, "commit", "-qm", "m")
    return _git(path, "rev-parse", "HEAD")


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
@pytest.mark.parametrize("version", ["2", "3", "4"])
def test_index_versions_packed_refs_and_deletions(tmp_path: Path, version: str) -> None:
    repo = tmp_path / "repo"
    sha = _repo(repo)
    _git(repo, "update-index", "--index-version", version)
    _git(repo, "pack-refs", "--all")
    assert not (repo / ".git" / "refs" / "heads" / "master").exists()
    assert git_commit(repo / "sub" / "deeper") == sha
    (repo / "untracked.txt").write_text("new\n", encoding="utf-8")  # git status ignores it too
    assert git_commit(repo) == sha
    (repo / "sub" / "deeper" / "b.txt").unlink()
    assert git_commit(repo) == f"{sha}-dirty"


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_a_linked_worktree_is_read_through_its_git_file(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    sha = _repo(repo)
    _git(repo, "worktree", "add", "-q", "--detach", str(tmp_path / "wt"))
    assert (tmp_path / "wt" / ".git").is_file()
    assert git_commit(tmp_path / "wt") == sha
    (tmp_path / "wt" / "medval.toml").write_text("changed\n", encoding="utf-8")
    assert git_commit(tmp_path / "wt") == f"{sha}-dirty"
    assert git_commit(repo) == sha


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_a_hostile_repository_config_runs_nothing(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    sha = _repo(repo)
    marker = tmp_path / "marker"
    with (repo / ".git" / "config").open("a", encoding="utf-8") as fh:
        fh.write(f'[core]\n\tfsmonitor = "touch {marker}; false"\n')
    (repo / "medval.toml").write_text("touched\n", encoding="utf-8")
    assert git_commit(repo) == f"{sha}-dirty"
    assert not marker.exists()
    # The attack is real: git itself runs the repository's fsmonitor command.
    subprocess.run(["git", "-C", str(repo), "status", "--porcelain"], capture_output=True,
                   check=False)  # fmt: skip
    assert marker.exists()


def test_environment_fingerprint_names_the_arithmetic_not_the_host(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import getpass
    import platform

    import torch

    from medval._provenance import _NUMERIC_ENV, environment_fingerprint

    for name in _NUMERIC_ENV:  # the suite may itself run under one of them
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ATEN_CPU_CAPABILITY", "default")
    env = environment_fingerprint(torch.device("cpu"))
    for key in ("medval", "torch", "numpy", "scipy", "scikit-learn", "pydicom", "python", "os"):
        assert env[key], key
    assert env["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert env["torch_threads"] == torch.get_num_threads()
    assert env["deterministic_algorithms"] is torch.are_deterministic_algorithms_enabled()
    assert env["numeric_settings"] == {"ATEN_CPU_CAPABILITY": "default"}
    assert env["device"] == "cpu" and "gpu" not in env and "cuda" not in env
    text = repr(env)
    user = getpass.getuser()
    node = platform.node()
    assert len(node) < 4 or node not in text  # a very short host name can occur by chance
    assert user in repr(sorted(env)) or user not in repr(list(env.values()))
    assert str(Path.home()) not in text and "/" not in env["os"]
    assert environment_fingerprint(None)["device"].startswith("none")
