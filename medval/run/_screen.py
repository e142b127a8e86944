"""The run's decode check: every evaluated image decoded once before the model.

A file that cannot be read, decoded or preprocessed is excluded with its
reason (:func:`medval.io.decode_check`, :func:`medval.io.exclude_cases`) and
the run goes on; above ``[data] max_excluded_fraction`` of the labelled
files unusable, the run stops with exit 3 (:func:`medval.io.check_excluded_fraction`).
See :mod:`medval.io._screen` for why this is a pass before the model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from medval._errors import DataError
from medval.gate import Spec

__all__ = ["apply_failures", "check_share", "screen_images"]


def screen_images(
    spec: Spec, data: Any, used: Sequence[str], pipeline: Any, *, progress: bool, log: Any
) -> tuple[Any, list[str]]:
    """Decode the ``used`` cases once; (the data less the failures, the cases left)."""
    from medval import io

    dataset = io.DicomDataset(
        [data.paths[c] for c in used], list(used), pipeline=pipeline, names=file_names(data, used)
    )
    # The scan's exclusions alone over the limit: stop before decoding anything.
    io.check_excluded_fraction(data, max_fraction=spec["data.max_excluded_fraction"])
    log(f"decoding the {len(used)} evaluated images once before the model")
    failed = io.decode_check(dataset, progress=progress)
    return apply_failures(spec, data, used, failed, log=log)


def apply_failures(
    spec: Spec, data: Any, used: Sequence[str], failed: dict[str, str], *, log: Any
) -> tuple[Any, list[str]]:
    """Exclude the images that failed to decode (logged, share checked); (data, cases left)."""
    from medval import io

    data = io.exclude_cases(data, failed)
    if failed:
        heads: dict[str, int] = {}
        for reason in failed.values():
            head = reason.split(":")[0]
            heads[head] = heads.get(head, 0) + 1
        counts = ", ".join(f"{n} {head}" for head, n in sorted(heads.items()))
        log(f"WARNING: {len(failed)} of {len(used)} images excluded ({counts}); see the report")
    check_share(spec, data, log=log)
    left = [c for c in used if c not in failed]
    if not left:
        raise DataError(
            f"none of the {len(used)} evaluated images can be decoded; the first: "
            f"{next(iter(failed.values()))}."
        )
    return data, left


def check_share(spec: Spec, data: Any, *, log: Any) -> None:
    """Stop (DataError) above ``[data] max_excluded_fraction`` of labelled files unusable."""
    from medval import io

    limit = spec["data.max_excluded_fraction"]
    excluded, labelled = io.excluded_share(data)
    if excluded:
        log(
            f"{excluded} of {labelled} labelled files excluded as unusable "
            f"({excluded / labelled:.1%}; the run stops above {limit:.0%}, "
            "[data] max_excluded_fraction)"
        )
    io.check_excluded_fraction(data, max_fraction=limit)


def file_names(data: Any, case_ids: Sequence[str]) -> list[str]:
    """How messages name each case's file: its path relative to the DICOM root."""
    return [data.files.get(c) or data.paths[c].name for c in case_ids]
