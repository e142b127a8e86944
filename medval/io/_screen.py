"""Every image decoded once before the model: a file that fails is excluded, the run goes on.

The header scan (:func:`medval.io.read_dicom_cohort`) excludes what the
bytes show without decoding. Some files pass it and still cannot be decoded
(a corrupt JPEG or RLE stream, BitsStored above BitsAllocated). Before the
model, :func:`decode_check` takes every item of the dataset the model will
see (decode and preprocessing) once; :func:`exclude_cases` moves the cases
that failed from the cohort to its exclusions, each with a reason that
names its error class and no path; :func:`check_excluded_fraction` stops
the run when so many labelled files are unusable that the cohort itself is
probably wrong.

Why a pass before the model rather than catching failures inside it: the
cohort is then fixed before any pixel reaches the model, so the input
statistics, every ensemble member, MC-dropout sample and test-time
augmentation, the baseline model and the pixel-duplicate check all see the
same cases, and :func:`medval.inference.predict` keeps its contract (one
prediction per dataset item, in order). The cost is one extra decode per
evaluated file (about 2 ms for a 64 x 64 CT file, 1.8 s for the 779 files
of the demo cohort; ``benchmarks/bench_dicom.py``).
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Mapping
from typing import Any

from medval._errors import DataError, InputError
from medval.io._dicom import Exclusion
from medval.io._labels import CohortData

__all__ = [
    "MAX_EXCLUDED_FRACTION",
    "check_excluded_fraction",
    "decode_check",
    "exclude_cases",
    "excluded_share",
]

#: Default ``max_excluded_fraction``: above half of the labelled files unusable, stop.
MAX_EXCLUDED_FRACTION = 0.5
_SHOW = 3


def decode_check(dataset: Any, *, progress: bool = False) -> dict[str, str]:
    """Take every item of a :class:`~medval.io.DicomDataset` once; the ones that fail.

    Parameters
    ----------
    dataset : DicomDataset
        The dataset the model will run over (same files, same pipeline).
    progress : bool, default False
        Show a tqdm progress bar on stderr.

    Returns
    -------
    dict of str to str
        case id -> exclusion reason (``"cannot be decoded: RuntimeError:
        ..."``, ``"cannot be read: PermissionError (errno 13)"``, ``"cannot
        be preprocessed: ..."``), for each item that raised; in dataset
        order. No reason holds a path.
    """
    from medval.io._dataset import ImageError

    indices: Any = range(len(dataset))
    if progress:
        tqdm = importlib.import_module("tqdm.auto").tqdm
        indices = tqdm(indices, desc="Decoding images", unit="file")
    failed: dict[str, str] = {}
    for i in indices:
        try:
            dataset[i]
        except ImageError as exc:
            failed[str(dataset.case_ids[i])] = exc.reason
    return failed


def exclude_cases(data: CohortData, reasons: Mapping[str, str]) -> CohortData:
    """``data`` with the ``reasons`` cases moved from the cohort to the exclusions.

    Parameters
    ----------
    data : CohortData
        Image rows (before :func:`medval.io.aggregate_units`).
    reasons : mapping of str to str
        case id -> exclusion reason (from :func:`decode_check`).

    Returns
    -------
    CohortData
        Without those rows, paths and files (a unit keeps its other
        images); each becomes an :class:`Exclusion` of its relative path,
        with its case id. Exclusions stay in path order. ``deid_summary``
        still counts the files as scanned.

    Raises
    ------
    InputError
        If a case id is not in the cohort, or the cohort is aggregated.
    """
    if not reasons:
        return data
    if data.aggregation is not None:
        raise InputError("exclude_cases takes image rows; call it before aggregate_units.")
    unknown = [c for c in reasons if c not in data.cohort.index]
    if unknown:
        raise InputError(f"case ids not in the cohort: {unknown[:_SHOW]}.")
    dropped = set(reasons)
    added = [Exclusion(data.files.get(c, c), reason, c) for c, reason in reasons.items()]
    return dataclasses.replace(
        data,
        cohort=data.cohort.drop(index=list(reasons)),
        paths={c: p for c, p in data.paths.items() if c not in dropped},
        files={c: f for c, f in data.files.items() if c not in dropped},
        unit_of={c: u for c, u in data.unit_of.items() if c not in dropped},
        exclusions=tuple(sorted([*data.exclusions, *added], key=lambda e: e.file)),
    )


def excluded_share(data: CohortData) -> tuple[int, int]:
    """(labelled files excluded, labelled files): the share :func:`check_excluded_fraction` tests.

    A labelled file is excluded only when it cannot be used (unreadable,
    undecodable, impossible header, over the size limit); files without a
    labels row do not count. Images, before any aggregation.
    """
    excluded = sum(1 for e in data.exclusions if e.case_id is not None)
    included = len(data.cohort) if data.n_images is None else data.n_images
    return excluded, excluded + included


def check_excluded_fraction(
    data: CohortData, *, max_fraction: float = MAX_EXCLUDED_FRACTION
) -> None:
    """Stop when more than ``max_fraction`` of the labelled files cannot be used.

    A few bad files are excluded and listed, and the run goes on; most of
    them failing says the cohort is wrong (another folder, a missing
    decoder, a broken export), and no number computed on the rest would
    describe it.

    Raises
    ------
    DataError
        Above the limit, with the counts and the commonest reasons.
    InputError
        If ``max_fraction`` is not in [0, 1].
    """
    if isinstance(max_fraction, bool) or not 0.0 <= float(max_fraction) <= 1.0:
        raise InputError(f"max_fraction must be in [0, 1]; got {max_fraction!r}.")
    excluded, labelled = excluded_share(data)
    if labelled == 0 or excluded / labelled <= max_fraction:
        return
    counts: dict[str, int] = {}
    for e in data.exclusions:
        if e.case_id is not None:
            head = e.reason.split(":")[0]
            counts[head] = counts.get(head, 0) + 1
    common = ", ".join(
        f"{reason!r} ({n})" for reason, n in sorted(counts.items(), key=lambda kv: -kv[1])[:_SHOW]
    )
    raise DataError(
        f"{excluded} of the {labelled} labelled files ({excluded / labelled:.0%}) cannot be "
        f"used, more than [data] max_excluded_fraction = {max_fraction:g} allows: the cohort "
        f"is probably wrong (another folder, a missing decoder, a broken export). Commonest "
        f"reasons: {common}. Fix the data, or raise the limit to evaluate the rest."
    )
