"""Segmentation inference over one volume, with MC-dropout voxel uncertainty.

:func:`segment` runs a model slice by slice (``mode="2d"``) or patch by
patch (``mode="3d"``, a Gaussian-weighted sliding window, see
:mod:`medval.inference._window`) and, with ``mc_samples=T``, T MC-dropout
passes (Gal and Ghahramani 2016) whose voxel-wise uncertainty is kept in
running sums, never as T volumes. The decomposition is the usual one
(Depeweg et al. 2018, "Decomposition of uncertainty in Bayesian deep
learning"; Kendall and Gal 2017): predictive entropy ``H(mean_t p_t)`` =
aleatoric ``mean_t H(p_t)`` + epistemic (the mutual information).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray
from scipy.special import entr

from medval._errors import InputError
from medval.inference._head import dropout_modules
from medval.inference._predict import resolve_device
from medval.inference._window import WindowRunner, plan_windows

__all__ = ["SegmentOutput", "segment"]

F32 = NDArray[np.float32]
Map = NDArray[np.float16] | NDArray[np.float32]
_MODES = ("2d", "3d")
_OUTPUTS = ("softmax", "sigmoid", "probabilities")
_MAP_DTYPES: dict[str, type[np.floating[Any]]] = {"float16": np.float16, "float32": np.float32}
_BLOCK_VOXELS = 1 << 20  # voxels per accumulator step: float64 temporaries stay small


@dataclasses.dataclass(frozen=True)
class SegmentOutput:
    """What :func:`segment` returns for one volume (C >= 2 channels).

    Attributes
    ----------
    probabilities : float32 ndarray of shape (C, z, y, x)
        The deterministic pass (every dropout module off): the model as deployed.
    mc_mean : float32 ndarray of shape (C, z, y, x) or None
        Mean of the T MC-dropout passes; only with ``keep_mc_mean=True``
        (None otherwise and when ``mc_samples=0``).
    entropy : ndarray of shape (z, y, x) or None
        Predictive entropy ``H(mean_t p_t)`` in nats; float16 by default
        (``map_dtype``), see :func:`segment` for its precision.
    aleatoric : ndarray of shape (z, y, x) or None
        Expected entropy ``mean_t H(p_t)``, same dtype.
    epistemic : ndarray of shape (z, y, x) or None
        Mutual information ``entropy - aleatoric`` (computed before the
        rounding to ``map_dtype``), >= 0 (rounding below 0 is clipped).
    n_samples : int
        T, the number of MC passes.
    seed : int
        Run seed of the dropout masks.
    """

    probabilities: F32
    mc_mean: F32 | None
    entropy: Map | None
    aleatoric: Map | None
    epistemic: Map | None
    n_samples: int
    seed: int


def _entropy(p: F32, multilabel: bool) -> F32:
    """Entropy in nats over axis 0 of probabilities (C, ...): float64 inside, float32 out.

    Categorical ``-sum_c p_c log p_c``; with independent (multi-label)
    channels the joint entropy ``sum_c h(p_c)``, h the binary entropy.
    """
    q = p.astype(np.float64)
    h = entr(q)
    if multilabel:
        h += entr(1.0 - q)
    return np.asarray(h.sum(axis=0), dtype=np.float32)


class _Moments:
    """Running sums over MC samples for one region: of p_t (C, z, y, x) and of H(p_t) (z, y, x).

    Float64 sums of float32 terms: T identical passes sum exactly (so their
    epistemic part is exactly 0) and the rounding of any T <= 2**29 terms
    stays near float64's, far below float32 outputs' resolution.
    """

    def __init__(self, shape: tuple[int, ...], multilabel: bool) -> None:
        self.sum_p = np.zeros(shape, dtype=np.float64)
        self.sum_h = np.zeros(shape[1:], dtype=np.float64)
        self.multilabel, self.n = multilabel, 0
        self.step = max(1, _BLOCK_VOXELS // max(1, math.prod(shape[2:])))

    def _blocks(self) -> list[slice]:
        z = self.sum_h.shape[0]
        return [slice(i, i + self.step) for i in range(0, z, self.step)]

    def add(self, p: F32) -> None:
        for b in self._blocks():
            self.sum_p[:, b] += p[:, b]
            self.sum_h[b] += _entropy(p[:, b], self.multilabel)
        self.n += 1

    def finish(self, entropy: Map, aleatoric: Map, epistemic: Map, mean: F32 | None) -> None:
        """Write the region's maps (and MC mean) into these output views.

        The mean of a block is rounded to float32 before its entropy (so T
        identical passes give the entropy of each pass, bit for bit);
        aleatoric and epistemic stay float64 until the one rounding to the
        maps' dtype.
        """
        for b in self._blocks():
            m = (self.sum_p[:, b] / self.n).astype(np.float32)
            if mean is not None:
                mean[:, b] = m
            h = _entropy(m, self.multilabel)
            ale = self.sum_h[b] / self.n
            entropy[b] = h
            aleatoric[b] = ale
            epistemic[b] = np.maximum(h - ale, 0.0)


def _check_volume(volume: ArrayLike) -> F32:
    arr = np.asarray(volume)
    if arr.ndim != 3 or arr.size == 0:
        raise InputError(
            f"volume must be a non-empty 3-D array (z, y, x); got shape {arr.shape}. Drop a "
            "channel axis first (volume[0] or volume[..., 0])."
        )
    if arr.dtype.kind not in "iuf":
        raise InputError(f"volume must hold real numbers; got dtype {arr.dtype}.")
    with np.errstate(over="ignore"):  # beyond float32: inf, refused below
        vol = np.asarray(arr, dtype=np.float32)
    finite = np.isfinite(vol)
    if not finite.all():
        z, y, x = (int(i) for i in np.argwhere(~finite)[0])
        raise InputError(
            f"volume has {int(finite.size - finite.sum())} non-finite values (NaN, inf, or beyond "
            f"float32), the first at (z, y, x) = ({z}, {y}, {x}). Replace them in preprocessing."
        )
    return vol


def _check_options(
    mode: str, output: str, batch_size: int, mc_samples: int, seed: int, case_id: str
) -> None:
    if mode not in _MODES:
        raise InputError(f"mode must be '2d' (slice by slice) or '3d' (patches); got {mode!r}.")
    if output not in _OUTPUTS:
        raise InputError(
            f"output must be 'softmax', 'sigmoid' or 'probabilities' (what the model returns); "
            f"got {output!r}."
        )
    for name, value, low in (("batch_size", batch_size, 1), ("mc_samples", mc_samples, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise InputError(f"{name} must be an integer >= {low}; got {value!r}.")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise InputError(f"seed must be an integer; got {seed!r}.")
    if not isinstance(case_id, str):
        raise InputError(f"case_id must be a string (it keys the dropout masks); got {case_id!r}.")


def _map_dtype(map_dtype: str, keep_mc_mean: bool) -> type[np.floating[Any]]:
    if not isinstance(keep_mc_mean, bool):
        raise InputError(f"keep_mc_mean must be True or False; got {keep_mc_mean!r}.")
    if not isinstance(map_dtype, str) or map_dtype not in _MAP_DTYPES:
        raise InputError(
            f"map_dtype must be 'float16' (default: half the memory, abs. error <= "
            f"ln(C) * 2**-11) or 'float32'; got {map_dtype!r}."
        )
    return _MAP_DTYPES[map_dtype]


def segment(
    model: torch.nn.Module,
    volume: ArrayLike,
    *,
    mode: str = "2d",
    output: str = "softmax",
    patch_size: Sequence[int] | None = None,
    overlap: float = 0.5,
    batch_size: int = 16,
    mc_samples: int = 0,
    seed: int = 0,
    case_id: str = "",
    device: str | torch.device | None = None,
    keep_mc_mean: bool = False,
    map_dtype: str = "float16",
) -> SegmentOutput:
    """Run a segmentation model over one volume, with MC-dropout voxel uncertainty.

    ``mode="2d"`` feeds each z slice as a (batch, 1, y, x) input;
    ``mode="3d"`` feeds (batch, 1, pz, py, px) patches. With ``patch_size``
    (2 numbers in 2D, 3 in 3D) the slice or volume is covered by a sliding
    window: windows overlap by ``overlap``, each output is weighted by a
    Gaussian (sigma = 1/8 of the patch size; nnU-Net, Isensee et al. 2021,
    and MONAI's ``sliding_window_inference``) and the weighted
    PROBABILITIES are averaged (not logits: probabilities are what the
    uncertainty is computed on, and their average stays in [0, 1]). An
    axis shorter than the patch is zero-padded symmetrically and cropped
    back. ``patch_size=None`` is one window over the whole slice (2D) or
    volume (3D), unweighted.

    With ``mc_samples=T > 0``, T further passes run with dropout active in
    the nn.Dropout/Dropout1d/2d/3d/AlphaDropout modules only (BatchNorm and
    everything else stay in eval mode; :class:`~medval.inference._masks.CaseMasks`
    applies torch's dropout formulas to masks keyed by ``(seed, case_id,
    slice, window)``; torch's random generators are not used). The masks,
    the blending order and the sums do not depend on ``batch_size`` or on
    how windows are batched, so the results are the same bits whenever the
    model's output for a window does not depend on its batch neighbours
    (torch's CPU convolutions round differently per batch size, ~1e-7).

    Streaming: each pass is added to running sums of p_t and H(p_t), in
    float64 (float32 terms: T identical passes sum exactly, so their
    epistemic part is exactly 0), over the slab of slices in hand (2D: about
    ``batch_size`` slices) or the volume (3D); the slab's maps are written
    and its sums dropped. Memory does not grow with T: besides the results
    (``probabilities``: C float32 volumes; the three maps: 1.5 float32
    volumes in float16, 3 in float32; ``mc_mean``, only when asked: C float32
    volumes), 2D needs a few slabs and 3D about 3C + 3 float32 volumes (the
    float64 sums, one pass, the weights).

    Precision of the maps. They are computed in float64 (from float32
    probabilities, the model's precision) and rounded once to ``map_dtype``
    at the end of each slab. float16 (default) has a relative step of
    2**-11 (10 stored mantissa bits, round to nearest; below 6.1e-5 an
    absolute step of 2**-24): as every map lies in [0, H_max], with H_max =
    ln C nats (softmax) or C ln 2 (independent sigmoid channels), the
    rounding error of each voxel is at most ``H_max * 2**-11``, e.g. 3.4e-4
    nats for C = 2 and 5.4e-4 for C = 3, well below what MC sampling itself
    resolves (T = 20 passes). Zero stays zero and signs are kept, so
    ``epistemic`` is >= 0 and exactly 0 for identical passes, but
    ``entropy == aleatoric + epistemic`` holds to the rounding only. Why:
    the maps are the volumes medval keeps (per case, for the case
    uncertainty summaries); in float16 the results of a 512 x 512 x 300
    volume with C = 2 take 4C + 6 = 14 bytes a voxel (1.0 GiB) instead of
    4(2C + 3) = 28 with float32 maps and the MC mean. ``map_dtype="float32"``
    keeps float32's 2**-24 relative step.

    Parameters
    ----------
    model : torch.nn.Module
        Moved to ``device`` and put in eval mode; every module's mode is
        restored afterwards (also after an exception).
    volume : array_like of shape (z, y, x)
        Preprocessed intensities, finite; fed as float32 (the model's dtype).
    mode : {"2d", "3d"}, default "2d"
    output : {"softmax", "sigmoid", "probabilities"}, default "softmax"
        What the model returns, never guessed: C >= 2 logits (softmax over
        the channels); independent logits (sigmoid each; entropies are then
        the joint entropy of independent channels, sum of binary
        entropies); or probabilities (values in [0, 1], channels summing to
        1). A single channel (sigmoid or probabilities) is the foreground
        p and becomes two channels ``[1 - p, p]``: background is channel 0.
    patch_size : sequence of int, optional
    overlap : float in [0, 1), default 0.5
    batch_size : int, default 16
        Windows per forward pass.
    mc_samples : int, default 0
    seed : int, default 0
        Run seed of the dropout masks; anything random in the model itself
        runs in ``torch.random.fork_rng`` seeded with it (global state untouched).
    case_id : str, default ""
        Keys the dropout masks: give each case its own id.
    device : str or torch.device, optional
        Default: CUDA when available, else CPU.
    keep_mc_mean : bool, default False
        Also return the MC mean ``mean_t p_t`` (C float32 volumes). Off by
        default: the maps need only its entropy, computed slab by slab.
    map_dtype : {"float16", "float32"}, default "float16"
        dtype of ``entropy``, ``aleatoric`` and ``epistemic`` (see the
        precision paragraph above).

    Returns
    -------
    SegmentOutput

    Raises
    ------
    InputError
        A volume that is not 3-D or not finite; bad options or patch size;
        ``mc_samples > 0`` for a model without dropout modules; a model
        that fails on the input or returns the wrong shape, or outputs
        that are not finite or not probabilities.
    """
    vol = _check_volume(volume)
    _check_options(mode, output, batch_size, mc_samples, seed, case_id)
    dtype = _map_dtype(map_dtype, keep_mc_mean)
    if not isinstance(model, torch.nn.Module):
        raise InputError(f"model must be a torch.nn.Module; got {type(model).__name__}.")
    frames = vol if mode == "2d" else vol[None]
    windows = plan_windows(frames.shape[1:], patch_size, overlap)
    if mc_samples > 0 and not dropout_modules(model):
        raise InputError(
            "model has no dropout layers; MC dropout would give T identical passes. Use "
            "mc_samples=0 (functional F.dropout is invisible to medval)."
        )
    dev = resolve_device(device)
    runner = WindowRunner(
        model, frames, windows, mode=mode, output=output, batch_size=batch_size, device=dev
    )
    per_region = max(1, math.ceil(batch_size / len(windows.starts))) if mode == "2d" else 1
    regions = [
        range(i, min(i + per_region, len(frames))) for i in range(0, len(frames), per_region)
    ]
    res: dict[str, Any] = {}
    modes = {m: m.training for m in model.modules()}
    fork = [dev.index or 0] if dev.type == "cuda" else []
    try:
        model.to(dev)
        model.eval()
        with torch.random.fork_rng(devices=fork), torch.inference_mode():
            torch.random.manual_seed(seed)
            for region in regions:
                z = slice(region.start, region.stop) if mode == "2d" else slice(None)
                det = runner.run(region, None)
                if not res:
                    c = det.shape[0]
                    res["probabilities"] = np.empty((c, *vol.shape), dtype=np.float32)
                    if mc_samples and keep_mc_mean:
                        res["mc_mean"] = np.empty((c, *vol.shape), dtype=np.float32)
                    if mc_samples:
                        for k in ("entropy", "aleatoric", "epistemic"):
                            res[k] = np.empty(vol.shape, dtype=dtype)
                res["probabilities"][:, z] = det
                if mc_samples:
                    keys = runner.keys(region, seed, case_id)
                    sums = _Moments(det.shape, runner.multilabel)
                    for t in range(mc_samples):
                        sums.add(runner.run(region, t, keys))
                    mean = res["mc_mean"][:, z] if keep_mc_mean else None
                    sums.finish(res["entropy"][z], res["aleatoric"][z], res["epistemic"][z], mean)
    finally:
        for m, was_training in modes.items():
            m.train(was_training)
    return SegmentOutput(
        probabilities=res["probabilities"],
        mc_mean=res.get("mc_mean"),
        entropy=res.get("entropy"),
        aleatoric=res.get("aleatoric"),
        epistemic=res.get("epistemic"),
        n_samples=mc_samples,
        seed=seed,
    )
