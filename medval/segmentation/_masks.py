"""Checked binary masks: the input rules of every segmentation metric.

Masks are 2D ``(y, x)`` or 3D ``(z, y, x)`` arrays of booleans or 0/1
numbers; ``spacing`` gives the voxel size in mm per axis, in the same order.
:func:`structure_masks` turns a label map (or a multi-label channel stack)
into one boolean mask per named structure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from medval._errors import InputError
from medval.stats import check_mask, check_spacing

__all__ = ["check_mask", "check_mask_pair", "check_spacing", "structure_masks"]


def check_mask_pair(
    predicted: ArrayLike, reference: ArrayLike, spacing: Sequence[float]
) -> tuple[NDArray[np.bool_], NDArray[np.bool_], tuple[float, ...]]:
    """Check a predicted and a reference mask on the same grid; return them and the spacing.

    Raises
    ------
    InputError
        If either mask is not 2D/3D boolean or 0/1, the shapes differ, or the
        spacing is not one positive finite number per axis.
    """
    p = check_mask(predicted, name="predicted")
    r = check_mask(reference, name="reference")
    if p.shape != r.shape:
        raise InputError(
            f"predicted and reference must be on the same voxel grid; got shapes {p.shape} "
            f"and {r.shape}. Resample the prediction to the reference image first."
        )
    return p, r, check_spacing(spacing, p.ndim)


def _check_structures(structures: Mapping[str, int]) -> dict[str, int]:
    if not isinstance(structures, Mapping) or not structures:
        raise InputError(
            "structures must be a non-empty mapping of name -> class index, e.g. "
            f"{{'liver': 1, 'tumour': 2}}; got {structures!r}."
        )
    out: dict[str, int] = {}
    for name, index in structures.items():
        if not isinstance(name, str) or not name:
            raise InputError(f"structure names must be non-empty strings; got {name!r}.")
        if isinstance(index, bool) or not isinstance(index, int | np.integer):
            raise InputError(
                f"structure {name!r} must map to an integer class index; got {index!r}."
            )
        out[name] = int(index)
    return out


def _check_labels(labels: ArrayLike, name: str) -> NDArray[Any]:
    a = np.asarray(labels)
    if a.dtype.kind == "b":
        return a
    if a.dtype.kind == "f":
        if not np.all(np.isfinite(a)) or np.any(a != np.round(a)):
            raise InputError(
                f"{name} must hold whole class indices; got NaN, infinite or fractional "
                "values. Take the argmax of class scores before scoring."
            )
        return a
    if a.dtype.kind not in "iu":
        raise InputError(f"{name} must be an integer label map; got dtype {a.dtype}.")
    return a


def structure_masks(
    labels: ArrayLike, structures: Mapping[str, int], *, multilabel: bool = False
) -> dict[str, NDArray[np.bool_]]:
    """One boolean mask per named structure from a label map.

    Parameters
    ----------
    labels : array of int, shape (y, x) or (z, y, x); with ``multilabel``, (C, y, x) or (C, z, y, x)
        A label map whose values are class indices, or (``multilabel=True``) a
        stack of 0/1 channels, one per class, where structures may overlap.
    structures : mapping of str to int
        Structure name -> class index (the label value, or the channel index).
    multilabel : bool, default False
        Whether ``labels`` carries a leading channel axis.

    Returns
    -------
    dict of str to array of bool
        ``labels == index`` (or ``labels[index]``) for each structure, in the
        order of ``structures``. A class absent from the map gives an empty mask.

    Raises
    ------
    InputError
        If ``structures`` is empty or maps to non-integers, the labels are not
        whole numbers, the spatial part is not 2D/3D, or (multilabel) a channel
        index is out of range or a channel is not 0/1.
    """
    wanted = _check_structures(structures)
    a = _check_labels(labels, "labels")
    spatial = a.ndim - 1 if multilabel else a.ndim
    if spatial not in (2, 3):
        layout = "(C, y, x) or (C, z, y, x)" if multilabel else "(y, x) or (z, y, x)"
        raise InputError(
            f"labels must have shape {layout}"
            f"{' (multilabel)' if multilabel else ''}; got {a.shape}."
            + ("" if multilabel else " A channel stack needs multilabel=True.")
        )
    if not multilabel:
        return {name: np.asarray(a == index) for name, index in wanted.items()}
    n_channels = a.shape[0]
    out: dict[str, NDArray[np.bool_]] = {}
    for name, index in wanted.items():
        if not 0 <= index < n_channels:
            raise InputError(
                f"structure {name!r} names channel {index}, but labels has {n_channels} "
                f"channels (0..{n_channels - 1}) on its leading axis."
            )
        out[name] = check_mask(a[index], name=f"labels channel {index} ({name!r})")
    return out
