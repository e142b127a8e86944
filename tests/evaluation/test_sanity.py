"""Collapsed or chance-level outputs lead the report and name preprocessing."""

from __future__ import annotations

import html

import numpy as np
import pandas as pd

from medval import Predictions, evaluate
from medval.report import render_html

from .conftest import synthetic


def _collapsed(seed: int) -> tuple[Predictions, pd.DataFrame]:
    """What a wrongly normalised input does: p = 0.41-0.46 whatever the label."""
    preds, cohort = synthetic(seed, mc=False)
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.41, 0.46, preds.n_cases)
    return Predictions(preds.case_ids, np.column_stack([1 - p, p]),
                       class_names=preds.class_names), cohort  # fmt: skip


def test_collapsed_outputs_are_flagged_and_lead_the_findings() -> None:
    preds, cohort = _collapsed(1)
    r = evaluate(preds, cohort, n_resamples=200)
    assert r.values["sanity.collapsed"] is True
    assert r.values["split.external.sanity.collapsed"] is True
    assert r.values["sanity.spread_ratio"] < 0.1
    assert r.values["sanity.chance_level"] is True
    page = html.unescape(render_html(r, result_sha256="0" * 64))
    findings = page[page.index("Key findings") : page.index('id="performance"')]
    first = findings[findings.index("<li>") :]
    assert first.startswith("<li>The model's outputs have collapsed on 'internal'")
    assert "First suspect: the preprocessing" in first
    # Two chance-level results are never called compatible with each other.
    assert "is compatible with 'internal'" not in findings
    assert "compatible with chance (0.5)" in findings


def test_a_working_model_is_not_flagged() -> None:
    preds, cohort = synthetic(2, mc=False)
    r = evaluate(preds, cohort, n_resamples=200)
    assert r.values["sanity.collapsed"] is False
    assert r.values["sanity.chance_level"] is False
    assert 0.3 < r.values["sanity.spread_ratio"] < 1.5
    labels = cohort.loc[preds.case_ids, "label"].to_numpy()
    internal = cohort.loc[preds.case_ids, "split"].to_numpy() == "internal"
    prevalence = float((labels[internal] == 1).mean())
    assert r.values["sanity.label_sd"] == np.sqrt(prevalence * (1 - prevalence))
    assert r.values["sanity.score_sd"] == np.std(preds.probabilities[internal, 1])


def test_a_model_stuck_at_one_value_per_scanner_is_flagged() -> None:
    """Different constants per scanner spread across the split, not within a scanner."""
    preds, cohort = synthetic(3, mc=False)
    rng = np.random.default_rng(3)
    scanner = cohort.loc[preds.case_ids, "manufacturer"].to_numpy()
    p = np.where(scanner == "Aster", 0.2, 0.8) + rng.uniform(-0.005, 0.005, preds.n_cases)
    stuck = Predictions(preds.case_ids, np.column_stack([1 - p, p]), class_names=preds.class_names)
    r = evaluate(stuck, cohort, n_resamples=200)
    assert r.values["sanity.collapsed"] is False  # the split as a whole spreads
    assert r.values["sanity.spread_ratio"] > 0.5
    assert r.values["sanity.collapsed_scanners"] == ["Aster", "Borealis"]
    page = html.unescape(render_html(r, result_sha256="0" * 64))
    findings = page[page.index("Key findings") : page.index('id="performance"')]
    assert "collapsed within scanner(s) Aster, Borealis on 'internal'" in findings
    good = evaluate(preds, cohort, n_resamples=200)
    assert good.values["sanity.collapsed_scanners"] == []


def test_all_tied_scores_are_at_chance() -> None:
    preds, cohort = synthetic(4, mc=False)
    tied = Predictions(preds.case_ids, np.full((preds.n_cases, 2), 0.5),
                       class_names=preds.class_names)  # fmt: skip
    r = evaluate(tied, cohort, n_resamples=200)
    assert r.values["sanity.collapsed"] is True
    assert r.values["sanity.chance_level"] is True
