"""The report of a regression result: its sections, figures, findings and omissions."""

from __future__ import annotations

import html as html_lib
import re
from typing import Any

import pytest

from medval import Estimate, ValidationResult
from medval.checklist import load_checklist
from medval.report import UnitFormat, render_html
from medval.report._regression import regression_context, regression_findings

from ._regression_result import EVIL, regression_result


def _render(result: ValidationResult, **kw: Any) -> str:
    return render_html(result, result_sha256="0" * 64, generated_at="T", **kw)


@pytest.fixture(scope="module")
def full() -> str:
    return _render(regression_result())


@pytest.fixture(scope="module")
def bare() -> str:
    """Without the sections that need a sigma and a calibration split."""
    return _render(regression_result(sigma=False, intervals=False))


def _between(html: str, start: str, end: str) -> str:
    i = html.index(start)
    return html[i : html.index(end, i)]


def _findings(html: str) -> str:
    return html_lib.unescape(_between(html, "<h3>Key findings</h3>", "</ul>"))


def _section(html: str, anchor: str) -> str:
    return _between(html, f'<h2 id="{anchor}">', "</section>")


def test_summary_table_has_each_split_with_intervals_in_the_unit(full: str) -> None:
    table = _between(full, "<caption>Errors of the bone age predictions", "</table>")
    heads = re.findall(r'<th scope="col" class="num">([^<]*)</th>', table)
    assert heads == ["Cases", "MAE (months)", "Median AE (months)", "RMSE (months)",
                     "Bias (months)", "Interval coverage (target 90%)"]  # fmt: skip
    rows = table.split("<tr>")[2:]
    assert [re.search(r'<th scope="row">([a-z]+)', r).group(1) for r in rows] == [  # type: ignore[union-attr]
        "internal",
        "external",
    ]
    # MAE, bias (negative bounds joined by "to") and coverage with their intervals.
    assert '8.1<span class="ci">7.4–8.9</span>' in rows[0]
    assert '14.2<span class="ci">12.8–15.7</span>' in rows[1]
    assert '-4.2<span class="ci">-6.1 to -2.3</span>' in rows[1]
    assert '90.5%<span class="ci">85.7%–94.2%</span>' in rows[0]
    assert '78.0%<span class="ci">71.0%–84.0%</span>' in rows[1]
    assert "The declared range of the bone age is 0.0–240.0 months." in full


def test_the_classifier_sections_are_not_shown(full: str) -> None:
    for text in ("Operating threshold", "Performance by evaluated split", "ROC curves",
                 "Confusion matrix", "AUROC"):  # fmt: skip
        assert text not in full, text


def test_figures_are_inline_svg_and_the_report_runs_no_script(full: str) -> None:
    # Bland-Altman (2 splits), error by value, subgroup forest, sigma calibration, referral (2).
    assert full.count("<svg") == 7
    assert "<script" not in full and "<img" not in full and "src=" not in full
    assert "prediction − reference (months)" in full  # the Bland-Altman axis, as text
    assert "nominal coverage of mean ± z·sigma" in full
    assert full == _render(regression_result())  # byte-reproducible


def test_bland_altman_table_shows_bias_limits_and_slopes(full: str) -> None:
    table = _between(full, "<caption>Bias and limits of agreement by split", "</table>")
    external = table.split("<tr>")[-1]
    assert '-36.5<span class="ci">-38.9 to -34.1</span>' in external  # lower limit
    assert '28.1<span class="ci">25.7–30.5</span>' in external  # upper limit
    assert '-0.150<span class="ci">-0.220 to -0.080</span>' in external  # proportional bias
    assert '-0.200<span class="ci">-0.270 to -0.130</span>' in external  # error slope
    assert "bias ± 1.96 SD of the differences" in full
    assert "Bland–Altman plot of 'external' (30 of 150 cases drawn at random)" in full


def test_error_by_value_and_subgroups(full: str) -> None:
    table = _between(full, "<caption>Error by bin of the true value on 'external'", "</table>")
    assert '<th scope="row">150.0–228.0</th><td class="num">50</td>' in table
    assert '-6.2<span class="ci">-9.2 to -3.2</span>' in table and "16.2" in table
    groups = _section(full, "subgroups")
    assert (
        "Highest MAE: <strong>manufacturer = &lt;script&gt;alert(1)&lt;/script&gt;</strong> "
        "(14.0 months)" in groups
    )
    by_maker = _between(groups, "<caption>By manufacturer", "</table>")
    assert '14.0<span class="ci">12.5–15.6</span>' in by_maker
    assert "<strong>worst MAE</strong>" in by_maker
    assert '&lt; 11</td><td colspan="3" class="num">suppressed' in by_maker  # Vendor Z, n=4
    assert "<svg" in groups


