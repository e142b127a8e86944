"""`medval report` re-renders without recomputing; `medval checklist init` round-trips."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from medval import Predictions, evaluate
from medval.cli import main
from medval.report import write_outputs


@pytest.fixture(scope="module")
def result_json(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(3)
    n = 600
    patient = np.arange(n) // 2
    split = np.array(["calibration", "internal", "external"])[patient % 3]
    y = (rng.random(n // 2) < 0.4)[patient].astype(int)
    score = 1 / (1 + np.exp(-(rng.normal(size=n) + 2 * y - 1)))
    ids = [f"c{i}" for i in range(n)]
    cohort = pd.DataFrame(
        {"case_id": ids, "patient_key": [f"p{p}" for p in patient], "split": split, "label": y}
    ).set_index("case_id")
    r = evaluate(Predictions(ids, np.c_[1 - score, score]), cohort, n_resamples=200)
    return write_outputs(r, tmp_path_factory.mktemp("run")).result_json


def test_report_with_answers(result_json: Path, tmp_path: Path) -> None:
    answers = tmp_path / "answers.yaml"
    assert main(["checklist", "init", "--out", str(answers)]) == 0
    text = answers.read_text(encoding="utf-8")
    assert "checklist: claim-2024" in text and "  1:\n    status: missing" in text
    text = text.replace(
        '  1:\n    status: missing\n    text: ""',
        '  1:\n    status: reported\n    text: "Title names a CNN triage model (ZZ-ANSWER)."',
    )
    answers.write_text(text, encoding="utf-8")
    out = tmp_path / "again"
    assert main(["report", str(result_json), "--answers", str(answers), "--out", str(out)]) == 0
    assert (out / "result.json").read_bytes() == result_json.read_bytes()
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "ZZ-ANSWER" in html and 'id="item-1"' in html


def test_bad_answers_and_missing_pdf_engine(
    result_json: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("checklist: claim-2024\nitems:\n  99:\n    status: reported\n", "utf-8")
    code = main(["report", str(result_json), "--answers", str(bad), "--out", str(tmp_path)])
    assert code == 2
    assert "99" in capsys.readouterr().err
    try:
        import weasyprint  # noqa: F401
    except ImportError:
        code = main(["report", str(result_json), "--out", str(tmp_path / "p"), "--pdf"])
        assert code == 2
        assert "pip install 'medval[pdf]'" in capsys.readouterr().err
