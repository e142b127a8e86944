from __future__ import annotations

import html as html_lib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from medval import Estimate, Predictions, ValidationResult, evaluate
from medval.report import render_html, write_outputs

EVIL = ["<script>alert(1)</script>", '"><img src=x onerror=alert(2)>', "{{ 7*7 }}"]


def _result() -> ValidationResult:
    r = ValidationResult()
    r.values.update(
        {
            "evaluation.splits": ["internal", "external"],
            "operating_point.threshold": 0.4,
            "operating_point.rule": "youden",
            "cohort.n_excluded": 3,
        }
    )
    for prefix, auc in (("", 0.91), ("split.external.", 0.70)):
        r.estimates[f"{prefix}discrimination.auroc"] = Estimate(auc, auc - 0.04, auc + 0.03, n=100)
        r.values[f"{prefix}cohort.n_cases"] = 100
        r.tables[f"{prefix}curves.roc"] = [
            {"fpr": x / 10, "tpr": min(1.0, x / 7)} for x in range(11)
        ]
    r.estimates["operating_point.sensitivity"] = Estimate(1.0, reason="all positives found")
    r.tables["cohort.exclusions"] = [{"file": f"site/{e}.dcm", "reason": e} for e in EVIL]
    r.tables["cohort.by_split_site"] = [
        {
            "split": "internal",
            "manufacturer": EVIL[0],
            "model_name": EVIL[1],
            "n_cases": 3,
            "n_patients": 2,
            "n_positive": 1,
        }
    ]
    r.provenance.update({"seed": 0, "model_file": EVIL[2]})
    return r


def test_untrusted_strings_are_escaped() -> None:
    html = render_html(_result(), result_sha256="0" * 64, generated_at="T")
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&#34;&gt;&lt;img src=x onerror=alert(2)&gt;" in html
    assert "{{ 7*7 }}" in html and "49" not in html.split("{{ 7*7 }}")[0][-5:]


def test_findings_say_where_the_model_fails() -> None:
    html = render_html(_result(), result_sha256="0" * 64, generated_at="T")
    assert "clearly below" in html and "does not transfer to &#39;external&#39;" in html
    assert "CI not estimable" not in html  # a reason shows as hover text, not a fake interval


def test_outputs_are_reproducible(tmp_path: Path) -> None:
    a = write_outputs(_result(), tmp_path / "a", generated_at="T")
    b = write_outputs(_result(), tmp_path / "b", generated_at="T")
    assert a.report.read_bytes() == b.report.read_bytes()
    assert a.result_sha256 == b.result_sha256


@pytest.mark.parametrize(
    ("p", "expected"),
    [(0.001, "is higher on 'external'"), (0.03, None), (0.4, "is not higher on 'external'")],
)
def test_epistemic_finding_says_which_way_or_nothing_in_between(
    p: float, expected: str | None
) -> None:
    from medval.report._sections import uncertainty_findings

    r = ValidationResult()
    r.values.update(
        {
            "evaluation.splits": ["internal", "external"],
            "uncertainty.epistemic_mean": 0.0150,
            "split.external.uncertainty.epistemic_mean": 0.0160,
            "split.external.uncertainty.epistemic_higher_p": p,
        }
    )
    found = [f for f in uncertainty_findings(r) if "Epistemic" in f]
    if expected is None:
        assert found == []
    else:
        (text,) = found
        assert expected in text


def test_uncertainty_part_shows_the_mc_error_and_the_mc_mean_metrics() -> None:
    rng = np.random.default_rng(4)
    n, t = 300, 6
    y = rng.integers(0, 2, n)
    z = rng.normal(size=n) + 2.0 * y - 1.0
    zs = z[None] + rng.normal(size=(t, n)) * rng.uniform(0.2, 2.0, n)[None]
    mc = np.stack([1 / (1 + np.exp(zs)), 1 / (1 + np.exp(-zs))], axis=-1)
    ids = [f"c{i}" for i in range(n)]
    cohort = pd.DataFrame(
        {"split": np.where(np.arange(n) % 2, "internal", "external"), "label": y},
        index=pd.Index(ids, name="case_id"),
    )
    deployed = np.c_[1 / (1 + np.exp(z)), 1 / (1 + np.exp(-z))]
    preds = Predictions(ids, deployed, mc_probabilities=mc, class_names=("neg", "pos"))
    result = evaluate(preds, cohort, n_resamples=100, test_splits=["internal", "external"])
    page = html_lib.unescape(render_html(result, result_sha256="0" * 64))
    part = page[page.index('id="uncertainty"') :]
    rec = result.values["uncertainty.mc_error"]["recommended_samples"]
    assert "Monte Carlo error with T = 6 on 'internal'" in part
    assert f"recommended T ≥ {rec}" in part
    assert "Monte Carlo error with T = 6 on 'external'" in part
    table = part[part.index("MC-mean metrics (not the deployed model's; for reference)") :]
    mc_auc = result.estimates["uncertainty.mc_mean.auroc"].value
    head = result.estimates["discrimination.auroc"].value
    row = table[table.index("internal") : table.index("</tr>", table.index("internal"))]
    assert row.index(f"{head:.3f}") < row.index(f"{mc_auc:.3f}")
    # T = 6 is too few: the findings say so, with the spec key to change.
    findings = page[: page.index('id="uncertainty"')]
    assert "T = 6 Monte Carlo samples are too few" in findings
    assert "[model] mc_samples" in findings