def test_conformal_section_flags_groups_below_target(full: str) -> None:
    iv = _section(full, "conformal")
    assert "quantile is 1.645 × sigma" in iv and "300 calibration cases" in iv
    by_split = _between(iv, "<caption>Coverage and width", "</table>")
    assert "<strong>no: below target</strong>" in by_split.split("<tr>")[-1]
    assert "35.1" in by_split and "33.0" in by_split  # mean and median width
    groups = _between(iv, "<caption>Coverage per group", "</table>")
    rows = groups.split("<tr>")[2:]
    flagged = [r for r in rows if "<strong>below target</strong>" in r]
    assert len(flagged) == 2 and all("&lt;script&gt;" in r for r in flagged)
    assert '83.0%<span class="ci">75.0%–88.5%</span>' in flagged[0]
    assert all("suppressed" in r for r in rows if "Vendor Z" in r)
    assert iv.count("Conditional coverage by the true value") == 2
    assert iv.count("Conditional coverage by the model&#39;s sigma") == 2


def test_uncertainty_section_shows_decomposition_calibration_and_referral(full: str) -> None:
    u = _section(full, "uncertainty")
    assert "MC dropout and the variance head" in u
    assert "total = epistemic + aleatoric" in u
    assert "30.00 (months)²" in u and "32%" in u  # external epistemic and its share
    assert '0.050<span class="ci">-0.100 to 0.200</span>' in u  # Spearman on external
    assert "4.488" in u  # NLL
    gaussian = _between(u, "<caption>Gaussian intervals", "</table>")
    assert gaussian.count("<strong>over-confident</strong>") == 1
    assert '<h3 id="calibration">' in u
    assert u.count("<svg") == 3
    referral = _between(u, "<caption>MAE of the retained cases on 'internal'", "</table>")
    assert '<td class="num">30%</td><td class="num">6.9</td><td class="num">4.5</td>' in referral


def test_key_findings_name_what_the_intervals_support(full: str) -> None:
    text = _findings(full)
    assert (
        "MAE on 'external' (14.2 months (CI 12.8–15.7)) is clearly worse than on 'internal' "
        "(8.1 months (CI 7.4–8.9)), 1.8 times as large" in text
    )
    assert (
        "On 'external' the predictions are systematically lower than the reference: mean "
        "difference (prediction − reference) -4.2 months (CI -6.1 to -2.3)." in text
    )
    assert "On 'internal' the predictions are systematically" not in text  # CI includes 0
    assert "Proportional bias on 'external'" in text and "regression towards the mean" in text
    assert "Proportional bias on 'internal'" not in text
    assert f"cover only 83.0% (CI 75.0%–88.5%) of manufacturer = {EVIL} (76 cases)" in text
    assert "under-cover on 'external': coverage 78.0% (CI 71.0%–84.0%)" in text
    assert (
        f"MAE in manufacturer = {EVIL}" in text
        and "clearly higher than in manufacturer = Vendor A" in text
    )
    assert "MAE in sex" not in text  # F and M overlap
    assert "On 'external' the model's sigma does not rank its errors" in text
    assert "On 'internal' the model's sigma" not in text
    assert "On 'external' sigma is over-confident" in text and "90% nominal: 71.5%" in text


def test_overlapping_intervals_give_no_transfer_or_bias_finding() -> None:
    r = regression_result()
    r.estimates["split.external.regression.mae"] = Estimate(9.0, 8.2, 9.9, n=150)
    r.estimates["split.external.regression.bias"] = Estimate(-0.5, -1.9, 0.9, n=150)
    text = " ".join(regression_findings(r))
    assert "clearly worse" not in text
    assert "MAE on 'external' (9.0 months) is compatible with 'internal' (8.1 months)" in text
    assert "systematically" not in text


def test_a_bland_altman_slope_without_an_error_slope_is_called_a_possible_artefact() -> None:
    r = regression_result()
    r.estimates["split.external.regression.error_slope"] = Estimate(-0.01, -0.06, 0.04, n=150)
    text = " ".join(regression_findings(r))
    assert "error slope is -0.010 (CI -0.060 to 0.040), compatible with 0" in text
    assert "Krouwer 2008" in text and "regression towards the mean" not in text
    r.estimates["split.external.regression.agreement.proportional_bias"] = Estimate(
        0.01, -0.03, 0.05, n=150
    )
    r.estimates["regression.error_slope"] = Estimate(0.12, 0.05, 0.19, n=200)
    text = " ".join(regression_findings(r))
    assert "Proportional bias" not in text
    assert (
        "On 'internal' the error depends on the true value: the slope of the error on the true "
        "value is 0.120 (CI 0.050 to 0.190): high values are over-predicted" in text
    )


def test_collapsed_predictions_and_an_infinite_quantile_come_first() -> None:
    r = regression_result()
    r.values["split.external.regression.collapsed"] = True
    r.values["regression.interval.quantile"] = None
    text = " ".join(regression_findings(r))
    assert text.index("predictions are constant on 'external'") < text.index("MAE on 'external'")
    assert "SD of the predictions 39.8 months" in text
    assert "300 calibration cases are too few for a 90% target" in text
    context = regression_context(r)
    assert context is not None
    assert context["intervals"]["quantile"].startswith("∞ (too few calibration cases")


