"""Model formats in a spec run: a factory .py file, safetensors, output_key, ONNX, load order.

One small demo cohort; the reference run uses the demo factory on the same weights.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import medval.io
from medval import ExitCode
from medval.cli import main
from medval.run import RunOutcome, run_spec

from .conftest import perturbed_state, sha, write_spec

# A team's model file: the demo net behind a forward that returns a dict.
MODEL_DEF = """
import torch
from medval.demo import make_model

class WithAux(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.net = make_model()

    def forward(self, x):
        return {"aux": x.mean(dim=(1, 2, 3)), "logits": self.net(x)}

def build():
    return WithAux()
"""


def _write(folder: Path, name: str, model: str, extra: str = "") -> Path:
    return write_spec(folder, name, model, extra=extra)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory, small_cohort: Path) -> Path:
    """The cohort, the demo weights (plain and under "net."), model_def.py, TorchScript."""
    import torch

    from medval.demo import make_model

    root = tmp_path_factory.mktemp("formats")
    (root / "cohort").symlink_to(small_cohort, target_is_directory=True)
    state = perturbed_state(1)
    torch.save(state, root / "m0.pt")
    torch.save({f"net.{k}": v for k, v in state.items()}, root / "aux.pt")
    (root / "model_def.py").write_text(MODEL_DEF, encoding="utf-8")
    net = make_model()
    net.load_state_dict(state)
    net.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.trace(net, torch.zeros(2, 1, 32, 32)).save(str(root / "scripted.pt"))
    return root


@pytest.fixture(scope="module")
def reference(folder: Path) -> RunOutcome:
    model = 'factory = "medval.demo:make_model"\nfile = "m0.pt"'
    return run_spec(_write(folder, "reference", model), out_dir=folder / "reference", quiet=True)


_sha = sha


@pytest.mark.parametrize("weights", ["aux.pt", "aux.safetensors"])
def test_a_factory_file_with_output_key_runs_the_same_model(
    folder: Path, reference: RunOutcome, weights: str
) -> None:
    if weights.endswith(".safetensors"):
        import torch

        st = pytest.importorskip("safetensors.torch")
        st.save_file(torch.load(folder / "aux.pt", weights_only=True), str(folder / weights))
    model = f'factory = "model_def.py:build"\nfile = "{weights}"\noutput_key = "logits"'
    name = weights.replace(".", "_")
    run = run_spec(_write(folder, name, model), out_dir=folder / name, quiet=True)
    assert list(run.predictions.case_ids) == list(reference.predictions.case_ids)
    np.testing.assert_allclose(
        run.predictions.probabilities, reference.predictions.probabilities, atol=1e-6
    )
    prov = run.result.provenance
    assert prov["factory_sha256"] == _sha(folder / "model_def.py")
    assert prov["model_sha256"] == _sha(folder / weights)
    kind = "safetensors" if weights.endswith(".safetensors") else "state_dict"
    assert prov["model_kind"] == kind
    assert "factory_sha256" not in reference.result.provenance  # an import path: no file


def test_an_onnx_model_runs_through_onnxruntime(folder: Path, reference: RunOutcome) -> None:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    import torch

    from medval.demo import make_model

    net = make_model()
    net.load_state_dict(torch.load(folder / "m0.pt", weights_only=True))
    net.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            net, (torch.zeros(2, 1, 32, 32),), str(folder / "m0.onnx"), input_names=["image"],
            output_names=["logits"], dynamic_axes={"image": {0: "batch"}}, dynamo=False,
        )  # fmt: skip
    run = run_spec(_write(folder, "onnx", 'file = "m0.onnx"'), out_dir=folder / "onnx", quiet=True)
    np.testing.assert_allclose(
        run.predictions.probabilities, reference.predictions.probabilities, atol=1e-5
    )
    assert run.result.provenance["model_kind"] == "onnx"
    assert run.result.provenance["model_sha256"] == _sha(folder / "m0.onnx")


@pytest.mark.parametrize(
    ("model", "extra", "message"),
    [
        (
            'factory = "model_deff.py:build"\nfile = "aux.pt"',
            "",
            "model.factory = 'model_deff.py:build': the file",
        ),
        (
            'factory = "model_def.py:make"\nfile = "aux.pt"',
            "",
            "model.factory = 'model_def.py:make': model_def.py has no attribute 'make' "
            "(it defines WithAux, build)",
        ),
        ('file = "scripted.pt"', "", "is a TorchScript archive"),
        (
            'factory = "model_def.py:build"\nfile = "m0.pt"',
            "",
            "does not match the factory's architecture: 17 missing keys "
            "['net.features.0.0.weight',",
        ),
        (
            'factory = "medval.demo:make_model"\nfile = "m0.pt"',
            '[baseline]\nmargin = 0.05\nmodel = "m0.pt"\nfactory = "nowhere.py:build"',
            "baseline.factory = 'nowhere.py:build': the file",
        ),
    ],
)
def test_model_problems_are_reported_before_the_dicom_scan(
    folder: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    model: str,
    extra: str,
    message: str,
) -> None:
    scanned: list[Any] = []

    def scan(*args: Any, **kwargs: Any) -> Any:
        scanned.append(args)
        raise AssertionError("the DICOM folder was scanned before the model loaded")

    monkeypatch.setattr(medval.io._join, "read_dicom_cohort", scan)
    spec = _write(folder, "bad", model, extra)
    out = folder / "bad-out"
    assert main(["validate", str(spec), "--out", str(out), "--quiet"]) == ExitCode.DATA_ERROR
    err = capsys.readouterr().err
    assert message in err, err
    assert scanned == []
    assert not out.exists()


def test_torchscript_needs_the_trust_flag(folder: Path, reference: RunOutcome) -> None:
    spec = _write(folder, "scripted", 'file = "scripted.pt"')
    with pytest.raises(medval.UnsafeModelError, match=r"trust_pickle=True \(CLI --trust-code\)"):
        run_spec(spec, out_dir=folder / "scripted", quiet=True)
    run = run_spec(spec, out_dir=folder / "scripted", quiet=True, trust_pickle=True)
    assert run.result.provenance["model_kind"] == "torchscript"
    np.testing.assert_allclose(
        run.predictions.probabilities, reference.predictions.probabilities, atol=1e-6
    )
