"""Loading a model file safely: TorchScript, a state_dict, or (if trusted) a pickle.

``torch.load`` of an arbitrary pickle can run code. medval loads with
``weights_only=True`` and refuses whole-module pickles unless the caller
says the file is trusted.
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

from medval._errors import DataError, UnsafeModelError

__all__ = ["LoadedModel", "ModelKind", "load_model", "resolve_factory"]

ModelKind = Literal["torchscript", "state_dict", "pickle"]
_STATE_KEYS = ("state_dict", "model_state_dict")
_SHOW = 5


@dataclasses.dataclass(frozen=True, eq=False)
class LoadedModel:
    """A model loaded by :func:`load_model`.

    Attributes
    ----------
    module : torch.nn.Module
        In eval mode.
    sha256 : str
        SHA-256 of the model file's bytes (for the report's provenance).
    kind : {"torchscript", "state_dict", "pickle"}
        How it was loaded.
    path_name : str
        The file's base name (no folders: they may name people or sites).
    """

    module: torch.nn.Module
    sha256: str
    kind: ModelKind
    path_name: str


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


def resolve_factory(
    factory: str | Callable[[], torch.nn.Module], *, path_name: str = ""
) -> Callable[[], torch.nn.Module]:
    """A callable from ``"package.module:callable"`` (or the callable itself).

    Raises
    ------
    DataError
        If the string is malformed, the module cannot be imported or the
        attribute is missing or not callable.
    """
    if callable(factory):
        return factory
    text = str(factory)
    module_name, sep, attr = text.partition(":")
    if not sep or not module_name or not attr:
        raise DataError(
            f"model factory {text!r} must look like 'package.module:callable' (for "
            f"{path_name or 'the model'}); set the spec key model.factory accordingly."
        )
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise DataError(
            f"model factory {text!r}: module {module_name!r} cannot be imported ({exc}); make "
            "it importable (install the package or add it to PYTHONPATH)."
        ) from exc
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise DataError(
                f"model factory {text!r}: {module_name!r} has no attribute {attr!r}; check "
                "the name after the ':'."
            )
        obj = getattr(obj, part)
    if not callable(obj):
        raise DataError(f"model factory {text!r} is not callable; name a class or function.")
    fn: Callable[[], torch.nn.Module] = obj
    return fn


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
    factory: str | Callable[[], torch.nn.Module] | None,
    name: str,
) -> torch.nn.Module:
    if factory is None:
        raise DataError(
            f"model file {name!r} holds a state_dict (weights only), so medval needs the "
            "architecture: pass factory='package.module:callable' (a function or class "
            "returning the untrained torch.nn.Module), spec key model.factory, or CLI --factory."
        )
    module = resolve_factory(factory, path_name=name)()
    if not isinstance(module, torch.nn.Module):
        raise DataError(
            f"model factory for {name!r} returned {type(module).__name__}, not a torch.nn.Module."
        )
    try:
        result = module.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shape mismatches raise even when not strict
        raise DataError(
            f"model file {name!r} does not match the factory's architecture ({exc})."
        ) from exc
    if result.missing_keys or result.unexpected_keys:
        raise DataError(
            f"model file {name!r} does not match the factory's architecture: missing keys "
            f"{list(result.missing_keys)[:_SHOW]}, unexpected keys "
            f"{list(result.unexpected_keys)[:_SHOW]}; use the factory the weights were "
            "trained with."
        )
    module.load_state_dict(state, strict=True)
    return module


def load_model(
    path: str | pathlib.Path,
    *,
    factory: str | Callable[[], torch.nn.Module] | None = None,
    trust_pickle: bool = False,
    map_location: str | torch.device = "cpu",
) -> LoadedModel:
    """Load a model file without running code from it (unless trusted).

    Parameters
    ----------
    path : str or path-like
        A TorchScript archive (``torch.jit.save``), a ``state_dict`` saved
        with ``torch.save`` (optionally under a ``"state_dict"`` or
        ``"model_state_dict"`` key), or a pickled whole module.
    factory : str or callable or None, default None
        Builds the architecture for a state_dict: a zero-argument callable
        or ``"package.module:callable"``.
    trust_pickle : bool, default False
        Allow a whole-module pickle, which runs code while loading. Only for
        files from a trusted source.
    map_location : str or torch.device, default "cpu"
        Where tensors are loaded.

    Returns
    -------
    LoadedModel
        The module in eval mode, the file's SHA-256 and how it was loaded.

    Raises
    ------
    DataError
        If the file is missing, is not a torch file, holds a state_dict but
        no factory was given, or does not match the factory.
    UnsafeModelError
        If the file is a pickle of Python objects and ``trust_pickle`` is
        False.
    """
    file = pathlib.Path(path).expanduser()
    name = file.name
    if not file.is_file():
        raise DataError(
            f"model file {str(file)!r} does not exist; pass the path of a .pt/.pth file."
        )
    sha = _sha256(file)
    if not _looks_like_torch_file(file):
        raise DataError(
            f"model file {name!r} is not a torch file (neither a zip archive nor a pickle); "
            "save it with torch.save(model.state_dict(), path) or torch.jit.save."
        )
    kind: ModelKind
    if _is_torchscript(file):
        try:
            with warnings.catch_warnings():
                # torch >= 2.9 deprecates TorchScript; loading existing archives still works.
                warnings.simplefilter("ignore", DeprecationWarning)
                module: Any = torch.jit.load(  # type: ignore[no-untyped-call]
                    str(file), map_location=map_location
                )
        except Exception as exc:
            raise DataError(f"TorchScript file {name!r} cannot be loaded ({exc}).") from exc
        kind = "torchscript"
    elif trust_pickle:
        try:
            module = torch.load(file, map_location=map_location, weights_only=False)
        except Exception as exc:
            raise DataError(f"model file {name!r} is not a loadable torch file ({exc}).") from exc
        kind = "pickle"
        state = _state_dict_of(module)
        if state is not None:
            module, kind = _build(state, factory, name), "state_dict"
    else:
        try:
            obj = torch.load(file, map_location=map_location, weights_only=True)
        except pickle.UnpicklingError as exc:
            raise UnsafeModelError(
                f"model file {name!r} contains pickled Python objects, which can execute code "
                "when loaded, so medval refused it. Fix: save model.state_dict() (and pass a "
                "factory) or a TorchScript archive (torch.jit.save); or, only if you trust the "
                "file's source, pass trust_pickle=True (CLI --trust-pickle, spec "
                "model.trust_pickle = true)."
            ) from exc
        except Exception as exc:
            raise DataError(
                f"model file {name!r} is not a torch file ({type(exc).__name__}: {exc}); save "
                "it with torch.save(model.state_dict(), path) or torch.jit.save."
            ) from exc
        state = _state_dict_of(obj)
        if state is None:
            raise DataError(
                f"model file {name!r} holds a {type(obj).__name__}, not a state_dict of "
                "tensors; save torch.save(model.state_dict(), path) or a TorchScript archive."
            )
        module, kind = _build(state, factory, name), "state_dict"
    if not isinstance(module, torch.nn.Module):
        raise DataError(
            f"model file {name!r} holds a {type(module).__name__}, not a torch.nn.Module."
        )
    module.eval()
    return LoadedModel(module=module, sha256=sha, kind=kind, path_name=name)
