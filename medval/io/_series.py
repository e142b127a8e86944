"""A segmentation cohort: one case per DICOM series folder, named in a cases CSV."""

from __future__ import annotations

import csv
import dataclasses
import pathlib
from collections.abc import Mapping
from typing import Any

from medval._errors import DataError
from medval._text import short_repr
from medval.io._dicom import CohortScan, Exclusion

__all__ = ["SeriesCohort", "read_cases", "series_cohort"]


def read_cases(path: str | pathlib.Path) -> dict[str, str]:
    """The cases CSV: ``case_id`` (the series folder under the DICOM root) and ``split``.

    Raises
    ------
    DataError
        A missing or unreadable file, a missing column, an empty or repeated
        case id or split, naming the line and the fix.
    """
    p = pathlib.Path(path)
    try:
        text = p.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise DataError(f"data.cases: {p.name} does not exist.") from None
    except IsADirectoryError:
        raise DataError(f"data.cases: {p.name} is a folder; give the cases CSV file.") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"data.cases: {p.name} is not UTF-8 text (byte {exc.start}).") from None
    rows = csv.reader(text.splitlines())
    header = [h.strip() for h in next(rows, [])]
    for column in ("case_id", "split"):
        if column not in header:
            raise DataError(
                f"data.cases: {p.name} has no {column!r} column (header: {header}); it needs "
                "case_id (the series folder under data.dicom_dir, e.g. site_a/case001) and split."
            )
    ci, si = header.index("case_id"), header.index("split")
    out: dict[str, str] = {}
    for line, row in enumerate(rows, start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise DataError(
                f"data.cases: {p.name} line {line} has {len(row)} fields; the header has "
                f"{len(header)}."
            )
        case, split = row[ci].strip().strip("/"), row[si].strip()
        if not case or not split:
            raise DataError(f"data.cases: {p.name} line {line}: empty case_id or split.")
        if case in out:
            raise DataError(
                f"data.cases: {p.name} line {line} repeats case {short_repr(case)}; each "
                "case (series folder) is listed once."
            )
        out[case] = split
    if not out:
        raise DataError(f"data.cases: {p.name} lists no case.")
    return out


@dataclasses.dataclass(frozen=True)
class SeriesCohort:
    """Cases (series folders) with their files, cohort rows and what was left out.

    ``cohort`` is a Cohort DataFrame indexed by case id (the header columns of
    the series' first file, and ``split``); ``files`` the relative paths of
    each case's readable files; ``exclusions`` the files the scan left out
    and the cases without any readable file; ``unmatched_cases`` the case ids
    of the CSV with no folder under the root.
    """

    cohort: Any
    files: Mapping[str, tuple[str, ...]]
    paths: Mapping[str, pathlib.Path]
    exclusions: tuple[Exclusion, ...]
    unmatched_cases: tuple[str, ...]
    n_files: int
    manifest_sha256: str


def series_cohort(scan: CohortScan, cases: Mapping[str, str]) -> SeriesCohort:
    """Group the scanned files by their folder and keep the folders the cases CSV names.

    A case folder whose files belong to more than one series is excluded
    with its reason (the salted series keys are compared, never shown).
    """
    import pandas as pd

    by_folder: dict[str, list[str]] = {}
    for rel in scan.frame.index.astype(str):
        folder = rel.rsplit("/", 1)[0] if "/" in rel else ""
        by_folder.setdefault(folder, []).append(rel)
    exclusions = list(scan.exclusions)
    rows: dict[str, Any] = {}
    files: dict[str, tuple[str, ...]] = {}
    for case, split in cases.items():
        found = sorted(by_folder.get(case, []))
        if not found:
            continue
        series = {scan.join_keys.get(f, {}).get("join_series") for f in found}
        if len(series) > 1:
            exclusions.append(
                Exclusion(case, f"the folder holds {len(series)} series; one series per case")
            )
            continue
        row = scan.frame.loc[found[0]].to_dict()
        row["split"] = split
        rows[case] = row
        files[case] = tuple(found)
    known = set(files) | {e.file for e in exclusions}
    unmatched = tuple(c for c in cases if c not in known)
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.index.name = "case_id"
    return SeriesCohort(
        cohort=frame,
        files=files,
        paths=scan.paths,
        exclusions=tuple(exclusions),
        unmatched_cases=unmatched,
        n_files=scan.n_files,
        manifest_sha256=scan.manifest_sha256,
    )
