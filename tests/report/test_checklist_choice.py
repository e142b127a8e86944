"""The report fills the chosen checklist (CLAIM 2024 or TRIPOD+AI) beside the crosswalk."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from medval import Estimate, ValidationResult
from medval._errors import SpecError
from medval.checklist import init_template
from medval.report import render_html, write_outputs

EVIL = '<script>alert("x")</script>'


def _result() -> ValidationResult:
    r = ValidationResult()
    r.values.update(
        {
            "evaluation.splits": ["internal"],
            "cohort.n_cases": 120,
            "operating_point.threshold": 0.4,
            "operating_point.rule": "youden",
        }
    )
    r.estimates["discrimination.auroc"] = Estimate(0.88, 0.83, 0.92, n=120)
    r.tables["curves.roc"] = [{"fpr": x / 10, "tpr": min(1.0, x / 6)} for x in range(11)]
    return r


def _row(html: str, number: str) -> str:
    """The checklist table row of item ``number``."""
    match = re.search(rf'<tr id="item-{re.escape(number)}">(.*?)</tr>', html, re.DOTALL)
    assert match is not None, f"no row for item {number}"
    return match.group(1)


def _header(html: str) -> list[str]:
    table = html[html.index('<table class="checklist">') :]
    head = table[: table.index("</thead>")]
    return re.findall(r'<th scope="col">([^<]*)</th>', head)


def test_tripod_report_shows_tripod_items_and_their_claim_counterparts() -> None:
    html = render_html(
        _result(), result_sha256="0" * 64, generated_at="T", checklist_name="tripod-ai-2024"
    )
    assert "Checklist: TRIPOD+AI" in html and "Checklist: CLAIM 2024" not in html
    assert _header(html) == ["#", "Section", "Item", "CLAIM 2024", "Status", "Evidence or answer"]
    for number in ("3c", "12e", "20a", "23b", "27c"):  # TRIPOD numbering, not CLAIM's
        _row(html, number)
    assert 'id="item-44"' not in html  # CLAIM's last item is not a TRIPOD item
    # TRIPOD 8a (outcome definition) covers part of CLAIM 14 and 15.
    row = _row(html, "8a")
    assert '<span class="mono">14</span> definition of the reference standard' in row
    assert '<span class="mono">15</span> rationale for the reference standard' in row
    assert "(part)" in row
    # TRIPOD 3c (health inequalities) has no confirmed CLAIM counterpart.
    assert '<td class="crosswalk"><span class="muted">—</span></td>' in _row(html, "3c")
    # The hint names the checklist, so the answers file matches the report.
    assert "medval checklist init --checklist tripod-ai-2024" in html
    assert "medval report result.json --checklist tripod-ai-2024 --answers" in html


def test_claim_report_shows_the_tripod_column() -> None:
    html = render_html(_result(), result_sha256="0" * 64, generated_at="T")
    assert "Checklist: CLAIM 2024" in html
    assert _header(html) == ["#", "Section", "Item", "TRIPOD+AI", "Status", "Evidence or answer"]
    row = _row(html, "43")  # availability of software, model, data
    assert [m for m in re.findall(r'<span class="mono">([^<]+)</span>', row)] == [
        "18e",
        "18f",
        "22",
    ]
    assert "medval checklist init</span>" in html  # the default needs no --checklist


def test_tripod_answers_fill_tripod_human_items(tmp_path: Path) -> None:
    template = init_template("tripod-ai-2024")
    assert "checklist: tripod-ai-2024" in template
    blank_3c = '  "3c":\n    status: missing\n    text: ""'
    blank_19 = '  19:\n    status: missing\n    text: ""'
    assert blank_3c in template and blank_19 in template
    filled = template.replace(
        blank_3c, f"  \"3c\":\n    status: reported\n    text: 'ZZ-INEQUALITIES {EVIL}'"
    ).replace(blank_19, '  19:\n    status: not_applicable\n    reason: "ZZ-NO-PPI"')
    answers = tmp_path / "tripod.yaml"
    answers.write_text(filled, encoding="utf-8")
    out = write_outputs(
        _result(), tmp_path / "out", generated_at="T", answers=answers, checklist="tripod-ai-2024"
    )
    html = out.report.read_text(encoding="utf-8")
    row = _row(html, "3c")
    assert "<strong>reported</strong>" in row and "ZZ-INEQUALITIES" in row
    assert "<script>alert" not in html and "&lt;script&gt;alert(&#34;x&#34;)" in row
    row = _row(html, "19")
    assert "<strong>not applicable</strong>" in row and "ZZ-NO-PPI" in row
    assert "<strong>missing</strong>" in _row(html, "3a")  # unanswered stays missing


def test_report_stays_self_contained_with_tripod() -> None:
    html = render_html(
        _result(), result_sha256="0" * 64, generated_at="T", checklist_name="tripod-ai-2024"
    )
    assert not re.search(r'<(link|script|img|iframe)\b|src=|url\(\s*["\']?https?:', html)


def test_unknown_checklist_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(
        SpecError, match=r"unknown checklist 'tripod'; did you mean 'tripod-ai-2024'\? valid: "
    ):
        write_outputs(_result(), out, checklist="tripod")
    assert not out.exists()


def test_answers_for_the_other_checklist_are_refused_before_writing(tmp_path: Path) -> None:
    answers = tmp_path / "tripod.yaml"
    answers.write_text(init_template("tripod-ai-2024"), encoding="utf-8")
    out = tmp_path / "out"
    with pytest.raises(SpecError) as info:
        write_outputs(_result(), out, answers=answers)  # the default: CLAIM 2024
    message = str(info.value)
    assert "for 'tripod-ai-2024' but the checklist is 'claim-2024'" in message
    assert "--checklist tripod-ai-2024" in message
    assert "medval checklist init --checklist claim-2024" in message
    assert not out.exists()


def test_answers_without_a_checklist_line_still_work(tmp_path: Path) -> None:
    answers = tmp_path / "old.yaml"
    answers.write_text("items:\n  1: {status: reported, text: ZZ-OLD-FILE}\n", "utf-8")
    out = write_outputs(_result(), tmp_path / "out", generated_at="T", answers=answers)
    assert "ZZ-OLD-FILE" in _row(out.report.read_text(encoding="utf-8"), "1")