def test_absent_sections_are_replaced_by_the_reason_they_were_skipped(bare: str) -> None:
    html = bare
    iv, u = _section(html, "conformal"), _section(html, "uncertainty")
    assert "Not run: no calibration split. To run it: set [analysis] calibration_split" in iv
    assert (
        "Not run: the regression model gives no sigma (neither a variance head nor "
        "MC-dropout samples). To run it: declare a mean and log-variance head"
        in html_lib.unescape(u)
    )
    assert "<table" not in iv and "<table" not in u
    assert "Interval coverage (target" not in html and "Variance decomposition" not in html
    assert html.count("<svg") == 4  # Bland-Altman x2, error by value, forest
    assert "does not rank" not in html and "under-cover" not in html


def test_without_mc_samples_there_is_no_decomposition_but_sigma_is_checked() -> None:
    context = regression_context(regression_result(mc=False))
    assert context is not None and context["uncertainty"] is not None
    assert not context["uncertainty"]["decomposed"]
    assert [len(s["gaussian"]) for s in context["uncertainty"]["splits"]] == [2, 2]


def test_a_section_absent_without_a_skipped_row_says_so() -> None:
    r = regression_result(intervals=False)
    r.tables["evaluation.skipped"] = []
    context = regression_context(r)
    assert context is not None and context["intervals"] is None
    assert context["omitted"]["intervals"].startswith("Not in this result")


def test_every_checklist_anchor_exists_in_the_regression_report(full: str, bare: str) -> None:
    for html in (full, bare):
        ids = set(re.findall(r'id="([^"]+)"', html))
        for name in ("claim-2024", "tripod-ai-2024"):
            anchors = {it.anchor for it in load_checklist(name).items if it.anchor}
            assert {a.lstrip("#") for a in anchors} <= ids, name


def test_cohort_tables_describe_the_target_instead_of_positives(full: str) -> None:
    cohort = _section(full, "cohort")
    assert cohort.count("bone age (months): mean (SD); range") == 2  # per scanner and Table 1
    assert "121.4 (41.3); 12.0–228.0" in cohort
    assert "Positives" not in cohort


def test_untrusted_group_names_are_escaped(full: str) -> None:
    assert "<script>alert" not in full
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in full


def test_tripod_report_fills_regression_evidence_beside_its_claim_counterparts() -> None:
    html = _render(regression_result(), checklist_name="tripod-ai-2024")
    assert "Checklist: TRIPOD+AI" in html
    row = re.search(r'<tr id="item-23a">(.*?)</tr>', html, re.DOTALL).group(1)  # type: ignore[union-attr]
    assert "<strong>reported</strong>" in row and "MAE 14.20 [12.80, 15.70] months" in row
    assert '<span class="mono">37</span>' in row  # CLAIM 2024's performance item
    outcome = re.search(r'<tr id="item-21">(.*?)</tr>', html, re.DOTALL).group(1)  # type: ignore[union-attr]
    assert "A continuous outcome (bone age)" in outcome


def test_context_and_findings_are_for_regression_results_only() -> None:
    other = ValidationResult(values={"task.kind": "binary", "evaluation.splits": ["test"]})
    assert regression_context(other) is None and regression_findings(other) == []


@pytest.mark.parametrize(("sd", "digits"), [(41.3, 1), (4.2, 2), (0.05, 4), (400.0, 1), (None, 2)])
def test_numbers_take_decimals_from_the_spread_of_the_target(sd: float | None, digits: int) -> None:
    r = ValidationResult(values={"task.unit": "ml"})
    if sd is not None:
        r.values["regression.target"] = {"sd": sd}
    f = UnitFormat.of(r)
    assert f.digits == digits
    assert f.qty(1.0) == f"{1.0:.{digits}f} ml"


def test_unit_format_writes_cells_sentences_and_brackets() -> None:
    f = UnitFormat(unit="months", digits=1)
    e = Estimate(-0.04, -1.26, 1.18, n=10, method="t")
    assert f.cell(e)["text"] == "0.0" and f.cell(e)["ci"] == "-1.3 to 1.2"  # no "-0.0"
    assert f.sentence(Estimate(8.13, 7.42, 8.87, n=10)) == "8.1 months (CI 7.4–8.9)"
    assert f.bracket(Estimate(8.13, 7.42, 8.87, n=10)) == "8.1 [7.4, 8.9]"
    undefined = Estimate(None, reason="one case")
    assert f.cell(undefined) == {"text": "n/a", "ci": "", "note": "one case", "value": None}
    assert f.sentence(undefined) == "n/a" and f.bracket(None) == "n/a"
    assert f.num(float("inf")) == "∞" and f.qty(None) == "—"
    assert UnitFormat(unit="", digits=2).qty(3.0) == "3.00" and UnitFormat("", 2).suffix == ""
