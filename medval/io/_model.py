"""Loading a model file safely: a state_dict (torch or safetensors), ONNX, or trusted code.

``torch.load`` of an arbitrary pickle can run code, and so does a TorchScript
archive (its code runs when the model is called). medval loads state dicts
with ``weights_only=True`` (or from a ``.safetensors`` file) into the
factory's architecture, runs ``.onnx`` files in onnxruntime (optional extra
``medval[onnx]``), and refuses whole-module pickles and TorchScript unless
the caller says the file is trusted.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import pathlib
import pickle
import warnings
import zipfile
from collections.abc import Callable, Mapping
from typing import Any, Literal, cast

import torch

from medval._errors import DataError, MissingDependencyError, UnsafeModelError
from medval.io._factory import Factory, resolve_factory
from medval.io._outputs import select_output

__all__ = ["LoadedModel", "ModelKind", "load_model", "resolve_factory"]

ModelKind = Literal["torchscript", "state_dict", "safetensors", "onnx", "pickle"]
_STATE_KEYS = ("state_dict", "model_state_dict")
_SHOW = 5
_TRUST = "only if you trust the file's source, pass trust_pickle=True (CLI --trust-code)"


@dataclasses.dataclass(frozen=True, eq=False)
class LoadedModel:
    """A model loaded by :func:`load_model`.

    Attributes
    ----------
    module : torch.nn.Module
        In eval mode; its forward returns one tensor of scores.
    sha256 : str
        SHA-256 of the model file's bytes (for the report's provenance).
    kind : {"torchscript", "state_dict", "safetensors", "onnx", "pickle"}
        How it was loaded.
    path_name : str
        The file's base name (no folders: they may name people or sites).
    factory_sha256 : str or None
        SHA-256 of the factory's ``.py`` file when the factory is a file path.
    """

    module: torch.nn.Module
    sha256: str
    kind: ModelKind
    path_name: str
    factory_sha256: str | None = None


def _sha256(path: pathlib.Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _is_torchscript(path: pathlib.Path) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
    return any(n.endswith("/constants.pkl") or "/code/" in n for n in names)


def _looks_like_torch_file(path: pathlib.Path) -> bool:
    """A zip archive (torch >= 1.6) or a binary pickle (the legacy format)."""
    if zipfile.is_zipfile(path):
        return True
    with path.open("rb") as fh:
        return fh.read(1) == b"\x80"


def _is_safetensors(path: pathlib.Path) -> bool:
    """An 8-byte little-endian header length, then the JSON header."""
    with path.open("rb") as fh:
        head = fh.read(9)
    if len(head) < 9 or head[8:9] != b"{":
        return False
    return 2 <= int.from_bytes(head[:8], "little") <= path.stat().st_size - 8


def _read_safetensors(path: pathlib.Path, map_location: str | torch.device) -> Any:
    try:
        st: Any = importlib.import_module("safetensors.torch")
    except ImportError as exc:
        raise MissingDependencyError(
            f"model file {path.name!r} is a safetensors file; install the reader: "
            "pip install safetensors."
        ) from exc
    try:
        return st.load_file(str(path), device=str(map_location))
    except Exception as exc:
        raise DataError(
            f"safetensors file {path.name!r} cannot be read ({type(exc).__name__}: {exc})."
        ) from exc


def _state_dict_of(obj: Any) -> Mapping[str, torch.Tensor] | None:
    if isinstance(obj, Mapping):
        for key in _STATE_KEYS:
            inner = obj.get(key)
            if isinstance(inner, Mapping):
                obj = inner
                break
        if obj and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()):
            return cast("Mapping[str, torch.Tensor]", obj)
    return None


def _build(
    state: Mapping[str, torch.Tensor],
    factory: str | Callable[[], Any] | Factory | None,
    name: str,
) -> tuple[torch.nn.Module, str | None]:
    """The factory's module with ``state`` loaded (strict), and the factory file's SHA-256."""
    if factory is None:
        raise DataError(
            f"model file {name!r} holds a state_dict (weights only), so medval needs the "
            "architecture: set the spec key model.factory to 'model_def.py:build' (a .py file "
            "beside the spec) or 'package.module:build' (a function or class returning the "
            "untrained torch.nn.Module); in Python, load_model(path, factory=...)."
        )
    built = factory if isinstance(factory, Factory) else Factory(factory)
    module = built.build()
    try:
        result = module.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shape mismatches raise even when not strict
        raise DataError(
            f"model file {name!r} does not match the factory's architecture ({exc}); use the "
            f"factory the weights were trained with ({built.key} = {built.text!r})."
        ) from exc
    missing, unexpected = list(result.missing_keys), list(result.unexpected_keys)
    if missing or unexpected:
        raise DataError(
            f"model file {name!r} does not match the factory's architecture: "
            f"{len(missing)} missing keys {missing[:_SHOW]}, {len(unexpected)} unexpected keys "
            f"{unexpected[:_SHOW]}; use the factory the weights were trained with "
            f"({built.key} = {built.text!r})."
        )
    module.load_state_dict(state, strict=True)
    return module, built.sha256


def load_model(
    path: str | pathlib.Path,
    *,
    factory: str | Callable[[], Any] | Factory | None = None,
    trust_pickle: bool = False,
    map_location: str | torch.device = "cpu",
    output_key: str | None = None,
    output_index: int | None = None,
    label_column: int | None = None,
) -> LoadedModel:
    """Load a model file without running code from it (unless trusted).

    Parameters
    ----------
    path : str or path-like
        A ``state_dict`` saved with ``torch.save`` (optionally under a
        ``"state_dict"`` or ``"model_state_dict"`` key) or as a
        ``.safetensors`` file (needs the ``safetensors`` package); an
        ``.onnx`` file (needs ``pip install 'medval[onnx]'``); or, trusted
        only, a TorchScript archive (``torch.jit.save``) or a pickled whole
        module.
    factory : str, callable or Factory, optional
        Builds the architecture a state_dict loads into: a zero-argument
        callable, ``"package.module:callable"`` or ``"model_def.py:callable"``
        (a file; relative paths from the working directory).
    trust_pickle : bool, default False
        Allow a whole-module pickle or a TorchScript archive: both run code
        from the file. Only for files from a trusted source.
    map_location : str or torch.device, default "cpu"
        Where tensors are loaded.
    output_key, output_index : optional
        The model's forward returns a dict (``output_key``) or a tuple
        (``output_index``): the returned module gives that entry. Without
        them, a dict or tuple output is refused at the first forward.
    label_column : int, optional
        The model is a multi-label head returning (batch, L) scores: keep
        column ``label_column`` (the finding validated; with
        ``predict(output="sigmoid")`` its logit goes through a sigmoid).

    Returns
    -------
    LoadedModel
        The module in eval mode, the file's SHA-256 and how it was loaded.

    Raises
    ------
    DataError
        If the file is missing or not a model file, holds a state_dict but
        no factory was given, or does not match the factory; or the factory
        is missing, fails or returns no ``torch.nn.Module``.
    UnsafeModelError
        If the file is a pickle of Python objects or a TorchScript archive
        and ``trust_pickle`` is False.
    MissingDependencyError
        A ``.safetensors`` file without ``safetensors``, an ``.onnx`` file
        without ``onnxruntime``.
    """
    file = pathlib.Path(path).expanduser()
    name = file.name
    if not file.is_file():
        raise DataError(
            f"model file {str(file)!r} does not exist; pass the path of a .pt/.pth, "
            ".safetensors or .onnx file."
        )
    sha = _sha256(file)
    module, kind, factory_sha = _load(file, factory, trust_pickle, map_location)
    if not isinstance(module, torch.nn.Module):
        raise DataError(
            f"model file {name!r} holds a {type(module).__name__}, not a torch.nn.Module."
        )
    module = select_output(
        module, key=output_key, index=output_index, name=name, column=label_column
    )
    module.eval()
    return LoadedModel(module, sha, kind, name, factory_sha)


def _load(
    file: pathlib.Path,
    factory: str | Callable[[], Any] | Factory | None,
    trust_pickle: bool,
    map_location: str | torch.device,
) -> tuple[Any, ModelKind, str | None]:
    """The loaded object, how it was loaded and the factory file's SHA-256."""
    name = file.name
    if file.suffix.lower() == ".onnx":
        from medval.io._onnx import load_onnx

        return load_onnx(file), "onnx", None
    if file.suffix.lower() == ".safetensors" or _is_safetensors(file):
        module, factory_sha = _build(_read_safetensors(file, map_location), factory, name)
        return module, "safetensors", factory_sha
    if not _looks_like_torch_file(file):
        raise DataError(
            f"model file {name!r} is not a torch file (neither a zip archive nor a pickle); "
            "save it with torch.save(model.state_dict(), path) or as .safetensors."
        )
    if _is_torchscript(file):
        if not trust_pickle:
            raise UnsafeModelError(
                f"model file {name!r} is a TorchScript archive: it holds code that runs when "
                "the model is loaded and called, so medval refused it. Fix: save "
                "model.state_dict() (with a factory) or export to ONNX; or, " + _TRUST + "."
            )
        try:
            with warnings.catch_warnings():
                # torch >= 2.9 deprecates TorchScript; loading existing archives still works.
                warnings.simplefilter("ignore", DeprecationWarning)
                scripted: Any = torch.jit.load(  # type: ignore[no-untyped-call]
                    str(file), map_location=map_location
                )
        except Exception as exc:
            raise DataError(f"TorchScript file {name!r} cannot be loaded ({exc}).") from exc
        return scripted, "torchscript", None
    if trust_pickle:
        try:
            obj = torch.load(file, map_location=map_location, weights_only=False)
        except Exception as exc:
            raise DataError(f"model file {name!r} is not a loadable torch file ({exc}).") from exc
        state = _state_dict_of(obj)
        if state is None:
            return obj, "pickle", None
        module, factory_sha = _build(state, factory, name)
        return module, "state_dict", factory_sha
    try:
        obj = torch.load(file, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise UnsafeModelError(
            f"model file {name!r} contains pickled Python objects, which can execute code "
            "when loaded, so medval refused it. Fix: save model.state_dict() (and pass a "
            "factory), as .pt or .safetensors, or export to ONNX; or, " + _TRUST + "."
        ) from exc
    except Exception as exc:
        raise DataError(
            f"model file {name!r} is not a torch file ({type(exc).__name__}: {exc}); save "
            "it with torch.save(model.state_dict(), path) or as .safetensors."
        ) from exc
    state = _state_dict_of(obj)
    if state is None:
        raise DataError(
            f"model file {name!r} holds a {type(obj).__name__}, not a state_dict of "
            "tensors; save torch.save(model.state_dict(), path) or a .safetensors file."
        )
    module, factory_sha = _build(state, factory, name)
    return module, "state_dict", factory_sha
