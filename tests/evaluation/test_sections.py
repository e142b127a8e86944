"""Sections: registered once, skipped with a reason and a fix, pure, never clashing."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from medval import evaluate
from medval.evaluation import SECTIONS, Inputs, Part, Section
from medval.uncertainty import recommended_referral_fraction

from .conftest import synthetic


def _skipped(result: object) -> dict[str, dict[str, str]]:
    return {row["section"]: row for row in result.tables["evaluation.skipped"]}  # type: ignore[attr-defined]


def test_a_new_section_is_one_definition_and_one_registration() -> None:
    """The worked example of docs/architecture.md: prevalence per evaluated split."""

    def prevalence(inputs: Inputs, earlier: Part) -> Part:
        out = Part()
        for name in inputs.test_splits:
            y, _, _ = inputs.split_arrays(name)
            out.values[f"{inputs.prefix(name)}example.prevalence"] = float(y.mean())
        return out

    example = Section("example", "prevalence per split", prevalence, tasks=("binary",))
    preds, cohort = synthetic(1)
    r = evaluate(preds, cohort, n_resamples=200, sections=(*SECTIONS, example))
    assert r.values["evaluation.sections"][-1] == "example"
    frame = cohort.loc[preds.case_ids]
    internal = frame["split"].to_numpy() == "internal"
    expected = float((frame["label"].to_numpy()[internal] == 1).mean())
    assert r.values["example.prevalence"] == pytest.approx(expected)
    assert "split.external.example.prevalence" in r.values
    # Everything else is untouched by the extra section.
    plain = evaluate(preds, cohort, n_resamples=200)
    assert r.estimates == plain.estimates


def test_unmet_needs_are_recorded_with_reason_and_fix() -> None:
    preds, cohort = synthetic(2, splits=("internal", "external"), mc=False)
    r = evaluate(preds, cohort, n_resamples=200)
    skipped = _skipped(r)
    assert "calibration" in skipped["conformal"]["reason"]
    assert "calibration_split" in skipped["conformal"]["fix"]
    assert "MC-dropout" in skipped["uncertainty"]["reason"]
    assert "mc_samples" in skipped["uncertainty"]["fix"]
    assert "reference" in skipped and "[baseline]" in skipped["reference"]["fix"]
    assert "conformal" not in r.values["evaluation.sections"]
    assert not any(k.startswith("conformal.") for k in r.values)
    # Not applicable to a binary task: not listed as skipped.
    assert "multiclass" not in skipped


def test_switches_and_a_missing_cohort_are_recorded() -> None:
    preds, cohort = synthetic(3)
    labelled = preds.with_labels(cohort.loc[preds.case_ids, "label"].to_numpy())
    r = evaluate(preds, cohort, n_resamples=200, conformal=False, shift=False)
    skipped = _skipped(r)
    assert skipped["conformal"]["reason"] == "turned off (conformal.enabled = false)"
    assert skipped["shift"]["reason"] == "turned off (shift.enabled = false)"
    bare = evaluate(labelled, n_resamples=200)
    for name in ("shift", "failures", "cohort"):
        assert _skipped(bare)[name]["reason"] == "no cohort was given"


def test_a_section_cannot_overwrite_another_sections_key() -> None:
    def clash(inputs: Inputs, earlier: Part) -> Part:
        out = Part()
        out.estimates["discrimination.auroc"] = earlier.estimates["discrimination.auroc"]
        return out

    preds, cohort = synthetic(4)
    with pytest.raises(RuntimeError, match="rewrites estimates"):
        evaluate(preds, cohort, n_resamples=200,
                 sections=(*SECTIONS, Section("clash", "clash", clash)))  # fmt: skip


def test_inputs_are_read_only_for_sections() -> None:
    def writer(inputs: Inputs, earlier: Part) -> Part:
        inputs.y[0] = 1 - inputs.y[0]
        return Part()

    preds, cohort = synthetic(5)
    with pytest.raises(ValueError, match="read-only"):
        evaluate(preds, cohort, n_resamples=200, sections=(Section("w", "w", writer),))

    def swap(inputs: Inputs, earlier: Part) -> Part:
        inputs.threshold = 0.1  # type: ignore[misc]
        return Part()

    with pytest.raises(dataclasses.FrozenInstanceError):
        evaluate(preds, cohort, n_resamples=200, sections=(Section("s", "s", swap),))


def test_every_registered_section_has_a_unique_name() -> None:
    names = [s.name for s in SECTIONS]
    assert len(names) == len(set(names))
    with pytest.raises(ValueError, match="unknown needs"):
        Section("bad", "bad", lambda i, e: Part(), needs=("labels_please",))


def test_multiclass_with_mc_samples_and_a_calibration_split_runs() -> None:
    """Crashed before: the referral fit refused K > 2 (InputError after inference)."""
    preds, cohort = synthetic(6, k=3)
    r = evaluate(preds, cohort, n_resamples=200, positive_class=2, small_cell=5)
    assert "uncertainty" in r.values["evaluation.sections"]
    rec = r.values["uncertainty.referral_for_sensitivity"]
    assert rec["chosen_on"] == "calibration"


def test_multiclass_referral_matches_a_brute_force_search() -> None:
    rng = np.random.default_rng(7)
    n, k = 300, 3
    y = rng.integers(0, k, n)
    p = rng.dirichlet(np.ones(k), n)
    p[np.arange(n), y] += rng.uniform(0, 1.5, n)
    p /= p.sum(axis=1, keepdims=True)
    u = rng.uniform(size=n)
    got = recommended_referral_fraction(p, y, u, target_sensitivity=0.9, positive_class=1)
    called = p.argmax(axis=1) == 1
    best = None
    for cut in np.sort(np.r_[u, np.inf])[::-1]:  # refer u >= cut, fewest referred first
        keep = u < cut
        pos = keep & (y == 1)
        if pos.any() and called[pos].mean() >= 0.9:
            best = (float(1 - keep.mean()), float(called[pos].mean()))
            break
    assert best is not None
    assert got["fraction"] == pytest.approx(best[0])
    assert got["retained_sensitivity"] == pytest.approx(best[1])
