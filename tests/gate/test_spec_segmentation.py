"""A segmentation spec: task.type, structures, masks, cases and the model's window."""

from __future__ import annotations

import pathlib

import pytest

from medval._errors import SpecError
from medval.gate import EvaluationConfig, read_spec

BASE = """
[task]
type = "segmentation"
structures = { lesion = 1 }
[data]
dicom_dir = "dicom"
masks = "masks"
cases = "cases.csv"
[model]
file = "model.pt"
factory = "model_def.py:make"
"""


def _spec(tmp_path: pathlib.Path, text: str) -> pathlib.Path:
    p = tmp_path / "medval.toml"
    p.write_text(text, encoding="utf-8")
    return p


def test_a_segmentation_spec_reads_with_its_settings(tmp_path: pathlib.Path) -> None:
    spec = read_spec(_spec(tmp_path, BASE + "[segmentation]\nnsd_tolerance_mm = 1\n"))
    assert spec["task.type"] == "segmentation"
    assert spec["model.mode"] == "2d"
    cfg = EvaluationConfig.from_sections(spec.sections)
    assert cfg.nsd_tolerance_mm == 1.0
    assert cfg.mask_healthy == "exclude"


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (("structures = { lesion = 1 }", "structures = { lesion = 0 }"), "label value >= 1"),
        (("structures = { lesion = 1 }", "structures = { a = 1, b = 1 }"), "the same value"),
        (('masks = "masks"\n', ""), "missing required key data.masks"),
        (('cases = "cases.csv"\n', 'cases = "cases.csv"\nlabels = "l.csv"\n'), "data.labels is"),
        (
            ('type = "segmentation"\n', 'type = "segmentation"\nclass_names = ["a", "b"]\n'),
            "task.class_names is for classifiers",
        ),
        (
            ('factory = "model_def.py:make"\n', 'factory = "m.py:f"\noutput = "dirichlet"\n'),
            "model.output must be one of",
        ),
        (
            ('factory = "model_def.py:make"\n', 'factory = "m.py:f"\npatch_size = [64]\n'),
            "model.patch_size must list 2 positive integers",
        ),
        (
            ('factory = "model_def.py:make"\n', 'factory = "m.py:f"\noverlap = 1.0\n'),
            r"model.overlap must be in \[0, 1\)",
        ),
        (
            ('factory = "model_def.py:make"\n', 'factory = "m.py:f"\ntta = "hflip"\n'),
            "tta is not supported",
        ),
        (('type = "segmentation"', 'type = "detection"'), "task.type"),
        (("[model]", "[baseline]\nmargin = 0.1\npredictions = 'b.csv'\n[model]"), "baseline"),
        (
            ('type = "segmentation"\n', 'type = "segmentation"\nmultilabel = true\n'),
            "multilabel .* is not built",
        ),
        (('file = "model.pt"', 'file = ["a.pt", "b.pt"]'), "ensembles of segmentation"),
        (('file = "model.pt"', 'file = "unet.onnx"'), "ONNX segmentation models"),
    ],
)
def test_bad_segmentation_specs_are_refused_naming_the_key(
    tmp_path: pathlib.Path, edit: tuple[str, str], match: str
) -> None:
    text = BASE.replace(*edit)
    with pytest.raises(SpecError, match=match):
        read_spec(_spec(tmp_path, text))


def test_a_classification_spec_may_not_set_segmentation_keys(tmp_path: pathlib.Path) -> None:
    text = """
[task]
class_names = ["a", "b"]
[data]
dicom_dir = "d"
labels = "l.csv"
masks = "m"
[model]
predictions = "p.csv"
"""
    with pytest.raises(SpecError, match=r"data\.masks is a segmentation key"):
        read_spec(_spec(tmp_path, text))
    with pytest.raises(SpecError, match=r"missing required key task\.class_names"):
        read_spec(_spec(tmp_path, text.replace('class_names = ["a", "b"]', "")
                        .replace('masks = "m"\n', "")))  # fmt: skip


def test_the_spec_modes_are_the_inference_modes() -> None:
    from medval.gate._spec import SEGMENT_MODES
    from medval.inference._segment import _MODES

    assert SEGMENT_MODES == _MODES


def test_the_spec_choices_are_the_rooms_choices() -> None:
    from medval import conformal, segmentation
    from medval.gate import _config

    assert set(_config.CONNECTIVITIES) == set(segmentation.CONNECTIVITY)
    assert set(_config.LESION_MATCHES) == set(segmentation.MATCH_RULES)
    assert _config.HEALTHY_RULES == conformal._masks._HEALTHY
