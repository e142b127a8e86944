"""A regression spec: its keys, the head's outputs, and what is refused with the fix."""

from __future__ import annotations

import pathlib

import pytest

from medval import SpecError
from medval.gate import EvaluationConfig, read_spec

BASE = """
[task]
type = "regression"
name = "bone age"
unit = "months"
range = [0, 240]

[data]
dicom_dir = "dicom"
labels = "labels.csv"

[model]
file = "m.pt"
factory = "m.py:make"
output = "mean_log_variance"
"""


def _spec(tmp_path: pathlib.Path, text: str) -> pathlib.Path:
    p = tmp_path / "medval.toml"
    p.write_text(text, encoding="utf-8")
    return p


def test_a_regression_spec_reads_with_its_settings(tmp_path: pathlib.Path) -> None:
    text = BASE + '[regression]\ninterval = "cqr"\nmondrian = "manufacturer"\nbins = 4\n'
    spec = read_spec(_spec(tmp_path, text))
    assert spec["task.type"] == "regression" and spec["task.range"] == [0, 240]
    cfg = EvaluationConfig.from_sections(spec.sections)
    assert (cfg.interval_score, cfg.interval_mondrian, cfg.error_bins) == (
        "cqr", "manufacturer", 4,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (('unit = "months"\n', ""), "missing required key task.unit"),
        (("range = [0, 240]", "range = [240, 0]"), "task.range must be"),
        (('output = "mean_log_variance"', 'output = "logits"'), "model.output must be one of"),
        (('output = "mean_log_variance"', 'output = "quantiles"'), "quantile_levels goes with"),
        (('output = "mean_log_variance"', 'output = "quantiles"\nquantile_levels = [0.9, 0.1]'),
         "quantile_levels must be"),
        (('name = "bone age"', 'class_names = ["a", "b"]'),
         "task.class_names is not for regression"),
        (('file = "m.pt"', 'file = ["a.pt", "b.pt"]'), "ensembles of regression models"),
        (('labels = "labels.csv"', 'labels = "labels.csv"\naggregate = "max"'),
         "one value per image"),
    ],
)  # fmt: skip
def test_a_bad_regression_spec_is_refused_naming_the_key(
    tmp_path: pathlib.Path, edit: tuple[str, str], match: str
) -> None:
    assert edit[0] in BASE
    with pytest.raises(SpecError, match=match):
        read_spec(_spec(tmp_path, BASE.replace(edit[0], edit[1])))


def test_regression_keys_in_a_classification_spec_name_the_task_type(
    tmp_path: pathlib.Path,
) -> None:
    text = BASE.replace('type = "regression"\nname = "bone age"\n', 'class_names = ["a", "b"]\n')
    with pytest.raises(
        SpecError, match=r'task.unit is a regression key; set task.type = "regression"'
    ):
        read_spec(_spec(tmp_path, text))
    classifier = text.replace('unit = "months"\nrange = [0, 240]\n', "")
    with pytest.raises(SpecError, match="is a regression head's"):
        read_spec(_spec(tmp_path, classifier))


def test_the_regression_settings_are_checked(tmp_path: pathlib.Path) -> None:
    with pytest.raises(SpecError, match=r"regression.interval"):
        read_spec(_spec(tmp_path, BASE + '[regression]\ninterval = "gamma"\n'))
    with pytest.raises(SpecError, match=r"regression.gaussian_levels must list increasing"):
        read_spec(_spec(tmp_path, BASE + "[regression]\ngaussian_levels = [0.9, 0.5]\n"))
    with pytest.raises(SpecError, match=r"regression.confidence_level"):
        read_spec(_spec(tmp_path, BASE + "[regression]\nconfidence_level = 1.5\n"))
