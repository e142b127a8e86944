"""Sample sizes for the AUROC: its interval half-width and paired non-inferiority power."""

from __future__ import annotations

import dataclasses
import math
from typing import Literal

from scipy.special import ndtr, ndtri, owens_t

from medval._errors import InputError
from medval.stats._sample_size import (
    DESIGN_REFERENCE,
    SampleSize,
    design_for,
    in_range,
    positive,
    smallest_patients,
)

__all__ = [
    "auroc_sample_size",
    "auroc_variance",
    "noninferiority_power",
    "noninferiority_sample_size",
]

AurocMethod = Literal["hanley-mcneil", "binormal"]
_AUROC_METHODS = ("hanley-mcneil", "binormal")
_HM = "Hanley & McNeil (1982), Radiology 143:29-36"
_BINORMAL = "exact U-statistic variance under the equal-variance binormal model (Bamber 1975)"
_NI = "Obuchowski & McClish (1997), Stat Med 16:1529-1542; Hanley & McNeil (1983), Radiology 148"


def _bvn_equal(h: float, rho: float) -> float:
    """P(Z1 < h, Z2 < h) for standard normals with correlation ``rho`` (Owen 1956)."""
    return float(ndtr(h) - 2.0 * owens_t(h, math.sqrt((1.0 - rho) / (1.0 + rho))))


def auroc_variance(
    auroc: float, n_positive: float, n_negative: float, *, method: AurocMethod = "binormal"
) -> float:
    """Variance of the empirical AUROC with ``n_positive`` and ``n_negative`` cases.

    ``[A(1-A) + (n1-1)(Q1-A^2) + (n0-1)(Q2-A^2)] / (n1 n0)``, with
    ``Q1 = A/(2-A)``, ``Q2 = 2A^2/(1+A)`` (``"hanley-mcneil"``, exponential
    scores) or ``Q1 = Q2 = P(Z1 < d, Z2 < d)``, ``d = Phi^-1(A)``, ``corr 1/2``
    (``"binormal"``, equal-variance normal scores: exact for that model).

    Parameters
    ----------
    auroc : float
        In (0, 1).
    n_positive, n_negative : float
        Case counts (> 0; non-integer allowed).
    method : {"binormal", "hanley-mcneil"}

    Returns
    -------
    float

    References
    ----------
    Hanley & McNeil (1982), Radiology 143:29-36; Bamber (1975), J Math
    Psychol 12:387-415.
    """
    a = in_range("auroc", auroc)
    n1, n0 = positive("n_positive", n_positive), positive("n_negative", n_negative)
    if method == "hanley-mcneil":
        q1, q2 = a / (2.0 - a), 2.0 * a * a / (1.0 + a)
    elif method == "binormal":
        q1 = q2 = _bvn_equal(float(ndtri(a)), 0.5)
    else:
        raise InputError(f"method={method!r}: valid methods are {', '.join(_AUROC_METHODS)}.")
    return (a * (1.0 - a) + (n1 - 1.0) * (q1 - a * a) + (n0 - 1.0) * (q2 - a * a)) / (n1 * n0)


def auroc_sample_size(
    auroc: float,
    *,
    prevalence: float,
    half_width: float,
    confidence_level: float = 0.95,
    images_per_patient: int = 1,
    icc: float = 0.0,
    method: AurocMethod = "binormal",
) -> SampleSize:
    """Smallest design whose Wald AUROC interval reaches ``half_width``.

    Half-width ``z * sqrt(design_effect * Var(A))`` with :func:`auroc_variance`.

    Parameters
    ----------
    auroc : float
        Assumed AUROC in (0.5, 1).
    prevalence : float
        Share of positive patients, in (0, 1).
    half_width : float
        Target half-width, in (0, 0.5).
    confidence_level : float, default 0.95
    images_per_patient : int, default 1
    icc : float, default 0
        Intra-patient correlation of the placement values (see
        :func:`design_effect`).
    method : {"binormal", "hanley-mcneil"}

    Returns
    -------
    SampleSize

    References
    ----------
    Hanley & McNeil (1982), Radiology 143:29-36; Obuchowski (1997),
    Biometrics 53:567-578 (clustered data).
    """
    a = in_range("auroc", auroc, 0.5)
    h = in_range("half_width", half_width, 0.0, 0.5)
    d = design_for(prevalence, images_per_patient, icc, confidence_level)
    z = float(ndtri(0.5 + d.cl / 2.0))

    def hw(k: int) -> float:
        return z * math.sqrt(d.deff * auroc_variance(a, *d.counts(k), method=method))

    k = smallest_patients(lambda k: hw(k) <= h, f"AUROC half-width {h:g}")
    ref = _HM if method == "hanley-mcneil" else _BINORMAL
    ref += f"; {DESIGN_REFERENCE}" if d.m > 1 else ""
    return d.result(
        k,
        quantity="auroc",
        criterion="half-width",
        target=h,
        achieved=hw(k),
        method=f"wald-{method}",
        reference=ref,
        assumptions={"auroc": a, "prevalence": d.prevalence, "icc": float(icc)},
    )


