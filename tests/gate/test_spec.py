from __future__ import annotations

from pathlib import Path

import pytest

from medval import SpecError
from medval.gate import read_spec

GOOD = """
[task]
class_names = ["no lesion", "lesion"]
positive_class = "lesion"
[data]
dicom_dir = "cohort/dicom"
labels = "cohort/labels.csv"
[model]
file = "model.pt"
factory = "medval.demo:make_model"
[analysis]
confidence_level = 0.9
"""


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "medval.toml"
    p.write_text(text, encoding="utf-8")
    return p


def test_good_spec_fills_defaults_and_resolves_paths(tmp_path: Path) -> None:
    spec = read_spec(_write(tmp_path, GOOD))
    assert spec["analysis.confidence_level"] == 0.9
    assert spec["analysis.n_resamples"] == 2000
    assert spec["model.output"] == "logits"
    assert spec.resolve("data.dicom_dir") == (tmp_path / "cohort" / "dicom").resolve()


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (
            ("confidence_level = 0.9", "confidence_levle = 0.9"),
            r"unknown key analysis\.confidence_levle; allowed keys",
        ),
        (("[analysis]", "[analyses]"), r"unknown section \[analyses\]"),
        (('file = "model.pt"', "file = 3"), r"model\.file: expected string or array, got 3"),
        (
            ('positive_class = "lesion"', 'positive_class = "tumour"'),
            r"positive_class 'tumour' is not one of",
        ),
        (
            ("confidence_level = 0.9", "confidence_level = 95"),
            r"confidence_level must be a number in \[0\.5, 1\)",
        ),
        (('labels = "cohort/labels.csv"', ""), r"missing required key data\.labels"),
        (('["no lesion", "lesion"]', '["a"]'), r"at least two class names"),
        (('["no lesion", "lesion"]', '["a", "a"]'), r"repeats a name"),
        (
            ("[model]", "[model]\noutput = 'logit'"),
            r"model\.output = 'logit' is not allowed; did you mean 'logits'\? "
            r"Allowed: 'logits', 'probabilities'",
        ),
    ],
)
def test_bad_specs_name_the_key(tmp_path: Path, edit: tuple[str, str], match: str) -> None:
    with pytest.raises(SpecError, match=match):
        read_spec(_write(tmp_path, GOOD.replace(*edit)))


def test_missing_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="does not exist"):
        read_spec(tmp_path / "nope.toml")
    with pytest.raises(SpecError, match="not valid TOML"):
        read_spec(_write(tmp_path, "[task\n"))
    with pytest.raises(SpecError, match=r"missing section \[model\]"):
        read_spec(_write(tmp_path, GOOD.split("[model]")[0]))
