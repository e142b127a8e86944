"""Splits without hand work: a seeded, patient-level, label-stratified assignment.

When the labels carry no ``split`` column, the cases are split into
``calibration`` (threshold, temperature and conformal quantile are fitted
there) and ``internal`` (the test split) by patient: every image of a patient
lands on one side, patients are stratified by their label (positive when any
of their images is), and the draw is seeded. Cases whose cohort column takes
a declared value (``external = {"manufacturer": ["Philips"]}``) form the
``external`` split, whole patients at a time. The rule is recorded in
``CohortData.split_rule`` and in the result.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from medval._errors import DataError, SpecError

__all__ = ["DEFAULT_CALIBRATION_FRACTION", "assign_splits", "has_splits"]

#: Share of (non-external) patients put in the calibration split by default.
DEFAULT_CALIBRATION_FRACTION = 0.3


def has_splits(cohort: Any) -> bool:
    """Whether the cohort's split column was given (not the ``"all"`` placeholder)."""
    return "split" in cohort.columns and set(cohort["split"].astype(str)) != {"all"}


def _patients(cohort: Any) -> np.ndarray:
    if "patient_key" in cohort.columns and not cohort["patient_key"].isna().any():
        return np.asarray(cohort["patient_key"].astype(str))
    return np.asarray(cohort.index.astype(str))  # one case per patient when unknown


def assign_splits(
    data: Any,
    *,
    calibration_fraction: float = DEFAULT_CALIBRATION_FRACTION,
    seed: int = 0,
    external: Mapping[str, Sequence[str]] | None = None,
    positive_class: int | None = 1,
) -> Any:
    """The CohortData with a ``split`` column assigned by rule (see the module doc).

    Parameters
    ----------
    data : io.CohortData
        Its cohort must not carry splits already.
    calibration_fraction : float in (0, 1), default 0.3
        Share of the non-external patients put in ``calibration``, per label
        stratum (rounded, at least one patient per stratum on each side when
        the stratum has two or more).
    seed : int, default 0
    external : mapping of column to values, optional
        Cases whose column takes one of the values form ``external``; a
        patient with any such case goes there whole.
    positive_class : int or None, default 1
        The class a patient is stratified by (positive when any image is);
        None for numeric labels (a regression target): no stratification.

    Raises
    ------
    SpecError
        A fraction outside (0, 1), an external column the cohort lacks, a
        value no case takes, or a cohort that already has splits.
    DataError
        When a split would be empty.
    """
    cohort = data.cohort
    if has_splits(cohort):
        raise SpecError(
            "the labels already assign splits (a 'split' column); remove [splits] from the "
            "spec, or the split column from the labels, to have medval assign them."
        )
    if isinstance(calibration_fraction, bool) or not 0.0 < float(calibration_fraction) < 1.0:
        raise SpecError(
            f"splits.calibration_fraction must be in (0, 1); got {calibration_fraction!r}."
        )
    patients = _patients(cohort)
    # Patients by first appearance, so the draw does not depend on the salt.
    _, first, codes = np.unique(patients, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    codes = rank[codes.ravel()]
    n_patients = order.size
    is_external = np.zeros(n_patients, dtype=bool)
    rule_external = ""
    for column, values in (external or {}).items():
        if column not in cohort.columns:
            raise SpecError(
                f"splits.external names column {column!r}, which the cohort lacks; "
                f"columns: {sorted(map(str, cohort.columns))}."
            )
        wanted = [str(v) for v in values]
        hit = cohort[column].astype(str).isin(wanted).to_numpy()
        missing = sorted(set(wanted) - set(cohort[column].astype(str)))
        if missing:
            seen = sorted(set(cohort[column].dropna().astype(str)))
            raise SpecError(
                f"splits.external.{column} lists {missing}, which no case has; values in the "
                f"cohort: {seen[:10]}."
            )
        np.logical_or.at(is_external, codes[hit], True)
        rule_external += f"; 'external': {column} in {wanted} (whole patients)"
    positive = np.zeros(n_patients, dtype=bool)
    np.logical_or.at(positive, codes, cohort["label"].to_numpy() == positive_class)
    rng = np.random.default_rng([int(seed), 11])
    to_calibration = np.zeros(n_patients, dtype=bool)
    for stratum in (False, True):
        members = np.flatnonzero((positive == stratum) & ~is_external)
        if members.size == 0:
            continue
        k = round(calibration_fraction * members.size)
        if members.size >= 2:
            k = min(max(k, 1), members.size - 1)
        to_calibration[rng.permutation(members)[:k]] = True
    names = np.where(is_external, "external", np.where(to_calibration, "calibration", "internal"))
    split = names[codes]
    for needed in ("calibration", "internal"):
        if not (split == needed).any():
            raise DataError(
                f"the automatic split left '{needed}' empty ({n_patients} patients, "
                f"{int(is_external.sum())} external); add cases or change "
                "splits.calibration_fraction / splits.external."
            )
    new = cohort.copy()
    new["split"] = split.astype(str)
    rule = (
        f"automatic: patient-level, stratified by label; {calibration_fraction:.0%} of the "
        f"patients to 'calibration', the rest to 'internal' (seed {int(seed)}){rule_external}"
    )
    return dataclasses.replace(data, cohort=new, split_rule=rule)
