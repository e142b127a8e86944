"""The spec's inference-speed keys: batch size, loader workers, mixed precision and its check.

``model.batch_size`` and ``model.loader_workers`` take an integer or
``"auto"`` (:data:`AUTO_KEYS`; the JSON Schema gives them as
``anyOf: [integer >= least, "auto"]``); ``model.precision`` is one of
:data:`PRECISIONS` (gate imports no torch; tests/inference/test_precision.py
checks they are :data:`medval.inference.PRECISIONS`).
"""

from __future__ import annotations

from typing import Any

from medval._errors import SpecError

__all__ = ["AUTO_KEYS", "PRECISIONS", "auto_property", "check_inference_spec"]

#: ``model.precision``: the forward passes' autocast type ("float32": none).
PRECISIONS = ("float32", "bfloat16", "float16")
#: ``model.<key>`` taking an integer (at least this) or "auto", with what "auto" means.
AUTO_KEYS: dict[str, tuple[int, str]] = {
    "batch_size": (1, 'cases per batch; "auto": measured from free GPU memory (64 on the CPU)'),
    "loader_workers": (0, 'decoding processes; "auto": 0 on the CPU, min(8, cores) on CUDA'),
}
_MAX_CHECK_CASES = 100_000


def auto_property(key: str, default: Any) -> dict[str, Any]:
    """The JSON Schema of ``model.<key>``: an integer >= its least value, or ``"auto"``."""
    least, doc = AUTO_KEYS[key]
    return {
        "anyOf": [{"type": "integer", "minimum": least}, {"const": "auto"}],
        "default": default,
        "description": doc,
    }


def check_inference_spec(s: dict[str, dict[str, Any]], source: str) -> None:
    """``[model]``'s batch size, loader workers, precision and precision-check keys."""
    model = s["model"]
    for key, (least, doc) in AUTO_KEYS.items():
        value = model[key]
        if isinstance(value, str) and value != "auto":
            raise SpecError(
                f'{source}: model.{key} = {value!r} is neither an integer nor "auto" ({doc}). '
                "Allowed: 'auto'."
            )
        if not isinstance(value, str) and value < least:
            raise SpecError(
                f'{source}: model.{key} must be an integer >= {least} or "auto" ({doc}); '
                f"got {value}."
            )
    cases = model["precision_check_cases"]
    if not 1 <= cases <= _MAX_CHECK_CASES:
        raise SpecError(
            f"{source}: model.precision_check_cases must be 1 to {_MAX_CHECK_CASES} (cases "
            f"run again in float32 to check model.precision); got {cases}."
        )
    tolerance = model["precision_tolerance"]
    if not 0.0 < tolerance <= 1.0:
        raise SpecError(
            f"{source}: model.precision_tolerance must be in (0, 1] (the largest change of a "
            f"probability that model.precision may cause); got {tolerance}."
        )
    precision = model["precision"]
    if precision == "float16" and str(model["device"]).startswith("cpu"):
        raise SpecError(
            f'{source}: model.precision = "float16" needs a CUDA device and model.device is '
            f"{model['device']!r}; CPU autocast computes in bfloat16: set model.precision = "
            '"bfloat16" (or "float32").'
        )
    kind = s["task"]["type"]
    if kind == "segmentation":
        given = {"precision": precision != "float32", "batch_size": model["batch_size"] == "auto",
                 "loader_workers": model["loader_workers"] != "auto"}  # fmt: skip
        named = next((k for k, on in given.items() if on), None)
        if named is not None:
            raise SpecError(
                f"{source}: model.{named} = {model[named]!r} is not built for segmentation yet "
                "(volumes load and run case by case); remove the key (its default applies)."
            )
    files = model["file"] if isinstance(model["file"], list) else [model["file"]]
    onnx = next((f for f in files if isinstance(f, str) and f.lower().endswith(".onnx")), None)
    if onnx is not None and precision != "float32":
        raise SpecError(
            f"{source}: model.precision = {precision!r} runs torch modules under autocast, and "
            f"the ONNX model {onnx!r} runs in onnxruntime at the precision it was exported "
            'in; set model.precision = "float32".'
        )