@dataclasses.dataclass(frozen=True)
class _Paired:
    auroc: float
    difference: float
    margin: float
    correlation: float
    method: AurocMethod

    def power(self, n1: float, n0: float, deff: float, cl: float) -> float:
        v_base = auroc_variance(self.auroc, n1, n0, method=self.method)
        v_new = auroc_variance(self.auroc + self.difference, n1, n0, method=self.method)
        var = deff * (v_base + v_new - 2.0 * self.correlation * math.sqrt(v_base * v_new))
        z = float(ndtri(0.5 + cl / 2.0))
        return float(ndtr((self.difference + self.margin) / math.sqrt(max(var, 1e-300)) - z))


def _paired(
    auroc: float, margin: float, difference: float, correlation: float, method: AurocMethod
) -> _Paired:
    a = in_range("auroc", auroc, 0.5)
    delta = in_range("margin", margin, 0.0, 0.5)
    in_range("auroc + difference", a + float(difference), 0.5)
    if not (float(difference) + delta > 0.0):
        raise InputError(
            f"difference={difference!r} with margin={margin!r}: the candidate must be better "
            "than baseline - margin (difference > -margin) for any power to be reached."
        )
    r = float(correlation)
    if not (-1.0 < r < 1.0):
        raise InputError(f"correlation={correlation!r}: must lie strictly between -1 and 1.")
    return _Paired(a, float(difference), delta, r, method)


def noninferiority_power(
    auroc: float,
    n_patients: int,
    *,
    prevalence: float,
    margin: float,
    difference: float = 0.0,
    correlation: float = 0.5,
    confidence_level: float = 0.95,
    images_per_patient: int = 1,
    icc: float = 0.0,
    method: AurocMethod = "binormal",
) -> float:
    """Power of the paired AUROC non-inferiority verdict with ``n_patients`` patients.

    The verdict is medval's (:func:`medval.stats.compare`): non-inferior when
    the two-sided ``confidence_level`` interval of candidate minus baseline
    lies above ``-margin``, a one-sided test at ``(1 - confidence_level)/2``.
    ``power = Phi((difference + margin) / sd - z)``,
    ``sd^2 = design_effect * (V_b + V_c - 2 r sqrt(V_b V_c))``.

    Parameters
    ----------
    auroc : float
        Baseline AUROC in (0.5, 1); the candidate's is ``auroc + difference``.
    n_patients : int
        Patients (positive and negative from ``prevalence``).
    prevalence : float
    margin : float
        Non-inferiority margin, in (0, 0.5).
    difference : float, default 0
        Assumed true candidate minus baseline (> -margin).
    correlation : float, default 0.5
        Correlation between the two AUROC estimates on the same cases.
    confidence_level, images_per_patient, icc, method
        As in :func:`auroc_sample_size`.

    Returns
    -------
    float

    References
    ----------
    Obuchowski & McClish (1997), Stat Med 16:1529-1542; Hanley & McNeil
    (1983), Radiology 148:839-843 (correlated AUROCs).
    """
    pair = _paired(auroc, margin, difference, correlation, method)
    d = design_for(prevalence, images_per_patient, icc, confidence_level)
    k = int(n_patients)
    if k < 2 or k != n_patients:
        raise InputError(f"n_patients={n_patients!r}: must be an integer >= 2.")
    return pair.power(*d.counts(k), d.deff, d.cl)


def noninferiority_sample_size(
    auroc: float,
    *,
    prevalence: float,
    margin: float,
    power: float = 0.8,
    difference: float = 0.0,
    correlation: float = 0.5,
    confidence_level: float = 0.95,
    images_per_patient: int = 1,
    icc: float = 0.0,
    method: AurocMethod = "binormal",
) -> SampleSize:
    """Smallest design whose non-inferiority verdict has ``power``.

    See :func:`noninferiority_power` for the test and the parameters.

    References
    ----------
    Obuchowski & McClish (1997), Stat Med 16:1529-1542; Hanley & McNeil
    (1983), Radiology 148:839-843.
    """
    pair = _paired(auroc, margin, difference, correlation, method)
    target = in_range("power", power)
    d = design_for(prevalence, images_per_patient, icc, confidence_level)

    def pw(k: int) -> float:
        return pair.power(*d.counts(k), d.deff, d.cl)

    k = smallest_patients(lambda k: pw(k) >= target, f"power {target:g}")
    return d.result(
        k,
        quantity="auroc-noninferiority",
        criterion="power",
        target=target,
        achieved=pw(k),
        method=f"wald-paired-{method}",
        reference=_NI + (f"; {DESIGN_REFERENCE}" if d.m > 1 else ""),
        assumptions={
            "auroc": pair.auroc,
            "difference": pair.difference,
            "margin": pair.margin,
            "correlation": pair.correlation,
            "prevalence": d.prevalence,
            "icc": float(icc),
        },
    )
