"""Registration, ledger, re-judging and the reusable holdout through ``medval validate``/``gate``.

A small demo cohort with precomputed predictions: every run is a few seconds.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from medval.cli import main
from medval.integrity import LEDGER_FILE, read_ledger, verify_ledger

from ..integrity._specs import BASE

SPEC = (
    BASE.format(extra="")
    + """[analysis]
n_resamples = 200
test_splits = ["internal", "external"]
[gate]
{gate}
[[criteria]]
name = "internal-auroc"
key = "discrimination.auroc"
bound = "low"
op = ">="
threshold = {threshold}
[[criteria]]
name = "external-auroc"
key = "split.external.discrimination.auroc"
op = ">="
threshold = 0.5
severity = "warn"
"""
)


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from medval.demo import write_cohort

    root = tmp_path_factory.mktemp("integrity") / "cohort"
    write_cohort(root, seed=0, n_patients=(20, 30, 20))
    return root


def _spec(folder: Path, threshold: float = 0.5, gate: str = "") -> Path:
    path = folder / "medval.toml"
    path.write_text(SPEC.format(threshold=threshold, gate=gate), encoding="utf-8")
    return path


@pytest.fixture
def folder(tmp_path: Path, cohort: Path) -> Path:
    shutil.copytree(cohort, tmp_path / "cohort")
    with (tmp_path / "cohort" / "labels.csv").open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    rng = np.random.default_rng(7)
    lines = ["case_id,probability"]
    for r in rows:  # informative scores: AUROC well above the thresholds used here
        p = 1.0 / (1.0 + np.exp(-(2.5 * (int(r["label"]) - 0.5) + rng.normal(0.0, 1.5))))
        lines.append(f"{r['case_id']},{p:.6f}")
    (tmp_path / "preds.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    _spec(tmp_path)
    return tmp_path


def _validate(folder: Path, out: str, *extra: str) -> int:
    spec = str(folder / "medval.toml")
    return main(["validate", spec, "--out", str(folder / out), "--quiet", *extra])


def _result(folder: Path, out: str) -> dict:  # type: ignore[type-arg]
    return json.loads((folder / out / "result.json").read_text(encoding="utf-8"))


def _verdict(result: dict, name: str) -> dict:  # type: ignore[type-arg]
    return next(v for v in result["tables"]["gate.verdicts"] if v["name"] == name)


def test_unregistered_run_says_so_and_writes_no_ledger(folder: Path) -> None:
    assert _validate(folder, "v") == 0
    reg = _result(folder, "v")["provenance"]["registration"]
    assert reg["status"] == "not registered" and reg["file"] == "cohort/medval-registration.json"
    assert not (folder / "cohort" / LEDGER_FILE).exists()
    assert "Not pre-registered" in (folder / "v" / "report.html").read_text(encoding="utf-8")


def test_registered_run_then_loosened_criterion_is_a_deviation_everywhere(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["register", str(folder / "medval.toml")]) == 0
    assert _validate(folder, "v1") == 0
    first = _result(folder, "v1")
    assert _verdict(first, "medval.registration")["status"] == "pass"
    assert first["provenance"]["test_set_usage"]["n_evaluations"] == 1
    _spec(folder, threshold=0.4)  # loosened after the test set was looked at
    capsys.readouterr()
    junit = folder / "v2.xml"
    assert _validate(folder, "v2", "--junit-xml", str(junit)) == 0
    said = "threshold for internal-auroc lowered from 0.5 to 0.4 after registration"
    out = capsys.readouterr().out
    assert f"DEVIATION: {said}" in out
    second = _result(folder, "v2")
    verdict = _verdict(second, "medval.registration")
    assert verdict["status"] == "warn" and said in verdict["reason"]
    assert second["provenance"]["registration"]["deviations"][0]["loosened"] is True
    xml = junit.read_text(encoding="utf-8")
    assert said in xml and 'name="medval.registration_deviations"' in xml
    assert said in (folder / "v2" / "report.html").read_text(encoding="utf-8")
    # Two evaluations by one model, on an intact ledger anchored in the result.
    assert second["provenance"]["test_set_usage"]["n_evaluations"] == 2
    anchor = second["provenance"]["ledger"]
    check = verify_ledger(folder / "cohort", signing_key=None,
                          expected_head=(anchor["head_seq"], anchor["head_sha256"]))  # fmt: skip
    assert check.ok and check.n_entries == 3


def test_strict_registration_refuses_a_loosened_run_before_it_runs(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["register", str(folder / "medval.toml"), "--strict"]) == 0
    _spec(folder, threshold=0.4)
    assert _validate(folder, "v") == 2
    err = capsys.readouterr().err
    assert "strict registration" in err and "lowered from 0.5 to 0.4" in err
    assert not (folder / "v").exists()
    ledger = read_ledger(folder / "cohort", signing_key=None)
    assert [e.kind for e in ledger.entries] == ["registered"]  # nothing was looked at


def test_rejudging_says_so_in_every_output(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["register", str(folder / "medval.toml")]) == 0
    assert _validate(folder, "v") == 0
    _spec(folder, threshold=0.45)
    result, spec, junit = folder / "v" / "result.json", folder / "medval.toml", folder / "g.xml"
    capsys.readouterr()
    assert main(["gate", str(result), str(spec)]) == 2  # another spec: refused unless asked
    assert main(["gate", str(result), str(spec), "--rejudge", "--junit-xml", str(junit)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("RE-JUDGED:") and "re-judged under another spec" in out
    assert "DEVIATION: threshold for internal-auroc lowered from 0.5 to 0.45" in out
    xml = junit.read_text(encoding="utf-8")
    assert 'testsuite name="medval-rejudged"' in xml
    assert xml.count("RE-JUDGED:") == xml.count("<testcase ")  # each testcase says it
    kinds = [e.kind for e in read_ledger(folder / "cohort", signing_key=None).entries]
    assert kinds == ["registered", "evaluated", "rejudged"]


@pytest.mark.parametrize("damage", ["edit", "remove"])
def test_a_tampered_or_missing_ledger_stops_the_run(
    folder: Path, capsys: pytest.CaptureFixture[str], damage: str
) -> None:
    assert main(["register", str(folder / "medval.toml")]) == 0
    assert _validate(folder, "v1") == 0
    path = folder / "cohort" / LEDGER_FILE
    if damage == "edit":
        lines = path.read_text(encoding="utf-8").splitlines()
        assert '"verdict": "pass"' in lines[1]
        lines[1] = lines[1].replace('"verdict": "pass"', '"verdict": "fail"')
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    else:
        path.unlink()
    assert _validate(folder, "v2") == 3
    err = capsys.readouterr().err
    assert ("not intact" if damage == "edit" else "it was removed") in err


def test_usage_past_the_budget_is_a_warning(folder: Path) -> None:
    assert main(["register", str(folder / "medval.toml"), "--usage-budget", "1"]) == 0
    assert _validate(folder, "v1") == 0
    assert all(
        v["name"] != "medval.test-set-usage"
        for v in _result(folder, "v1")["tables"]["gate.verdicts"]
    )
    assert _validate(folder, "v2") == 0
    second = _result(folder, "v2")
    warn = _verdict(second, "medval.test-set-usage")
    assert warn["status"] == "warn" and "budget of 1" in warn["reason"]
    assert second["values"]["gate.status"] == "passed with warnings"


def _development_split(folder: Path) -> None:
    """Every other calibration patient becomes the team's own 'development' split."""
    labels = folder / "cohort" / "labels.csv"
    with labels.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    patients = sorted({r["file"].split("/")[1] for r in rows if r["split"] == "calibration"})
    moved = set(patients[::2])
    lines = ["case_id,file,label,split"]
    for r in rows:
        split = "development" if r["file"].split("/")[1] in moved else r["split"]
        lines.append(f"{r['case_id']},{r['file']},{r['label']},{split}")
    labels.write_text("\n".join(lines) + "\n", encoding="utf-8")


