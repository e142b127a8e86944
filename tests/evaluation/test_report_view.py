"""The report shows what was not run (with the fix) at the top, and every setting used."""

from __future__ import annotations

import html
from pathlib import Path

from medval import evaluate
from medval.report import render_html

from .conftest import synthetic


def test_skipped_sections_lead_the_report_and_settings_close_it() -> None:
    preds, cohort = synthetic(8, splits=("internal", "external"), mc=False)
    result = evaluate(preds, cohort, n_resamples=200, seed=11)
    page = html.unescape(render_html(result, result_sha256="0" * 64))
    top = page.index("Not run")
    assert top < page.index('id="performance"')
    skipped = page[top : page.index('id="performance"')]
    assert "conformal prediction sets and triage</strong> was not run" in skipped
    assert "calibration_split" in skipped and "mc_samples" in skipped
    settings = page[page.index("Evaluation settings") :]
    assert "analysis.seed" in settings and ">11<" in settings
    assert "shift.subgroup_columns" in settings
    assert "Seed of every resampling" in settings


def test_a_dataframe_cohort_lists_exactly_what_needs_files_or_a_baseline() -> None:
    preds, cohort = synthetic(9)
    result = evaluate(preds, cohort, n_resamples=200)
    skipped = {r["section"] for r in result.tables["evaluation.skipped"]}
    # A bare DataFrame has no file scan (flow, pixel hashes), no images (input
    # intensities) and no baseline was given.
    assert skipped == {"reference", "cohort_flow", "pixel_duplicates", "input"}
    page = render_html(result, result_sha256="0" * 64)
    assert "non-inferiority against the baseline</strong> was not run" in page


def test_write_report_fills_the_checklist_asked_for(tmp_path: Path) -> None:
    preds, cohort = synthetic(10, mc=False)
    result = evaluate(preds, cohort, n_resamples=200)
    page = result.write_report(tmp_path / "t", checklist="tripod-ai-2024").read_text("utf-8")
    assert "Checklist: TRIPOD+AI" in page
    page = result.write_report(tmp_path / "c").read_text("utf-8")
    assert "Checklist: CLAIM" in page
