"""The spec keys of inference speed: model.batch_size "auto", model.loader_workers,
model.precision and its check (model.precision_check_cases, model.precision_tolerance)."""

from __future__ import annotations

from pathlib import Path

import pytest

from medval import SpecError
from medval.gate import json_schema, read_spec
from medval.gate._inference import PRECISIONS

SPEC = """
[task]
{task}
[data]
dicom_dir = "cohort/dicom"
labels = "cohort/labels.csv"
[model]
factory = "medval.demo:make_model"
{model}
"""
_CLASSIFIER = 'class_names = ["no lesion", "lesion"]'


def _write(tmp_path: Path, model: str, task: str = _CLASSIFIER) -> Path:
    p = tmp_path / "medval.toml"
    p.write_text(SPEC.format(model=model, task=task), encoding="utf-8")
    return p


def test_defaults_keep_the_old_batch_and_run_in_float32(tmp_path: Path) -> None:
    spec = read_spec(_write(tmp_path, 'file = "model.pt"'))
    assert spec["model.batch_size"] == 64
    assert spec["model.loader_workers"] == "auto"
    assert spec["model.precision"] == "float32"
    assert spec["model.precision_check_cases"] == 64
    assert spec["model.precision_tolerance"] == 0.01
    model = json_schema()["properties"]["model"]["properties"]
    assert model["precision"]["enum"] == list(PRECISIONS)
    assert model["precision_tolerance"]["default"] == 0.01


def test_the_precisions_are_the_inference_ones() -> None:
    from medval.inference import PRECISIONS as INFERENCE

    assert PRECISIONS == INFERENCE


@pytest.mark.parametrize(
    "model",
    [
        'file = "model.pt"\nbatch_size = "auto"\nloader_workers = 4\nprecision = "bfloat16"',
        'file = "model.pt"\nloader_workers = 0\nprecision = "float16"\ndevice = "cuda"',
        'file = "model.pt"\nprecision_check_cases = 1\nprecision_tolerance = 1',
    ],
)
def test_valid_inference_keys_are_read(tmp_path: Path, model: str) -> None:
    read_spec(_write(tmp_path, model))


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (
            'file = "model.pt"\nbatch_size = 0',
            r'model\.batch_size must be an integer >= 1 or "auto"',
        ),
        (
            'file = "model.pt"\nbatch_size = "max"',
            r"model\.batch_size = 'max' is neither an integer",
        ),
        ('file = "model.pt"\nbatch_size = 8.0', r"model\.batch_size: expected integer or string"),
        (
            'file = "model.pt"\nloader_workers = -1',
            r"model\.loader_workers must be an integer >= 0",
        ),
        ('file = "model.pt"\nprecision = "half"', r"model\.precision = 'half' is not"),
        ('file = "model.pt"\nprecision_check_cases = 0', r"precision_check_cases must be 1 to"),
        ('file = "model.pt"\nprecision_tolerance = 0', r"precision_tolerance must be in \(0, 1\]"),
        (
            'file = "model.pt"\nprecision_tolerance = 1.5',
            r"precision_tolerance must be in \(0, 1\]",
        ),
        (
            'file = "model.pt"\nprecision = "float16"\ndevice = "cpu"',
            r'"float16" needs a CUDA device and model\.device is \'cpu\'.*"bfloat16"',
        ),
        (
            'file = "model.onnx"\nprecision = "bfloat16"',
            r"ONNX model 'model\.onnx' runs in onnxruntime.*model\.precision = \"float32\"",
        ),
    ],
)
def test_bad_inference_keys_name_the_key_and_the_fix(
    tmp_path: Path, model: str, message: str
) -> None:
    with pytest.raises(SpecError, match=message):
        read_spec(_write(tmp_path, model))


_SEGMENTATION = 'type = "segmentation"\nstructures = { liver = 1 }'


@pytest.mark.parametrize(
    ("line", "key"),
    [('precision = "bfloat16"', "precision"), ('batch_size = "auto"', "batch_size"),
     ("loader_workers = 2", "loader_workers")],
)  # fmt: skip
def test_segmentation_refuses_what_its_chain_does_not_use(
    tmp_path: Path, line: str, key: str
) -> None:
    p = tmp_path / "medval.toml"
    p.write_text(
        f'[task]\n{_SEGMENTATION}\n[data]\ndicom_dir = "d"\nmasks = "m"\ncases = "c.csv"\n'
        f'[model]\nfile = "unet.pt"\nfactory = "x:y"\n{line}\n',
        encoding="utf-8",
    )
    with pytest.raises(SpecError, match=rf"model\.{key} = .* is not built for segmentation yet"):
        read_spec(p)
