"""``[preprocess]``: the steps between the decoded DICOM pixels and the model, declared once.

A spec lists its steps in order (``steps = [{ op = "window", preset = "lung" },
...]``) or uses the shorthand ``window = [center, width]`` / ``size = ...``,
which expands to the same steps. :data:`STEPS` declares every operation with
its parameters (types, defaults, choices); the spec reader checks them when
the spec is read (unknown op or parameter with a did-you-mean, bad values),
the JSON Schema lists them, and :func:`preprocess_steps` resolves a section
into the step descriptions (every parameter filled) that
:meth:`medval.io.Pipeline.from_steps` builds. The step implementations live in
:mod:`medval.io` (torch, pydicom); ``tests/io/test_preprocess.py`` checks that
both declare the same parameters and defaults.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from medval._errors import SpecError
from medval.gate._fields import Field, check_value
from medval.gate._settings import did_you_mean, not_one_of

__all__ = [
    "CT_PRESETS",
    "DTYPES",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "INTERPOLATIONS",
    "NORMALIZE_METHODS",
    "STEPS",
    "StepKind",
    "check_expect",
    "preprocess_steps",
    "shorthand_steps",
]

#: Named CT windows, (center, width) in HU. Radiopaedia, "Windowing (CT)" (D. J. Bell,
#: A. Murphy et al., https://radiopaedia.org/articles/windowing-ct), "typical window width
#: and level values": brain W:80 L:40, lungs W:1500 L:-600, mediastinum W:350 L:50,
#: bone W:1800 L:400; abdomen is its soft-tissue window (W:350-400, L:20-60) at W:400 L:40.
CT_PRESETS: dict[str, tuple[float, float]] = {
    "lung": (-600.0, 1500.0),
    "mediastinum": (50.0, 350.0),
    "brain": (40.0, 80.0),
    "bone": (400.0, 1800.0),
    "abdomen": (40.0, 400.0),
}
#: ImageNet channel statistics of torchvision's pretrained models (RGB, on [0, 1] values).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
NORMALIZE_METHODS = ("zscore", "minmax", "fixed", "imagenet", "none")
INTERPOLATIONS = ("nearest", "bilinear", "bicubic", "area")
DTYPES = ("float32", "float64", "float16")


@dataclasses.dataclass(frozen=True)
class StepKind:
    """One operation: what it does, its parameters (types, default) and closed choices."""

    op: str
    doc: str
    fields: dict[str, Field]
    choices: dict[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)


STEPS: dict[str, StepKind] = {
    s.op: s
    for s in (
        StepKind(
            "window",
            "Clip to a VOI window (center, width in modality units, e.g. HU) and map it "
            "linearly onto [0, 1]: center/width, a CT preset, or voi_lut = true (the file's "
            "own WindowCenter/WindowWidth).",
            {
                "center": ((float,), None),
                "width": ((float,), None),
                "preset": ((str,), None),
                "voi_lut": ((bool,), False),
            },
            {"preset": tuple(CT_PRESETS)},
        ),
        StepKind(
            "clip_percentile",
            "Clip each image to its own low/high percentiles (0-100).",
            {"low": ((float,), 0.5), "high": ((float,), 99.5)},
        ),
        StepKind(
            "normalize",
            "Per image: zscore ((x - mean) / sd) or minmax (onto [0, 1]); fixed mean/std "
            "(numbers or one per channel); imagenet (its channel mean/std, on [0, 1] input "
            "with 3 channels); none (declared: no normalisation).",
            {"method": ((str,), ...), "mean": ((float, list), None), "std": ((float, list), None)},
            {"method": NORMALIZE_METHODS},
        ),
        StepKind(
            "resize",
            "Resize to size = [H, W] (torch interpolation, float32); keep_aspect fits the "
            "image inside and pads with its minimum.",
            {
                "size": ((int, list), ...),
                "interpolation": ((str,), "bilinear"),
                "keep_aspect": ((bool,), False),
                "antialias": ((bool,), True),
            },
            {"interpolation": INTERPOLATIONS},
        ),
        StepKind("center_crop", "Crop the central size = [H, W].", {"size": ((int, list), ...)}),
        StepKind(
            "channels",
            "Replicate a single channel to n (3 for ImageNet backbones).",
            {"n": ((int,), ...)},
        ),
        StepKind(
            "dtype", "Cast to a floating dtype.", {"name": ((str,), "float32")}, {"name": DTYPES}
        ),
        StepKind(
            "transform",
            "Your callable on the array: 'path/to/file.py:fn' (beside the spec) or "
            "'package.module:fn'; loaded like model.factory, its source hashed into the "
            "provenance.",
            {"callable": ((str,), ...)},
        ),
    )
}
# Steps after which values lie in [0, 1] (what imagenet expects); a transform may do it too.
_UNIT_RANGE = ("window", "transform")


def _where(source: str, i: int, key: str | None = None) -> str:
    return f"{source}: preprocess.steps[{i}]" + ("" if key is None else f".{key}")


def _size(where: str, value: Any) -> list[int]:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return [value, value]
    if (
        isinstance(value, list) and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value)
    ):  # fmt: skip
        return list(value)
    raise SpecError(f"{where} must be a positive integer or [height, width]; got {value!r}.")


def _numbers(where: str, value: Any) -> float | list[float] | None:
    """A number, or a non-empty list of numbers (one per channel)."""
    if value is None or isinstance(value, float):
        return value
    if (
        isinstance(value, list)
        and value
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    ):
        return [float(v) for v in value]
    raise SpecError(f"{where} must be a number or a list of numbers (one per channel); "
                    f"got {value!r}.")  # fmt: skip


def _check_window(step: dict[str, Any], where: str) -> None:
    given = [k for k in ("preset", "voi_lut") if step[k] not in (None, False)]
    explicit = step["center"] is not None or step["width"] is not None
    if len(given) + explicit != 1:
        raise SpecError(
            f"{where}: give exactly one of center and width (e.g. center = 40, width = 400), "
            f"preset (one of {list(CT_PRESETS)}), or voi_lut = true; got {_shown(step)}."
        )
    if step["preset"] is not None:
        step["center"], step["width"] = CT_PRESETS[step["preset"]]
    elif explicit:
        if step["center"] is None or step["width"] is None:
            missing = "center" if step["center"] is None else "width"
            raise SpecError(f"{where}.{missing} is missing; a window needs center and width.")
        if not step["width"] > 0:
            raise SpecError(f"{where}.width must be > 0 (in modality units); got {step['width']}.")


def _check_normalize(step: dict[str, Any], where: str) -> None:
    method = step["method"]
    mean, std = _numbers(f"{where}.mean", step["mean"]), _numbers(f"{where}.std", step["std"])
    if method == "fixed":
        if mean is None or std is None:
            raise SpecError(
                f"{where}: method = 'fixed' needs mean and std (numbers, or one per channel), "
                'e.g. { op = "normalize", method = "fixed", mean = 0.5, std = 0.25 }.'
            )
        means = mean if isinstance(mean, list) else [mean]
        stds = std if isinstance(std, list) else [std]
        if isinstance(mean, list) and isinstance(std, list) and len(means) != len(stds):
            raise SpecError(f"{where}: mean has {len(means)} values and std {len(stds)}; give "
                            "one of each per channel.")  # fmt: skip
        if not all(s > 0 for s in stds):
            raise SpecError(f"{where}.std must be > 0; got {std!r}.")
    elif mean is not None or std is not None:
        bad = "mean" if mean is not None else "std"
        raise SpecError(
            f"{where}.{bad} applies only to method = 'fixed' (method is {method!r}); remove it, "
            'or set method = "fixed".'
        )
    if method == "imagenet":
        mean, std = list(IMAGENET_MEAN), list(IMAGENET_STD)
    step["mean"], step["std"] = mean, std


def _check_values(step: dict[str, Any], where: str) -> None:
    op = step["op"]
    kind = STEPS[op]
    for key, allowed in kind.choices.items():
        if step[key] is not None and step[key] not in allowed:
            raise not_one_of(f"{where}.{key}", step[key], f"a {op} {key}", allowed)
    if op == "window":
        _check_window(step, where)
    elif op == "normalize":
        _check_normalize(step, where)
    elif op in ("resize", "center_crop"):
        step["size"] = _size(f"{where}.size", step["size"])
    elif op == "clip_percentile":
        if not 0.0 <= step["low"] < step["high"] <= 100.0:
            raise SpecError(
                f"{where}: percentiles must satisfy 0 <= low < high <= 100; got low = "
                f"{step['low']}, high = {step['high']}."
            )
    elif op == "channels":
        if not 1 <= step["n"] <= 4:
            raise SpecError(f"{where}.n must be 1 to 4 (3 for ImageNet backbones); got "
                            f"{step['n']}.")  # fmt: skip
    elif op == "transform":
        target, sep, attr = step["callable"].rpartition(":")
        if not (sep and target and attr):
            raise SpecError(
                f"{where}.callable = {step['callable']!r} must look like 'transforms.py:fn' "
                "(a file beside the spec) or 'package.module:fn'."
            )


def _shown(step: Mapping[str, Any]) -> str:
    given = (f"{k} = {v!r}" for k, v in step.items() if v not in (None, False))
    return "{ " + ", ".join(given) + " }"


def _step(raw: Any, i: int, source: str) -> dict[str, Any]:
    """One step table checked, its defaults filled (``op`` first)."""
    where = _where(source, i)
    if not isinstance(raw, dict):
        raise SpecError(f'{where} must be a table like {{ op = "window", preset = "lung" }}; '
                        f"got {raw!r}.")  # fmt: skip
    op = raw.get("op")
    if op is None:
        raise SpecError(f"{where}.op is missing; every step names its operation, one of "
                        f"{list(STEPS)}.")  # fmt: skip
    if op not in STEPS:
        raise not_one_of(f"{where}.op", op, "a preprocessing step", tuple(STEPS))
    kind = STEPS[op]
    for key in raw:
        if key != "op" and key not in kind.fields:
            raise SpecError(
                f"{_where(source, i, key)} is not a parameter of op = {op!r}"
                f"{did_you_mean(key, tuple(kind.fields))} Parameters of {op}: "
                f"{list(kind.fields)}."
            )
    step: dict[str, Any] = {"op": op}
    for key, (types, default) in kind.fields.items():
        if key in raw:
            step[key] = check_value(_where(source, i, key), raw[key], types)
        elif default is ...:
            raise SpecError(f"{_where(source, i, key)} is missing; op = {op!r} needs it "
                            f"({kind.doc})")  # fmt: skip
        else:
            step[key] = default
    _check_values(step, where)
    return step


def _check_order(steps: list[dict[str, Any]], source: str) -> None:
    """What a step needs from the ones before it."""
    for i, step in enumerate(steps):
        before = steps[:i]
        if step["op"] != "normalize" or step["method"] not in ("imagenet", "fixed"):
            continue
        hooks = any(s["op"] == "transform" for s in before)
        channels = [s["n"] for s in before if s["op"] == "channels"]
        n = channels[-1] if channels else 1
        mean = step["mean"]
        need = 3 if step["method"] == "imagenet" else len(mean) if isinstance(mean, list) else 1
        if need > 1 and n != need and not hooks:
            raise SpecError(
                f"{_where(source, i)}: normalize {step['method']} has {need} channel values "
                f"but the image has {n} channel(s) here; put "
                f'{{ op = "channels", n = {need} }} before it.'
            )
        scaled = any(
            s["op"] in _UNIT_RANGE or (s["op"] == "normalize" and s["method"] == "minmax")
            for s in before
        )
        if step["method"] == "imagenet" and not scaled:
            raise SpecError(
                f"{_where(source, i)}: normalize imagenet expects values in [0, 1]; put a "
                'window or { op = "normalize", method = "minmax" } before it.'
            )


def shorthand_steps(window: Any, size: Any) -> list[dict[str, Any]]:
    """``window = [c, w]`` and ``size``: a window onto [0, 1], then a bilinear resize."""
    steps: list[dict[str, Any]] = []
    if window is not None:
        steps.append({"op": "window", "center": float(window[0]), "width": float(window[1]),
                      "preset": None, "voi_lut": False})  # fmt: skip
    if size is not None:
        steps.append(
            {"op": "resize", "size": _size("preprocess.size", size), "interpolation": "bilinear",
             "keep_aspect": False, "antialias": True}
        )  # fmt: skip
    return steps


def preprocess_steps(
    section: Mapping[str, Any], *, source: str = "medval.toml"
) -> list[dict[str, Any]]:
    """The ``[preprocess]`` section's steps, in order, every parameter filled.

    ``steps`` as written (checked), or the shorthand ``window``/``size``
    expanded (:func:`shorthand_steps`). The fixed decoding steps (modality
    LUT, MONOCHROME1 inversion) and an implicit min-max when nothing
    normalises are added by :class:`medval.io.Pipeline`, not here.

    Raises
    ------
    SpecError
        An unknown op or parameter (with the closest name), a wrong type or
        value, or a step missing what an earlier one must provide; the
        message names ``preprocess.steps[i].<key>`` and the fix.
    """
    steps, window, size = section.get("steps"), section.get("window"), section.get("size")
    if steps is None:
        if window is not None and (
            len(window) != 2 or not all(isinstance(v, (int, float)) for v in window)
            or window[1] <= 0
        ):  # fmt: skip
            raise SpecError(f"{source}: preprocess.window must be [center, width>0]; got "
                            f"{window!r}.")  # fmt: skip
        return shorthand_steps(window, size)
    if window is not None or size is not None:
        raise SpecError(
            f"{source}: give preprocess.steps or the shorthand preprocess.window/size, not both; "
            'write them as steps: { op = "window", center = ..., width = ... } and '
            '{ op = "resize", size = [...] }.'
        )
    if not isinstance(steps, list):
        raise SpecError(f"{source}: preprocess.steps must be an array of step tables.")
    resolved = [_step(raw, i, source) for i, raw in enumerate(steps)]
    _check_order(resolved, source)
    return resolved


def check_expect(
    section: Mapping[str, Any], *, source: str = "medval.toml"
) -> dict[str, Any] | None:
    """``preprocess.expect = { mean = ..., std = ... }``: the input the model was trained on.

    Each is a number, or a list with one number per channel (both lists of
    the same length).
    """
    expect = section.get("expect")
    if expect is None:
        return None
    bad = sorted(set(expect) - {"mean", "std"})
    if bad:
        hint = did_you_mean(bad[0], ("mean", "std"))
        raise SpecError(
            f"{source}: preprocess.expect.{bad[0]} is not a key{hint} preprocess.expect takes "
            "mean and std (of the preprocessed pixels the model was trained on)."
        )
    out: dict[str, Any] = {}
    for key in ("mean", "std"):
        if key not in expect:
            raise SpecError(f"{source}: preprocess.expect.{key} is missing; give both, e.g. "
                            "expect = { mean = 0.0, std = 1.0 }.")  # fmt: skip
        where = f"{source}: preprocess.expect.{key}"
        value = expect[key]
        if isinstance(value, list):
            if not value:
                raise SpecError(f"{where} is an empty list; give a number or one per channel.")
            out[key] = [check_value(f"{where}[{i}]", v, (float,)) for i, v in enumerate(value)]
        else:
            out[key] = check_value(where, value, (float,))
    sizes = {k: len(v) for k, v in out.items() if isinstance(v, list)}
    if len(sizes) == 2 and sizes["mean"] != sizes["std"]:
        raise SpecError(
            f"{source}: preprocess.expect.mean has {sizes['mean']} channels and std "
            f"{sizes['std']}; give one per channel for both (or one number each)."
        )
    stds = out["std"] if isinstance(out["std"], list) else [out["std"]]
    if not all(v > 0 for v in stds):
        raise SpecError(f"{source}: preprocess.expect.std must be > 0; got {out['std']}.")
    return out
