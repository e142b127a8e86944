"""Sample sizes for a validation study: interval half-widths and non-inferiority power.

Every planner searches the smallest number of patients whose design (positive
and negative patients from the prevalence, ``images_per_patient`` images each,
the variance inflated by the design effect) meets the target.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from typing import Any, Literal

from scipy.special import ndtri

from medval._errors import InputError
from medval.stats._validate import check_confidence_level

__all__ = [
    "SampleSize",
    "SubgroupPlan",
    "design_effect",
    "sensitivity_sample_size",
    "specificity_sample_size",
    "subgroup_sample_size",
    "wilson_half_width",
]

_MAX_PATIENTS = 10**9
_WILSON = "Wilson (1927), JASA 22:209-212"
DESIGN_REFERENCE = (
    "Donner & Klar (2000), Cluster Randomization Trials; Obuchowski (1997), Biometrics 53:567"
)


@dataclasses.dataclass(frozen=True)
class SampleSize:
    """A planned design and what it achieves.

    Attributes
    ----------
    quantity : str
        ``"auroc"``, ``"sensitivity"``, ``"specificity"`` or
        ``"auroc-noninferiority"``.
    criterion : {"half-width", "power"}
    target, achieved : float
        The asked-for and the reached half-width (at or below the target) or
        power (at or above it) at this design.
    n_cases, n_positive, n_negative : int
        Images (cases) in all and per class.
    n_patients : int
        Patients; ``n_cases / images_per_patient``.
    images_per_patient : int
    design_effect : float
        ``1 + (images_per_patient - 1) * icc``.
    confidence_level : float
    method, reference : str
    assumptions : dict of str to float
        The assumed values the plan rests on.
    """

    quantity: str
    criterion: Literal["half-width", "power"]
    target: float
    achieved: float
    n_cases: int
    n_positive: int
    n_negative: int
    n_patients: int
    images_per_patient: int
    design_effect: float
    confidence_level: float
    method: str
    reference: str
    assumptions: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        """JSON-native form."""
        return {**dataclasses.asdict(self), "assumptions": dict(self.assumptions)}


@dataclasses.dataclass(frozen=True)
class SubgroupPlan:
    """The total size so that every subgroup reaches its own plan.

    Attributes
    ----------
    n_patients, n_cases : int
        Totals; subgroup ``g`` receives ``share[g] * n_patients`` patients.
    binding : str
        The subgroup that sets the total.
    shares : dict of str to float
    subgroups : dict of str to SampleSize
        Each subgroup's own plan.
    """

    n_patients: int
    n_cases: int
    binding: str
    shares: dict[str, float]
    subgroups: dict[str, SampleSize]

    def to_dict(self) -> dict[str, Any]:
        """JSON-native form."""
        return {
            "n_patients": self.n_patients,
            "n_cases": self.n_cases,
            "binding": self.binding,
            "shares": dict(self.shares),
            "subgroups": {k: v.to_dict() for k, v in self.subgroups.items()},
        }


def in_range(name: str, value: float, low: float = 0.0, high: float = 1.0) -> float:
    """``value`` as a float strictly inside (low, high), else an InputError naming it."""
    v = float(value)
    if not (low < v < high):
        raise InputError(f"{name}={value!r}: must lie strictly between {low:g} and {high:g}.")
    return v


def positive(name: str, value: float) -> float:
    """``value`` as a finite float > 0, else an InputError naming it."""
    v = float(value)
    if not (math.isfinite(v) and v > 0.0):
        raise InputError(f"{name}={value!r}: must be a positive number.")
    return v


def design_effect(images_per_patient: int, icc: float) -> float:
    """Variance inflation of ``m`` correlated images per patient: ``1 + (m - 1) * icc``.

    Parameters
    ----------
    images_per_patient : int
        ``m >= 1`` images per patient, all of the patient's class.
    icc : float
        Intra-patient correlation in [0, 1] of the quantity averaged: the
        correct/incorrect indicators for sensitivity and specificity, the
        images' placement values for the AUROC.

    References
    ----------
    Donner & Klar (2000), *Design and Analysis of Cluster Randomization
    Trials*, ch. 5; Obuchowski (1997), Biometrics 53:567-578.
    """
    m = int(images_per_patient)
    if m < 1 or m != images_per_patient:
        raise InputError(f"images_per_patient={images_per_patient!r}: must be an integer >= 1.")
    rho = float(icc)
    if not (0.0 <= rho <= 1.0):
        raise InputError(f"icc={icc!r}: must lie in [0, 1].")
    return 1.0 + (m - 1) * rho


def wilson_half_width(
    value: float, n: float, *, confidence_level: float = 0.95, design_effect: float = 1.0
) -> float:
    """Half-width of the Wilson interval when the observed proportion equals ``value``.

    ``z / (1 + z^2/n) * sqrt(p(1-p)/n + z^2/(4 n^2))`` with the effective
    size ``n / design_effect``.

    References
    ----------
    Wilson (1927), JASA 22:209-212.
    """
    p = in_range("value", value)
    n_eff = positive("n", n) / positive("design_effect", design_effect)
    z = float(ndtri(0.5 + check_confidence_level(confidence_level) / 2.0))
    return z / (1.0 + z * z / n_eff) * math.sqrt(p * (1.0 - p) / n_eff + z * z / (4 * n_eff**2))


def smallest_patients(ok: Callable[[int], bool], what: str) -> int:
    """Smallest k >= 2 with ``ok(k)``; ``ok`` must be monotone (it is: both class counts
    grow with k)."""
    lo, hi = 1, 2
    while not ok(hi):
        lo, hi = hi, hi * 2
        if hi > _MAX_PATIENTS:
            raise InputError(f"{what}: no design under {_MAX_PATIENTS:,} patients reaches it.")
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if ok(mid) else (mid, hi)
    return hi


def _split(k: int, prevalence: float) -> tuple[int, int]:
    """Positive and negative patients among ``k`` (at least one of each)."""
    k1 = min(max(1, round(k * prevalence)), k - 1)
    return k1, k - k1


@dataclasses.dataclass(frozen=True)
class Design:
    prevalence: float
    m: int
    deff: float
    cl: float

    def counts(self, k: int) -> tuple[int, int]:
        k1, k0 = _split(k, self.prevalence)
        return k1 * self.m, k0 * self.m

    def result(self, k: int, **fields: Any) -> SampleSize:
        n1, n0 = self.counts(k)
        return SampleSize(
            n_cases=n1 + n0,
            n_positive=n1,
            n_negative=n0,
            n_patients=k,
            images_per_patient=self.m,
            design_effect=self.deff,
            confidence_level=self.cl,
            **fields,
        )


def design_for(prevalence: float, m: int, icc: float, cl: float) -> Design:
    """The checked design every planner searches over."""
    return Design(
        in_range("prevalence", prevalence),
        int(m),
        design_effect(m, icc),
        check_confidence_level(cl),
    )


def _proportion_size(
    quantity: str, value: float, share: float, h: float, d: Design, icc: float
) -> SampleSize:
    p = in_range(quantity, value)
    h = in_range("half_width", h, 0.0, 0.5)
    positive = quantity == "sensitivity"

    def hw(k: int) -> float:
        n1, n0 = d.counts(k)
        return wilson_half_width(
            p, n1 if positive else n0, confidence_level=d.cl, design_effect=d.deff
        )

    k = smallest_patients(lambda k: hw(k) <= h, f"{quantity} half-width {h:g}")
    return d.result(
        k,
        quantity=quantity,
        criterion="half-width",
        target=h,
        achieved=hw(k),
        method="wilson" + ("-clustered" if d.m > 1 else ""),
        reference=_WILSON + (f"; {DESIGN_REFERENCE}" if d.m > 1 else ""),
        assumptions={quantity: p, "prevalence": share, "icc": float(icc)},
    )


def sensitivity_sample_size(
    sensitivity: float,
    *,
    prevalence: float,
    half_width: float,
    confidence_level: float = 0.95,
    images_per_patient: int = 1,
    icc: float = 0.0,
) -> SampleSize:
    """Smallest design whose Wilson interval for sensitivity reaches ``half_width``.

    The positives' Wilson half-width (:func:`wilson_half_width`) at the
    assumed sensitivity, with ``n_positive / design_effect`` effective cases.

    Parameters
    ----------
    sensitivity : float
        Assumed value in (0, 1).
    prevalence : float
        In (0, 1); turns the positives needed into cases.
    half_width : float
        In (0, 0.5).
    confidence_level, images_per_patient, icc
        As in :func:`auroc_sample_size`; ``icc`` of the correct/incorrect
        indicators.

    Returns
    -------
    SampleSize

    References
    ----------
    Wilson (1927), JASA 22:209-212; Donner & Klar (2000) for the design effect.
    """
    d = design_for(prevalence, images_per_patient, icc, confidence_level)
    return _proportion_size("sensitivity", sensitivity, d.prevalence, half_width, d, icc)


def specificity_sample_size(
    specificity: float,
    *,
    prevalence: float,
    half_width: float,
    confidence_level: float = 0.95,
    images_per_patient: int = 1,
    icc: float = 0.0,
) -> SampleSize:
    """Smallest design whose Wilson interval for specificity reaches ``half_width``.

    As :func:`sensitivity_sample_size` on the negatives.

    References
    ----------
    Wilson (1927), JASA 22:209-212; Donner & Klar (2000) for the design effect.
    """
    d = design_for(prevalence, images_per_patient, icc, confidence_level)
    return _proportion_size("specificity", specificity, d.prevalence, half_width, d, icc)


def subgroup_sample_size(
    plans: Mapping[str, SampleSize], shares: Mapping[str, float]
) -> SubgroupPlan:
    """Total size so that every subgroup reaches its own plan.

    Subgroup ``g`` holds ``shares[g]`` of the patients, so the total is
    ``max_g ceil(plans[g].n_patients / shares[g])``.

    Parameters
    ----------
    plans : dict of str to SampleSize
        Each subgroup's plan (its own assumed values and prevalence), all
        with the same ``images_per_patient``.
    shares : dict of str to float
        Each subgroup's share of the patients, in (0, 1]; the same keys.

    Returns
    -------
    SubgroupPlan

    References
    ----------
    Riley et al. (2020), BMJ 368:m441 (each subgroup its own precision target).
    """
    if not plans or set(plans) != set(shares):
        raise InputError(
            f"plans ({sorted(plans)}) and shares ({sorted(shares)}) must name the same, "
            "non-empty set of subgroups."
        )
    clean = {g: in_range(f"share of {g!r}", s, 0.0, 1.0 + 1e-12) for g, s in shares.items()}
    per = sorted(plans.values(), key=lambda s: s.images_per_patient)
    if per[0].images_per_patient != per[-1].images_per_patient:
        raise InputError("every subgroup plan must assume the same images_per_patient.")
    need = {g: math.ceil(plans[g].n_patients / clean[g] - 1e-9) for g in plans}
    binding = max(need, key=lambda g: need[g])
    total = need[binding]
    return SubgroupPlan(
        n_patients=total,
        n_cases=total * per[0].images_per_patient,
        binding=binding,
        shares=clean,
        subgroups=dict(plans),
    )
