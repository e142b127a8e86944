"""CLI exit codes and messages for bad input (0 ok, 2 spec, 3 data, 4 internal)."""

from __future__ import annotations

import csv
import hashlib
import json
import re
import shlex
import shutil
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from lxml import etree

from medval import ExitCode, ValidationResult
from medval.cli import main

REPO = Path(__file__).resolve().parents[1]
XSD = Path(__file__).parent / "gate" / "junit-xunit2.xsd"


def _spec(tmp_path: Path, demo_run: Path, **over: str) -> Path:
    fields = {
        "dicom_dir": str(demo_run / "cohort" / "dicom"),
        "labels": str(demo_run / "cohort" / "labels.csv"),
        "model": str(demo_run / "model.pt"),
        "factory": '"medval.demo:make_model"',
    }
    fields.update(over)
    text = (demo_run / "medval.toml").read_text(encoding="utf-8")
    text = text.replace('"cohort/dicom"', f'"{fields["dicom_dir"]}"')
    text = text.replace('"cohort/labels.csv"', f'"{fields["labels"]}"')
    text = text.replace('"model.pt"', f'"{fields["model"]}"')
    text = text.replace('"medval.demo:make_model"', fields["factory"])
    text = text.replace("n_resamples = 2000", "n_resamples = 200")
    path = tmp_path / "spec.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _labels(tmp_path: Path, demo_run: Path, edit: str) -> Path:
    rows = list(csv.DictReader((demo_run / "cohort" / "labels.csv").open(encoding="utf-8")))
    if edit == "unknown":
        rows[3]["file"] = "site-9/p9999/img-1.dcm"
    elif edit == "duplicate":
        rows[5]["case_id"] = rows[4]["case_id"]
    elif edit == "bad-label":
        rows[2]["label"] = "tumour"
    out = tmp_path / "labels.csv"
    with out.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return out


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["validate", *args, "--quiet"])
    return code, capsys.readouterr().err


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        ("duplicate", r"duplicate"),
        ("bad-label", r"tumour"),
    ],
)
def test_bad_labels_exit_3(
    demo_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], edit: str, match: str
) -> None:
    spec = _spec(tmp_path, demo_run, labels=str(_labels(tmp_path, demo_run, edit)))
    code, err = _run(capsys, str(spec), "--out", str(tmp_path / "o"))
    assert code == ExitCode.DATA_ERROR
    assert "input data error" in err
    assert re.search(match, err), err


