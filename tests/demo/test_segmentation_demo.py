"""`medval demo --task segmentation` from the command line: the acceptance run.

The report shows the empty-case counts, the FROC and the conformal risk control
guarantee; no planted identifier reaches an output; the external scanner's
series (2.5 mm apart, SliceThickness 3 mm) are measured on their true spacing.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest

from medval import demo


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    folder = tmp_path_factory.mktemp("segdemo") / "run"
    env = {**os.environ, "MEDVAL_SALT": "seg-demo-test"}
    done = subprocess.run(
        [sys.executable, "-m", "medval", "demo", "--task", "segmentation", "--out", str(folder),
         "--quiet"],
        capture_output=True, text=True, env=env, timeout=900, check=False,
    )  # fmt: skip
    assert done.returncode in (0, 1), done.stderr[-3000:]
    return folder


def test_the_demo_writes_a_complete_run(out: pathlib.Path) -> None:
    for name in ("report.html", "result.json", "medval.toml", "model.pt", "run.log",
                 "manifest.json", "segmentation_cases.csv"):  # fmt: skip
        assert (out / name).is_file(), name


def test_the_report_shows_empty_cases_froc_and_the_guarantee(out: pathlib.Path) -> None:
    html = (out / "report.html").read_text(encoding="utf-8")
    result = json.loads((out / "result.json").read_text(encoding="utf-8"))
    values, estimates = result["values"], result["estimates"]
    empty = values["segmentation.lesion.empty"]
    assert empty["both"] > 0  # healthy cases predicted healthy
    for text in ("Both empty", "False positive on healthy", "Missed", "FROC", "aria-label=\"FROC",
                 "Conformal risk control", "Morphological margins", "Target met"):  # fmt: skip
        assert text in html, text
    target = values["segmentation.lesion.risk.target_fnr"]
    assert target == pytest.approx(0.2)
    assert estimates["segmentation.lesion.risk.fnr"]["value"] is not None
    assert estimates["segmentation.lesion.lesions.froc_score"]["value"] is not None
    assert result["tables"]["segmentation.lesion.risk.by_group"]
    assert "uncertainty" in " ".join(values["evaluation.sections"])


def test_the_external_scanner_is_measured_on_its_true_spacing(out: pathlib.Path) -> None:
    result = json.loads((out / "result.json").read_text(encoding="utf-8"))
    warnings = " ".join(w["warning"] for w in result["tables"]["cohort.volume_warnings"])
    assert "SliceThickness 3" in warnings and "2.5" in warnings


def test_no_planted_identifier_reaches_an_output(out: pathlib.Path) -> None:
    info = demo.write_segmentation_cohort(out.parent / "again", seed=0)
    planted = [v for v in info.phi_values if len(v) >= 4]
    assert planted
    for f in out.iterdir():
        if f.is_file() and f.suffix in (".html", ".json", ".log", ".csv", ".xml"):
            text = f.read_text(encoding="utf-8", errors="replace")
            leaked = [v for v in planted if v in text]
            assert not leaked, (f.name, leaked[:3])
