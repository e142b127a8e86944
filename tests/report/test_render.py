from __future__ import annotations

from pathlib import Path

import pytest

from medval import Estimate, ValidationResult
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