def test_a_label_matching_no_image_is_listed_not_fatal(
    demo_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = _spec(tmp_path, demo_run, labels=str(_labels(tmp_path, demo_run, "unknown")))
    code, err = _run(capsys, str(spec), "--out", str(tmp_path / "o"))
    assert code in (ExitCode.OK, ExitCode.GATE_FAILED), err
    result = json.loads((tmp_path / "o" / "result.json").read_text(encoding="utf-8"))
    assert result["values"]["cohort.n_unmatched_labels"] == 1
    assert result["tables"]["cohort.unmatched_labels"] == [
        {"row": 5, "key": "file", "value": "site-9/p9999/img-1.dcm"}
    ]
    assert "1 labels row(s) matched no image (rows 5)" in (tmp_path / "o" / "run.log").read_text()
    report = (tmp_path / "o" / "report.html").read_text(encoding="utf-8")
    assert "Labels rows that matched no image" in report and "site-9/p9999/img-1.dcm" in report


def test_missing_folder_exit_3(
    demo_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = _spec(tmp_path, demo_run, dicom_dir=str(tmp_path / "no-such-folder"))
    code, err = _run(capsys, str(spec))
    assert code == ExitCode.DATA_ERROR and "no-such-folder" in err


def test_pickled_module_refused_then_trusted(
    demo_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import torch

    from medval.demo import make_model

    model = make_model()
    model.load_state_dict(torch.load(demo_run / "model.pt", weights_only=True))
    torch.save(model, tmp_path / "whole.pt")
    spec = _spec(tmp_path, demo_run, model=str(tmp_path / "whole.pt"))
    code, err = _run(capsys, str(spec), "--out", str(tmp_path / "o"))
    assert code == ExitCode.DATA_ERROR and "--trust-code" in err
    code, err = _run(capsys, str(spec), "--out", str(tmp_path / "o"), "--trust-code")
    assert code == ExitCode.OK, err
    assert (tmp_path / "o" / "report.html").is_file()
    # --trust-pickle still works: the former name of --trust-code.
    code, err = _run(capsys, str(spec), "--out", str(tmp_path / "o2"), "--trust-pickle")
    assert code == ExitCode.OK, err


def test_spec_and_usage_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        "[task]\nclass_names = ['a', 'b']\n[data]\ndicom_dir='x'\nlabels='y'\nlabls='z'\n"
    )
    code, err = _run(capsys, str(bad))
    assert code == ExitCode.USAGE_ERROR and "data.labls" in err
    with pytest.raises(SystemExit) as exc:
        main(["validate"])
    assert exc.value.code == ExitCode.USAGE_ERROR
    assert main([]) == ExitCode.USAGE_ERROR
    # A --junit-xml that names a folder is refused before any work (the spec is not read).
    code, err = _run(capsys, str(bad), "--junit-xml", str(tmp_path))
    assert code == ExitCode.USAGE_ERROR and "--junit-xml" in err and "is a folder" in err


def test_internal_error_exit_4_never_success(
    demo_run: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import importlib

    module = importlib.import_module("medval.evaluation")

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("analysis crashed")

    monkeypatch.setattr(module, "evaluate", boom)
    spec = _spec(tmp_path, demo_run)
    junit = tmp_path / "junit.xml"
    code, err = _run(capsys, str(spec), "--out", str(tmp_path / "o"), "--junit-xml", str(junit))
    assert code == ExitCode.INTERNAL_ERROR and "analysis crashed" in err
    assert not (tmp_path / "o" / "report.html").exists()
    # CI still sees every criterion, each an error (never a pass).
    cases = _junit_cases(junit)
    assert [name for name, _, _ in cases] == _criterion_names(spec)
    assert all(kind == "error" and "analysis crashed" in msg for _, kind, msg in cases)


def test_demo_spec_is_copyable_and_the_copy_reproduces_the_demo(
    demo_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = tmp_path / "mine"
    shutil.copytree(demo_run / "cohort", copy / "cohort")
    shutil.copy(demo_run / "model.pt", copy / "model.pt")
    shutil.copy(demo_run / "medval.toml", copy / "medval.toml")
    earlier = demo_run / "result.json"
    code = main(["validate", str(copy / "medval.toml"), "--quiet", "--reproduce", str(earlier)])
    assert code == 0
    assert "reproduces run" in capsys.readouterr().out
    html = (copy / "validation" / "report.html").read_text(encoding="utf-8")
    digest = hashlib.sha256(earlier.read_bytes()).hexdigest()
    assert re.search(rf"reproduces run <span class=\"mono\">{digest[:16]}</span>", html)
    assert main(["diff", str(earlier), str(copy / "validation" / "result.json")]) == 0


def _junit_cases(path: Path) -> list[tuple[str, str, str]]:
    """(name, "pass"/"failure"/"error", message) per testcase of a schema-valid JUnit file."""
    schema = etree.XMLSchema(etree.parse(str(XSD)))
    doc = etree.parse(str(path))
    assert schema.validate(doc), schema.error_log
    out = []
    for case in doc.iter("testcase"):
        bad = [c for c in case if c.tag in ("failure", "error")]
        kind = bad[0].tag if bad else "pass"
        out.append((case.get("name"), kind, bad[0].get("message") if bad else ""))
    return out


def _criterion_names(spec: Path) -> list[str]:
    from medval.gate import read_spec, spec_criteria

    return [c.name for c in spec_criteria(read_spec(spec))]


def _suite_properties(path: Path) -> dict[str, str]:
    return {p.get("name"): p.get("value") for p in etree.parse(str(path)).iter("property")}


def test_gate_rejudges_a_result_with_junit_and_digests(
    demo_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = demo_run / "result.json"
    before = result.read_bytes()
    junit = tmp_path / "junit.xml"
    code = main(["gate", str(result), str(demo_run / "medval.toml"), "--junit-xml", str(junit)])
    out = capsys.readouterr().out
    assert code == ExitCode.OK, out
    assert re.search(r"internal-auroc +PASS +fail +auroc CI low 0\.\d{3} >= 0\.8 \(n=\d+\)", out)
    assert re.search(r"external-auroc +WARN +warn +auroc \(external\) CI low", out)
    assert "gate: passed with warnings (exit 0)" in out
    assert result.read_bytes() == before  # re-judged, not rewritten
    cases = _junit_cases(junit)
    assert [name for name, _, _ in cases] == _criterion_names(demo_run / "medval.toml")
    assert {kind for _, kind, _ in cases} == {"pass"}
    prov = json.loads(before)["provenance"]
    props = _suite_properties(junit)
    assert props["medval.model_sha256"] == prov["model_sha256"]
    assert props["medval.data_manifest_sha256"] == prov["data_manifest_sha256"]
    assert props["medval.gate_status"] == "passed with warnings"


def test_gate_with_a_stricter_spec_fails_without_recomputing(
    demo_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The copied spec's relative data paths do not exist here: nothing is re-read.
    text = (demo_run / "medval.toml").read_text(encoding="utf-8")
    strict = tmp_path / "strict.toml"
    strict.write_text(text.replace("threshold = 0.80\n", "threshold = 0.99\n", 1), "utf-8")
    # A result of another spec is refused unless re-judging is asked for, and said.
    assert main(["gate", str(demo_run / "result.json"), str(strict)]) == ExitCode.USAGE_ERROR
    assert "is not the run of strict.toml" in capsys.readouterr().err
    code = main(["gate", str(demo_run / "result.json"), str(strict), "--rejudge"])
    out = capsys.readouterr().out
    assert code == ExitCode.GATE_FAILED
    assert re.search(r"internal-auroc +FAIL +fail +auroc CI low 0\.\d{3} < 0\.99", out)
    assert "gate: re-judged (--rejudge)" in out
    assert "gate: failed (re-judged under another spec or model; exit 1)" in out


def test_gate_exit_codes_for_bad_inputs(
    demo_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = demo_run / "medval.toml"
    result = demo_run / "result.json"
    bad_spec = tmp_path / "bad.toml"
    text = spec.read_text(encoding="utf-8").replace("\nbound = ", "\nbund = ", 1)
    bad_spec.write_text(text, encoding="utf-8")
    assert main(["gate", str(result), str(bad_spec)]) == ExitCode.USAGE_ERROR
    assert re.search(r"spec error: .*unknown key criteria\.bund", capsys.readouterr().err)
    assert main(["gate", str(tmp_path / "none.json"), str(spec)]) == ExitCode.DATA_ERROR
    assert "none.json does not exist" in capsys.readouterr().err
    (tmp_path / "junk.json").write_text("{not json", encoding="utf-8")
    assert main(["gate", str(tmp_path / "junk.json"), str(spec)]) == ExitCode.DATA_ERROR
    assert "not a valid medval result.json" in capsys.readouterr().err


def test_gate_fails_closed_on_a_recorded_analysis_error(
    demo_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = json.loads((demo_run / "result.json").read_text(encoding="utf-8"))
    data["values"]["analysis.errors"] = {"conformal": "RuntimeError: calibration crashed"}
    broken = tmp_path / "result.json"
    ValidationResult.from_dict(data).write_json(broken)  # a result as medval would write it
    junit = tmp_path / "junit.xml"
    code = main(["gate", str(broken), str(demo_run / "medval.toml"), "--junit-xml", str(junit)])
    out = capsys.readouterr().out
    assert code == ExitCode.INTERNAL_ERROR
    assert re.search(r"coverage-by-scanner +ERROR +warn +analysis conformal failed", out)
    assert "gate: error (exit 4)" in out
    kinds = {name: kind for name, kind, _ in _junit_cases(junit)}
    assert kinds["coverage-by-scanner"] == "error" and kinds["internal-auroc"] == "pass"


def test_schema_command_prints_the_shipped_schema(capsys: pytest.CaptureFixture[str]) -> None:
    from medval.gate import json_schema

    assert main(["schema"]) == ExitCode.OK
    assert json.loads(capsys.readouterr().out) == json_schema()


def test_unreadable_data_exit_3_with_errored_junit(
    demo_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = _spec(tmp_path, demo_run, dicom_dir=str(tmp_path / "no-such-folder"))
    junit = tmp_path / "ci" / "junit.xml"
    code, err = _run(capsys, str(spec), "--junit-xml", str(junit))
    assert code == ExitCode.DATA_ERROR and "no-such-folder" in err
    cases = _junit_cases(junit)
    assert [name for name, _, _ in cases] == _criterion_names(spec)
    assert all(kind == "error" and "no-such-folder" in msg for _, kind, msg in cases)


def test_baseline_flag_needs_a_baseline_section(
    demo_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = _spec(tmp_path, demo_run)
    code, err = _run(capsys, str(spec), "--baseline", str(demo_run / "predictions.csv"))
    assert code == ExitCode.USAGE_ERROR
    assert "--baseline needs a [baseline] section" in err


# Non-inferiority against a baseline on the demo: the candidate is the spec's
# model, the baseline a predictions file or a model, on the same cases.


def _ni_spec(tmp_path: Path, demo_run: Path, baseline: str, *, model: Path | None = None) -> Path:
    spec = _spec(tmp_path, demo_run, model=str(model or demo_run / "model.pt"))
    text = spec.read_text(encoding="utf-8").replace("mc_samples = 20", "mc_samples = 0")
    if model is not None:  # TorchScript: no factory, no nn.Linear to take embeddings from
        text = re.sub(r"(?m)^factory = .*$", "", text)
        text = re.sub(r"(?m)^embeddings = .*$", "embeddings = false", text)
    spec.write_text(text + "\n[baseline]\nmargin = 0.02\n" + baseline, encoding="utf-8")
    return spec


def _noisy_model(demo_run: Path, path: Path, scale: float) -> Path:
    """The demo model with pseudo-random noise added to its scores, as TorchScript."""
    import torch

    from medval.demo import make_model

    base = make_model()
    base.load_state_dict(torch.load(demo_run / "model.pt", weights_only=True))
    base.eval()

    class Noisy(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.base = base

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            # sin of a large multiple of the pixel sum: noise that differs per image.
            noise = torch.sin(x.flatten(1).sum(1, keepdim=True) * 1000.0)
            return self.base(x) + scale * noise

    with warnings.catch_warnings():  # TorchScript is deprecated, and still what users bring
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.trace(Noisy(), torch.zeros(2, 1, 64, 64)).save(str(path))
    return path


def _verdict(out_dir: Path, name: str) -> dict[str, Any]:
    result = json.loads((out_dir / "result.json").read_text(encoding="utf-8"))
    (row,) = [r for r in result["tables"]["gate.verdicts"] if r["name"] == name]
    return {**row, "values": result["values"]}


def test_noninferiority_against_the_candidate_itself_never_passes(
    demo_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The same model file as the baseline: non-inferiority to itself proves nothing.
    baseline = f'model = "{demo_run / "model.pt"}"\nfactory = "medval.demo:make_model"\n'
    spec = _ni_spec(tmp_path, demo_run, baseline)
    junit = tmp_path / "junit.xml"
    code, err = _run(capsys, str(spec), "--out", str(tmp_path / "o"), "--junit-xml", str(junit))
    assert code == ExitCode.INTERNAL_ERROR, err
    v = _verdict(tmp_path / "o", "noninferiority.auroc")
    assert v["status"] == "error" and "the baseline is the candidate itself" in v["reason"]
    assert v["values"]["noninferiority.auroc.method"] == "identical-scores"
    assert v["values"]["reference.identical"] is True
    kinds = {name: kind for name, kind, _ in _junit_cases(junit)}
    assert kinds["noninferiority.auroc"] == "error"
    report = (tmp_path / "o" / "report.html").read_text(encoding="utf-8")
    assert "The baseline is the candidate itself" in report


def test_noninferiority_degraded_candidate_fails(
    demo_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    noisy = _noisy_model(demo_run, tmp_path / "noisy.pt", scale=3.0)
    baseline = f'predictions = "{demo_run / "predictions.csv"}"\n'
    spec = _ni_spec(tmp_path, demo_run, baseline, model=noisy)
    junit = tmp_path / "junit.xml"
    code, err = _run(capsys, str(spec), "--out", str(tmp_path / "o"), "--junit-xml", str(junit),
                     "--trust-pickle")  # TorchScript is code  # fmt: skip
    assert code == ExitCode.GATE_FAILED, err
    v = _verdict(tmp_path / "o", "noninferiority.auroc")
    assert v["status"] == "fail" and v["high"] < 0.0
    assert re.fullmatch(r"difference CI low -0\.\d{3} <= -0\.02 \(n=\d+\)", v["reason"])
    kinds = {name: kind for name, kind, _ in _junit_cases(junit)}
    assert kinds["noninferiority.auroc"] == "failure"


def test_noninferiority_better_candidate_passes(
    demo_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], rng: np.random.Generator
) -> None:
    # A weaker released model: the demo's own predictions with noise on the scores.
    rows = list(csv.DictReader((demo_run / "predictions.csv").open(encoding="utf-8")))
    weaker = tmp_path / "released.csv"
    with weaker.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        for r in rows:
            p = float(r["probability"]) + rng.normal(0.0, 0.3)
            w.writerow({**r, "probability": repr(min(max(p, 0.0), 1.0))})
    spec = _ni_spec(tmp_path, demo_run, 'predictions = "not-used.csv"\n')
    code, err = _run(capsys, str(spec), "--out", str(tmp_path / "o"), "--baseline", str(weaker))
    assert code == ExitCode.OK, err
    v = _verdict(tmp_path / "o", "noninferiority.auroc")
    assert v["status"] == "pass" and v["low"] > 0.0
    assert v["values"]["noninferiority.auroc.verdict"] == "superior"
    assert v["values"]["noninferiority.auroc.baseline"] == "released.csv"


def test_example_spec_and_workflow_fit_the_command_line() -> None:
    from medval.cli import _parser
    from medval.gate import read_spec, spec_criteria

    spec = read_spec(REPO / "examples" / "medval.toml")
    crits = {c.name: c for c in spec_criteria(spec)}
    assert spec.resolve("data.dicom_dir") == (REPO / "medval-demo" / "cohort" / "dicom")
    assert "{group}" in crits["auroc-floor-per-scanner"].key
    assert crits["auroc-per-age-band"].small_groups == "skip"
    assert crits["coverage-per-scanner"].field == "coverage"
    assert crits["no-patient-leakage"].threshold is False
    import yaml

    workflow = yaml.safe_load((REPO / "examples" / "github-actions.yml").read_text("utf-8"))
    steps = [s for job in workflow["jobs"].values() for s in job["steps"]]
    runs = [s for s in steps if "medval validate" in s.get("run", "")]
    (gate_step,) = runs
    assert not gate_step.get("continue-on-error")  # a failed gate fails the job
    args = _parser().parse_args(shlex.split(gate_step["run"])[1:])
    assert args.command == "validate" and args.junit_xml and args.out
    assert (REPO / args.spec).resolve() == REPO / "examples" / "medval.toml"
    (upload,) = [s for s in steps if s.get("uses", "").startswith("actions/upload-artifact")]
    assert upload["if"] == "always()"
    uploaded = upload["with"]["path"].split()
    assert args.junit_xml in uploaded and f"{args.out}/report.html" in uploaded


def test_validate_and_demo_pass_the_checklist_to_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from medval import ValidationResult, gate, run

    seen: dict[str, Any] = {}

    def fake(command: str) -> Any:
        def _run(*args: object, **kwargs: Any) -> run.RunOutcome:
            seen[command] = kwargs.get("checklist")
            return run.RunOutcome(
                result=ValidationResult(),
                out_dir=tmp_path,
                report=tmp_path / "report.html",
                result_json=tmp_path / "result.json",
            )

        return _run

    monkeypatch.setattr(run, "run_demo", fake("demo"))
    monkeypatch.setattr(run, "run_spec", fake("validate"))
    monkeypatch.setattr(gate, "read_spec", lambda path: object())
    assert main(["demo", "--out", str(tmp_path), "--quiet"]) == 0
    assert main(["validate", "spec.toml", "--quiet", "--checklist", "tripod-ai-2024"]) == 0
    assert seen == {"demo": "claim-2024", "validate": "tripod-ai-2024"}
    assert main(["demo", "--out", str(tmp_path), "--quiet", "--checklist", "tripod-ai-2024"]) == 0
    assert seen["demo"] == "tripod-ai-2024"
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main(["validate", "spec.toml", "--checklist", "tripod-2024"])
    assert exc.value.code == ExitCode.USAGE_ERROR
    assert "did you mean 'tripod-ai-2024'?" in capsys.readouterr().err


def test_validate_fills_the_tripod_checklist(
    demo_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = _spec(tmp_path, demo_run)
    out = tmp_path / "o"
    code, err = _run(capsys, str(spec), "--out", str(out), "--checklist", "tripod-ai-2024")
    assert code == ExitCode.OK, err
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "Checklist: TRIPOD+AI" in html and '<th scope="col">CLAIM 2024</th>' in html
    assert 'id="item-20a"' in html


# Issue 15: every user error exits 2 (spec) or 3 (data) naming the key, file or
# row, before the heavy work; text from the data never drives the terminal.

_BARE = """[task]
class_names = ["a", "b"]
[data]
dicom_dir = "no-dicom-here"
labels = "{labels}"
[model]
{model}
{extra}
"""
_PREDICTIONS = 'predictions = "preds.csv"'


def _bare(
    tmp_path: Path, extra: str = "", model: str = _PREDICTIONS, labels: str = "labels.csv"
) -> Path:
    (tmp_path / "preds.csv").write_text("case_id,probability\nc1,0.5\n", encoding="utf-8")
    path = tmp_path / "spec.toml"
    path.write_text(_BARE.format(model=model, extra=extra, labels=labels), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        ("[preprocess]\nsize = [0, 0]", r"preprocess\.size must be a positive integer .* \[0, 0\]"),
        ('[preprocess]\nsize = [64, "x"]', r"preprocess\.size must be .* \[64, 'x'\]"),
        ('[preprocess]\nsteps = [{op = "window", center = 40, width = 400}, '
         '{op = "resize", size = [0, 0]}]', r"preprocess\.steps\[1\]\.size must be"),
        ("[analysis]\nseed = -1", r"analysis\.seed must be an integer >= 0; got -1"),
        ("[analysis]\ntest_splits = [1, 2]", r"analysis\.test_splits\[0\] must be a split name"),
        ("[splits]\nseed = -1", r"splits\.seed must be an integer >= 0"),
        ("x = " + "[" * 5000 + "]" * 5000, r"spec\.toml nests arrays or tables too deeply"),
    ],
)  # fmt: skip
def test_spec_values_exit_2_naming_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: str, match: str
) -> None:
    model = 'file = "m.pt"\nfactory = "medval.demo:make_model"'
    code, err = _run(capsys, str(_bare(tmp_path, extra, model=model)))
    assert code == ExitCode.USAGE_ERROR, err
    assert re.search(r"spec error: .*" + match, err), err


def test_a_spec_path_that_is_a_folder_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = _run(capsys, str(tmp_path))
    assert code == ExitCode.USAGE_ERROR
    assert f"spec path {str(tmp_path)!r} is a folder" in err


@pytest.mark.parametrize(
    ("extra", "flags", "match"),
    [
        ("", [], None),  # model.predictions names a folder
        ("", [], "big"),  # a field over the csv module's 131,072 characters
        ("[baseline]\npredictions = 'gone.csv'\nmargin = 0.05", [],
         r"baseline\.predictions file .*gone\.csv does not exist"),
        ("[baseline]\nmargin = 0.05\nmodel = 'b.pt'", ["--baseline", "FOLDER"],
         r"--baseline '.*folder' is a folder"),
    ],
)  # fmt: skip
def test_predictions_files_exit_3_before_the_scan(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    extra: str,
    flags: list[str],
    match: str | None,
) -> None:
    # The DICOM folder does not exist: a check after the scan would name it instead.
    (tmp_path / "folder").mkdir()
    spec = _bare(tmp_path, extra)
    if match is None:
        spec.write_text(spec.read_text().replace('"preds.csv"', '"folder"'))
        match = r"model\.predictions '.*folder' is a folder"
    elif match == "big":
        (tmp_path / "preds.csv").write_text("case_id,probability\nc1," + "9" * 140_000 + "\n")
        match = r"model\.predictions 'preds\.csv' line 2: not a readable CSV \(field larger"
    flags = [str(tmp_path / "folder") if f == "FOLDER" else f for f in flags]
    code, err = _run(capsys, str(spec), "--out", str(tmp_path / "o"), *flags)
    assert code == ExitCode.DATA_ERROR, err
    assert re.search(r"input data error: " + match, err), err
    assert "no-dicom-here" not in err


def test_a_header_only_labels_file_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "labels.csv").write_text("case_id,file,label,split\n", encoding="utf-8")
    code, err = _run(capsys, str(_bare(tmp_path)), "--out", str(tmp_path / "o"))
    assert code == ExitCode.DATA_ERROR
    assert "labels.csv' has a header but no rows" in err


def test_verdict_table_and_error_messages_carry_no_terminal_control(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from medval.cli import verdict_table
    from medval.gate import Verdict

    # \x1b[2K\x1b[1A erased the line above and so hid the verdict (issue 15, item 5).
    evil = "Aster\x1b[2K\x1b[1A\r\nMedical\x9b\u202e"
    verdicts = [
        Verdict(name=f"by-maker {evil}", status="fail", key="k", op=">=", threshold=0.8,
                severity="fail", reason=f"auroc CI low 0.5 < 0.8 on manufacturer={evil}")
        for _ in range(2)
    ]  # fmt: skip
    lines = verdict_table(verdicts).split("\n")
    assert len(lines) == 4 and all(line.isprintable() for line in lines)
    assert "manufacturer=Aster[2K[1A  Medical" in lines[2]

    def crash(*args: object, **kwargs: object) -> None:
        raise RuntimeError(f"group {evil} broke")

    monkeypatch.setattr("medval.gate.read_spec", crash)
    assert main(["validate", "x.toml", "--quiet"]) == ExitCode.INTERNAL_ERROR
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\x9b" not in err and "\u202e" not in err


def test_a_refused_baseline_model_exits_3_before_the_scan(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from medval.demo import shipped_weights

    shutil.copy(shipped_weights(), tmp_path / "m.pt")
    model = 'file = "m.pt"\nfactory = "medval.demo:make_model"'
    extra = "[baseline]\nmodel = 'gone.pt'\nfactory = 'medval.demo:make_model'\nmargin = 0.05"
    code, err = _run(capsys, str(_bare(tmp_path, extra, model=model)), "--out", str(tmp_path / "o"))
    assert code == ExitCode.DATA_ERROR
    assert "gone.pt' does not exist" in err and "no-dicom-here" not in err