THRESHOLDOUT = 'holdout = "thresholdout"\nholdout_reference_split = "development"\n'


def test_thresholdout_mode_answers_criteria_and_keeps_its_state(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _development_split(folder)
    _spec(folder, gate=THRESHOLDOUT + "thresholdout_budget = 3")
    assert main(["register", str(folder / "medval.toml")]) == 0
    capsys.readouterr()
    assert _validate(folder, "v1") == 0
    out = capsys.readouterr().out
    assert "test-split numbers withheld" in out and "AUROC" not in out
    first = _result(folder, "v1")
    verdict = _verdict(first, "internal-auroc")
    assert verdict["reason"].startswith("Thresholdout answer:")
    assert verdict["low"] is None and verdict["high"] is None  # no test-set CI shown
    holdout = first["provenance"]["holdout"]
    assert holdout["reference_split"] == "development" and holdout["n_queries"] == 2
    assert holdout["budget"] == 3 and 0 <= holdout["budget_left"] <= 3
    assert "split.development.discrimination.auroc" in first["estimates"]
    # The same model asks again: the cached answers, no new query, no new noise.
    assert _validate(folder, "v2") == 0
    second = _result(folder, "v2")
    assert second["provenance"]["holdout"]["n_queries"] == 2
    assert _verdict(second, "internal-auroc")["observed"] == verdict["observed"]
    entries = read_ledger(folder / "cohort", signing_key=None).entries
    assert entries[-1].holdout is not None and "state" in entries[-1].holdout
    assert "thresholdout answers" in entries[-1].revealed


def test_thresholdout_needs_a_registration_and_a_reference_split(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _spec(folder, gate=THRESHOLDOUT)
    assert _validate(folder, "v") == 2
    assert "medval register SPEC first" in capsys.readouterr().err
    _spec(folder, gate='holdout = "thresholdout"\nholdout_reference_split = "calibration"')
    assert main(["register", str(folder / "medval.toml")]) == 0
    assert _validate(folder, "v") == 2
    assert "set gate.holdout_reference_split" in capsys.readouterr().err


def test_a_protocol_registered_after_use_is_said(folder: Path) -> None:
    assert main(["register", str(folder / "medval.toml")]) == 0
    assert _validate(folder, "v1") == 0
    _spec(folder, threshold=0.4)  # loosened, then registered anew: not a pre-registration
    assert main(["register", str(folder / "medval.toml"), "--supersede"]) == 0
    assert _validate(folder, "v2") == 0
    result = _result(folder, "v2")
    verdict = _verdict(result, "medval.registration")
    assert verdict["status"] == "warn"
    assert "registered after the test set had been evaluated 1 time(s)" in verdict["reason"]
    reg = result["provenance"]["registration"]
    assert reg["registered_after_uses"] == 1 and len(reg["supersedes"]) == 1
    assert reg["deviations"] == []
    assert "Registered after use." in (folder / "v2" / "report.html").read_text(encoding="utf-8")
    kinds = [e.kind for e in read_ledger(folder / "cohort", signing_key=None).entries]
    assert kinds == ["registered", "evaluated", "reregistered", "evaluated"]
