"""A spec runs no code beyond its folder and medval unless the command line says so."""

from __future__ import annotations

from pathlib import Path

import pytest

from medval import ExitCode, SpecError
from medval.cli import main
from medval.gate import code_outside_spec, read_spec
from medval.run import run_spec

from .conftest import write_spec

_SIDE_EFFECT = """
import pathlib
pathlib.Path({marker!r}).write_text("imported")

def build():
    from medval.demo import make_model
    return make_model()
"""


@pytest.fixture
def folder(tmp_path: Path, small_cohort: Path) -> Path:
    import torch

    from medval.demo import make_model

    (tmp_path / "spec").mkdir()
    (tmp_path / "spec" / "cohort").symlink_to(small_cohort, target_is_directory=True)
    torch.save(make_model().state_dict(), tmp_path / "spec" / "model.pt")
    return tmp_path / "spec"


def test_what_counts_as_outside(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    sections = {
        "model": {"factory": "model_def.py:build"},
        "baseline": {"factory": "../elsewhere.py:build"},
        "preprocess": {"steps": [
            {"op": "window", "center": 1, "width": 2},
            {"op": "transform", "callable": "sub/hooks.py:fn"},
            {"op": "transform", "callable": "monai.transforms:ScaleIntensity"},
            {"op": "transform", "callable": "/etc/x.py:fn"},
            {"op": "transform", "callable": "medval.io:Normalize"},
        ]},
    }  # fmt: skip
    assert code_outside_spec(sections, tmp_path) == [
        "baseline.factory = '../elsewhere.py:build' (a .py file outside the spec's folder)",
        "preprocess.steps[2].callable = 'monai.transforms:ScaleIntensity' (an import path "
        "(code installed outside the spec's folder))",
        "preprocess.steps[3].callable = '/etc/x.py:fn' (a .py file outside the spec's folder)",
    ]


def test_a_spec_cannot_trust_itself(folder: Path) -> None:
    model = 'file = "model.pt"\nfactory = "medval.demo:make_model"\ntrust_pickle = true'
    with pytest.raises(SpecError, match=r"model.trust_pickle = true: a spec cannot grant itself "
                       r"trust.*--trust-code"):  # fmt: skip
        read_spec(write_spec(folder, "self-trust", model))


def test_outside_code_is_refused_before_it_is_imported(
    folder: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    marker = tmp_path / "imported.txt"
    (tmp_path / "vendor").mkdir()
    (tmp_path / "vendor" / "vendor_models.py").write_text(_SIDE_EFFECT.format(marker=str(marker)))
    monkeypatch.syspath_prepend(str(tmp_path / "vendor"))
    spec = write_spec(folder, "vendor", 'file = "model.pt"\nfactory = "vendor_models:build"')
    code = main(["validate", str(spec), "--out", str(folder / "out"), "--quiet"])
    err = capsys.readouterr().err
    assert code == ExitCode.USAGE_ERROR, err
    assert "model.factory = 'vendor_models:build' (an import path" in err
    assert "--trust-code" in err
    assert not marker.exists()  # refused before the import, so nothing ran
    assert not (folder / "out").exists()
    code = main(["validate", str(spec), "--out", str(folder / "out"), "--quiet", "--trust-code"])
    assert code in (ExitCode.OK, ExitCode.GATE_FAILED), capsys.readouterr().err
    assert marker.exists()


def test_code_beside_the_spec_and_medval_own_need_no_flag(folder: Path) -> None:
    (folder / "model_def.py").write_text(
        "def build():\n    from medval.demo import make_model\n    return make_model()\n"
    )
    for name, factory in (("beside", "model_def.py:build"), ("own", "medval.demo:make_model")):
        spec = write_spec(folder, name, f'file = "model.pt"\nfactory = "{factory}"')
        assert run_spec(spec, out_dir=folder / name, quiet=True).result is not None
