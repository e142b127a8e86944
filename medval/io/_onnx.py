"""An ONNX model run by onnxruntime on the CPU, callable like a torch module.

Needs the optional extra ``pip install 'medval[onnx]'``. An ONNX graph runs
no Python code when loaded, so it needs no trust flag. It has no dropout
modules medval can switch on: MC dropout is unavailable (``model.mc_samples``
must be 0); test-time augmentation and ensembles work.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import numpy as np
import torch

from medval._errors import DataError, InputError, MissingDependencyError

__all__ = ["OnnxModule", "load_onnx"]

_DTYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64,
           "tensor(float16)": np.float16}  # fmt: skip


class OnnxModule(torch.nn.Module):
    """Runs an onnxruntime session on a torch tensor.

    ``forward(x)`` hands ``x`` (on the CPU, as the graph's input type) to the
    session and returns its output as a tensor on ``x``'s device; a graph with
    several outputs returns a dict by output name (pick one with
    ``model.output_key``). It has no parameters and no submodules.
    """

    def __init__(self, session: Any, name: str) -> None:
        super().__init__()
        inputs = session.get_inputs()
        if len(inputs) != 1:
            raise DataError(
                f"ONNX model {name!r} takes {len(inputs)} inputs "
                f"{[i.name for i in inputs]}; medval feeds one image batch. Export the model "
                "with a single input."
            )
        self.name = name
        self.input_name = str(inputs[0].name)
        self.input_dtype = _DTYPES.get(str(inputs[0].type), np.float32)
        self.output_names = [str(o.name) for o in session.get_outputs()]
        self._session = session

    def forward(self, x: torch.Tensor) -> Any:
        array = x.detach().cpu().numpy().astype(self.input_dtype, copy=False)
        try:
            outs = self._session.run(None, {self.input_name: array})
        except Exception as exc:
            raise InputError(
                f"ONNX model {self.name!r} rejected an input of shape {tuple(x.shape)} "
                f"({type(exc).__name__}: {exc}); export it with a dynamic batch axis "
                "(torch.onnx.export(..., dynamic_axes={'input': {0: 'batch'}})) or match "
                "its input size (preprocess.size, model.batch_size)."
            ) from exc
        tensors = [torch.from_numpy(np.asarray(o)).to(x.device) for o in outs]
        if len(tensors) == 1:
            return tensors[0]
        return dict(zip(self.output_names, tensors, strict=True))

    def extra_repr(self) -> str:
        return f"{self.name!r}, input={self.input_name!r}, outputs={self.output_names}"


def load_onnx(path: Path) -> OnnxModule:
    """An :class:`OnnxModule` for an ``.onnx`` file (CPU execution provider).

    Raises
    ------
    MissingDependencyError
        If onnxruntime is not installed.
    DataError
        If onnxruntime cannot load the file.
    """
    try:
        ort: Any = importlib.import_module("onnxruntime")
    except ImportError as exc:
        raise MissingDependencyError(
            f"model file {path.name!r} is an ONNX model, which runs in onnxruntime; install "
            "it: pip install 'medval[onnx]' (or pip install onnxruntime)."
        ) from exc
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only
    try:
        session = ort.InferenceSession(
            str(path), sess_options=options, providers=["CPUExecutionProvider"]
        )
    except Exception as exc:
        raise DataError(
            f"ONNX model {path.name!r} cannot be loaded by onnxruntime "
            f"({type(exc).__name__}: {exc}); export it again with torch.onnx.export."
        ) from exc
    return OnnxModule(session, path.name)
