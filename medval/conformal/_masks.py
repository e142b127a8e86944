"""Conformal risk control of the per-image false-negative rate of a segmentation mask.

Pixels of one image are not exchangeable, so a per-pixel coverage statement
means nothing; what conformal risk control guarantees is a risk per image
(Angelopoulos, Bates, Fisch, Lei & Schuster, "Conformal Risk Control",
ICLR 2024, sec. 3.1, their polyp-segmentation example). Every computation
runs from small per-case histograms of the foreground probability, so a
cohort never sits in memory.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from medval._errors import InputError, NotCalibratedError
from medval.conformal._checks import check_confidence_level, check_groups
from medval.conformal._risk import risk_control_threshold

__all__ = ["N_BINS", "MaskRiskControl", "probability_histograms"]

N_BINS = 1000
#: Threshold grids: ``"logit"`` (default) spaces the edges evenly in log-odds between
#: 1e-6 and 1 - 1e-6, so a model that gives a missed lesion p = 1e-4 can still be
#: thresholded below it; ``"linear"`` is ``j / n_bins``.
GRIDS = ("logit", "linear")
_LOGIT_SPAN = float(np.log((1 - 1e-6) / 1e-6))


def threshold_grid(n_bins: int = N_BINS, grid: str = "logit") -> NDArray[np.float64]:
    """The bin edges ``t_0 = 0 < t_1 < ... < t_B = 1`` (float64); ``t_{B/2} = 0.5`` when B is even.

    ``"linear"``: ``t_j = j / B``. ``"logit"``: ``t_j = sigmoid(L (2j/B - 1))``
    for ``0 < j < B`` with ``L = logit(1 - 1e-6)``: symmetric around 0.5,
    from about 1e-6 to 1 - 1e-6, a step of ``2L/B`` in log-odds (0.028 for
    B = 1000: about 0.007 in probability near 0.5).
    """
    bins = _check_n_bins(n_bins, even=False)
    if grid not in GRIDS:
        raise InputError(f"grid must be one of {list(GRIDS)}; got {grid!r}.")
    j = np.arange(bins + 1, dtype=np.float64)
    if grid == "linear":
        return j / bins
    edges = 1.0 / (1.0 + np.exp(-_LOGIT_SPAN * (2.0 * j / bins - 1.0)))
    edges[0], edges[-1] = 0.0, 1.0
    if bins % 2 == 0:
        edges[bins // 2] = 0.5
    return edges


_HEALTHY = ("exclude", "include")
# Voxels per chunk when binning: bounds the float64/int64 temporaries of a large volume.
_CHUNK = 1 << 22


def probability_histograms(
    probability: ArrayLike, reference: ArrayLike, *, n_bins: int = N_BINS, grid: str = "logit"
) -> NDArray[np.int64]:
    """Counts of one case's foreground probability inside and outside the reference.

    Bin ``j`` holds the voxels with ``t_j <= p < t_{j+1}``, ``t_j`` the edges
    of :func:`threshold_grid` (as float64); the last bin is closed at 1. The
    mask ``{p >= t_j}`` of any grid threshold is therefore exact from the
    counts. :class:`MaskRiskControl` must be given the same grid.

    Parameters
    ----------
    probability : array of float, any shape
        Foreground probability per voxel, in [0, 1].
    reference : array of bool or {0, 1}, same shape
        Reference (ground-truth) mask.
    n_bins : int, default 1000
        Number of bins B (>= 1).
    grid : {"logit", "linear"}, default "logit"
        The threshold grid (:func:`threshold_grid`).

    Returns
    -------
    array of int64, shape (2, n_bins)
        Row 0: reference voxels per bin; row 1: the other voxels per bin.

    Raises
    ------
    InputError
        Shapes differ, probabilities non-finite or outside [0, 1], reference
        not binary, or ``n_bins < 1``.
    """
    bins = _check_n_bins(n_bins, even=False)
    p = np.asarray(probability)
    ref = np.asarray(reference)
    if p.shape != ref.shape:
        raise InputError(
            f"probability and reference must have the same shape; got {p.shape} and {ref.shape}."
        )
    if p.dtype.kind not in "fiu" and p.dtype != np.bool_:
        raise InputError(f"probability must be numeric; got dtype {p.dtype}.")
    if ref.dtype != np.bool_:
        if ref.dtype.kind not in "fiu" or not np.all((ref == 0) | (ref == 1)):
            raise InputError(
                f"reference must be a binary mask (bool or 0/1); got dtype {ref.dtype}. "
                "Binarise a label map first, e.g. reference == label."
            )
        ref = ref != 0
    p_flat, r_flat = p.reshape(-1), ref.reshape(-1)
    edges = threshold_grid(bins, grid)
    counts = np.zeros(2 * bins, dtype=np.int64)
    for start in range(0, p_flat.shape[0], _CHUNK):
        block = p_flat[start : start + _CHUNK].astype(np.float64)
        if block.size and not np.isfinite(block).all():
            raise InputError(
                "probability must be finite; got NaN or infinite values. Check the model outputs."
            )
        if block.size and (block.min() < 0 or block.max() > 1):
            raise InputError(
                f"probability must lie in [0, 1]; got values in [{block.min():.4g}, "
                f"{block.max():.4g}]. Apply a sigmoid/softmax to logits first."
            )
        if grid == "linear":
            idx = np.minimum(np.floor(block * bins).astype(np.int64), bins - 1)
            # floor(p * B) can miss the float edge j / B by one ulp; fix against the edges.
            idx -= (edges[idx] > block).astype(np.int64)
            idx += ((edges[idx + 1] <= block) & (idx < bins - 1)).astype(np.int64)
        else:
            idx = np.minimum(np.searchsorted(edges, block, side="right") - 1, bins - 1)
        idx += bins * (~r_flat[start : start + _CHUNK]).astype(np.int64)
        counts += np.bincount(idx, minlength=2 * bins)
    return counts.reshape(2, bins)


def _check_n_bins(n_bins: int, *, even: bool) -> int:
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        raise InputError(f"n_bins must be a positive integer, e.g. {N_BINS}; got {n_bins!r}.")
    if even and n_bins % 2:
        raise InputError(
            f"n_bins must be even so that the default threshold 0.5 is a bin edge; got {n_bins}."
        )
    return int(n_bins)


def check_healthy(healthy: str) -> Literal["exclude", "include"]:
    """The healthy-case rule, one of ``"exclude"`` or ``"include"``."""
    if healthy not in _HEALTHY:
        raise InputError(
            f"healthy must be one of {_HEALTHY} (what to do with cases without reference "
            f"voxels); got {healthy!r}."
        )
    return healthy  # type: ignore[return-value]


def group_rows(groups: ArrayLike | None, n: int) -> list[tuple[Any, NDArray[np.intp]]]:
    """``[(key, row indices)]`` per group key in sorted order; ``[(None, all)]`` without groups."""
    if groups is None:
        return [(None, np.arange(n))]
    g = check_groups(groups, n)
    keys, inverse = np.unique(g, return_inverse=True)
    inverse = inverse.ravel()
    return [(key, np.flatnonzero(inverse == i)) for i, key in enumerate(keys.tolist())]


def per_case(table: Mapping[Any, float], groups: ArrayLike | None, n: int) -> NDArray[np.float64]:
    """Each case's value from a calibrated table: shape (n,).

    ``table`` maps group keys to values, or is ``{None: value}`` when the
    calibration was marginal.
    """
    marginal = list(table) == [None]
    if marginal != (groups is None):
        raise InputError(
            "groups were passed but the calibration was marginal; pass groups to calibrate() "
            "as well, or none here."
            if marginal
            else "This was calibrated per group; pass the cases' groups=... too."
        )
    out = np.empty(n, dtype=np.float64)
    for key, rows in group_rows(groups, n):
        if key not in table:
            known = sorted(str(k) for k in table if k is not None)[:20]
            raise InputError(
                f"group {key!r} was not seen at calibration (known: {known}); calibrate with "
                "cases from every group, or map new groups to a known key."
            )
        out[rows] = table[key]
    return out


class MaskRiskControl:
    """A mask threshold keeping the expected per-image false-negative rate at most alpha.

    The mask at threshold ``t`` is ``{p >= t}``; the loss of image i is its
    false-negative rate ``FNR_i(t)`` = reference voxels with ``p < t`` /
    reference voxels, which is bounded by B = 1 and non-increasing as ``t``
    decreases. Conformal risk control (Angelopoulos et al., ICLR 2024,
    Thm. 1) picks the largest grid threshold ``t_j`` (:func:`threshold_grid`) with
    ``n/(n+1) R_n(t) + 1/(n+1) <= alpha``, ``R_n`` the mean calibration FNR,
    so that for a new image exchangeable with the n calibration images
    ``E[FNR_{n+1}(t_hat)] <= alpha`` over calibration draws, with
    ``alpha = 1 - confidence_level`` the **FNR target**. With groups (e.g.
    scanners) the threshold is chosen per group (Mondrian) and the statement
    holds within each group.

    Parameters
    ----------
    confidence_level : float, default 0.9
        ``1 - alpha``; alpha = 1 - confidence_level is the FNR target
        (0.9 -> expected per-image FNR <= 10%).
    healthy : {"exclude", "include"}, default "exclude"
        Cases without reference voxels. ``"exclude"``: left out of
        calibration and of the guarantee, which then reads
        ``E[FNR | lesion present] <= alpha``; they are counted in
        ``n_healthy_``. ``"include"``: their FNR is 0 at every threshold and
        the guarantee is marginal over all images, ``E[FNR] <= alpha``. That
        is weaker for diseased images: healthy images lower the mean risk for
        free, so the threshold rises until ``E[FNR | lesion] ~ alpha / P(lesion)``
        (with 20% healthy images, 12.5% instead of 10%).
    n_bins : int, default 1000
        Histogram bins B (even, so that 0.5 is a grid value).
    grid : {"logit", "linear"}, default "logit"
        The threshold grid, as the histograms were binned. ``"logit"`` reaches
        down to about 1e-6, which confident segmentation models need: the
        voxels of a lesion they miss often get p < 1e-3, so a linear grid of
        1/1000 steps could only reach the target at threshold 0 (every voxel).

    Attributes
    ----------
    threshold_ : float
        Threshold from all calibration cases (marginal), a grid edge. The
        mask is ``probability.astype(np.float64) >= threshold_``
        (compare in float64, as the histograms do: float32 ``p >= t`` rounds
        ``t`` to float32 first).
    thresholds_ : dict
        Group key -> threshold (Mondrian; empty when calibrated without groups).
    group_sizes_ : dict
        Group key -> calibration cases used (after the healthy rule); key
        ``None`` for the whole set.
    n_healthy_ : dict
        Group key -> cases without reference voxels; key ``None`` for the whole set.
    risk_bounds_ : dict
        Group key -> ``n/(n+1) R_n(t_hat) + 1/(n+1)`` at the chosen threshold.
    fallbacks_ : dict
        Group key -> why that group got the most permissive threshold 0
        (too few cases: ``1/(n+1) > alpha``, i.e. ``n < 1/alpha - 1``).
    alpha_ : float
        The FNR target.

    Raises
    ------
    InputError
        Bad ``confidence_level``, ``healthy`` or ``n_bins``.
    """

    def __init__(
        self,
        *,
        confidence_level: float = 0.9,
        healthy: str = "exclude",
        n_bins: int = N_BINS,
        grid: str = "logit",
    ) -> None:
        self.confidence_level = confidence_level
        self.level = check_confidence_level(confidence_level)
        self.healthy = check_healthy(healthy)
        self.n_bins = _check_n_bins(n_bins, even=True)
        self.grid = grid
        self.edges_ = threshold_grid(self.n_bins, grid)

    # -- calibration ---------------------------------------------------------

    def _histograms(self, histograms: ArrayLike) -> NDArray[np.int64]:
        h = np.asarray(histograms)
        if h.ndim != 3 or h.shape[1:] != (2, self.n_bins):
            raise InputError(
                f"histograms must have shape (n, 2, {self.n_bins}) (probability_histograms per "
                f"case, stacked); got {h.shape}."
            )
        integral = h.dtype.kind in "iu" or (
            h.dtype.kind == "f" and bool(np.all(np.isfinite(h))) and bool(np.all(h == np.round(h)))
        )
        if not integral:
            raise InputError(f"histograms must hold integer voxel counts; got dtype {h.dtype}.")
        if h.size and h.min() < 0:
            raise InputError("histograms hold negative counts; pass probability_histograms output.")
        return h.astype(np.int64, copy=False)

    def _missed(self, h: NDArray[np.int64]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """Reference voxels below each grid threshold (n, B) and reference voxels (n,)."""
        ref = h[:, 0, :]
        missed = np.zeros_like(ref)
        np.cumsum(ref[:, :-1], axis=1, out=missed[:, 1:])
        return missed, ref.sum(axis=1)

    def calibrate(
        self, histograms: ArrayLike, *, groups: ArrayLike | None = None
    ) -> MaskRiskControl:
        """Choose the threshold(s) on calibration cases.

        Parameters
        ----------
        histograms : array of int, shape (n, 2, n_bins)
            :func:`probability_histograms` of each calibration case.
        groups : array, shape (n,), optional
            Group key per case (e.g. scanner) for Mondrian thresholds.

        Returns
        -------
        MaskRiskControl
            self.

        Raises
        ------
        InputError
            Bad shapes or counts, bad groups, or no usable case (none at all,
            or none with reference voxels under ``healthy="exclude"``). A
            group with too few cases gets threshold 0 and an entry in
            ``fallbacks_`` instead.
        """
        h = self._histograms(histograms)
        n = h.shape[0]
        if n < 1:
            raise InputError("histograms are empty; calibration needs at least one case.")
        missed, n_ref = self._missed(h)
        diseased = n_ref > 0
        if self.healthy == "exclude" and not diseased.any():
            raise InputError(
                f"none of the {n} calibration cases has reference voxels; the FNR cannot be "
                "controlled with healthy='exclude'. Add cases with lesions."
            )
        fnr = missed / np.maximum(n_ref, 1)[:, None]
        # Lambda grid of risk_control_threshold: lambda_k = 1 - t_{B-1-k}, increasing,
        # with FNR non-increasing along it and zero at its end (t = 0).
        losses = fnr[:, ::-1]
        self.alpha_ = float(1 - self.level)
        self.group_sizes_: dict[Any, int] = {}
        self.n_healthy_: dict[Any, int] = {}
        self.risk_bounds_: dict[Any, float] = {}
        self.fallbacks_: dict[Any, str] = {}
        self._index: dict[Any, int] = {}
        parts = [(None, np.arange(n))]
        if groups is not None:
            parts += group_rows(groups, n)
        for key, rows in parts:
            use = rows[diseased[rows]] if self.healthy == "exclude" else rows
            self.n_healthy_[key] = int(np.count_nonzero(~diseased[rows]))
            self.group_sizes_[key] = int(use.shape[0])
            if use.shape[0] == 0:
                self._index[key], self.risk_bounds_[key] = 0, 1.0
                self.fallbacks_[key] = "no case with reference voxels in this group"
                continue
            k, bound = risk_control_threshold(
                losses[use],
                np.arange(1, self.n_bins + 1) / self.n_bins,
                target=self.alpha_,
                max_loss=1.0,
            )
            self._index[key] = self.n_bins - 1 - k
            self.risk_bounds_[key] = float(bound[k])
            if bound[k] > self.alpha_:
                m = use.shape[0]
                self.fallbacks_[key] = (
                    f"{m} case(s): 1/(n+1) = {1 / (m + 1):.4g} > alpha = {self.alpha_:g}; "
                    f"needs n >= {int(np.ceil(1 / self.alpha_ - 1 - 1e-9))}"
                )
        self.threshold_ = float(self.edges_[self._index[None]])
        self.thresholds_ = {
            key: float(self.edges_[j]) for key, j in self._index.items() if key is not None
        }
        self._grouped = groups is not None
        return self

    # -- use -----------------------------------------------------------------

    def _row_index(self, n: int, groups: ArrayLike | None) -> NDArray[np.intp]:
        if not hasattr(self, "_index"):
            raise NotCalibratedError(
                "This MaskRiskControl is not calibrated yet; call .calibrate(histograms) on "
                "held-out cases first."
            )
        table = self._index if self._grouped else {None: self._index[None]}
        return per_case(table, groups, n).astype(np.intp)

    def risk(
        self, histograms: ArrayLike, *, groups: ArrayLike | None = None
    ) -> NDArray[np.float64]:
        """Per-image FNR at the calibrated threshold(s).

        Parameters
        ----------
        histograms : array of int, shape (n, 2, n_bins)
        groups : array, shape (n,), optional
            Required when calibrated per group.

        Returns
        -------
        array of float64, shape (n,)
            FNR of each image; 0 for images without reference voxels (nothing
            to miss). Under ``healthy="exclude"`` the guarantee is on the mean
            over images with reference voxels
            (``histograms[:, 0].sum(axis=1) > 0``); under ``"include"`` on
            the mean over all.

        Raises
        ------
        NotCalibratedError
            Before :meth:`calibrate`.
        InputError
            Bad histograms, missing or unseen groups.
        """
        h = self._histograms(histograms)
        j = self._row_index(h.shape[0], groups)
        missed, n_ref = self._missed(h)
        rows = np.arange(h.shape[0])
        return missed[rows, j] / np.maximum(n_ref, 1)

    def price(
        self,
        histograms: ArrayLike,
        *,
        groups: ArrayLike | None = None,
        voxel_volume_ml: ArrayLike | float = 1.0,
    ) -> dict[str, NDArray[np.float64]]:
        """What the guarantee costs per image: volume at the threshold vs at 0.5.

        Parameters
        ----------
        histograms : array of int, shape (n, 2, n_bins)
        groups : array, shape (n,), optional
            Required when calibrated per group.
        voxel_volume_ml : float or array of float, shape (n,), default 1
            Voxel volume per image (1 gives voxel counts).

        Returns
        -------
        dict of str to array of float64, shape (n,)
            ``threshold``; ``volume_ml`` and ``fp_volume_ml`` (mask and its
            non-reference voxels at the threshold); ``default_volume_ml`` and
            ``default_fp_volume_ml`` (the same at 0.5); ``added_volume_ml`` and
            ``added_fp_volume_ml`` (the differences: the price); ``fnr`` and
            ``default_fnr`` (what it buys).

        Raises
        ------
        NotCalibratedError
            Before :meth:`calibrate`.
        InputError
            Bad histograms, groups or voxel volumes.
        """
        h = self._histograms(histograms)
        n = h.shape[0]
        j = self._row_index(n, groups)
        vv = np.asarray(voxel_volume_ml, dtype=np.float64)
        if vv.shape not in ((), (n,)) or not np.all(np.isfinite(vv)) or np.any(vv <= 0):
            raise InputError(
                f"voxel_volume_ml must be positive and finite, one value or shape ({n},); "
                f"got shape {vv.shape}."
            )
        vv = np.broadcast_to(vv, (n,))
        above = np.cumsum(h[:, :, ::-1], axis=2)[:, :, ::-1]  # voxels with bin >= j
        missed, n_ref = self._missed(h)
        rows, half = np.arange(n), self.n_bins // 2
        vol = (above[rows, 0, j] + above[rows, 1, j]) * vv
        fp = above[rows, 1, j] * vv
        vol_d = (above[:, 0, half] + above[:, 1, half]) * vv
        fp_d = above[:, 1, half] * vv
        denom = np.maximum(n_ref, 1)
        return {
            "threshold": self.edges_[j],
            "volume_ml": vol,
            "fp_volume_ml": fp,
            "default_volume_ml": vol_d,
            "default_fp_volume_ml": fp_d,
            "added_volume_ml": vol - vol_d,
            "added_fp_volume_ml": fp - fp_d,
            "fnr": missed[rows, j] / denom,
            "default_fnr": missed[:, half] / denom,
        }
