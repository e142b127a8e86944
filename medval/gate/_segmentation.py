"""The spec of a segmentation model: structures, masks, cases and the model's window."""

from __future__ import annotations

from typing import Any

from medval._errors import SpecError

__all__ = ["SEGMENTATION_ONLY", "check_segmentation_spec"]

#: Keys a classification spec may not set (they mean nothing there).
SEGMENTATION_ONLY = ("task.structures", "data.masks", "data.cases", "model.patch_size")
_OUTPUTS = ("logits", "sigmoid", "probabilities")


def check_segmentation_spec(s: dict[str, dict[str, Any]], source: str) -> None:
    """Check a spec with ``task.type = "segmentation"`` (raises :class:`SpecError`)."""
    task, data, model = s["task"], s["data"], s["model"]
    for key in ("class_names", "positive_class"):
        if task[key] is not None:
            raise SpecError(
                f"{source}: task.{key} is for classifiers; a segmentation spec names its "
                "structures: [task] structures = { lesion = 1 }."
            )
    if task["multilabel"]:
        raise SpecError(
            f"{source}: task.multilabel (overlapping structures, one channel each) is not built "
            "for runs from a spec yet; give a label map (one value per structure), or score "
            "the cases from Python (segmentation.ScoringOptions(multilabel=True))."
        )
    _check_structures(task["structures"], task["multilabel"], source)
    for key in ("dicom_dir", "masks", "cases"):
        if data[key] is None:
            raise SpecError(
                f"{source}: missing required key data.{key} (a segmentation spec reads DICOM "
                "series from data.dicom_dir, one reference mask per case from data.masks, and "
                "the cases with their split from data.cases: a CSV of case_id,split)."
            )
    for key in ("labels", "table"):
        if data[key] is not None:
            raise SpecError(
                f"{source}: data.{key} is for classifiers; a segmentation spec gives "
                "data.cases (case_id,split) and data.masks."
            )
    if (model["file"] is None) == (model["predictions"] is None):
        raise SpecError(
            f"{source}: [model] needs either file (a model to run) or predictions (a folder of "
            "probability maps, one <case_id>.npy per case), not both and not neither."
        )
    if isinstance(model["file"], list):
        raise SpecError(
            f"{source}: model.file lists several files; ensembles of segmentation models are "
            "not built yet: give one model file."
        )
    if isinstance(model["file"], str) and model["file"].lower().endswith(".onnx"):
        raise SpecError(
            f"{source}: ONNX segmentation models are not supported yet; give the PyTorch "
            "state_dict (.pt) or .safetensors with model.factory."
        )
    if model["output"] not in _OUTPUTS:
        raise SpecError(
            f"{source}: model.output must be one of {list(_OUTPUTS)} for a segmentation "
            f"model (logits: a softmax over the channels); got {model['output']!r}."
        )
    for key in ("output_key", "output_index", "label_column"):
        if model[key] is not None:
            raise SpecError(
                f"{source}: model.{key} is not supported for segmentation models yet; "
                "wrap the model so its forward returns the (batch, channels, ...) logits."
            )
    if model["tta"] != "none":
        raise SpecError(
            f'{source}: model.tta is not supported for segmentation models yet; set tta = "none".'
        )
    _check_window(model, source)
    if s.get("baseline"):
        raise SpecError(
            f"{source}: a [baseline] comparison of segmentation models is not built yet; "
            "remove [baseline] (gate on absolute criteria instead)."
        )
    if s.get("splits"):
        raise SpecError(
            f"{source}: [splits] is for classifiers; give each case its split in data.cases."
        )


def _check_structures(structures: Any, multilabel: bool, source: str) -> None:
    if not structures:
        raise SpecError(
            f"{source}: missing required key task.structures: each structure's name and its "
            "value in the masks, e.g. structures = { liver = 1, tumour = 2 }."
        )
    lowest = 0 if multilabel else 1
    seen: dict[int, str] = {}
    for name, value in structures.items():
        if not name or not isinstance(value, int) or isinstance(value, bool) or value < lowest:
            what = "channel index >= 0" if multilabel else "label value >= 1 (0 is background)"
            raise SpecError(
                f"{source}: task.structures.{name or '<empty>'} must be a {what}; got {value!r}."
            )
        if value in seen:
            raise SpecError(
                f"{source}: task.structures gives {seen[value]!r} and {name!r} the same value "
                f"{value}; each structure needs its own."
            )
        seen[value] = name


def _check_window(model: dict[str, Any], source: str) -> None:
    patch = model["patch_size"]
    dims = 2 if model["mode"] == "2d" else 3
    if patch is not None and (
        len(patch) != dims
        or not all(isinstance(p, int) and not isinstance(p, bool) and p >= 1 for p in patch)
    ):
        raise SpecError(
            f"{source}: model.patch_size must list {dims} positive integers for mode = "
            f"{model['mode']!r} ({'(y, x)' if dims == 2 else '(z, y, x)'}); got {patch!r}."
        )
    if not 0.0 <= model["overlap"] < 1.0:
        raise SpecError(
            f"{source}: model.overlap must be in [0, 1) (the share of a window shared with "
            f"the next); got {model['overlap']}."
        )
