"""The spec keys of the model step: model.file lists (ensembles), model.tta, data.workers,
model.factory files, model.output_key / output_index, ONNX limits."""

from __future__ import annotations

from pathlib import Path

import pytest

from medval import ExitCode, SpecError
from medval.cli import main
from medval.gate import json_schema, read_spec
from medval.gate._spec import TTA_CHOICES

SPEC = """
[task]
class_names = ["no lesion", "lesion"]
[data]
dicom_dir = "cohort/dicom"
labels = "cohort/labels.csv"
{data}
[model]
factory = "medval.demo:make_model"
{model}
"""


def _write(tmp_path: Path, model: str, data: str = "") -> Path:
    p = tmp_path / "medval.toml"
    p.write_text(SPEC.format(model=model, data=data), encoding="utf-8")
    return p


def test_defaults_are_one_file_no_tta_one_process(tmp_path: Path) -> None:
    spec = read_spec(_write(tmp_path, 'file = "model.pt"'))
    assert spec["model.file"] == "model.pt"
    assert spec["model.tta"] == "none"
    assert spec["data.workers"] == 1


def test_a_list_of_model_files_is_an_ensemble(tmp_path: Path) -> None:
    spec = read_spec(_write(tmp_path, 'file = ["fold0.pt", "fold1.pt", "fold2.pt"]'))
    assert spec["model.file"] == ["fold0.pt", "fold1.pt", "fold2.pt"]


@pytest.mark.parametrize("tta", TTA_CHOICES)
def test_every_tta_alias_is_accepted(tmp_path: Path, tta: str) -> None:
    spec = read_spec(_write(tmp_path, f'file = "model.pt"\ntta = "{tta}"', "workers = 4"))
    assert spec["model.tta"] == tta
    assert spec["data.workers"] == 4


def test_tta_choices_are_the_inference_aliases() -> None:
    from medval.inference import TTA

    assert set(TTA_CHOICES) == {"none", *TTA}
    model = json_schema()["properties"]["model"]["properties"]
    assert model["tta"]["enum"] == list(TTA_CHOICES)
    assert model["file"]["type"] == ["string", "array"]
    assert json_schema()["properties"]["data"]["properties"]["workers"]["default"] == 1


@pytest.mark.parametrize(
    ("model", "data", "match"),
    [
        (
            'file = "m.pt"\ntta = "hflp"',
            "",
            r"model\.tta = 'hflp' is not allowed; did you mean 'hflip'\? "
            r"Allowed: 'none', 'hflip', 'flips'\.",
        ),
        ('file = "m.pt"\ntta = ["hflip"]', "", r"model\.tta: expected string"),
        ("file = []", "", r"model\.file is an empty list"),
        ('file = ["a.pt", 3]', "", r"model\.file\[1\] must be a model file path"),
        ('file = ["a.pt", "b.pt", "a.pt"]', "", r"model\.file lists 'a\.pt' twice"),
        ("file = 3", "", r"model\.file: expected string or array, got 3"),
        ('file = "m.pt"', "workers = 0", r"data\.workers must be an integer >= 1"),
        ('file = "m.pt"', "workers = -2", r"data\.workers must be an integer >= 1.*got -2"),
        ('file = "m.pt"', 'workers = "4"', r"data\.workers: expected integer, got '4'"),
        ('file = "m.pt"', "workers = 2.0", r"data\.workers: expected integer"),
        ('file = "m.pt"', "workers = true", r"data\.workers: expected integer, got True"),
        (
            'file = "m.pt"\noutput_key = "logits"\noutput_index = 0',
            "",
            r"give model\.output_key \(the model returns a dict\) or model\.output_index "
            r"\(a tuple\), not both",
        ),
        ('file = "m.pt"\noutput_index = -1', "", r"model\.output_index must be >= 0.*got -1"),
        ('file = "m.pt"\noutput_index = "0"', "", r"model\.output_index: expected integer"),
        ('file = "m.pt"\noutput_key = ""', "", r"model\.output_key is empty"),
        (
            'file = "model.onnx"\nmc_samples = 20',
            "",
            r"model\.mc_samples = 20 needs dropout modules .*ONNX model 'model\.onnx' runs in "
            r"onnxruntime without them: MC dropout is unavailable for ONNX\. Set "
            r"model\.mc_samples = 0",
        ),
        (
            'file = ["a.pt", "b.ONNX"]\nembeddings = true',
            "",
            r"model\.embeddings needs the torch modules, and the ONNX model 'b\.ONNX' has none",
        ),
    ],
)
def test_bad_model_step_keys_name_the_key(
    tmp_path: Path, model: str, data: str, match: str
) -> None:
    with pytest.raises(SpecError, match=match):
        read_spec(_write(tmp_path, model, data))


def test_a_tta_typo_exits_2_before_any_data_is_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Neither the cohort folder nor the model files exist: the spec is refused first.
    spec = _write(tmp_path, 'file = ["fold0.pt", "fold1.pt"]\ntta = "flip"', "workers = 2")
    assert main(["validate", str(spec), "--quiet"]) == ExitCode.USAGE_ERROR
    err = capsys.readouterr().err
    assert "model.tta = 'flip' is not allowed; did you mean" in err, err
    assert not (tmp_path / "validation").exists()


def test_output_selection_and_factory_files_are_spec_keys(tmp_path: Path) -> None:
    spec = read_spec(_write(tmp_path, 'file = "m.pt"\noutput_key = "logits"'))
    assert spec["model.output_key"] == "logits" and spec["model.output_index"] is None
    spec = read_spec(_write(tmp_path, 'file = "m.pt"\noutput_index = 1'))
    assert spec["model.output_index"] == 1 and spec["model.output_key"] is None
    text = _write(tmp_path, 'file = "m.pt"').read_text(encoding="utf-8")
    for factory in ("model_def.py:build", "models/net.py:Net.build", "/abs/def.py:build"):
        path = tmp_path / "medval.toml"
        path.write_text(text.replace("medval.demo:make_model", factory), encoding="utf-8")
        assert read_spec(path)["model.factory"] == factory
    assert read_spec(_write(tmp_path, 'file = "model.onnx"'))["model.file"] == "model.onnx"
    model = json_schema()["properties"]["model"]["properties"]
    assert model["output_key"]["type"] == "string"
    assert model["output_index"]["type"] == "integer"


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ('file = "m.pt"\nlabel_column = 2', r"model.label_column picks one finding.*\"sigmoid\""),
        ('file = "m.pt"\noutput = "sigmoid"\nlabel_column = -1', r"label_column must be >= 0"),
        ('file = "m.pt"\noutput = "softmax"', r"model.output = 'softmax' is not allowed"),
    ],
)
def test_label_column_needs_a_sigmoid_head(tmp_path: Path, model: str, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        read_spec(_write(tmp_path, model))


def test_sigmoid_head_and_baseline_output_selection_are_read(tmp_path: Path) -> None:
    model = 'file = "m.pt"\noutput = "sigmoid"\nlabel_column = 3'
    baseline = '\n[baseline]\nmodel = "b.pt"\noutput_key = "logits"\nmargin = 0.05'
    spec = read_spec(_write(tmp_path, model + baseline))
    assert (spec["model.output"], spec["model.label_column"]) == ("sigmoid", 3)
    assert spec["baseline.output_key"] == "logits"
    bad = baseline.replace('output_key = "logits"', 'output_key = "a"\noutput_index = 0')
    with pytest.raises(SpecError, match=r"baseline.output_key .* or baseline.output_index"):
        read_spec(_write(tmp_path, model + bad))
