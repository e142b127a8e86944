"""Reference masks on a volume's grid: NumPy, NIfTI or DICOM SEG, geometry checked.

What :func:`read_mask` returns:

* a **label map**, uint8 of shape (z, y, x) (values: structure indices, 0
  background), from a 3-D array (``.npy``, ``.npz``, 3-D NIfTI) or from a
  DICOM SEG whose segments do not overlap;
* a **multi-label** bool array of shape (C, z, y, x), channel ``c`` being
  structure index ``c + 1``, from a 4-D array (``.npy``/``.npz``: channels
  first; NIfTI: channels last, as NIfTI stores them) or from a DICOM SEG
  whose segments overlap. ``C`` is the largest structure index.

Both are in the volume's slice order: sorted along the slice normal, the
order of :attr:`~medval.io._volume.Volume.files`, rows then columns as
stored in the DICOM files. NumPy arrays carry no geometry and must already
be in that order; NIfTI and SEG are mapped by their geometry and refused
when it does not match the volume's.
"""

from __future__ import annotations

import pathlib
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from medval._errors import DataError, InputError, MissingDependencyError
from medval.io._scan import describe_error
from medval.io._seg import read_seg
from medval.io._volume import GRID_TOLERANCE, Volume, shown

__all__ = ["MASK_SUFFIXES", "find_mask", "read_mask"]

#: Reference-mask file suffixes, in the order :func:`find_mask` tries them.
MASK_SUFFIXES: tuple[str, ...] = (".npy", ".npz", ".nii", ".nii.gz", ".dcm")
_MULTI = "channel c is structure index c + 1"


def _suffix(path: pathlib.Path) -> str | None:
    lower = path.name.lower()
    return next(
        (s for s in sorted(MASK_SUFFIXES, key=len, reverse=True) if lower.endswith(s)), None
    )


def find_mask(masks_dir: pathlib.Path | str, case_id: str) -> pathlib.Path | None:
    """The mask file of one case: ``masks_dir/<case_id><suffix>``, suffix in :data:`MASK_SUFFIXES`.

    Returns
    -------
    pathlib.Path or None
        None when the case has no mask file.

    Raises
    ------
    DataError
        If ``masks_dir`` is not a folder, or two files match (both named).
    """
    folder = pathlib.Path(masks_dir)
    if not folder.is_dir():
        raise DataError(
            f"masks folder {folder.name!r} does not exist or is not a folder; check the path."
        )
    found = [
        folder / f"{case_id}{s}" for s in MASK_SUFFIXES if (folder / f"{case_id}{s}").is_file()
    ]
    if len(found) > 1:
        names = " and ".join(repr(p.name) for p in found)
        raise DataError(f"case {case_id!r} has {len(found)} mask files, {names}; keep one of them.")
    return found[0] if found else None


def read_mask(
    path: pathlib.Path | str,
    *,
    volume: Volume,
    structures: Mapping[str, int] | None = None,
    root: pathlib.Path | str | None = None,
) -> NDArray[np.uint8] | NDArray[np.bool_]:
    """Read a reference mask onto ``volume``'s grid.

    Parameters
    ----------
    path : path-like
        ``.npy`` (one array), ``.npz`` (one array, or the array ``"mask"``),
        ``.nii``/``.nii.gz`` (needs nibabel: ``pip install medval[nifti]``)
        or ``.dcm`` (DICOM SEG, BINARY or FRACTIONAL). NumPy files load with
        ``allow_pickle=False``: no code runs.
    volume : Volume
        The series the mask annotates (:func:`~medval.io._volume.read_series`).
    structures : mapping of str to int, optional
        Structure name -> index (1..255). Label values and channels must be
        among the indices; DICOM SEG segments are matched by SegmentLabel.
        Default: any index 1..255, SEG segments by SegmentNumber.
    root : path-like, optional
        Messages name the file relative to it (else by file name).

    Returns
    -------
    numpy.ndarray
        uint8 label map (z, y, x), or bool (C, z, y, x) for multi-label
        inputs (see the module docstring).

    Raises
    ------
    DataError
        Wrong shape or geometry, non-integer values (a probability map is
        not a reference mask), values or SEG segments outside
        ``structures``, an unknown suffix or an unreadable file.
    MissingDependencyError
        A NIfTI file without nibabel installed.
    InputError
        ``structures`` with names not str or indices outside 1..255.
    """
    file = pathlib.Path(path)
    name = shown(file, None if root is None else pathlib.Path(root))
    allowed = _allowed(structures)
    suffix = _suffix(file)
    if suffix is None:
        raise DataError(f"mask {name!r}: unknown file type; expected one of {list(MASK_SUFFIXES)}.")
    if suffix == ".dcm":
        return _from_seg(file, volume, structures, name, allowed)
    if suffix in (".nii", ".nii.gz"):
        data = _read_nifti(file, volume, name)
    else:
        data = _read_numpy(file, name, suffix)
    return _values(data, volume, name, allowed)


