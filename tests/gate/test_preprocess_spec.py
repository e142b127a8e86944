"""``[preprocess]`` in the spec: steps checked when the spec is read, resolved, in the schema."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from medval import SpecError
from medval.gate import json_schema, preprocess_steps, read_spec

BASE = """
[task]
class_names = ["no lesion", "lesion"]
[data]
dicom_dir = "no/such/folder"
labels = "no/such/labels.csv"
[model]
file = "no-such-model.pt"
factory = "medval.demo:make_model"
[preprocess]
"""
STEPS = """steps = [
  { op = "window", preset = "lung" },
  { op = "clip_percentile" },
  { op = "resize", size = 224 },
  { op = "channels", n = 3 },
  { op = "normalize", method = "imagenet" },
]
expect = { mean = 0.0, std = 1 }
"""


def _write(tmp_path: Path, preprocess: str) -> Path:
    p = tmp_path / "medval.toml"
    p.write_text(BASE + preprocess, encoding="utf-8")
    return p


def test_steps_resolve_with_every_parameter(tmp_path: Path) -> None:
    spec = read_spec(_write(tmp_path, STEPS))
    steps = preprocess_steps(spec.sections["preprocess"])
    assert steps == [
        {"op": "window", "center": -600.0, "width": 1500.0, "preset": "lung", "voi_lut": False},
        {"op": "clip_percentile", "low": 0.5, "high": 99.5},
        {"op": "resize", "size": [224, 224], "interpolation": "bilinear", "keep_aspect": False,
         "antialias": True},
        {"op": "channels", "n": 3},
        {"op": "normalize", "method": "imagenet", "mean": [0.485, 0.456, 0.406],
         "std": [0.229, 0.224, 0.225]},
    ]  # fmt: skip
    assert spec["preprocess.expect"] == {"mean": 0.0, "std": 1}


def test_the_shorthand_expands_to_steps(tmp_path: Path) -> None:
    spec = read_spec(_write(tmp_path, "window = [40, 400]\nsize = 64\n"))
    assert preprocess_steps(spec.sections["preprocess"]) == [
        {"op": "window", "center": 40.0, "width": 400.0, "preset": None, "voi_lut": False},
        {"op": "resize", "size": [64, 64], "interpolation": "bilinear", "keep_aspect": False,
         "antialias": True},
    ]  # fmt: skip
    assert preprocess_steps(read_spec(_write(tmp_path, "")).sections["preprocess"]) == []


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ('steps = [{ op = "windw", center = 40, width = 400 }]',
         r"preprocess\.steps\[0\]\.op = 'windw' is not a preprocessing step; did you mean "
         r"'window'\? Allowed: 'window'"),
        ('steps = [{ op = "resize", size = 8 }, { op = "window", centre = 40, width = 400 }]',
         r"preprocess\.steps\[1\]\.centre is not a parameter of op = 'window'; did you mean "
         r"'center'\? Parameters of window"),
        ('steps = [{ op = "window", preset = "lungs" }]',
         r"steps\[0\]\.preset = 'lungs' is not a window preset; did you mean 'lung'\?"),
        ('steps = [{ op = "window", center = 40, width = 0 }]', r"steps\[0\]\.width must be > 0"),
        ('steps = [{ op = "window", center = 40 }]', r"steps\[0\]\.width is missing"),
        ('steps = [{ op = "window", preset = "lung", center = 1, width = 2 }]',
         r"steps\[0\]: give exactly one of center and width"),
        ('steps = [{ op = "window", center = "40", width = 400 }]',
         r"steps\[0\]\.center: expected number, got '40'"),
        ('steps = [{ op = "clip_percentile", low = 99, high = 1 }]', r"0 <= low < high <= 100"),
        ('steps = [{ op = "normalize" }]', r"steps\[0\]\.method is missing"),
        ('steps = [{ op = "normalize", method = "z-score" }]',
         r"method = 'z-score' is not a normalize method; did you mean 'zscore'\?"),
        ('steps = [{ op = "normalize", method = "fixed", mean = 0.5 }]',
         r"method = 'fixed' needs mean and std"),
        ('steps = [{ op = "normalize", method = "zscore", std = 2 }]',
         r"steps\[0\]\.std applies only to method = 'fixed'"),
        ('steps = [{ op = "window", preset = "lung" }, { op = "normalize", method = "imagenet" }]',
         r"steps\[1\]: normalize imagenet has 3 channel values but the image has 1 channel"),
        ('steps = [{ op = "channels", n = 3 }, { op = "normalize", method = "imagenet" }]',
         r"steps\[1\]: normalize imagenet expects values in \[0, 1\]"),
        ('steps = [{ op = "resize", size = [0, 4] }]', r"steps\[0\]\.size must be a positive"),
        ('steps = [{ op = "resize", size = 8, interpolation = "linear" }]',
         r"interpolation = 'linear' is not a resize interpolation"),
        ('steps = [{ op = "channels", n = 7 }]', r"steps\[0\]\.n must be 1 to 4"),
        ('steps = [{ op = "dtype", name = "float8" }]', r"is not a dtype name"),
        ('steps = [{ op = "transform", callable = "hooks.py" }]',
         r"steps\[0\]\.callable = 'hooks\.py' must look like"),
        ('steps = ["window"]', r"steps\[0\] must be a table"),
        ('steps = [{ center = 40 }]', r"steps\[0\]\.op is missing"),
        ('window = [40, 400]\nsteps = [{ op = "resize", size = 8 }]', r"not both"),
        ("window = [40, -1]", r"preprocess\.window must be \[center, width>0\]"),
        ("expect = { mean = 0, sd = 1 }", r"expect\.sd is not a key; did you mean 'std'\?"),
        ("expect = { mean = 0 }", r"expect\.std is missing"),
        ("expect = { mean = 0, std = 0 }", r"expect\.std must be > 0"),
    ],
)  # fmt: skip
def test_bad_steps_are_spec_errors_naming_the_key(tmp_path: Path, text: str, match: str) -> None:
    with pytest.raises(SpecError, match=match):
        read_spec(_write(tmp_path, text + "\n"))


def test_a_bad_step_exits_2_before_any_dicom_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import medval.io
    from medval.cli import main

    def untouchable(*args: object, **kwargs: object) -> None:
        raise AssertionError("read before the spec was checked")

    for name in ("load_cohort", "read_dicom_cohort", "load_model", "read_image"):
        monkeypatch.setattr(medval.io, name, untouchable)
    spec = _write(tmp_path, 'steps = [{ op = "normalise", method = "zscore" }]\n')
    assert main(["validate", str(spec), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "preprocess.steps[0].op = 'normalise'" in err and "did you mean 'normalize'" in err


def test_the_schema_describes_each_step(tmp_path: Path) -> None:
    import jsonschema

    schema = json_schema()
    steps = schema["properties"]["preprocess"]["properties"]["steps"]
    assert steps["items"]["properties"]["op"]["enum"][:2] == ["window", "clip_percentile"]
    validator = jsonschema.Draft202012Validator(schema)
    good = tomllib.loads(BASE + STEPS)
    assert not list(validator.iter_errors(good))
    for bad in ('{ op = "windw" }', '{ op = "window", centre = 40 }',
                '{ op = "resize", interpolation = "linear", size = 4 }'):  # fmt: skip
        doc = tomllib.loads(BASE + f"steps = [{bad}]\n")
        assert list(validator.iter_errors(doc)), bad
    assert json.dumps(schema)  # serialisable
