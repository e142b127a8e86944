"""Multiplicity across criteria: the statement, Holm and Bonferroni, and their error rates."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import stats

from medval import Estimate
from medval._errors import InputError
from medval._result import ValidationResult
from medval.gate import (
    Criterion,
    Spec,
    adjust_verdicts,
    check_criteria,
    check_spec,
    judge,
    judge_spec,
    junit_xml,
    multiplicity_statement,
    record,
    suite_properties,
)
from medval.gate._adjust import p_value, simultaneous_bound
from medval.gate._observe import Obs
from medval.stats import holm

_BASE = {
    "task": {"class_names": ["a", "b"]},
    "data": {"table": "t.csv"},
    "model": {"predictions": "p.csv"},
}
Z = float(stats.norm.ppf(0.975))
PATTERN = "subgroup.manufacturer={group}.auroc"


def _spec(criteria: list[dict[str, Any]], method: str = "none") -> Spec:
    sections = check_spec({**_BASE, "gate": {"multiplicity": method}}, source="s.toml")
    return Spec(Path("s.toml"), sections, check_criteria(criteria, source="s.toml"))


def _auroc(low: float, n: int = 300) -> Estimate:
    """An AUROC whose 95% CI is ``low + [0, 0.08]`` (se = 0.04 / 1.96)."""
    return Estimate(low + 0.04, low, low + 0.08, n=n, method="delong")


def _groups(lows: list[float], n: int = 300) -> ValidationResult:
    r = ValidationResult()
    for i, low in enumerate(lows):
        r.estimates[f"subgroup.manufacturer=S{i}.auroc"] = _auroc(low, n)
    return r


def _floor(threshold: float = 0.85, **extra: Any) -> dict[str, Any]:
    return {"name": "floor", "key": PATTERN, "op": ">=", "threshold": threshold, **extra}


def test_statement_counts_groups_and_names_the_uncontrolled() -> None:
    r = _groups([0.86, 0.87, 0.9, 0.7], n=300)
    r.estimates["subgroup.manufacturer=Tiny.auroc"] = _auroc(0.9, n=5)  # under min_n: skipped
    r.estimates["discrimination.auroc"] = _auroc(0.88)
    r.values["calibration.brier"] = 0.12
    r.tables["conformal.by_group"] = [
        {"column": "sex", "group": g, "n": 60, "coverage": 0.9, "low": 0.8, "high": 0.95}
        for g in ("F", "M")
    ]
    spec = _spec(
        [
            _floor(min_n=20, small_groups="skip"),
            {"name": "auroc", "key": "discrimination.auroc", "op": ">=", "threshold": 0.8},
            {"name": "brier", "key": "calibration.brier", "op": "<=", "threshold": 0.2},
            {"name": "cov", "key": "conformal.by_group", "op": ">=", "threshold": 0.7}
            | {"field": "coverage", "column": "sex"},
            {"name": "ece", "key": "discrimination.auroc", "op": ">=", "threshold": 0.9}
            | {"severity": "warn"},
            {"name": "gone", "key": "no.such.key", "op": ">=", "threshold": 0.5},
        ]
    )
    judge_spec(r, spec)
    s = r.values["gate.multiplicity"]
    # 4 floor groups + auroc + brier + 2 coverage rows; the missing key is an error.
    assert s["n_fail_comparisons"] == 8 and s["n_uncontrolled"] == 3
    assert s["uncontrolled"] == ["brier", "cov[sex=F]", "cov[sex=M]"]
    assert s["n_warn_comparisons"] == 1
    assert s["level"] == 0.025 and s["family_wise_bound"] == pytest.approx(5 * 0.025)
    assert "intersection-union" in s["text"] and "5 × 0.025 = 0.125" in s["text"]
    assert "could not be judged" in s["text"] and "no error control" in s["text"]


def test_statement_without_comparisons() -> None:
    r = ValidationResult()
    r.values["calibration.brier"] = 0.1
    spec = _spec([{"name": "b", "key": "calibration.brier", "op": "<=", "threshold": 0.2}])
    judge_spec(r, spec)
    s = r.values["gate.multiplicity"]
    assert s["level"] is None and s["family_wise_bound"] is None and s["n_uncontrolled"] == 1


@pytest.mark.parametrize("method", ["holm", "bonferroni"])
def test_adjusted_statement_controls_at_the_level(method: str) -> None:
    r = _groups([0.9] * 9)
    judge_spec(r, _spec([_floor()], method))
    s = r.values["gate.multiplicity"]
    assert s["method"] == method and s["family_wise_bound"] == 0.025
    assert "at most 0.025" in s["text"]


def test_holm_matches_statsmodels_and_a_closed_form() -> None:
    multitest = pytest.importorskip("statsmodels.stats.multitest")
    lows = [0.851, 0.86, 0.87, 0.84, 0.9, 0.855, 0.88, 0.865, 0.852]
    r = _groups(lows)
    (criterion,) = check_criteria([_floor()], source="t")
    (v,) = adjust_verdicts(r, [criterion], judge(r, [criterion]), method="holm")
    se = 0.08 / (2 * Z)
    p = stats.norm.sf((np.array(lows) - 0.85) / se + Z)  # H0: AUROC <= 0.85
    reject, corrected, _, _ = multitest.multipletests(p, alpha=0.025, method="holm")
    np.testing.assert_allclose(holm(p), corrected, rtol=1e-12)
    by_group = {g["group"]: g for g in v.groups}
    for i, (rej, adj) in enumerate(zip(reject, corrected, strict=True)):
        g = by_group[f"manufacturer=S{i}"]
        assert g["status"] == ("pass" if rej else "fail")
        assert f"Holm-adjusted p = {adj:.3g}" in g["reason"]
    assert v.status == "fail" and "(m = 9" in v.reason


@pytest.mark.parametrize(("x", "n", "t"), [(170, 200, 0.8), (45, 50, 0.75), (0, 30, 0.1),
                                           (30, 30, 0.9), (412, 500, 0.8)])  # fmt: skip
@pytest.mark.parametrize("op", [">=", "<="])
def test_exact_binomial_p_value_matches_scipy(x: int, n: int, t: float, op: str) -> None:
    est = Estimate(x / n, 0.0, 1.0, n=n, method="wilson")  # the bounds do not enter
    o = Obs(None, n, est.value, est.low, est.high, True, None, 0.95, "wilson")
    p, how = p_value(o, op, t)
    alternative = "greater" if op == ">=" else "less"
    assert how == "exact binomial"
    assert p == pytest.approx(stats.binomtest(x, n, t, alternative=alternative).pvalue, rel=1e-9)


def test_p_value_of_a_clustered_proportion_is_not_exact() -> None:
    o = Obs(None, 200, 0.85, 0.79, 0.9, True, None, 0.95, "wilson-clustered")
    assert p_value(o, ">=", 0.8)[1] == "normal from the CI"


@pytest.mark.parametrize("m", [1, 4, 12])
@pytest.mark.parametrize(("x", "n"), [(170, 200), (5, 40), (0, 25), (25, 25)])
def test_bonferroni_proportion_bound_is_clopper_pearson(m: int, x: int, n: int) -> None:
    confint = pytest.importorskip("statsmodels.stats.proportion").proportion_confint
    o = Obs(None, n, x / n, 0.0, 1.0, True, None, 0.95, "clopper-pearson")
    low, high = confint(x, n, alpha=0.05 / m, method="beta")
    assert simultaneous_bound(o, ">=", 0.5, m=m) == pytest.approx(low, abs=1e-12)
    assert simultaneous_bound(o, "<=", 0.5, m=m) == pytest.approx(high, abs=1e-12)


def test_bonferroni_normal_bound_moves_by_the_quantile_gap() -> None:
    o = Obs(None, 300, 0.9, 0.86, 0.94, True, None, 0.9, "delong")
    se = 0.08 / (2 * stats.norm.ppf(0.95))
    want = 0.86 - se * (stats.norm.ppf(1 - 0.05 / 6) - stats.norm.ppf(0.95))
    assert simultaneous_bound(o, ">=", 0.8, m=6) == pytest.approx(want, rel=1e-12)
    assert simultaneous_bound(o, ">=", 0.8, m=1) == pytest.approx(0.86, rel=1e-12)


def test_borderline_subgroups_pass_alone_and_fail_under_holm_and_bonferroni() -> None:
    # Nine CI lows 0.006 above the floor: each p = 0.0121 < 0.025 passes on its own, but
    # Holm's first step needs p <= 0.025 / 9 = 0.0028, and the simultaneous 99.44%
    # bounds (1 - 0.05 / 9) fall below the floor.
    r = _groups([0.856] * 9)
    p = stats.norm.sf(0.006 / (0.08 / (2 * Z)) + Z)
    assert 0.012 < p < 0.0122
    verdicts = {m: judge_spec(r, _spec([_floor()], m))[0] for m in ("none", "holm", "bonferroni")}
    assert verdicts["none"].status == "pass"
    assert verdicts["holm"].status == "fail" and verdicts["bonferroni"].status == "fail"
    assert "Holm-adjusted p = 0.109 > 0.025 (m = 9" in verdicts["holm"].reason
    why = verdicts["bonferroni"].reason
    assert "simultaneous 99.44% CI low 0.839 < 0.85 (Bonferroni, m = 9)" in why
    # The one borderline group among eight far above the floor passes Holm's last step.
    r = _groups([0.856] + [0.95] * 8)
    assert judge_spec(r, _spec([_floor()], "holm"))[0].status == "pass"
    assert judge_spec(r, _spec([_floor()], "bonferroni"))[0].status == "fail"


def test_warn_criteria_and_point_values_are_left_alone() -> None:
    r = _groups([0.851, 0.851])
    r.values["calibration.brier"] = 0.3
    crit = [
        _floor(severity="warn"),
        {"name": "b", "key": "calibration.brier", "op": "<=", "threshold": 0.2},
    ]
    plain = judge(r, check_criteria(crit, source="t"))
    held = judge_spec(r, _spec(crit, "holm"))
    assert tuple(plain) == held


def test_judge_spec_records_the_statement_for_junit_and_report() -> None:
    r = _groups([0.9, 0.9, 0.9])
    r.estimates["discrimination.auroc"] = _auroc(0.88)
    r.values.update({"evaluation.splits": ["internal"], "operating_point.threshold": 0.5,
                     "operating_point.rule": "youden", "cohort.n_cases": 900})  # fmt: skip
    verdicts = judge_spec(r, _spec([_floor()]))
    record(r, verdicts)
    props = suite_properties(r)
    assert props["medval.multiplicity"] == r.values["gate.multiplicity"]["text"]
    assert 'name="medval.multiplicity"' in junit_xml(verdicts, properties=props)
    from medval.report import render_html

    html = render_html(r, result_sha256="0" * 64, generated_at="T")
    assert "Many criteria." in html and "intersection-union test (Berger 1982)" in html


def test_unknown_method_is_refused() -> None:
    r = _groups([0.9])
    crit = check_criteria([_floor()], source="t")
    with pytest.raises(InputError, match=r"multiplicity method 'sidak' is not known; valid"):
        adjust_verdicts(r, crit, judge(r, crit), method="sidak")
    with pytest.raises(InputError, match=r"multiplicity method 'sidak'"):
        multiplicity_statement(r, crit, judge(r, crit), method="sidak")


def test_verdicts_must_match_the_criteria() -> None:
    r = _groups([0.9])
    crit = check_criteria([_floor()], source="t")
    other = Criterion(name="other", key=PATTERN, op=">=", threshold=0.5)
    with pytest.raises(InputError, match=r"one verdict per criterion; got 1 criteria and 0"):
        adjust_verdicts(r, crit, [], method="holm")
    with pytest.raises(InputError, match=r"verdict 'other' stands where criterion 'floor'"):
        adjust_verdicts(r, crit, judge(r, [other]), method="holm")


# Simulation: m = 10 subgroup AUROCs whose truth sits exactly on the floor (true nulls).
M, REPS, LEVEL = 10, 2000, 0.025
MC = 3 * np.sqrt(LEVEL * (1 - LEVEL) / REPS)  # 3 Monte Carlo standard errors


def _simulated_verdicts(lows: np.ndarray, method: str) -> np.ndarray:
    """Per replicate, which of the groups passed (reps, M) and whether the gate passed."""
    (criterion,) = check_criteria([_floor()], source="t")
    passed = np.zeros(lows.shape, dtype=bool)
    for rep, row in enumerate(lows):
        r = _groups([float(x) for x in row])
        (v,) = adjust_verdicts(r, [criterion], judge(r, [criterion]), method=method)
        passed[rep] = [g["status"] == "pass" for g in sorted(v.groups, key=_order)]
    return passed


def _order(g: dict[str, Any]) -> int:
    return int(g["group"].rsplit("S", 1)[1])


@pytest.fixture
def boundary_lows(rng: np.random.Generator) -> np.ndarray:
    # The estimate ~ N(0.85, se); its 95% CI low = estimate - 0.04.
    se = 0.08 / (2 * Z)
    return 0.85 + rng.normal(0.0, se, size=(REPS, M)) - 0.04


def test_individual_claims_need_holm_for_family_wise_control(boundary_lows: np.ndarray) -> None:
    none = _simulated_verdicts(boundary_lows, "none").any(axis=1).mean()
    held = _simulated_verdicts(boundary_lows, "holm").any(axis=1).mean()
    # Independent groups: 1 - 0.975^10 = 0.224 under "none"; about 0.025 under Holm.
    assert none > 0.15 and abs(none - (1 - (1 - LEVEL) ** M)) < 3 * np.sqrt(0.224 * 0.776 / REPS)
    assert held <= LEVEL + MC


def test_release_decision_is_an_intersection_union_test(rng: np.random.Generator) -> None:
    # One group truly on the floor, nine far above it: the gate releases a model that
    # misses one floor with probability ~ the one-sided level, unadjusted.
    se = 0.08 / (2 * Z)
    truth = np.array([0.85] + [0.95] * (M - 1))
    lows = truth + rng.normal(0.0, se, size=(REPS, M)) - 0.04
    released = _simulated_verdicts(lows, "none").all(axis=1).mean()
    assert 0.01 < released <= LEVEL + MC


def test_holm_on_exact_binomial_p_values_controls_the_family(rng: np.random.Generator) -> None:
    # Ten subgroup sensitivities (n = 80 positives each) whose truth is the floor 0.8.
    from medval.stats import proportion_ci

    (criterion,) = check_criteria(
        [{"name": "sens", "key": "subgroup.site={group}.sensitivity", "op": ">=",
          "threshold": 0.8}], source="t")  # fmt: skip
    hits = rng.binomial(80, 0.8, size=(REPS, M))
    cis = {x: proportion_ci(int(x), 80) for x in np.unique(hits)}
    any_pass = {"none": 0, "holm": 0}
    for row in hits:
        r = ValidationResult()
        for i, x in enumerate(row):
            r.estimates[f"subgroup.site=S{i}.sensitivity"] = cis[x]
        verdicts = judge(r, [criterion])
        for method in any_pass:
            (v,) = adjust_verdicts(r, [criterion], verdicts, method=method)
            any_pass[method] += any(g["status"] == "pass" for g in v.groups)
    assert any_pass["none"] / REPS > 2 * LEVEL  # Wilson bounds, unadjusted
    assert any_pass["holm"] / REPS <= LEVEL + MC  # exact tests: conservative


def test_cli_prints_one_line_under_the_verdict_table() -> None:
    from medval.cli import _multiplicity_line

    r = _groups([0.9, 0.9])
    assert _multiplicity_line(r) == ""
    judge_spec(r, _spec([_floor()]))
    line = _multiplicity_line(r)
    assert line.count("\n") == 1 and line.startswith("\nmultiplicity: none; 2 fail comparisons")
    assert "family-wise error of the verdicts <= 0.05" in line
