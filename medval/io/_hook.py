"""The ``transform`` step: your callable on the array, loaded like a model factory."""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from medval._errors import DataError
from medval.io._factory import Factory
from medval.io._steps import as_float

__all__ = ["Transform", "defining_file_sha256"]

Array = NDArray[Any]


def defining_file_sha256(fn: Any) -> str | None:
    """SHA-256 of the file defining ``fn`` (or its class): the import form's source."""
    for obj in (fn, type(fn)):
        try:
            path = inspect.getsourcefile(obj)
        except TypeError:
            continue
        if path and Path(path).is_file():
            return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    return None


@dataclasses.dataclass(frozen=True)
class Transform:
    """Your callable on the array: ``"transforms.py:fn"``, ``"package.module:fn"`` or a callable.

    Loaded like ``model.factory`` (:class:`medval.io.Factory`: a file runs
    under a private module name from the bytes it hashes); ``source_sha256``
    is the SHA-256 of that file (the import form: of the module file defining
    it). Given one (a recorded pipeline), a different source is refused. The
    callable gets a float64 array (H, W) or (C, H, W) and returns an array or
    tensor of 2 or 3 dimensions (a MONAI ``Compose`` works as is).
    """

    op: ClassVar[str] = "transform"
    callable: str | Callable[[Any], Any]
    source_sha256: str | None = None
    base_dir: Path | None = dataclasses.field(default=None, compare=False)
    key: str = dataclasses.field(default="transform.callable", compare=False)

    def __post_init__(self) -> None:
        factory = Factory(
            self.callable, key=self.key, base_dir=self.base_dir, what="transforms the image"
        )
        fn, sha = factory.resolved
        sha = sha if sha is not None else defining_file_sha256(fn)
        if self.source_sha256 is not None and sha != self.source_sha256:
            raise DataError(
                f"{self.key} = {factory.text!r}: its source has SHA-256 {sha}, not the recorded "
                f"{self.source_sha256}; the transform changed since the pipeline was recorded."
            )
        object.__setattr__(self, "source_sha256", sha)
        object.__setattr__(self, "_fn", fn)
        object.__setattr__(self, "_text", factory.text)

    def __call__(self, x: Array) -> Array:
        fn: Callable[[Any], Any] = object.__getattribute__(self, "_fn")
        text = object.__getattribute__(self, "_text")
        try:
            out = fn(as_float(x))
        except Exception as exc:
            raise DataError(f"{self.key} = {text!r} raised {type(exc).__name__}: {exc}.") from exc
        if hasattr(out, "detach"):  # a torch tensor (MONAI's MetaTensor too)
            out = out.detach().cpu().numpy()
        arr = np.asarray(out)
        if arr.ndim not in (2, 3) or arr.dtype.kind not in "fiub":
            raise DataError(
                f"{self.key} = {text!r} returned {type(out).__name__} of shape {arr.shape}; "
                "return a numeric array (H, W) or (C, H, W)."
            )
        return arr

    def describe(self) -> dict[str, Any]:
        return {"op": self.op, "callable": object.__getattribute__(self, "_text"),
                "source_sha256": self.source_sha256}  # fmt: skip
