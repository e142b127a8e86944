"""``medval gate`` judges only what medval wrote, for the spec and model it was given."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from lxml import etree

from medval import ExitCode, ValidationResult
from medval.cli import main
from medval.gate import judge, read_spec, spec_criteria

from .conftest import RELEASED_KEY, perturbed_state


def _gate(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["gate", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _spec(run: Path) -> Path:
    return run.parent / "released.toml"


def _properties(path: Path) -> dict[str, str]:
    return {p.get("name"): p.get("value") for p in etree.parse(str(path)).iter("property")}


def test_gate_verifies_the_result_then_judges_it(
    released_run: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    junit = tmp_path / "junit.xml"
    result = str(released_run / "result.json")
    code, out, err = _gate(capsys, result, str(_spec(released_run)), "--junit-xml", str(junit))
    assert code == ExitCode.GATE_FAILED, err
    assert "gate: result verified (content digest; spec and model are the run's)" in out
    assert _properties(junit)["medval.rejudged"] == "false"
    monkeypatch.setenv("MEDVAL_SIGNING_KEY", RELEASED_KEY)
    code, out, err = _gate(capsys, result, str(_spec(released_run)))
    assert code == ExitCode.GATE_FAILED, err
    assert "result verified (content digest and signature;" in out


def test_a_hand_edited_result_is_refused(
    released_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Issue 15 (8): raising one CI bound turned exit 1 into exit 0.
    data = json.loads((released_run / "result.json").read_text(encoding="utf-8"))
    estimate = data["estimates"]["operating_point.specificity"]
    estimate.update(value=0.997, low=0.995, high=0.999)
    edited = tmp_path / "result.json"
    edited.write_text(json.dumps(data, indent=2, sort_keys=True), encoding="utf-8")
    spec = read_spec(_spec(released_run))
    (verdict,) = judge(ValidationResult.from_dict(data), spec_criteria(spec))
    assert verdict.status == "pass"  # what the edit would have bought
    code, out, err = _gate(capsys, str(edited), str(_spec(released_run)))
    assert code == ExitCode.DATA_ERROR, out
    assert "result.json was changed after medval wrote it" in err
    assert "PASS" not in out


def test_a_result_of_another_spec_needs_rejudge(
    released_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = _spec(released_run).read_text(encoding="utf-8")
    looser = released_run.parent / "looser.toml"  # beside the spec: the same model.pt
    looser.write_text(text.replace("threshold = 0.99", "threshold = 0.5"), encoding="utf-8")
    result = str(released_run / "result.json")
    code, out, err = _gate(capsys, result, str(looser))
    assert code == ExitCode.USAGE_ERROR, out
    assert "result.json is not the run of looser.toml and its model: the run read a spec" in err
    assert "--rejudge" in err
    junit = tmp_path / "junit.xml"
    code, out, err = _gate(capsys, result, str(looser), "--rejudge", "--junit-xml", str(junit))
    assert code in (ExitCode.OK, ExitCode.GATE_FAILED), err
    assert "gate: re-judged (--rejudge); content digest verified; the run read a spec" in out
    props = _properties(junit)
    assert props["medval.rejudged"] == "true"
    assert "re-judged (--rejudge)" in props["medval.verified"]
    assert props["medval.judged_with_spec_sha256"] != props["medval.spec_sha256"]


def test_a_result_of_another_model_is_refused(
    released_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import torch

    # The same spec text (so the same spec digest) beside another model.pt.
    spec = tmp_path / "released.toml"
    shutil.copy(_spec(released_run), spec)
    result = str(released_run / "result.json")
    code, _, err = _gate(capsys, result, str(spec))
    assert code == ExitCode.USAGE_ERROR
    assert "model.file model.pt (declared by released.toml) does not exist here" in err
    torch.save(perturbed_state(3), tmp_path / "model.pt")
    code, _, err = _gate(capsys, result, str(spec))
    assert code == ExitCode.USAGE_ERROR
    assert "the run's model has SHA-256" in err and "model.file model.pt has" in err
    code, out, _ = _gate(capsys, result, str(spec), "--rejudge")
    assert code == ExitCode.GATE_FAILED and "the run's model has SHA-256" in out


def test_with_a_signing_key_only_a_signed_result_passes(
    released_run: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for path in released_run.rglob("*"):  # validate signed it, and wrote the key nowhere
        assert not path.is_file() or RELEASED_KEY.encode() not in path.read_bytes()
    spec, result = str(_spec(released_run)), str(released_run / "result.json")
    monkeypatch.setenv("MEDVAL_SIGNING_KEY", "another-key")
    code, _, err = _gate(capsys, result, spec)
    assert code == ExitCode.DATA_ERROR and "signature does not match MEDVAL_SIGNING_KEY" in err
    # Re-written without the key: a valid content digest, but no signature.
    unsigned = tmp_path / "result.json"
    ValidationResult.read_json(released_run / "result.json").write_json(unsigned)
    monkeypatch.setenv("MEDVAL_SIGNING_KEY", RELEASED_KEY)
    code, _, err = _gate(capsys, str(unsigned), spec)
    assert code == ExitCode.DATA_ERROR and "is not signed, but MEDVAL_SIGNING_KEY is set" in err
