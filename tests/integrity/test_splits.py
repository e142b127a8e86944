"""Split manifests: digests that follow the cases, labels and bytes, not the row order."""

from __future__ import annotations

import hashlib

import pandas as pd

from medval.integrity import SplitManifest, digest_cases, split_manifests
from medval.io import CohortData


def _data(rows: list[tuple[str, int, str, str]], *, images: bool = True) -> CohortData:
    """(case_id, label, split, sha) rows; ``images=False``: a metadata table's cohort."""
    frame = pd.DataFrame(
        {"label": [r[1] for r in rows], "split": [r[2] for r in rows],
         "manufacturer": ["GE"] * len(rows), "patient_key": [f"pt-{i}" for i in range(len(rows))]},
        index=pd.Index([r[0] for r in rows], name="case_id"),
    )  # fmt: skip
    shas = {r[0]: r[3] for r in rows} if images else {}
    return CohortData(frame, {}, (), len(frame), "0" * 64, {}, file_sha256=shas)


ROWS = [("a", 0, "internal", "1" * 64), ("b", 1, "internal", "2" * 64),
        ("c", 1, "external", "3" * 64), ("d", 0, "calibration", "4" * 64)]  # fmt: skip


def test_digest_is_the_sha256_of_sorted_lines() -> None:
    got = split_manifests(_data(ROWS))
    assert list(got) == ["calibration", "external", "internal"]
    lines = "".join(sorted(f"{c}\t{lab}\t{sha}\n" for c, lab, s, sha in ROWS if s == "internal"))
    assert got["internal"] == SplitManifest(hashlib.sha256(lines.encode()).hexdigest(), 2)


def test_digest_changes_with_the_cases_not_the_row_order() -> None:
    base = split_manifests(_data(ROWS))["internal"]
    assert split_manifests(_data(ROWS[::-1]))["internal"] == base
    added = split_manifests(_data([*ROWS, ("e", 0, "internal", "5" * 64)]))["internal"]
    removed = split_manifests(_data(ROWS[1:]))["internal"]
    relabelled = split_manifests(_data([("a", 1, "internal", "1" * 64), *ROWS[1:]]))["internal"]
    rebytes = split_manifests(_data([("a", 0, "internal", "9" * 64), *ROWS[1:]]))["internal"]
    assert (added.n_cases, removed.n_cases, relabelled.n_cases) == (3, 1, 2)
    digests = {base.manifest_sha256, added.manifest_sha256, removed.manifest_sha256,
               relabelled.manifest_sha256, rebytes.manifest_sha256}  # fmt: skip
    assert len(digests) == 5
    # Other splits are untouched.
    assert split_manifests(_data(ROWS[1:]))["external"] == split_manifests(_data(ROWS))["external"]


def test_table_rows_are_digested_without_salted_keys() -> None:
    base = split_manifests(_data(ROWS, images=False))["internal"]
    frame = _data(ROWS, images=False)
    resalted = CohortData(
        frame.cohort.assign(patient_key=["x", "y", "z", "w"]), {}, (), 4, "0" * 64, {}
    )
    assert split_manifests(resalted)["internal"] == base
    vendor = frame.cohort.copy()
    vendor.loc["a", "manufacturer"] = "Siemens"
    changed = CohortData(vendor, {}, (), 4, "0" * 64, {})
    assert split_manifests(changed)["internal"].manifest_sha256 != base.manifest_sha256
    assert split_manifests(_data(ROWS[::-1], images=False))["internal"] == base


def test_digest_cases_groups_by_split() -> None:
    got = digest_cases([("t", "x", "0", "a"), ("t", "y", "1", "b"), ("u", "x", "0", "a")])
    assert (got["t"].n_cases, got["u"].n_cases) == (2, 1)
    assert got["t"].to_dict()["n_cases"] == 2
