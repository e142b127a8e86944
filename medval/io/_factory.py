"""Model factories: the architecture a state dict loads into.

A factory is ``"package.module:callable"`` (imported) or
``"path/to/model_def.py:callable"`` (a file; relative to the spec's folder in
a spec). A file is run under a private module name, from the bytes whose
SHA-256 the provenance records; ``sys.path`` holds its folder only while it
runs (so it can import the modules beside it), and no ``__pycache__`` is
written next to it.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medval._errors import DataError, MedvalError

if TYPE_CHECKING:
    import torch

__all__ = ["Factory", "resolve_factory"]

_FORMS = "'package.module:callable' or 'path/to/model_def.py:callable'"


@dataclasses.dataclass(frozen=True)
class Factory:
    """Builds the untrained ``torch.nn.Module`` a state dict loads into.

    Resolved on first use (a model file that needs no architecture, such as
    ONNX, never runs it).

    Attributes
    ----------
    value : str or callable
        ``"model_def.py:build"``, ``"package.module:build"``, or a
        zero-argument callable.
    key : str, default "model.factory"
        The spec key it came from (named in messages).
    base_dir : path, optional
        Folder a relative ``.py`` path is resolved against (the spec's
        folder); default the working directory.
    what : str, default "builds the model"
        What the callable does, in messages (a preprocessing hook: "transforms
        the image").
    """

    value: str | Callable[..., Any]
    key: str = "model.factory"
    base_dir: Path | None = None
    what: str = "builds the model"

    @property
    def text(self) -> str:
        """The value as written (a callable's qualified name)."""
        if callable(self.value):
            return str(getattr(self.value, "__qualname__", None) or repr(self.value))
        return str(self.value)

    @functools.cached_property
    def resolved(self) -> tuple[Callable[..., Any], str | None]:
        """The callable, and the SHA-256 of its ``.py`` file (the file form; else None).

        Raises
        ------
        DataError
            If the string is malformed, the file is missing or fails to run,
            the module cannot be imported, or the attribute is missing or not
            callable.
        """
        if callable(self.value):
            return self.value, None
        text, key = self.text, self.key
        target, sep, attr = text.rpartition(":")
        if not sep or not target or not attr:
            raise DataError(f"{key} = {text!r} must look like {_FORMS}; set {key} accordingly.")
        if target.endswith(".py"):
            path = Path(target).expanduser()
            if not path.is_absolute() and self.base_dir is not None:
                path = self.base_dir / path
            module, sha = _load_file(path.resolve(), text, key, self.what)
            return _attribute(module, attr, text, key, path.name, self.what), sha
        try:
            module = importlib.import_module(target)
        except ImportError as exc:
            hint = "install the package or add its folder to PYTHONPATH"
            as_file = Path(self.base_dir or ".") / (target.replace(".", "/") + ".py")
            if as_file.is_file():
                hint = f"for the file {as_file.name} write {key} = '{as_file.name}:{attr}'"
            raise DataError(
                f"{key} = {text!r}: module {target!r} cannot be imported ({exc}); {hint}."
            ) from exc
        return _attribute(module, attr, text, key, target, self.what), None

    @property
    def sha256(self) -> str | None:
        """SHA-256 of the factory's ``.py`` file (the file form), else None."""
        return self.resolved[1]

    def build(self) -> torch.nn.Module:
        """Call the factory; it must return a ``torch.nn.Module``.

        Raises
        ------
        DataError
            If it cannot be resolved, raises, or returns something else.
        """
        import torch

        fn = self.resolved[0]
        try:
            module = fn()
        except MedvalError:
            raise
        except Exception as exc:
            raise DataError(
                f"{self.key} = {self.text!r} raised {type(exc).__name__}: {exc}; fix the "
                "factory so that calling it with no arguments builds the model."
            ) from exc
        if not isinstance(module, torch.nn.Module):
            raise DataError(
                f"{self.key} = {self.text!r} returned {type(module).__name__}, not a "
                "torch.nn.Module; make it return the untrained model (return MyNet())."
            )
        return module


def resolve_factory(
    factory: str | Callable[[], Any] | Factory,
    *,
    base_dir: str | Path | None = None,
    key: str = "model.factory",
) -> Factory:
    """A resolved :class:`Factory` (the file run or the module imported now).

    Raises
    ------
    DataError
        As :attr:`Factory.resolved`.
    """
    if not isinstance(factory, Factory):
        factory = Factory(factory, key=key, base_dir=None if base_dir is None else Path(base_dir))
    factory.resolved  # noqa: B018  (resolves now: errors surface here)
    return factory


def _load_file(path: Path, text: str, key: str, what: str) -> tuple[Any, str]:
    """Run a factory file under a private module name (one per content digest)."""
    if not path.is_file():
        raise DataError(
            f"{key} = {text!r}: the file {str(path)!r} does not exist; give the .py file whose "
            f"callable {what} (relative to the spec's folder, or an absolute path)."
        )
    source = path.read_bytes()
    sha = hashlib.sha256(source).hexdigest()
    name = f"_medval_factory_{sha[:16]}"
    loaded = sys.modules.get(name)
    if loaded is not None:
        return loaded, sha
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None:  # pragma: no cover - a .py path always has a loader
        raise DataError(f"{key} = {text!r}: {path.name} cannot be loaded as a Python file.")
    module = importlib.util.module_from_spec(spec)
    folder = str(path.parent)
    sys.modules[name] = module  # dataclasses and typing look the module up while it runs
    sys.path.insert(0, folder)
    try:
        # The hashed bytes are the ones that run (no second read, no __pycache__).
        exec(compile(source, str(path), "exec"), module.__dict__)
    except Exception as exc:
        del sys.modules[name]
        raise DataError(
            f"{key} = {text!r}: running {path.name} failed ({type(exc).__name__}: {exc}); "
            "fix the file (it must import without errors)."
        ) from exc
    finally:
        if folder in sys.path:
            sys.path.remove(folder)
    return module, sha


def _attribute(
    module: Any, attr: str, text: str, key: str, where: str, what: str
) -> Callable[..., Any]:
    obj = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            defined = sorted(
                n for n, v in vars(module).items()
                if callable(v) and not n.startswith("_")
                and getattr(v, "__module__", None) == module.__name__
            )  # fmt: skip
            shown = f" (it defines {', '.join(defined[:8])})" if defined else ""
            raise DataError(
                f"{key} = {text!r}: {where} has no attribute {attr!r}{shown}; name the "
                f"function or class that {what} after the ':'."
            )
        obj = getattr(obj, part)
    if not callable(obj):
        raise DataError(
            f"{key} = {text!r}: {attr!r} is not callable (it is a {type(obj).__name__}); name "
            f"a function or class that {what}."
        )
    fn: Callable[..., Any] = obj
    return fn
