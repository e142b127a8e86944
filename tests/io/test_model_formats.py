"""load_model: a factory .py file, safetensors weights, dict/tuple outputs, ONNX."""

from __future__ import annotations

import hashlib
import pathlib
import sys
import warnings
from typing import Any

import pytest
import torch

from medval._errors import DataError, InputError, MissingDependencyError
from medval.io import Factory, load_model

MODEL_DEF = """
import torch
from layers import width  # a module beside this file

class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.body = torch.nn.Sequential(torch.nn.Linear(3, width()), torch.nn.Dropout(0.5))
        self.head = torch.nn.Linear(width(), 2)

    def forward(self, x):
        features = self.body(x)
        return {"features": features, "logits": self.head(features)}

def build():
    return Net()

def pair():
    class Pair(Net):
        def forward(self, x):
            out = super().forward(x)
            return out["features"], out["logits"]
    return Pair()

def boom():
    raise RuntimeError("no GPU here")

def not_a_module():
    return 3

NOT_CALLABLE = 3
"""


def _net() -> torch.nn.Module:
    with torch.random.fork_rng():
        torch.random.manual_seed(0)
        return torch.nn.Sequential(
            torch.nn.Linear(3, 4), torch.nn.Dropout(0.5), torch.nn.Linear(4, 2)
        )


@pytest.fixture
def folder(tmp_path: pathlib.Path) -> pathlib.Path:
    """model_def.py (importing layers.py beside it) and weights.pt for its Net."""
    (tmp_path / "model_def.py").write_text(MODEL_DEF, encoding="utf-8")
    (tmp_path / "layers.py").write_text("def width():\n    return 4\n", encoding="utf-8")
    namespace: dict[str, Any] = {}
    sys.path.insert(0, str(tmp_path))
    try:
        exec(compile(MODEL_DEF, "model_def.py", "exec"), namespace)
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("layers", None)
    with torch.random.fork_rng():
        torch.random.manual_seed(1)
        torch.save(namespace["build"]().state_dict(), tmp_path / "weights.pt")
    return tmp_path


X = torch.linspace(-1, 1, 15).reshape(5, 3)


def _logits(folder: pathlib.Path) -> torch.Tensor:
    """Net's logits on X from weights.pt (dropout off), computed by hand."""
    state = torch.load(folder / "weights.pt", weights_only=True)
    h = X @ state["body.0.weight"].T + state["body.0.bias"]
    return h @ state["head.weight"].T + state["head.bias"]


# --- a factory in a .py file ------------------------------------------------------------


