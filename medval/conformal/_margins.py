"""Morphological margins: how many dilations of a predicted mask cover the reference.

The score of a case is the number of dilations its predicted mask needs to
contain every reference voxel; the split-conformal quantile of the
calibration scores is a margin ``k_hat`` such that the prediction dilated
``k_hat`` times contains the whole reference with probability at least
``1 - alpha`` (Vovk, Gammerman & Shafer 2005; Angelopoulos & Bates 2023,
sec. 1.1; the margin form as in Mossina, Dalmau & Andéol, "Conformal
semantic image segmentation: post-hoc quantification of predictive
uncertainty", CVPRW 2024).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from medval._errors import InputError, NotCalibratedError
from medval.conformal._checks import check_confidence_level, conformal_rank, min_calibration_size
from medval.conformal._masks import check_healthy, group_rows, per_case
from medval.stats import check_mask

__all__ = ["MorphologicalMargin", "added_volume", "dilation_needed"]

_METRICS = {"vertex": "chessboard", "face": "taxicab"}


def _masks(
    predicted: ArrayLike, reference: ArrayLike
) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
    pred, ref = np.asarray(predicted), np.asarray(reference)
    if pred.shape != ref.shape or pred.ndim == 0:
        raise InputError(
            f"predicted and reference must be masks of the same shape; got {pred.shape} and "
            f"{ref.shape}."
        )
    return (
        check_mask(pred, name="predicted", ndims=None),
        check_mask(ref, name="reference", ndims=None),
    )


def _check_steps(max_steps: int) -> int:
    if isinstance(max_steps, bool) or not isinstance(max_steps, (int, np.integer)) or max_steps < 0:
        raise InputError(f"max_steps must be a non-negative integer, e.g. 20; got {max_steps!r}.")
    return int(max_steps)


def _distance(
    pred: NDArray[np.bool_], max_steps: int, connectivity: str
) -> tuple[NDArray[np.int32], tuple[slice, ...]]:
    """Dilations to reach each voxel of the prediction's bounding box +- max_steps.

    One chamfer distance transform (scipy ``distance_transform_cdt``, exact
    for the chessboard and taxicab metrics) of ``~pred``: voxel v joins the
    prediction at dilation ``d(v)`` with the 3x3(x3) cube (``"vertex"``) or
    the cross (``"face"``). Farther voxels need more than ``max_steps``.
    """
    from scipy.ndimage import distance_transform_cdt

    if connectivity not in _METRICS:
        raise InputError(f"connectivity must be one of {tuple(_METRICS)}; got {connectivity!r}.")
    where = np.nonzero(pred)
    box = tuple(
        slice(max(0, int(w.min()) - max_steps), min(size, int(w.max()) + max_steps + 1))
        for w, size in zip(where, pred.shape, strict=True)
    )
    d = distance_transform_cdt(~pred[box], metric=_METRICS[connectivity])
    return np.asarray(d, dtype=np.int32), box


def dilation_needed(
    predicted: ArrayLike,
    reference: ArrayLike,
    *,
    max_steps: int = 20,
    connectivity: str = "vertex",
) -> int | float:
    """Smallest number of dilations of the prediction that contains the reference.

    Parameters
    ----------
    predicted, reference : array of bool or {0, 1}, same shape (2-D or 3-D)
        Predicted and reference masks.
    max_steps : int, default 20
        Largest margin considered.
    connectivity : {"vertex", "face"}, default "vertex"
        Structuring element of one dilation: the full 3x3(x3) cube
        (chessboard distance) or the cross (city-block distance).

    Returns
    -------
    int or float
        k in ``0 .. max_steps``; 0 when the reference is empty; ``inf`` when
        the prediction is empty and the reference is not, or when more than
        ``max_steps`` dilations are needed.

    Raises
    ------
    InputError
        Shapes differ, masks not binary, bad ``max_steps`` or ``connectivity``.
    """
    pred, ref = _masks(predicted, reference)
    steps = _check_steps(max_steps)
    if not ref.any():
        return 0
    if not pred.any():
        return float("inf")
    d, box = _distance(pred, steps, connectivity)
    inside = ref[box]
    if np.count_nonzero(inside) < np.count_nonzero(ref):
        return float("inf")
    k = int(d[inside].max())
    return k if k <= steps else float("inf")


def added_volume(
    predicted: ArrayLike,
    reference: ArrayLike,
    *,
    max_steps: int = 20,
    connectivity: str = "vertex",
) -> NDArray[np.int64]:
    """Voxels added to the prediction by k dilations, k = 0 .. max_steps.

    Parameters
    ----------
    predicted, reference : array of bool or {0, 1}, same shape
    max_steps : int, default 20
    connectivity : {"vertex", "face"}, default "vertex"
        As in :func:`dilation_needed`.

    Returns
    -------
    array of int64, shape (2, max_steps + 1)
        Column k: voxels in the k-times dilated prediction but not in the
        prediction (cumulative; column 0 is 0), that are reference (row 0,
        what the margin gains) and not reference (row 1, its price).

    Raises
    ------
    InputError
        As :func:`dilation_needed`.
    """
    pred, ref = _masks(predicted, reference)
    steps = _check_steps(max_steps)
    out = np.zeros((2, steps + 1), dtype=np.int64)
    if not pred.any():
        return out
    d, box = _distance(pred, steps, connectivity)
    r = ref[box]
    for row, sel in enumerate((r, ~r)):
        dist = d[sel]
        out[row] = np.cumsum(np.bincount(dist[dist <= steps], minlength=steps + 1))
        out[row, :] -= out[row, 0]  # distance 0 is the prediction itself
    return out


class MorphologicalMargin:
    """A margin (number of dilations) covering the whole reference with probability 1 - alpha.

    Calibration scores are :func:`dilation_needed` per case; ``k_hat`` is
    their ``ceil((n + 1)(1 - alpha))``-th smallest (split conformal), so that
    for an exchangeable new case ``P(dilation_needed <= k_hat) >= 1 - alpha``;
    the coverage is at most ``1 - alpha + 1/(n + 1)`` only without ties, and
    integer scores tie, so it can be higher. Mondrian with groups.

    Parameters
    ----------
    confidence_level : float, default 0.9
        ``1 - alpha``.
    healthy : {"exclude", "include"}, default "exclude"
        Cases without reference voxels (score 0: nothing to cover).
        ``"exclude"`` leaves them out (the guarantee is conditional on a
        lesion being present; pass ``reference_present`` to
        :meth:`calibrate`); ``"include"`` keeps them, which lowers ``k_hat``
        and weakens the guarantee for diseased cases.
    max_steps : int, default 20
        Largest finite margin; a larger quantile gives ``inf``.

    Attributes
    ----------
    k_hat_ : float
        Margin from all calibration cases (an integer, or ``inf``: no margin
        up to ``max_steps`` reaches the level, i.e. the whole image).
    k_hats_ : dict
        Group key -> margin (Mondrian; empty without groups).
    group_sizes_, n_healthy_ : dict
        Group key (``None`` for all) -> cases used / cases without reference.
    reasons_ : dict
        Group key -> why its margin is ``inf`` (too few cases, or the
        quantile exceeds ``max_steps``); never clipped silently.

    Raises
    ------
    InputError
        Bad ``confidence_level``, ``healthy`` or ``max_steps``.
    """

    def __init__(
        self, *, confidence_level: float = 0.9, healthy: str = "exclude", max_steps: int = 20
    ) -> None:
        self.confidence_level = confidence_level
        self.level = check_confidence_level(confidence_level)
        self.healthy = check_healthy(healthy)
        self.max_steps = _check_steps(max_steps)

    @staticmethod
    def _scores(steps_needed: ArrayLike) -> NDArray[np.float64]:
        s = np.asarray(steps_needed, dtype=np.float64)
        if s.ndim != 1:
            raise InputError(f"steps_needed must have shape (n,); got {s.shape}.")
        finite = s[np.isfinite(s)]
        if np.isnan(s).any() or (s < 0).any() or np.any(finite != np.round(finite)):
            raise InputError(
                "steps_needed must be non-negative integers or inf (dilation_needed output); "
                "got NaN, negative or fractional values."
            )
        return s

    def calibrate(
        self,
        steps_needed: ArrayLike,
        *,
        groups: ArrayLike | None = None,
        reference_present: ArrayLike | None = None,
    ) -> MorphologicalMargin:
        """Choose the margin(s) on calibration cases.

        Parameters
        ----------
        steps_needed : array of float, shape (n,)
            :func:`dilation_needed` per case (integers or inf).
        groups : array, shape (n,), optional
            Group key per case (Mondrian margins).
        reference_present : array of bool, shape (n,), optional
            Whether each case has reference voxels; required with
            ``healthy="exclude"`` (a healthy case's score 0 cannot be told
            from a perfectly covered lesion's).

        Returns
        -------
        MorphologicalMargin
            self.

        Raises
        ------
        InputError
            Bad scores, groups or ``reference_present``; no case left.
        """
        s = self._scores(steps_needed)
        n = s.shape[0]
        if reference_present is None:
            if self.healthy == "exclude":
                raise InputError(
                    "healthy='exclude' needs reference_present=... (one bool per case, e.g. "
                    "reference.any()) to leave healthy cases out; or use healthy='include'."
                )
            present = np.ones(n, dtype=bool)
        else:
            present = np.asarray(reference_present)
            if present.shape != (n,) or present.dtype != np.bool_:
                raise InputError(
                    f"reference_present must be bool of shape ({n},); got {present.dtype} "
                    f"{present.shape}."
                )
        use_all = present if self.healthy == "exclude" else np.ones(n, dtype=bool)
        if not use_all.any():
            raise InputError(
                f"no usable calibration case among {n} (all healthy under healthy='exclude')."
            )
        self.group_sizes_: dict[Any, int] = {}
        self.n_healthy_: dict[Any, int] = {}
        self.reasons_: dict[Any, str] = {}
        self.k_hats_: dict[Any, float] = {}
        parts = [(None, np.arange(n))]
        if groups is not None:
            parts += group_rows(groups, n)
        for key, rows in parts:
            scores = np.sort(s[rows[use_all[rows]]])
            self.group_sizes_[key] = m = int(scores.shape[0])
            self.n_healthy_[key] = int(np.count_nonzero(~present[rows]))
            rank = conformal_rank(m, self.level)
            if rank > m:
                k, self.reasons_[key] = (
                    float("inf"),
                    (
                        f"{m} case(s); ceil((n+1)(1-alpha)) = {rank} > n, needs n >= "
                        f"{min_calibration_size(self.level)}"
                    ),
                )
            else:
                k = float(scores[rank - 1])
                if k > self.max_steps:
                    self.reasons_[key] = (
                        f"the {rank}-th smallest of {m} scores exceeds max_steps = "
                        f"{self.max_steps} (prediction empty or too far from the reference)"
                    )
                    k = float("inf")
            self.k_hats_[key] = k
        self.k_hat_ = self.k_hats_.pop(None)
        self._grouped = groups is not None
        return self

    def margins(self, n: int, *, groups: ArrayLike | None = None) -> NDArray[np.float64]:
        """The calibrated margin of each of n cases, shape (n,)."""
        if not hasattr(self, "k_hat_"):
            raise NotCalibratedError(
                "This MorphologicalMargin is not calibrated yet; call .calibrate(steps_needed) "
                "on held-out cases first."
            )
        return per_case(self.k_hats_ if self._grouped else {None: self.k_hat_}, groups, n)

    def covered(
        self, steps_needed: ArrayLike, *, groups: ArrayLike | None = None
    ) -> NDArray[np.bool_]:
        """Whether the calibrated margin covers each case's reference.

        Parameters
        ----------
        steps_needed : array of float, shape (n,)
            :func:`dilation_needed` per case.
        groups : array, shape (n,), optional
            Required when calibrated per group.

        Returns
        -------
        array of bool, shape (n,)
            ``steps_needed <= k_hat``; an infinite margin (the whole image)
            covers every case. Healthy cases (score 0) are covered.

        Raises
        ------
        NotCalibratedError
            Before :meth:`calibrate`.
        InputError
            Bad scores, missing or unseen groups.
        """
        s = self._scores(steps_needed)
        k = self.margins(s.shape[0], groups=groups)
        return np.asarray((s <= k) | np.isinf(k), dtype=np.bool_)
