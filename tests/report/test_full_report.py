"""A full report from evaluate(): escaping of cohort strings, every link resolves."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from medval import Predictions, evaluate
from medval.report import render_html

EVIL = ["<script>alert(1)</script>", '"><img src=x onerror=alert(2)>', "{{ 7*7 }}"]
MATHTEXT = "Aster $^$ Medical"  # matplotlib parsed it as mathtext: the report crashed


@pytest.fixture(scope="module")
def html() -> str:
    rng = np.random.default_rng(5)
    n = 900
    patient = np.arange(n) // 3
    split = np.array(["calibration", "internal", "external"])[patient % 3]
    y = (rng.random(n // 3) < 0.4)[patient].astype(int)
    maker = np.where(split == "external", EVIL[0], np.where(patient % 2 == 0, EVIL[1], EVIL[2]))
    score = 1 / (1 + np.exp(-(rng.normal(size=n) + 2.0 * y - 1.0)))
    ids = [f"c{i}" for i in range(n)]
    cohort = pd.DataFrame(
        {
            "case_id": ids,
            "patient_key": [f"pt-{p}" for p in patient],
            "split": split,
            "label": y,
            "manufacturer": np.where(maker == EVIL[2], MATHTEXT, maker),
            "model_name": maker,
            "convolution_kernel": maker,
            "kvp": np.where(split == "external", 140.0, 120.0),
            "sex": np.where(patient % 4 < 2, "F", "M"),
        }
    ).set_index("case_id")
    preds = Predictions(ids, np.c_[1 - score, score], class_names=(EVIL[0], EVIL[1]))
    result = evaluate(preds, cohort, n_resamples=200, seed=0)
    return render_html(result, result_sha256="0" * 64, generated_at="T")


def test_cohort_strings_never_become_markup(html: str) -> None:
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "{{ 7*7 }}" in html


def test_every_internal_link_has_a_target(html: str) -> None:
    ids = set(re.findall(r'id="([^"]+)"', html))
    links = set(re.findall(r'href="#([^"]+)"', html))
    assert links, "the report links its sections"
    assert links <= ids, sorted(links - ids)


def test_sections_and_no_external_resources(html: str) -> None:
    for section in ("summary", "performance", "calibration", "conformal", "subgroups",
                    "shift", "failures", "cohort", "checklist", "provenance"):  # fmt: skip
        assert f'id="{section}"' in html, section
    assert not re.search(r'(src|href)="(https?:)?//', html)
    assert "Content-Security-Policy" in html


def test_a_dollar_in_a_group_name_is_drawn_as_text_not_mathtext(html: str) -> None:
    subgroups = html[html.index('id="subgroups"') :]
    figure = subgroups[subgroups.index("<svg") : subgroups.index("</svg>")]
    assert f"manufacturer = {MATHTEXT} (n=" in figure
