"""load_model: state_dict + factory, refused and trusted TorchScript and pickles."""

from __future__ import annotations

import hashlib
import pathlib
import uuid

import pytest
import torch

from medval._errors import DataError, UnsafeModelError
from medval.io import load_model


def _net() -> torch.nn.Module:
    # Any weights do; fork_rng keeps the global generator untouched.
    with torch.random.fork_rng():
        torch.random.manual_seed(0)
        return torch.nn.Sequential(
            torch.nn.Linear(3, 4), torch.nn.Dropout(0.5), torch.nn.Linear(4, 2)
        )


@pytest.fixture
def factory_spec(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> str:
    name = f"medval_test_factory_{uuid.uuid4().hex}"
    (tmp_path / f"{name}.py").write_text(
        "import torch\n"
        "def build():\n"
        "    return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Dropout(0.5),\n"
        "                               torch.nn.Linear(4, 2))\n"
        "def wrong():\n"
        "    return torch.nn.Linear(3, 2)\n"
        "NOT_CALLABLE = 3\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


def _same(a: torch.nn.Module, b: torch.nn.Module) -> None:
    x = torch.linspace(-1, 1, 15).reshape(5, 3)
    a.eval()
    b.eval()
    torch.testing.assert_close(a(x), b(x))


def test_state_dict_with_factory_string(tmp_path: pathlib.Path, factory_spec: str) -> None:
    net = _net()
    path = tmp_path / "weights.pt"
    torch.save(net.state_dict(), path)
    loaded = load_model(path, factory=f"{factory_spec}:build")
    assert loaded.kind == "state_dict"
    assert loaded.path_name == "weights.pt"
    assert loaded.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert not loaded.module.training
    _same(loaded.module, net)


def test_nested_state_dict_with_callable(tmp_path: pathlib.Path) -> None:
    net = _net()
    path = tmp_path / "ckpt.pth"
    torch.save({"epoch": 3, "model_state_dict": net.state_dict()}, path)
    loaded = load_model(path, factory=_net)
    assert loaded.kind == "state_dict"
    _same(loaded.module, net)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_torchscript_is_code_refused_then_trusted(tmp_path: pathlib.Path) -> None:
    net = _net()
    path = tmp_path / "scripted.pt"
    torch.jit.save(torch.jit.script(net), str(path))
    with pytest.raises(UnsafeModelError, match=r"scripted\.pt' is a TorchScript archive: it holds "
                       r"code .*trust_pickle=True \(CLI --trust-code\)"):  # fmt: skip
        load_model(path)
    loaded = load_model(path, trust_pickle=True)
    assert loaded.kind == "torchscript"
    assert not loaded.module.training
    _same(loaded.module, net)


def test_whole_module_pickle_refused_then_trusted(tmp_path: pathlib.Path) -> None:
    net = _net()
    path = tmp_path / "whole.pt"
    torch.save(net, path)
    with pytest.raises(UnsafeModelError, match=r"whole\.pt' contains pickled Python objects.*"
                       r"execute code.*state_dict\(\).*trust_pickle=True"):  # fmt: skip
        load_model(path)
    loaded = load_model(path, trust_pickle=True)
    assert loaded.kind == "pickle"
    assert not loaded.module.training
    _same(loaded.module, net)


def test_missing_factory(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "weights.pt"
    torch.save(_net().state_dict(), path)
    with pytest.raises(DataError, match=r"holds a state_dict.*set the spec key model\.factory "
                       r"to 'model_def\.py:build'.*or 'package\.module:build'.*"
                       r"load_model\(path, factory=\.\.\.\)"):  # fmt: skip
        load_model(path)


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("no_colon", "must look like 'package.module:callable'"),
        ("medval_no_such_module_xyz:build", "cannot be imported"),
        ("{mod}:missing", "has no attribute 'missing'"),
        ("{mod}:NOT_CALLABLE", "is not callable"),
        ("{mod}:wrong", "does not match the factory's architecture"),
    ],
)
def test_bad_factory(tmp_path: pathlib.Path, factory_spec: str, spec: str, match: str) -> None:
    path = tmp_path / "weights.pt"
    torch.save(_net().state_dict(), path)
    with pytest.raises(DataError, match=match):
        load_model(path, factory=spec.format(mod=factory_spec))


def test_shape_mismatch(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "weights.pt"
    torch.save(torch.nn.Linear(3, 5).state_dict(), path)
    with pytest.raises(DataError, match="does not match the factory's architecture"):
        load_model(path, factory=lambda: torch.nn.Linear(3, 2))


def test_missing_and_non_torch_files(tmp_path: pathlib.Path) -> None:
    with pytest.raises(DataError, match=r"missing\.pt' does not exist"):
        load_model(tmp_path / "missing.pt")
    junk = tmp_path / "junk.pt"
    junk.write_text("definitely not a checkpoint")
    with pytest.raises(DataError, match=r"junk\.pt' is not a torch file"):
        load_model(junk)


def test_tensor_file_is_not_a_model(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "tensor.pt"
    torch.save(torch.zeros(3), path)
    with pytest.raises(DataError, match="holds a Tensor, not a state_dict"):
        load_model(path)


def test_zip_that_is_not_a_checkpoint(tmp_path: pathlib.Path) -> None:
    import zipfile

    path = tmp_path / "archive.pt"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("hello.txt", "hi")
    with pytest.raises(DataError, match=r"archive\.pt' is not a torch file"):
        load_model(path)
