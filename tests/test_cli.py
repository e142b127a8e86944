"""CLI exit codes and messages for bad input (0 ok, 2 spec, 3 data, 4 internal)."""

from __future__ import annotations

import csv
import re
import shutil
from pathlib import Path

import pytest

from medval import ExitCode
from medval.cli import main


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
        ("unknown", r"site-9/p9999/img-1\.dcm"),
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
    assert code == ExitCode.DATA_ERROR and "--trust-pickle" in err
    code, err = _run(capsys, str(spec), "--out", str(tmp_path / "o"), "--trust-pickle")
    assert code == ExitCode.OK, err
    assert (tmp_path / "o" / "report.html").is_file()


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


def test_internal_error_exit_4_never_success(
    demo_run: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import importlib

    module = importlib.import_module("medval.evaluate")

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("analysis crashed")

    monkeypatch.setattr(module, "evaluate", boom)
    code, err = _run(capsys, str(_spec(tmp_path, demo_run)), "--out", str(tmp_path / "o"))
    assert code == ExitCode.INTERNAL_ERROR and "analysis crashed" in err
    assert not (tmp_path / "o" / "report.html").exists()


def test_demo_spec_is_copyable(demo_run: Path, tmp_path: Path) -> None:
    copy = tmp_path / "mine"
    shutil.copytree(demo_run / "cohort", copy / "cohort")
    shutil.copy(demo_run / "model.pt", copy / "model.pt")
    shutil.copy(demo_run / "medval.toml", copy / "medval.toml")
    assert main(["validate", str(copy / "medval.toml"), "--quiet"]) == 0
    assert (copy / "validation" / "report.html").is_file()