def _allowed(structures: Mapping[str, int] | None) -> frozenset[int]:
    if structures is None:
        return frozenset(range(1, 256))
    bad = {
        k: v
        for k, v in structures.items()
        if not isinstance(k, str)
        or isinstance(v, bool)
        or not isinstance(v, (int, np.integer))
        or not 1 <= v <= 255
    }
    if bad or not structures:
        raise InputError(
            f"structures must map names (str) to indices 1..255 (0 is background), e.g. "
            f"{{'liver': 1, 'tumour': 2}}; got {dict(bad) if bad else 'an empty mapping'}."
        )
    return frozenset(int(v) for v in structures.values())


def _read_numpy(file: pathlib.Path, name: str, suffix: str) -> NDArray[np.generic]:
    keys: list[str] = []
    try:
        loaded = np.load(file, allow_pickle=False)
        if isinstance(loaded, np.ndarray):
            return loaded
        with loaded:
            keys = list(loaded.keys())
            if len(keys) == 1 or "mask" in keys:
                return np.asarray(loaded[keys[0] if len(keys) == 1 else "mask"])
    except Exception as exc:
        raise DataError(
            f"mask {name!r} cannot be read as NumPy {suffix} ({describe_error(exc)}); save it "
            "with numpy.save or numpy.savez (object arrays are refused: no pickles)."
        ) from exc
    raise DataError(
        f"mask {name!r} holds the arrays {keys}; save one array, or name the mask array 'mask'."
    )


def _values(
    data: NDArray[np.generic], volume: Volume, name: str, allowed: frozenset[int]
) -> NDArray[np.uint8] | NDArray[np.bool_]:
    """Shape and value checks; a label map (3-D) or channels (4-D, channels first)."""
    if data.ndim not in (3, 4) or data.shape[-3:] != volume.shape:
        raise DataError(
            f"mask {name!r} has shape {data.shape}; expected the volume's (z, y, x) "
            f"{volume.shape} or (C, z, y, x) channels, slices in the order of Volume.files "
            "(sorted along the slice normal); transpose or reorder the array (an (x, y, z) "
            "array needs .transpose(2, 1, 0))."
        )
    if data.dtype.kind not in "biuf":
        raise DataError(f"mask {name!r} has dtype {data.dtype}; expected integers or bools.")
    if data.dtype.kind == "f":
        real = np.asarray(data, dtype=np.float64)
        odd = real[~np.isfinite(real) | (real != np.round(real))]
        if odd.size:
            raise DataError(
                f"mask {name!r} holds non-integer values (e.g. {float(odd.flat[0]):g}): a "
                "probability map is not a reference mask; threshold it into labels."
            )
    values = np.unique(data).astype(np.int64)
    if data.ndim == 4:
        return _channels(data, name, allowed, values)
    unexpected = sorted(set(values.tolist()) - allowed - {0})
    if unexpected:
        raise DataError(
            f"mask {name!r} holds label values {unexpected[:10]} outside the structures "
            f"{sorted(allowed)[:20]} (0 is background); fix the mask or the structures mapping."
        )
    return data.astype(np.uint8)


def _channels(
    data: NDArray[np.generic], name: str, allowed: frozenset[int], values: NDArray[np.int64]
) -> NDArray[np.bool_]:
    if not set(values.tolist()) <= {0, 1}:
        raise DataError(
            f"mask {name!r} is a 4-D (channels) mask with values {values[:10].tolist()}; "
            "each channel must hold 0 and 1 only."
        )
    n = data.shape[0]
    top = 255 if len(allowed) == 255 else max(allowed)
    stray = [c + 1 for c in range(n) if c + 1 not in allowed and bool(data[c].any())]
    if n > top or (len(allowed) < 255 and n != top) or stray:
        raise DataError(
            f"mask {name!r} has {n} channels ({_MULTI}); the structures go up to index "
            f"{top}{f', and channels {stray} are not structures' if stray else ''}; give one "
            "channel per index 1..max, or a label map."
        )
    return data.astype(bool)