def test_a_factory_file_relative_to_the_spec_folder(
    folder: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(folder.parent)  # relative paths are from base_dir, not the cwd
    path_before = list(sys.path)
    factory = Factory("model_def.py:build", base_dir=folder)
    loaded = load_model(folder / "weights.pt", factory=factory, output_key="logits")
    assert loaded.kind == "state_dict"
    source = (folder / "model_def.py").read_bytes()
    assert loaded.factory_sha256 == hashlib.sha256(source).hexdigest()
    assert sys.path == path_before  # the folder was on sys.path only while the file ran
    assert not (folder / "__pycache__").exists()
    assert not loaded.module.training
    with torch.no_grad():
        torch.testing.assert_close(loaded.module(X), _logits(folder))
    # An absolute path works too; the module is loaded once per content digest.
    again = load_model(
        folder / "weights.pt", factory=f"{folder / 'model_def.py'}:build", output_key="logits"
    )
    assert again.factory_sha256 == loaded.factory_sha256
    assert type(again.module.wrapped) is type(loaded.module.wrapped)
    assert type(loaded.module.wrapped).__module__.startswith("_medval_factory_")


def test_an_import_path_factory_has_no_file_digest() -> None:
    from medval.demo import make_model

    assert Factory("medval.demo:make_model").sha256 is None
    assert isinstance(Factory(make_model).build(), torch.nn.Module)


@pytest.mark.parametrize(
    ("value", "match"),
    [
        (
            "missing.py:build",
            r"model\.factory = 'missing\.py:build': the file .*missing\.py' "
            r"does not exist; give the \.py file",
        ),
        (
            "model_def.py:buld",
            r"model_def\.py has no attribute 'buld' \(it defines Net, boom, "
            r"build, not_a_module, pair\); name the function",
        ),
        ("model_def.py:NOT_CALLABLE", r"'NOT_CALLABLE' is not callable \(it is a int\)"),
        (
            "model_def.py:boom",
            r"model\.factory = 'model_def\.py:boom' raised RuntimeError: "
            r"no GPU here; fix the factory",
        ),
        ("model_def.py:not_a_module", r"returned int, not a torch\.nn\.Module"),
        (
            "model_def:build",
            r"module 'model_def' cannot be imported .*for the file "
            r"model_def\.py write model\.factory = 'model_def\.py:build'",
        ),
        (
            "no_colon",
            r"model\.factory = 'no_colon' must look like 'package\.module:callable' "
            r"or 'path/to/model_def\.py:callable'",
        ),
    ],
)
def test_bad_factory_files_name_the_key_value_and_fix(
    folder: pathlib.Path, value: str, match: str
) -> None:
    with pytest.raises(DataError, match=match):
        load_model(folder / "weights.pt", factory=Factory(value, base_dir=folder))


def test_a_factory_file_that_fails_to_run(folder: pathlib.Path) -> None:
    (folder / "broken.py").write_text("import torch\nraise ImportError('timm missing')\n")
    path_before = list(sys.path)
    with pytest.raises(DataError, match=r"baseline\.factory = 'broken\.py:build': running "
                       r"broken\.py failed \(ImportError: timm missing\)"):  # fmt: skip
        load_model(
            folder / "weights.pt",
            factory=Factory("broken.py:build", key="baseline.factory", base_dir=folder),
        )
    assert sys.path == path_before
    assert not [m for m in sys.modules if m.startswith("_medval_factory_") and
                getattr(sys.modules[m], "__file__", "").endswith("broken.py")]  # fmt: skip


def test_the_factory_is_not_run_for_a_file_that_needs_none(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "whole.pt"
    torch.save(_net(), path)
    never = Factory("nowhere.py:build", base_dir=tmp_path)  # would fail if resolved
    assert load_model(path, factory=never, trust_pickle=True).kind == "pickle"


# --- dict and tuple outputs ---------------------------------------------------------------


def test_a_dict_output_without_output_key_fails_at_the_first_forward(
    folder: pathlib.Path,
) -> None:
    loaded = load_model(
        folder / "weights.pt", factory=Factory("model_def.py:build", base_dir=folder)
    )
    with pytest.raises(InputError, match=r"model 'weights\.pt' returns a dict with keys "
                       r"\['features', 'logits'\], not one tensor of scores; .*spec key "
                       r"model\.output_key = 'features'"):  # fmt: skip
        loaded.module(X)
    assert loaded.module.get_submodule("head") is not None  # not wrapped: names unchanged


def test_a_tuple_output_needs_output_index(folder: pathlib.Path) -> None:
    factory = Factory("model_def.py:pair", base_dir=folder)
    loaded = load_model(folder / "weights.pt", factory=factory)
    with pytest.raises(InputError, match=r"returns a tuple of 2 outputs.*model\.output_index = 0"):
        loaded.module(X)
    picked = load_model(folder / "weights.pt", factory=factory, output_index=1)
    with torch.no_grad():
        torch.testing.assert_close(picked.module(X), _logits(folder))
    # Submodule names of the wrapped model work unprefixed (model.embeddings = "head").
    assert picked.module.get_submodule("head") is picked.module.get_submodule("wrapped.head")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (
            {"output_key": "logit"},
            r"output_key = 'logit' but model 'weights\.pt' returns a "
            r"dict with keys \['features', 'logits'\]",
        ),
        (
            {"output_index": 0},
            r"output_index = 0 but .* returns a dict, not a tuple; use "
            r"model\.output_key",
        ),
    ],
)
def test_a_wrong_output_selection(folder: pathlib.Path, kwargs: dict[str, Any], match: str) -> None:
    factory = Factory("model_def.py:build", base_dir=folder)
    loaded = load_model(folder / "weights.pt", factory=factory, **kwargs)
    with pytest.raises(InputError, match=match):
        loaded.module(X)


