"""medval.evaluate on a segmentation table: the sections aggregate what score_case measured."""

from __future__ import annotations

import numpy as np
import pytest

import medval
from medval import conformal, segmentation

from ._seg_cohort import cohort


@pytest.fixture(scope="module")
def result() -> medval.ValidationResult:
    cases, frame = cohort()
    return medval.evaluate(cases, frame, n_resamples=200, seed=3,
                           test_splits=["internal", "external"])  # fmt: skip


def test_means_are_the_per_case_means_with_clustered_intervals(result) -> None:
    cases, frame = cohort()
    m = frame.loc[cases.case_ids, "split"].to_numpy() == "internal"
    for metric in ("dice", "hd95", "nsd", "assd"):
        e = result.estimates[f"segmentation.lesion.{metric}"]
        assert e.value == pytest.approx(cases.metrics["lesion"][metric][m].mean(), abs=1e-12)
        assert e.low <= e.value <= e.high
        assert e.method == "bootstrap-percentile-clustered" and e.seed == 3
    assert result.values["task.kind"] == "segmentation"
    assert result.values["evaluation.clustered_by"] == "patient"


def test_empty_cases_are_counted_never_dropped(result) -> None:
    cases, frame = cohort()
    m = frame.loc[cases.case_ids, "split"].to_numpy() == "internal"
    empty = result.values["segmentation.lesion.empty"]
    assert sum(empty.values()) == int(m.sum())
    states = cases.empty["lesion"][m]
    assert empty["both"] == int((states == "both").sum())
    # Relative volume error is undefined only for a false positive on a healthy case: those
    # are left out of its mean, and its n says so.
    rve = result.estimates["segmentation.lesion.relative_volume_error"]
    assert rve.n == int(m.sum()) - empty["reference"] > 0


def test_lesion_section_matches_froc_on_the_split(result) -> None:
    cases, frame = cohort()
    idx = np.flatnonzero(frame.loc[cases.case_ids, "split"].to_numpy() == "external")
    les = [cases.lesions["lesion"][i] for i in idx]
    key = "split.external.segmentation.lesion.lesions"
    assert result.estimates[f"{key}.froc_score"].value == pytest.approx(
        segmentation.froc(les).score
    )
    summary = segmentation.lesion_summary(les)
    assert result.estimates[f"{key}.sensitivity"].value == pytest.approx(
        summary["lesion_sensitivity"]
    )
    assert result.estimates[f"{key}.fp_per_scan"].value == pytest.approx(summary["fp_per_scan"])
    assert result.tables[f"{key}.froc"]


def test_risk_control_is_calibrated_on_the_calibration_split(result) -> None:
    cases, frame = cohort()
    splits = frame.loc[cases.case_ids, "split"].to_numpy()
    h = cases.histograms["lesion"]
    crc = conformal.MaskRiskControl(confidence_level=0.9).calibrate(h[splits == "calibration"])
    assert result.values["segmentation.lesion.risk.threshold"] == crc.threshold_
    test = (splits == "internal") & (h[:, 0].sum(axis=1) > 0)
    fnr = crc.risk(h[test])
    assert result.estimates["segmentation.lesion.risk.fnr"].value == pytest.approx(fnr.mean())
    assert result.tables["segmentation.lesion.risk.by_group"]


def test_voxel_sections_and_subgroups(result) -> None:
    assert "segmentation.lesion.calibration.ece" in result.estimates
    assert "segmentation.lesion.uncertainty.failure_detection" in result.values
    assert "subgroup.manufacturer=M0.segmentation.lesion.dice" in result.estimates
    assert result.tables["segmentation.worst_cases"]
    assert {r["section"] for r in result.tables["evaluation.skipped"]} == set()


def test_the_report_renders_the_segmentation_sections(result, tmp_path) -> None:
    out = result.write_report(tmp_path)
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    for text in ("Lesion detection", "FROC", "Conformal guarantees for masks",
                 "False positive on healthy", "Morphological margins", "Worst cases"):  # fmt: skip
        assert text in html, text
    assert "<script" not in html
    del out


def test_mondrian_calibrates_one_threshold_and_margin_per_scanner() -> None:
    cases, frame = cohort()
    r = medval.evaluate(cases, frame, n_resamples=200, seed=3, mask_mondrian="manufacturer",
                        test_splits=["internal", "external"])  # fmt: skip
    splits = frame.loc[cases.case_ids, "split"].to_numpy()
    groups = frame.loc[cases.case_ids, "manufacturer"].to_numpy()
    h = cases.histograms["lesion"]
    cal = splits == "calibration"
    crc = conformal.MaskRiskControl(confidence_level=0.9).calibrate(h[cal], groups=groups[cal])
    assert r.values["segmentation.lesion.risk.thresholds"] == {
        str(k): float(v) for k, v in crc.thresholds_.items()
    }
    test = (splits == "external") & (h[:, 0].sum(axis=1) > 0)
    expected = crc.risk(h[test], groups=groups[test]).mean()
    assert r.estimates["split.external.segmentation.lesion.risk.fnr"].value == pytest.approx(
        expected
    )
    assert "segmentation.lesion.margin.steps_by_group" in r.values


def test_a_test_scanner_unseen_in_calibration_falls_back_to_the_marginal_threshold() -> None:
    cases, frame = cohort()
    frame = frame.copy()
    # Scanner M2 only in the test splits: no calibration case of its own.
    frame.loc[(frame["manufacturer"] == "M2") & (frame["split"] == "calibration"), "split"] = (
        "external"
    )
    r = medval.evaluate(cases, frame, n_resamples=200, seed=3, mask_mondrian="manufacturer",
                        test_splits=["internal", "external"])  # fmt: skip
    assert r.values["split.external.segmentation.lesion.risk.uncalibrated_groups"] == ["M2"]
    assert "M2" not in r.values["segmentation.lesion.risk.thresholds"]


def test_the_checklist_fills_segmentation_items_from_the_mask_metrics(result) -> None:
    from medval.checklist._rules import RULES

    text = RULES["internal"](result)
    assert text is not None and "Dice" in text.text and "HD95" in text.text
    assert "Dice" in RULES["performance"](result).text
    assert "false positives on healthy" in RULES["failure"](result).text
    assert "NSD at 2.0 mm" in RULES["metrics"](result).text
