"""FROC analysis and lesion-level summaries over a list of per-case lesion results.

Everything here is a pure function of a sequence of :class:`LesionScores`
(one per scan), vectorised with one sort of the pooled scores, so a caller
can bootstrap it by resampling cases or patients.

Definitions (following the LUNA16 evaluation, Setio et al. 2017, and its
script ``noduleCADEvaluationLUNA16.py``):

- operating points: one per distinct predicted-lesion score t, in decreasing
  order. A reference lesion is detected at t when its matched predicted
  lesion scores >= t; an unmatched predicted lesion scoring >= t is a false
  positive. Sensitivity divides by all reference lesions (missed ones
  included), FP per scan by the number of scans (healthy scans included).
- the FROC curve is the polyline from (0, 0) through the operating points
  in order; the sensitivity at an FP rate is read off it by linear
  interpolation (LUNA16: ``numpy.interp(fps_itp, fps, sens)``). Where the
  curve is vertical at the rate (several lesions enter at one FP count) the
  top of the step is read; beyond the last point the last sensitivity holds.
- the score is the mean sensitivity at 1/8, 1/4, 1/2, 1, 2, 4 and 8 FP per
  scan (the LUNA16 competition performance metric; ANODE09, van Ginneken et
  al. 2010).

References
----------
Setio, A. A. A. et al. (2017). Validation, comparison, and combination of
algorithms for automatic detection of pulmonary nodules in computed
tomography images: the LUNA16 challenge. Medical Image Analysis 42, 1-13.
van Ginneken, B. et al. (2010). Comparing and combining algorithms for
computer-aided detection of pulmonary nodules in computed tomography scans:
the ANODE09 study. Medical Image Analysis 14, 707-722.
Chakraborty, D. P. (1989). Maximum likelihood analysis of free-response
receiver operating characteristic (FROC) data. Medical Physics 16, 561-568.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from medval._errors import InputError
from medval.segmentation._lesions import LesionScores

__all__ = ["FP_RATES", "Froc", "detection_by_size", "froc", "froc_score", "lesion_summary"]

#: FP-per-scan rates of the LUNA16 / ANODE09 competition score.
FP_RATES: tuple[float, ...] = (0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)

FloatArray = NDArray[np.float64]


@dataclasses.dataclass(frozen=True, eq=False)
class Froc:
    """A free-response ROC curve and its competition score.

    Attributes
    ----------
    thresholds : array of float, shape (t,)
        Distinct predicted-lesion scores, decreasing.
    sensitivity : array of float, shape (t,)
        Lesion sensitivity at each threshold (non-decreasing).
    fp_per_scan : array of float, shape (t,)
        False-positive lesions per scan at each threshold (non-decreasing).
    fp_rates : array of float, shape (r,)
        The FP-per-scan rates read off.
    sensitivity_at : array of float, shape (r,)
        Sensitivity at ``fp_rates`` (linear interpolation, see the module doc).
    score : float
        Mean of ``sensitivity_at``.
    n_scans, n_lesions : int
        Number of cases and of reference lesions.
    """

    thresholds: FloatArray
    sensitivity: FloatArray
    fp_per_scan: FloatArray
    fp_rates: FloatArray
    sensitivity_at: FloatArray
    score: float
    n_scans: int
    n_lesions: int


def _check_cases(cases: Sequence[LesionScores]) -> list[LesionScores]:
    items = list(cases)
    if not items:
        raise InputError("cases is empty; give one LesionScores per scan.")
    for i, c in enumerate(items):
        if not isinstance(c, LesionScores):
            raise InputError(
                f"cases[{i}] must be a LesionScores (from lesion_scores); got {type(c).__name__}."
            )
    return items


def _check_rates(fp_rates: Sequence[float]) -> FloatArray:
    r = np.asarray(fp_rates, dtype=np.float64)
    if r.ndim != 1 or r.size == 0 or not np.all(np.isfinite(r) & (r > 0.0)):
        raise InputError(
            f"fp_rates must be a non-empty list of positive FP-per-scan rates; got {fp_rates!r}."
        )
    return r


def _read_off(fps: FloatArray, sens: FloatArray, rates: FloatArray) -> FloatArray:
    """Sensitivity at each rate on the polyline (0, 0) -> (fps[i], sens[i]) (numpy.interp rule)."""
    x = np.concatenate(([0.0], fps))
    y = np.concatenate(([0.0], sens))
    # The last point at or left of the rate (the top of a vertical step) ...
    j = np.searchsorted(x, rates, side="right") - 1
    out = y[j].copy()
    # ... joined linearly to the next point, whose FP rate is then strictly larger.
    inner = j < x.size - 1
    jj = j[inner]
    out[inner] += (y[jj + 1] - y[jj]) * (rates[inner] - x[jj]) / (x[jj + 1] - x[jj])
    return out


def froc(cases: Sequence[LesionScores], *, fp_rates: Sequence[float] = FP_RATES) -> Froc:
    """FROC curve and competition score of a set of scans.

    Parameters
    ----------
    cases : sequence of LesionScores
        One per scan; scans without reference lesions add scans and false
        positives only.
    fp_rates : sequence of float, default :data:`FP_RATES`
        FP-per-scan rates at which the sensitivity is read (positive).

    Returns
    -------
    Froc

    Raises
    ------
    InputError
        If ``cases`` is empty or holds something else than LesionScores, no
        case has a reference lesion (sensitivity undefined), or ``fp_rates``
        are not positive.

    Notes
    -----
    Follows the LUNA16 evaluation (Setio et al. 2017), module docstring.
    Unlike LUNA16, a second predicted lesion on an already detected lesion is
    not ignored: the matching is one-to-one, so it is a false positive.
    """
    items = _check_cases(cases)
    rates = _check_rates(fp_rates)
    n_scans = len(items)
    n_lesions = sum(c.n_reference for c in items)
    if n_lesions == 0:
        raise InputError(
            f"none of the {n_scans} scans has a reference lesion, so lesion sensitivity (and the "
            "FROC) is undefined; include scans with lesions (fp_per_scan is in lesion_summary)."
        )
    tp = np.concatenate([c.reference_scores[c.reference_detected] for c in items])
    fp = np.concatenate([c.predicted_scores[~c.predicted_matched] for c in items])
    scores = np.concatenate([tp, fp])
    is_tp = np.concatenate([np.ones(tp.size, dtype=bool), np.zeros(fp.size, dtype=bool)])
    order = np.argsort(-scores, kind="stable")
    s, hit = scores[order], is_tp[order]
    # The last index of each run of equal scores closes that operating point.
    last = np.flatnonzero(np.append(s[1:] != s[:-1], s.size > 0))
    n_tp = np.cumsum(hit)[last].astype(np.float64)
    n_fp = np.cumsum(~hit)[last].astype(np.float64)
    sens = n_tp / n_lesions
    fps = n_fp / n_scans
    at = _read_off(fps, sens, rates)
    return Froc(
        thresholds=s[last].astype(np.float64),
        sensitivity=sens,
        fp_per_scan=fps,
        fp_rates=rates,
        sensitivity_at=at,
        score=float(at.mean()),
        n_scans=n_scans,
        n_lesions=n_lesions,
    )


def froc_score(cases: Sequence[LesionScores], *, fp_rates: Sequence[float] = FP_RATES) -> float:
    """Mean sensitivity at ``fp_rates`` (the LUNA16 competition score); see :func:`froc`."""
    return froc(cases, fp_rates=fp_rates).score


def _band_labels(edges: FloatArray) -> list[str]:
    if edges.size == 0:
        return ["all"]
    labels = [f"<{edges[0]:g} ml"]
    labels += [f"{lo:g}\u2013{hi:g} ml" for lo, hi in itertools.pairwise(edges)]
    return [*labels, f"\u2265{edges[-1]:g} ml"]


def detection_by_size(
    cases: Sequence[LesionScores], *, bands_ml: Sequence[float]
) -> list[dict[str, float | int | str]]:
    """Lesion sensitivity per reference-lesion size band.

    Parameters
    ----------
    cases : sequence of LesionScores
    bands_ml : sequence of float
        Increasing positive band edges in ml; edges (e1, ..., en) give the
        bands ``< e1``, ``[e1, e2)``, ..., ``>= en``.

    Returns
    -------
    list of dict
        One row per band, in order: ``band`` (label such as ``"0.1\u20131 ml"``, an en dash),
        ``low_ml`` and ``high_ml`` (the band edges, 0 and inf at the ends),
        ``n_lesions``, ``n_detected`` (matched at the segmentation threshold)
        and ``sensitivity`` (NaN for a band without lesions).

    Raises
    ------
    InputError
        If ``cases`` is empty or the edges are not increasing positive numbers.
    """
    items = _check_cases(cases)
    edges = np.asarray(bands_ml, dtype=np.float64)
    if (
        edges.ndim != 1
        or not np.all(np.isfinite(edges) & (edges > 0.0))
        or np.any(np.diff(edges) <= 0.0)
    ):
        raise InputError(
            f"bands_ml must be increasing positive band edges in ml, e.g. (0.1, 1.0); "
            f"got {bands_ml!r}."
        )
    sizes = np.concatenate([c.reference_sizes_ml for c in items])
    detected = np.concatenate([c.reference_detected for c in items])
    band = np.searchsorted(edges, sizes, side="right")
    n = np.bincount(band, minlength=edges.size + 1)
    hits = np.bincount(band, weights=detected, minlength=edges.size + 1)
    bounds = np.concatenate(([0.0], edges, [math.inf]))
    rows: list[dict[str, float | int | str]] = []
    for i, label in enumerate(_band_labels(edges)):
        rows.append(
            {
                "band": label,
                "low_ml": float(bounds[i]),
                "high_ml": float(bounds[i + 1]),
                "n_lesions": int(n[i]),
                "n_detected": int(hits[i]),
                "sensitivity": float(hits[i] / n[i]) if n[i] else math.nan,
            }
        )
    return rows


def lesion_summary(cases: Sequence[LesionScores]) -> dict[str, float]:
    """Lesion-level detection at the segmentation threshold, pooled over scans.

    Returns
    -------
    dict
        ``lesion_sensitivity`` (detected / reference lesions), ``fp_per_scan``
        (unmatched predicted lesions / scans), ``mean_lesion_dice`` (mean
        per-lesion Dice over reference lesions, misses counting 0),
        ``n_lesions``, ``n_scans``, ``n_fp``. Sensitivity and Dice are NaN
        when no scan has a reference lesion.

    Raises
    ------
    InputError
        If ``cases`` is empty or holds something else than LesionScores.
    """
    items = _check_cases(cases)
    n_lesions = sum(c.n_reference for c in items)
    n_detected = sum(int(c.reference_detected.sum()) for c in items)
    n_fp = sum(int((~c.predicted_matched).sum()) for c in items)
    dice_sum = sum(float(c.reference_dice.sum()) for c in items)
    return {
        "lesion_sensitivity": n_detected / n_lesions if n_lesions else math.nan,
        "fp_per_scan": n_fp / len(items),
        "mean_lesion_dice": dice_sum / n_lesions if n_lesions else math.nan,
        "n_lesions": n_lesions,
        "n_scans": len(items),
        "n_fp": n_fp,
    }
