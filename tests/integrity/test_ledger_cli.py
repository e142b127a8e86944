"""``medval ledger show`` and ``medval ledger verify``: output, exit codes, result anchors."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from medval import ExitCode, ValidationResult
from medval._result import SIGNING_KEY_ENV
from medval.cli import main
from medval.integrity import (
    LEDGER_FILE,
    LEDGER_PROVENANCE_KEY,
    LedgerEntry,
    append_entry,
    ledger_anchor,
    start_ledger,
)

PROTOCOL = hashlib.sha256(b"protocol").hexdigest()


def _ledger(folder: Path, n: int, key: bytes | None = None) -> list[LedgerEntry]:
    path = folder / LEDGER_FILE
    out = [start_ledger(path, protocol_sha256=PROTOCOL, registration_sha256=PROTOCOL,
                        signing_key=key)]  # fmt: skip
    for i in range(n):
        out.append(
            append_entry(
                path, kind="evaluated", protocol_sha256=PROTOCOL,
                model_sha256=hashlib.sha256(bytes([i % 2])).hexdigest(), verdict="pass",
                revealed=("discrimination.auroc",), splits=("test",), signing_key=key,
            )
        )  # fmt: skip
    return out


def _result(folder: Path, entry: LedgerEntry, key: bytes | None = None) -> Path:
    path = folder / "result.json"
    ValidationResult(provenance={LEDGER_PROVENANCE_KEY: ledger_anchor(entry)}).write_json(
        path, signing_key=key
    )
    return path


@pytest.fixture(autouse=True)
def _no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SIGNING_KEY_ENV, raising=False)


def test_show_table_and_usage(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    entries = _ledger(tmp_path, 3)
    assert main(["ledger", "show", str(tmp_path), "--budget", "2"]) == ExitCode.OK
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split() == [
        "seq", "time", "kind", "verdict", "model", "protocol", "splits", "revealed"
    ]  # fmt: skip
    assert lines[2].split()[:4] == ["0", entries[0].time, "registered", "none"]
    assert lines[5].split()[2:] == [
        "evaluated", "pass", str(entries[3].model_sha256)[:12], PROTOCOL[:12], "test", "1"
    ]  # fmt: skip
    assert "usage: this test set has been evaluated 3 times by 2 distinct models" in out
    assert "past the budget of 2" in out
    assert str(tmp_path) not in out


def test_show_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    entries = _ledger(tmp_path, 2)
    assert main(["ledger", "show", str(tmp_path / LEDGER_FILE), "--json"]) == ExitCode.OK
    data = json.loads(capsys.readouterr().out)
    assert data["entries"] == [e.to_dict() for e in entries]
    assert data["usage"]["n_evaluations"] == 2 and data["usage"]["budget"] == 20


def test_show_refuses_a_broken_ledger(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _ledger(tmp_path, 2)
    path = tmp_path / LEDGER_FILE
    path.write_text(path.read_text().replace('"pass"', '"fail"', 1))
    assert main(["ledger", "show", str(tmp_path)]) == ExitCode.DATA_ERROR
    assert "line 2 (seq 1) was edited" in capsys.readouterr().err


def test_verify_intact(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _ledger(tmp_path, 2)
    assert main(["ledger", "verify", str(tmp_path)]) == ExitCode.OK
    out = capsys.readouterr().out
    assert "intact (3 entries, head seq 2; no signing key set: HMAC not checked)" in out


def test_verify_lists_each_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _ledger(tmp_path, 4)
    path = tmp_path / LEDGER_FILE
    lines = path.read_text().splitlines(keepends=True)
    lines[1] = lines[1].replace('"pass"', '"fail"')
    del lines[3]
    path.write_text("".join(lines))
    assert main(["ledger", "verify", str(path)]) == ExitCode.GATE_FAILED
    out = capsys.readouterr().out
    assert "NOT intact (2 problems)" in out
    assert "  - seq 3 missing" in out and "  - line 2 (seq 1) was edited" in out


def test_verify_with_result_anchors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    entries = _ledger(tmp_path, 3)
    (tmp_path / "run1").mkdir()
    (tmp_path / "run3").mkdir()
    old, new = _result(tmp_path / "run1", entries[1]), _result(tmp_path / "run3", entries[3])
    argv = ["ledger", "verify", str(tmp_path), "--result", str(old), "--result", str(new)]
    assert main(argv) == ExitCode.OK
    assert "2 result anchors found" in capsys.readouterr().out
    path = tmp_path / LEDGER_FILE
    path.write_text("".join(path.read_text().splitlines(keepends=True)[:-1]))
    assert main(argv) == ExitCode.GATE_FAILED
    out = capsys.readouterr().out
    assert "NOT intact (1 problem)" in out
    assert "anchor names seq 3, but the ledger ends at seq 2" in out


def test_verify_with_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    entries = _ledger(tmp_path, 1, key=b"k")
    result = _result(tmp_path, entries[-1], key=b"k")
    monkeypatch.setenv(SIGNING_KEY_ENV, "k")
    assert main(["ledger", "verify", str(tmp_path), "--result", str(result)]) == ExitCode.OK
    assert "HMAC checked" in capsys.readouterr().out
    monkeypatch.setenv(SIGNING_KEY_ENV, "other")
    assert main(["ledger", "verify", str(tmp_path)]) == ExitCode.GATE_FAILED
    assert "HMAC does not match the signing key" in capsys.readouterr().out


def test_verify_result_without_anchor(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _ledger(tmp_path, 1)
    result = tmp_path / "result.json"
    ValidationResult().write_json(result)
    assert main(["ledger", "verify", str(tmp_path), "--result", str(result)]) == 3
    assert "records no ledger head (provenance.ledger)" in capsys.readouterr().err
    ValidationResult(provenance={"ledger": {"head_seq": "1"}}).write_json(result)
    assert main(["ledger", "verify", str(tmp_path), "--result", str(result)]) == 3
    assert "must hold head_seq (int) and head_sha256 (str)" in capsys.readouterr().err


def test_missing_ledger_and_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["ledger", "verify", str(tmp_path)]) == ExitCode.DATA_ERROR
    assert "no test-set ledger at" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["ledger"])
    assert exc.value.code == ExitCode.USAGE_ERROR
    _ledger(tmp_path, 0)
    assert main(["ledger", "show", str(tmp_path), "--budget", "0"]) == ExitCode.DATA_ERROR
    assert "budget must be an integer >= 1" in capsys.readouterr().err
