"""Issue 15's acceptance: one bad file never stops a run.

The small demo cohort plus every crafted hostile file (tests/io/_crafted.py),
each labelled so that it is meant to be in the cohort. ``medval validate``
runs in a child process that reports its own peak memory: the run completes
(exit 0 or 1), every crafted file is listed as excluded with its reason, no
output holds the data folder's absolute path, and the peak stays under 2 GiB
(the RLE file claiming 65535 x 65535 pixels is refused before decoding).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from medval import ExitCode
from medval.cli import main

from ..io._crafted import CRAFTED
from .conftest import PHI_FOLDER, write_spec

_CHILD = (
    "import resource, sys\n"
    "from medval.cli import main\n"
    "code = main(sys.argv[1:])\n"
    "print(f'peak_kib={resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}', file=sys.stderr)\n"
    "sys.exit(code)\n"
)
_MODEL = 'factory = "medval.demo:make_model"\nfile = "model.pt"'


def test_a_cohort_with_every_crafted_file_completes(hostile: Path) -> None:
    spec = write_spec(hostile, "medval", _MODEL)
    out = hostile.parent / "out"  # the outputs' own folder is the user's to name
    args = ["validate", str(spec), "--out", str(out), "--junit-xml", str(out / "junit.xml")]
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, *args], capture_output=True, text=True, timeout=600
    )
    assert proc.returncode in (ExitCode.OK, ExitCode.GATE_FAILED), proc.stderr[-3000:]
    found = re.search(r"peak_kib=(\d+)", proc.stderr)
    assert found is not None
    assert int(found.group(1)) < 2 * 1024**2  # KiB on Linux: under 2 GiB
    result = json.loads((out / "result.json").read_text(encoding="utf-8"))
    excluded = {row["file"]: row["reason"] for row in result["tables"]["cohort.exclusions"]}
    for name, crafted in CRAFTED.items():
        assert excluded[f"crafted/{name}"].startswith(crafted.reason), (name, excluded)
    values = result["values"]
    assert values["cohort.n_unusable"] == len(CRAFTED)
    assert values["cohort.n_included"] + len(CRAFTED) == values["cohort.n_files"] - 2  # 2 junk
    report = (out / "report.html").read_text(encoding="utf-8")
    assert f"{len(CRAFTED)} labelled file(s)" in report and "could not be read or decoded" in report
    for output in ("result.json", "report.html", "junit.xml", "run.log"):
        text = (out / output).read_text(encoding="utf-8")
        assert PHI_FOLDER not in text, output
    decoded = sum(c.stage == "decode" for c in CRAFTED.values())
    assert f"WARNING: {decoded} of " in (out / "run.log").read_text(encoding="utf-8")


@pytest.mark.parametrize("stage", ["scan", "decode"])
def test_too_many_unusable_files_stop_the_run_with_exit_3(
    hostile: Path, capsys: pytest.CaptureFixture[str], stage: str
) -> None:
    """Over the limit at the scan: stop before decoding; only with the decode failures: after."""
    with (hostile / "cohort" / "labels.csv").open(encoding="utf-8") as f:
        labelled = sum(1 for _ in f) - 1
    at_scan = sum(c.stage == "scan" for c in CRAFTED.values())
    excluded = at_scan if stage == "scan" else len(CRAFTED)
    limit = 0.1 if stage == "scan" else round((at_scan + len(CRAFTED)) / 2 / labelled, 3)
    spec = write_spec(hostile, f"strict-{stage}", _MODEL, data=f"max_excluded_fraction = {limit}")
    out = hostile.parent / f"strict-{stage}"
    args = ["validate", str(spec), "--out", str(out), "--junit-xml", str(out / "junit.xml")]
    assert main(args) == ExitCode.DATA_ERROR
    err = capsys.readouterr().err
    assert re.search(
        rf"{excluded} of the {labelled} labelled files \(\d+%\) cannot be used, more than "
        rf"\[data\] max_excluded_fraction = {limit} allows: the cohort is probably wrong",
        err,
    ), err
    assert ("decoding the" in err) == (stage == "decode")
    assert PHI_FOLDER not in err
    assert PHI_FOLDER not in (out / "junit.xml").read_text(encoding="utf-8")
