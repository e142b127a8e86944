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


def _tripod_answers(path: Path) -> Path:
    assert main(["checklist", "init", "--checklist", "tripod-ai-2024", "--out", str(path)]) == 0
    text = path.read_text(encoding="utf-8")
    assert "checklist: tripod-ai-2024" in text
    blank = '  "12d":\n    status: missing\n    text: ""'
    assert blank in text
    text = text.replace(
        blank, '  "12d":\n    status: reported\n    text: "Sites pooled; ZZ-TRIPOD-ANSWER."'
    )
    path.write_text(text, encoding="utf-8")
    return path


def test_report_with_tripod_checklist_and_answers(result_json: Path, tmp_path: Path) -> None:
    answers = _tripod_answers(tmp_path / "tripod.yaml")
    out = tmp_path / "tripod"
    args = ["report", str(result_json), "--checklist", "tripod-ai-2024", "--out", str(out)]
    assert main([*args, "--answers", str(answers)]) == 0
    assert (out / "result.json").read_bytes() == result_json.read_bytes()
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "Checklist: TRIPOD+AI" in html and '<th scope="col">CLAIM 2024</th>' in html
    row = html[html.index('<tr id="item-12d">') :]
    row = row[: row.index("</tr>")]
    assert "<strong>reported</strong>" in row and "ZZ-TRIPOD-ANSWER" in row


def test_answers_for_the_other_checklist_exit_2(
    result_json: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    answers = _tripod_answers(tmp_path / "tripod.yaml")
    out = tmp_path / "o"
    code = main(["report", str(result_json), "--answers", str(answers), "--out", str(out)])
    assert code == 2
    err = capsys.readouterr().err
    assert "tripod.yaml: these answers are for 'tripod-ai-2024'" in err
    assert "but the checklist is 'claim-2024'" in err and "`--checklist tripod-ai-2024`" in err
    assert not out.exists()


def test_unknown_checklist_exit_2_with_a_suggestion(
    result_json: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "o"
    with pytest.raises(SystemExit) as info:
        main(["report", str(result_json), "--checklist", "tripod", "--out", str(out)])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "argument --checklist: unknown checklist 'tripod'; did you mean 'tripod-ai-2024'?" in err
    assert not out.exists()
    with pytest.raises(SystemExit) as info:
        main(["checklist", "init", "--checklist", "claim"])
    assert info.value.code == 2
    assert "did you mean 'claim-2024'?" in capsys.readouterr().err
