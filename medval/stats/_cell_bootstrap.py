"""Bootstrap intervals of cell-table statistics, all from one set of resamples.

Resamples are drawn as counts (:mod:`medval.stats._cell_resample`): cases
as multinomial cell counts, or patients with all their cases through the
per-patient aggregate. Blocks of eight resamples draw from their own
generators, seeded in block order from ``random_state``, and run in
threads (numpy's generators and ``bincount`` and scipy's sparse products
release the GIL), so the result does not depend on ``n_jobs``. Each thread
holds one block: the patients' counts (4 bytes x 8 per patient) and the
cell counts (8 bytes x 8 x 2 per kept slot, a few times over), so the
memory stays bounded whatever the number of resamples.

Intervals are percentile (or basic) intervals of the replicates (Efron &
Tibshirani 1993, ch. 13; Davison & Hinkley 1997, sec. 5.2-5.3).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Literal

import numpy as np

from medval._errors import InputError
from medval._types import Estimate
from medval.stats._cell_resample import Units, make_scopes, replicate_values
from medval.stats._cell_stats import auroc_binning_bound, check_statistics
from medval.stats._cells import ScoreCells
from medval.stats._core import check_n_jobs, check_n_resamples
from medval.stats._validate import (
    MIN_CASES,
    FloatArray,
    check_confidence_level,
    normalise_random_state,
)

__all__ = ["CellResult", "cell_bootstrap"]

CellMethod = Literal["percentile", "basic"]
# Resamples per sparse-dense product: measured fastest with 10^6 patients.
_BLOCK = 8
_MIN_VALID_SHARE = 0.9
# Below this many drawn units (units x resamples) threads do not pay off.
_MIN_PARALLEL_WORK = 1 << 23


@dataclasses.dataclass(frozen=True)
class CellResult:
    """Statistics of a cell table with their bootstrap intervals.

    Attributes
    ----------
    estimates : mapping of str to Estimate
        One per statistic asked for.
    replicates : mapping of str to array of float, shape (n_resamples,)
        The bootstrap values behind each interval (NaN where undefined).
    auroc_binning_bound : float or None
        Upper bound on |binned AUROC - exact rank AUROC| of the sample
        (:func:`auroc_binning_bound`); None without both classes.
    n_cases, n_patients : int, int or None
        Cases and patients (with a case in this scope).
    design : str
        How resamples were drawn.
    groups : mapping of str to CellResult
        Per subgroup, with ``by_group=True`` (from the same resamples).
    """

    estimates: Mapping[str, Estimate]
    replicates: Mapping[str, FloatArray]
    auroc_binning_bound: float | None
    n_cases: int
    n_patients: int | None
    design: str
    groups: Mapping[str, CellResult] = dataclasses.field(default_factory=dict)


def _interval(
    reps: FloatArray, value: float, method: CellMethod, cl: float, bounds: tuple[float, float]
) -> tuple[float | None, float | None, str | None]:
    finite = np.isfinite(reps)
    if finite.mean() < _MIN_VALID_SHARE:
        return (
            None,
            None,
            (
                f"the statistic is undefined in {int((~finite).sum())} of {reps.size} resamples "
                "(e.g. a resample without one class); use stratify=True or more cases"
            ),
        )
    good = reps[finite]
    if np.ptp(good) == 0.0:
        return (
            None,
            None,
            (
                f"every resample gives the same value ({good[0]:.6g}); the bootstrap "
                "distribution is degenerate"
            ),
        )
    half = (1.0 - cl) / 2.0
    lo, hi = np.quantile(good, [half, 1.0 - half])
    if method == "basic":
        lo, hi = np.clip([2.0 * value - hi, 2.0 * value - lo], *bounds)
    return float(lo), float(hi), None


def _too_few(units: Units, n: int, n_patients: int | None) -> str | None:
    what = "patient" if units.clustered else "case"
    if n < MIN_CASES or (n_patients is not None and n_patients < MIN_CASES):
        count = n if n_patients is None else n_patients
        return f"only {count} {what}s; an interval needs {MIN_CASES}"
    if len(units.sizes) > 1 and min(units.sizes) < 2:
        return (
            f"a class has a single {what}, which every stratified resample repeats, so the "
            f"interval would ignore its variability; it needs at least 2 {what}s per class"
        )
    return None


def cell_bootstrap(
    cells: ScoreCells,
    statistics: str | Sequence[str] = ("auroc",),
    *,
    threshold: float | None = None,
    calibration_bins: int = 15,
    by_group: bool = False,
    clustered: bool | None = None,
    stratify: bool = True,
    n_resamples: int = 2000,
    method: CellMethod = "percentile",
    confidence_level: float = 0.95,
    random_state: int | np.random.Generator | None = None,
    n_jobs: int | None = None,
) -> CellResult:
    """Statistics of a cell table with bootstrap intervals from one set of resamples.

    Parameters
    ----------
    cells : ScoreCells
    statistics : str or sequence of str, default ("auroc",)
        Aliases from :data:`CELL_STATISTICS`: ``auroc``, ``sensitivity``,
        ``specificity``, ``ppv``, ``npv`` (need ``threshold``), ``ece``,
        ``mean_predicted``, ``observed_rate``, ``observed_expected_ratio``
        (need probabilities). All come from the same resamples.
    threshold : float, optional
        A bin edge; a case is positive when ``score >= threshold``.
    calibration_bins : int, default 15
        Equal-width calibration bins (right-closed) on [0, 1].
    by_group : bool, default False
        Also every subgroup, from the same resamples.
    clustered : bool, optional
        Resample patients with all their cases; by default whenever the
        table keeps patients.
    stratify : bool, default True
        Keep the number of positive and negative cases (with clusters:
        patients with and without a positive case) fixed in every resample.
    n_resamples : int, default 2000
        At least 100.
    method : {"percentile", "basic"}, default "percentile"
        For BCa use :func:`bootstrap_ci` on the cases.
    confidence_level : float, default 0.95
    random_state : int, Generator or None
        An int is recorded as the seed; for None a fresh one is drawn and recorded.
    n_jobs : int or None, default None
        Threads (None: every available CPU); the result does not depend on it.

    Returns
    -------
    CellResult
        ``estimates[name]`` is an :class:`Estimate` with ``method``
        ``"cell-bootstrap-<method>"`` (``"-clustered"`` appended), ``n``
        the cases, the seed and ``n_resamples``; bounds are None, with a
        reason, with fewer than 10 cases (patients), a stratum of one, or
        a statistic undefined in many resamples; ``value`` is None where
        the statistic itself is undefined.

    Raises
    ------
    InputError
        On unknown statistics or methods, ``clustered=True`` without
        patients, a missing or off-edge threshold, calibration bins that
        are not bin edges, or invalid ``n_resamples``, ``confidence_level``,
        ``random_state`` or ``n_jobs``.

    References
    ----------
    Efron & Tibshirani (1993), *An Introduction to the Bootstrap*, ch. 6 and
    13; Davison & Hinkley (1997), *Bootstrap Methods and their Application*,
    sec. 3.2 and 3.8; Field & Welsh (2007), J. R. Stat. Soc. B 69:369-390;
    Hanley & McNeil (1982), Radiology 143:29-36.
    """
    if not isinstance(cells, ScoreCells):
        raise InputError(
            f"cells must be a ScoreCells table; got {type(cells).__name__}. Build one with "
            "ScoreCells.from_arrays(...) or ScoreCells.from_parquet(...)."
        )
    stats = check_statistics(statistics)
    cl = check_confidence_level(confidence_level)
    b = check_n_resamples(n_resamples)
    if method not in ("percentile", "basic"):
        raise InputError(
            f"Unknown cell bootstrap method {method!r}; valid: percentile, basic (for BCa use "
            "bootstrap_ci on the cases)."
        )
    jobs = check_n_jobs(n_jobs)
    if clustered is None:
        clustered = cells.patients is not None
    if clustered and cells.patients is None:
        raise InputError(
            "clustered=True needs the patients: build the cells with patients= (or patient=)."
        )
    rng, seed = normalise_random_state(random_state)
    units = Units(cells, clustered=bool(clustered), stratify=stratify)
    scopes = make_scopes(
        cells, units, stats, by_group=by_group, threshold=threshold,
        calibration_bins=calibration_bins,
    )  # fmt: skip
    sizes = [min(_BLOCK, b - s) for s in range(0, b, _BLOCK)]
    seeds = rng.integers(0, 2**63 - 1, size=len(sizes), dtype=np.int64)

    def block(i: int) -> FloatArray:
        w = units.draw(np.random.default_rng(int(seeds[i])), sizes[i])
        return replicate_values(scopes, stats, w)

    workers = jobs if units.n_units * b >= _MIN_PARALLEL_WORK else 1
    if min(workers, len(sizes)) > 1:
        with ThreadPoolExecutor(max_workers=min(workers, len(sizes))) as pool:
            reps = np.concatenate(list(pool.map(block, range(len(sizes)))), axis=2)
    else:
        reps = np.concatenate([block(i) for i in range(len(sizes))], axis=2)
    label = f"cell-bootstrap-{method}" + ("-clustered" if clustered else "")
    design = _design(units, stratify)
    results = []
    for i, scope in enumerate(scopes):
        too_few = _too_few(units, scope.n, scope.n_patients)
        estimates, replicates = {}, {}
        for j, s in enumerate(stats):
            v = float(s.func(scope.point)[0])
            value = v if np.isfinite(v) else None
            low = high = None
            reason = None
            if value is None:
                reason = f"{s.name} is undefined for these cases: it {s.undefined}"
            elif too_few is not None:
                reason = too_few
            else:
                low, high, reason = _interval(reps[i, j], value, method, cl, s.bounds)
            estimates[s.name] = Estimate(
                value, low, high, confidence_level=cl, method=label, n=scope.n, seed=seed,
                n_resamples=b, reason=reason, higher_is_better=s.higher_is_better,
            )  # fmt: skip
            replicates[s.name] = reps[i, j]
        bound = auroc_binning_bound(cells, group=scope.name)
        results.append(CellResult(estimates, replicates, bound, scope.n, scope.n_patients, design))
    top = results[0]
    groups = {str(s.name): r for s, r in zip(scopes[1:], results[1:], strict=True)}
    return dataclasses.replace(top, groups=groups)


def _design(units: Units, stratify: bool) -> str:
    if units.clustered:
        text = f"patients resampled with all their cases ({units.n_units} patients)"
        return text + (", within disease status (any positive case)" if stratify else "")
    text = "cases resampled: multinomial counts over the cells"
    return text + (", within each label" if stratify else "")