def test_predict_runs_a_dict_model_with_output_key(folder: pathlib.Path) -> None:
    from medval.inference import predict

    factory = Factory("model_def.py:build", base_dir=folder)
    batches = [(X[:3],), (X[3:],)]
    loaded = load_model(folder / "weights.pt", factory=factory, output_key="logits")
    preds = predict(loaded.module, batches, case_ids=[f"c{i}" for i in range(5)], mc_samples=3,
                    embeddings="head")  # fmt: skip
    expected = torch.softmax(_logits(folder), dim=1).double().numpy()
    assert preds.mc_probabilities is not None and preds.mc_probabilities.shape[0] == 3
    assert preds.embeddings is not None and preds.embeddings.shape == (5, 4)
    bare = load_model(folder / "weights.pt", factory=factory)
    with pytest.raises(InputError, match=r"returns a dict .*model\.output_key"):
        predict(bare.module, batches)
    det = predict(loaded.module, batches)
    assert abs(det.probabilities - expected).max() < 1e-5


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_torchscript_dict_output_is_guarded_too(tmp_path: pathlib.Path) -> None:
    class Dict(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = torch.nn.Linear(3, 2)

        def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
            return {"logits": self.fc(x)}

    net = Dict()
    path = tmp_path / "dict.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.trace(net, X, strict=False), str(path))
    bare = load_model(path, trust_pickle=True)
    with pytest.raises(InputError, match=r"keys \['logits'\].*model\.output_key = 'logits'"):
        bare.module(X)
    picked = load_model(path, trust_pickle=True, output_key="logits")
    with torch.no_grad():
        torch.testing.assert_close(picked.module(X), net(X)["logits"])


# --- safetensors ------------------------------------------------------------------------


def test_safetensors_weights_load_into_the_factory(folder: pathlib.Path) -> None:
    st = pytest.importorskip("safetensors.torch")
    state = torch.load(folder / "weights.pt", weights_only=True)
    st.save_file(state, str(folder / "weights.safetensors"))
    factory = Factory("model_def.py:build", base_dir=folder)
    loaded = load_model(folder / "weights.safetensors", factory=factory, output_key="logits")
    assert loaded.kind == "safetensors"
    assert loaded.factory_sha256 is not None
    with torch.no_grad():
        torch.testing.assert_close(loaded.module(X), _logits(folder))
    # Sniffed from the bytes whatever the name; no factory or wrong keys: clear errors.
    (folder / "renamed.pt").write_bytes((folder / "weights.safetensors").read_bytes())
    assert load_model(folder / "renamed.pt", factory=factory).kind == "safetensors"
    with pytest.raises(DataError, match=r"holds a state_dict .*model\.factory"):
        load_model(folder / "weights.safetensors")
    st.save_file({"body.0.weight": state["body.0.weight"], "extra": torch.zeros(1)},
                 str(folder / "partial.safetensors"))  # fmt: skip
    expected = (
        r"3 missing keys \['body\.0\.bias', 'head\.weight', 'head\.bias'\], 1 unexpected keys "
        r"\['extra'\]; use the factory the weights were trained with "
        r"\(model\.factory = 'model_def\.py:build'\)"
    )
    with pytest.raises(DataError, match=expected):
        load_model(folder / "partial.safetensors", factory=factory)


def test_safetensors_without_the_package(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "safetensors", None)  # import fails
    monkeypatch.setitem(sys.modules, "safetensors.torch", None)
    path = tmp_path / "w.safetensors"
    path.write_bytes(b"\x02\x00\x00\x00\x00\x00\x00\x00{}")
    with pytest.raises(MissingDependencyError, match=r"pip install safetensors"):
        load_model(path, factory=_net)


# --- ONNX ---------------------------------------------------------------------------------


def _export_onnx(net: torch.nn.Module, path: pathlib.Path, outputs: list[str]) -> None:
    pytest.importorskip("onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            net, (X[:2],), str(path), input_names=["input"], output_names=outputs,
            dynamic_axes={"input": {0: "batch"}}, dynamo=False,
        )  # fmt: skip


def test_an_onnx_model_runs_in_onnxruntime(tmp_path: pathlib.Path) -> None:
    pytest.importorskip("onnxruntime")
    from medval.inference import predict

    net = _net().eval()
    path = tmp_path / "model.onnx"
    _export_onnx(net, path, ["logits"])
    loaded = load_model(path)
    assert loaded.kind == "onnx"
    assert loaded.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert not list(loaded.module.parameters())
    with torch.no_grad():
        torch.testing.assert_close(loaded.module(X), net(X), rtol=1e-5, atol=1e-6)
    preds = predict(loaded.module, [(X[:3],), (X[3:],)], tta="hflip")
    assert preds.probabilities.shape == (5, 2)
    # No dropout modules: MC dropout cannot sample it (a spec refuses mc_samples > 0).
    with pytest.warns(UserWarning, match="no dropout module"):
        predict(loaded.module, [(X,)], mc_samples=2)


def test_an_onnx_model_with_two_outputs_needs_output_key(tmp_path: pathlib.Path) -> None:
    pytest.importorskip("onnxruntime")

    class Two(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = torch.nn.Linear(3, 2)

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            return x * 2, self.fc(x)

    net = Two().eval()
    path = tmp_path / "two.onnx"
    _export_onnx(net, path, ["features", "logits"])
    with pytest.raises(InputError, match=r"keys \['features', 'logits'\].*model\.output_key"):
        load_model(path).module(X)
    with torch.no_grad():
        picked = load_model(path, output_key="logits").module(X)
        torch.testing.assert_close(picked, net(X)[1], rtol=1e-5, atol=1e-6)
    with pytest.raises(InputError, match=r"(?s)rejected an input of shape \(5, 4\).*dynamic"):
        load_model(path, output_key="logits").module(torch.zeros(5, 4))


def test_onnx_without_onnxruntime_and_a_broken_file(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "junk.onnx"
    path.write_bytes(b"not a graph")
    if "onnxruntime" in sys.modules or _has("onnxruntime"):
        with pytest.raises(DataError, match=r"ONNX model 'junk\.onnx' cannot be loaded"):
            load_model(path)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'medval\[onnx\]'"):
        load_model(path)


def _has(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None
