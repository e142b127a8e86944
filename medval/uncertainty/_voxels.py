"""Case-level uncertainty of a segmentation, and how well it flags a bad case.

A segmentation model gives voxel maps (predictive entropy and its epistemic
and aleatoric parts, see :func:`medval.uncertainty.decompose`). A reader
needs one number per case: the mean of each map inside the predicted
structure and in the band around its boundary, where boundary errors live
(Mehrtash et al. 2020; Jungo and Reyes 2019). Whether that number is worth
anything is a case-level question: does it rank the cases by quality
(Spearman), does it detect the bad ones (AUROC), and what does referring the
most uncertain cases buy (a referral curve with the oracle and random
references)?
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.ndimage import distance_transform_edt
from scipy.stats import spearmanr

from medval._errors import InputError
from medval.stats import auroc, check_mask, check_spacing
from medval.uncertainty._selective import _retained_sums

__all__ = ["case_referral_curve", "case_uncertainty", "failure_detection"]

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]
_DISTANCE_TOLERANCE = 1e-9
_MAPS = ("entropy", "epistemic", "aleatoric")


def _border_shell(mask: BoolArray, s: FloatArray, border_mm: float) -> BoolArray:
    """Voxels whose centre is within ``border_mm`` of a voxel across the mask boundary."""
    shell = np.zeros(mask.shape, dtype=np.bool_)
    if not mask.any() or mask.all():
        return shell  # no boundary inside the volume
    # Beyond `pad` voxels from the bounding box nothing is within border_mm of
    # the mask; the nearest outside voxel of an inside one is across a face of the box.
    pad = np.ceil(border_mm / s).astype(np.int64) + 1
    box = []
    for axis, p in enumerate(pad):
        hit = np.flatnonzero(mask.any(axis=tuple(a for a in range(mask.ndim) if a != axis)))
        box.append(slice(max(int(hit[0]) - int(p), 0), int(hit[-1]) + int(p) + 1))
    crop = tuple(box)
    m = mask[crop]
    limit = border_mm * (1.0 + _DISTANCE_TOLERANCE)
    outside = distance_transform_edt(~m, sampling=s) <= limit  # 0 on the mask itself
    inside = distance_transform_edt(m, sampling=s) <= limit  # 0 off the mask
    shell[crop] = (m & inside) | (~m & outside)
    return shell


def case_uncertainty(
    entropy: ArrayLike,
    epistemic: ArrayLike,
    aleatoric: ArrayLike,
    predicted: ArrayLike,
    spacing: Sequence[float],
    *,
    border_mm: float = 3.0,
) -> dict[str, float]:
    """Means of the voxel uncertainty maps in the predicted region, its border and the volume.

    The border shell holds the voxels within ``border_mm`` of the predicted
    mask's boundary on either side: a foreground voxel whose centre lies
    within ``border_mm`` of the centre of a background voxel, and a
    background voxel within ``border_mm`` of a foreground one (exact
    Euclidean distances with the anisotropic spacing, Maurer et al. 2003).
    With spacing (3, 1, 1) and ``border_mm=2`` the shell is two voxels deep
    in-plane on each side and does not extend across slices.

    Parameters
    ----------
    entropy, epistemic, aleatoric : array of float, shape (X, Y, Z) (any ndim)
        Voxel maps, e.g. total, epistemic (mutual information) and
        aleatoric (expected entropy) parts of :func:`decompose`.
    predicted : array of bool or 0/1, same shape
        Predicted foreground mask.
    spacing : sequence of float, length ndim
        Voxel size in mm along each array axis.
    border_mm : float, default 3.0
        Half-width of the shell; at least the smallest voxel size (below
        it the shell would hold no voxel).

    Returns
    -------
    dict of str to float
        ``{map}_region``, ``{map}_border`` and ``{map}_volume`` for each map
        in (entropy, epistemic, aleatoric); ``predicted_ml`` and
        ``border_ml`` (volumes in mL); ``empty_prediction`` and
        ``empty_border`` (1.0 or 0.0). Never NaN: with an empty prediction
        the region means are the volume means and ``empty_prediction`` is
        1.0; with no boundary inside the volume (an empty or a full mask)
        the border means are the volume means and ``empty_border`` is 1.0.
        Filter or flag those cases before ranking on them.

    Raises
    ------
    InputError
        On shapes that differ, a non-binary mask, maps that are not finite,
        a bad spacing or ``border_mm``.
    """
    pred = check_mask(predicted, name="predicted")
    s = _spacing_array(spacing, pred.ndim)
    if not np.isfinite(border_mm) or border_mm < s.min():
        raise InputError(
            f"border_mm must be a finite number >= the smallest voxel size ({s.min():g} mm); "
            f"got {border_mm!r}. A thinner shell holds no voxel centre."
        )
    maps: dict[str, NDArray[np.floating[Any]]] = {}
    for name, values in zip(_MAPS, (entropy, epistemic, aleatoric), strict=True):
        # Kept in their own precision (float16 maps stay small); means accumulate in float64.
        a = np.asarray(values)
        if not np.issubdtype(a.dtype, np.floating):
            a = a.astype(np.float64)
        if a.shape != pred.shape:
            raise InputError(
                f"{name} must have the shape of predicted {pred.shape}; got {a.shape}."
            )
        if not np.all(np.isfinite(a)):
            raise InputError(f"{name} holds NaN or infinite values; pass finite voxel maps.")
        maps[name] = a
    shell = _border_shell(pred, s, float(border_mm))
    empty_pred, empty_border = not pred.any(), not shell.any()
    voxel_ml = float(np.prod(s)) / 1000.0
    out: dict[str, float] = {}
    for name, a in maps.items():
        volume = float(a.mean(dtype=np.float64))
        out[f"{name}_region"] = volume if empty_pred else float(a[pred].mean(dtype=np.float64))
        out[f"{name}_border"] = volume if empty_border else float(a[shell].mean(dtype=np.float64))
        out[f"{name}_volume"] = volume
    out["predicted_ml"] = float(pred.sum()) * voxel_ml
    out["border_ml"] = float(shell.sum()) * voxel_ml
    out["empty_prediction"] = float(empty_pred)
    out["empty_border"] = float(empty_border)
    return out


def _case_arrays(uncertainty: ArrayLike, quality: ArrayLike) -> tuple[FloatArray, FloatArray]:
    u = np.asarray(uncertainty, dtype=np.float64)
    q = np.asarray(quality, dtype=np.float64)
    if u.ndim != 1 or u.size == 0 or q.shape != u.shape:
        raise InputError(
            "uncertainty and quality must be 1-D arrays of one value per case, of the same "
            f"length; got shapes {u.shape} and {q.shape}."
        )
    for name, a in (("uncertainty", u), ("quality", q)):
        if not np.all(np.isfinite(a)):
            i = int(np.flatnonzero(~np.isfinite(a))[0])
            raise InputError(
                f"{name} is not finite at case {i} ({float(a[i])!r}); give every case a value "
                "(e.g. Dice 1.0 when both masks are empty) or drop the case."
            )
    return u, q


def failure_detection(
    uncertainty: ArrayLike, quality: ArrayLike, *, bad_below: float = 0.5
) -> dict[str, float | int | str | None]:
    """How well a case-level uncertainty ranks cases by quality and flags the bad ones.

    Spearman's rank correlation of uncertainty against quality (expected
    negative: more uncertain, worse), with its two-sided p value (t
    approximation, :func:`scipy.stats.spearmanr`), and the AUROC of the
    uncertainty for detecting a bad case, ``quality < bad_below`` (ties
    count 1/2; Hanley and McNeil 1982), as in the failure-detection
    evaluation of Jungo and Reyes (2019) and Mehrtash et al. (2020).

    Parameters
    ----------
    uncertainty : array of float, shape (n,)
        One value per case, higher means less certain (e.g. the
        ``entropy_border`` of :func:`case_uncertainty`).
    quality : array of float, shape (n,)
        Higher is better (Dice, NSD). Negate distances (HD95) first.
    bad_below : float, default 0.5
        A case is bad when ``quality < bad_below``.

    Returns
    -------
    dict
        ``spearman_rho``, ``spearman_p`` (None with ``spearman_reason``
        when the uncertainty or the quality is constant), ``auroc`` (None
        with ``auroc_reason`` when no case or every case is bad; 0.5 is
        uninformative, higher is better), ``n_bad``, ``n``, ``bad_below``.
        Never NaN.

    Raises
    ------
    InputError
        On arrays of different lengths, fewer than 3 cases, non-finite
        values or a non-finite ``bad_below``.
    """
    u, q = _case_arrays(uncertainty, quality)
    if u.size < 3:
        raise InputError(
            f"failure detection needs at least 3 cases for a rank correlation; got {u.size}."
        )
    if not np.isfinite(bad_below):
        raise InputError(f"bad_below must be a finite quality value; got {bad_below!r}.")
    rho: float | None = None
    p_value: float | None = None
    constant = [name for name, a in (("uncertainty", u), ("quality", q)) if np.all(a == a[0])]
    rho_reason: str | None = None
    if constant:
        rho_reason = f"{' and '.join(constant)} is constant over the {u.size} cases"
    else:
        result = spearmanr(u, q)
        rho, p_value = float(result.statistic), float(result.pvalue)
    bad = q < bad_below
    n_bad = int(bad.sum())
    auc: float | None = None
    auc_reason: str | None = None
    if n_bad in (0, u.size):
        auc_reason = (
            f"{'no' if n_bad == 0 else 'every'} case of {u.size} has quality below "
            f"{bad_below:g}; the AUROC needs bad and good cases"
        )
    else:
        auc = auroc(bad.astype(np.int64), u)
    return {
        "spearman_rho": rho,
        "spearman_p": p_value,
        "spearman_reason": rho_reason,
        "auroc": auc,
        "auroc_reason": auc_reason,
        "n_bad": n_bad,
        "n": int(u.size),
        "bad_below": float(bad_below),
    }


def case_referral_curve(
    uncertainty: ArrayLike,
    quality: ArrayLike,
    *,
    fractions: Sequence[float] | None = None,
) -> list[dict[str, float]]:
    """Mean quality of the kept cases as the most uncertain cases are referred.

    The referral curve of Leibig et al. (2017) at case level, for a
    continuous quality: refer the ``floor(f n)`` most uncertain cases and
    average the quality of the others. Cases of equal uncertainty are
    referred in their input order (stable sort), so the curve is
    deterministic. Two reference columns show what the ranking buys: the
    oracle refers the worst cases first (the best any ranking can do), and
    random referral keeps, in expectation, the overall mean.

    Parameters
    ----------
    uncertainty : array of float, shape (n,)
        Higher means less certain.
    quality : array of float, shape (n,)
        Higher is better (Dice, NSD).
    fractions : sequence of float in [0, 1), optional
        Requested referral fractions; default 0, 0.05, ..., 0.9.

    Returns
    -------
    list of dict
        One row per fraction: ``fraction`` (requested),
        ``referred_fraction`` (``n_referred / n``), ``n_referred``,
        ``n_kept``, ``mean_quality`` (kept cases, this ranking),
        ``oracle_mean_quality`` and ``random_mean_quality``.

    Raises
    ------
    InputError
        On arrays of different lengths or non-finite values, or fractions
        outside [0, 1).
    """
    u, q = _case_arrays(uncertainty, quality)
    f = np.arange(0.0, 0.95, 0.05) if fractions is None else np.asarray(fractions, dtype=float)
    if f.ndim != 1 or f.size == 0 or not np.all((f >= 0.0) & (f < 1.0)):
        raise InputError(
            f"fractions must be a non-empty sequence of numbers in [0, 1); got {f.tolist()}."
        )
    n = u.size
    referred = np.minimum(np.floor(f * n + 1e-9), n - 1).astype(np.intp)
    kept = n - referred
    model = _retained_sums(q, np.argsort(-u, kind="stable"), referred) / kept
    oracle = _retained_sums(q, np.argsort(q, kind="stable"), referred) / kept
    overall = float(q.mean())
    return [
        {
            "fraction": float(f[i]),
            "referred_fraction": float(referred[i] / n),
            "n_referred": int(referred[i]),
            "n_kept": int(kept[i]),
            "mean_quality": float(model[i]),
            "oracle_mean_quality": float(oracle[i]),
            "random_mean_quality": overall,
        }
        for i in range(f.size)
    ]


def _spacing_array(spacing: Sequence[float], ndim: int) -> FloatArray:
    return np.asarray(check_spacing(spacing, ndim), dtype=np.float64)