def _from_seg(
    file: pathlib.Path,
    volume: Volume,
    structures: Mapping[str, int] | None,
    name: str,
    allowed: frozenset[int],
) -> NDArray[np.uint8] | NDArray[np.bool_]:
    seg = read_seg(file, volume, name)
    if structures is not None:
        unknown = [label for label in seg.labels if label not in structures]
        if unknown:
            raise DataError(
                f"mask {name!r} has segments labelled {unknown} not in the structures "
                f"{sorted(structures)}; add them to the structures mapping (SegmentLabel "
                "matched exactly)."
            )
        indices = [structures[label] for label in seg.labels]
    else:
        indices = list(seg.numbers)
        bad = [i for i in indices if i not in allowed]
        if bad:
            raise DataError(
                f"mask {name!r} has SegmentNumbers {bad} outside 1..255; pass structures to "
                "map its SegmentLabels to indices."
            )
    top = max(indices, default=0)
    channels = np.zeros((top, *volume.shape), dtype=bool)
    for mask, index in zip(seg.masks, indices, strict=True):
        channels[index - 1] |= mask
    if top and int(channels.sum(axis=0, dtype=np.uint8).max()) > 1:
        return channels
    labels = np.zeros(volume.shape, dtype=np.uint8)
    for c in range(top):
        labels[channels[c]] = c + 1
    return labels


def _read_nifti(file: pathlib.Path, volume: Volume, name: str) -> NDArray[np.generic]:
    """A NIfTI image mapped onto the volume's (z, y, x) by the two affines (4-D: channels first).

    NIfTI affines are RAS+, DICOM's LPS: x and y change sign. The NIfTI axes
    must map onto the volume's axes (a signed permutation: transposed and
    flipped as needed, never resampled), and every voxel centre must then
    agree with the volume's within :data:`GRID_TOLERANCE` of the smallest
    voxel size, checked at the 8 corners of the grid (the maps are affine,
    so the corners bound every voxel).
    """
    try:
        import nibabel
    except ImportError as exc:
        raise MissingDependencyError(
            f"mask {name!r} is NIfTI, which needs nibabel: pip install medval[nifti]"
        ) from exc
    try:
        img: Any = nibabel.load(file)
        data = np.asanyarray(img.dataobj)
        affine = np.diag([-1.0, -1.0, 1.0, 1.0]) @ np.asarray(img.affine, dtype=np.float64)
    except Exception as exc:
        raise DataError(f"mask {name!r} cannot be read as NIfTI ({describe_error(exc)}).") from exc
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim not in (3, 4):
        raise DataError(f"mask {name!r}: NIfTI of shape {data.shape}; expected 3-D or 4-D.")
    target = volume.affine()
    m = np.linalg.solve(target[:3, :3], affine[:3, :3])  # NIfTI axis a -> volume index steps
    axes = [int(np.argmax(np.abs(m[:, a]))) for a in range(3)]  # 0: x, 1: y, 2: z
    if sorted(axes) != [0, 1, 2]:
        raise DataError(
            f"mask {name!r}: its NIfTI axes do not align with the series' (affine "
            f"{np.round(affine[:3, :3], 4).tolist()} in LPS); the mask is on another grid: "
            "resample it onto the series or export it from this series."
        )
    flips = [bool(m[axes[a], a] < 0) for a in range(3)]
    shape_xyz = (volume.shape[2], volume.shape[1], volume.shape[0])
    if tuple(data.shape[axes.index(b)] for b in range(3)) != shape_xyz:
        raise DataError(
            f"mask {name!r}: NIfTI shape {data.shape[:3]} does not match the series' (x, y, z) "
            f"{shape_xyz}; the mask is on another grid."
        )
    worst = 0.0
    for corner in np.ndindex(2, 2, 2):
        vol_index = np.array([c * (n - 1) for c, n in zip(corner, shape_xyz, strict=True)])
        nii_index = [
            (shape_xyz[axes[a]] - 1 - vol_index[axes[a]]) if flips[a] else vol_index[axes[a]]
            for a in range(3)
        ]
        p_nii = affine[:3, :3] @ np.asarray(nii_index, dtype=np.float64) + affine[:3, 3]
        p_vol = target[:3, :3] @ vol_index + target[:3, 3]
        worst = max(worst, float(np.linalg.norm(p_nii - p_vol)))
    tolerance = GRID_TOLERANCE * min(volume.spacing)
    if worst > tolerance:
        zooms = np.linalg.norm(affine[:3, :3], axis=0)
        raise DataError(
            f"mask {name!r}: its NIfTI grid is off the series' by up to {worst:.3g} mm (over "
            f"the {tolerance:.3g} mm tolerance): voxel sizes {np.round(zooms, 4).tolist()} "
            f"vs the series' (x, y, z) {list(volume.spacing[::-1])}, origin (LPS) "
            f"{np.round(affine[:3, 3], 3).tolist()} vs {list(np.round(volume.origin, 3))}; "
            "export the mask from this series or fix its affine (NIfTI is RAS+, DICOM LPS)."
        )
    order = [axes.index(b) for b in (2, 1, 0)]
    for a in range(3):
        if flips[a]:
            data = np.flip(data, axis=a)
    out = np.transpose(data, [*order, 3] if data.ndim == 4 else order)
    return np.ascontiguousarray(np.moveaxis(out, 3, 0) if out.ndim == 4 else out)
