"""A spec run on precomputed predictions (model.predictions): the file's rows all accounted for."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from medval.run import run_spec

from .conftest import write_spec


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory, small_cohort: Path) -> Path:
    root = tmp_path_factory.mktemp("predictions-file")
    (root / "cohort").symlink_to(small_cohort, target_is_directory=True)
    return root


def test_a_bom_is_read_and_rows_outside_the_cohort_are_counted(folder: Path) -> None:
    with (folder / "cohort" / "labels.csv").open(encoding="utf-8") as fh:
        ids = [row["case_id"] for row in csv.DictReader(fh)]
    rows = [f"{c},{0.2 + 0.6 * (i % 2)}" for i, c in enumerate(ids)]
    rows += [f"zz{i:03d},0.5" for i in range(500)]  # not in the cohort
    # Excel's "CSV UTF-8" writes a byte-order mark; it hid the case_id column.
    text = "case_id,probability\n" + "\n".join(rows) + "\n"
    (folder / "preds.csv").write_bytes(text.encode("utf-8-sig"))
    spec = write_spec(folder, "preds", 'predictions = "preds.csv"', preprocess="")
    outcome = run_spec(spec, out_dir=folder / "out", quiet=True)
    assert outcome.result.provenance["predictions_rows_unmatched"] == 500
    log = (folder / "out" / "run.log").read_text(encoding="utf-8")
    assert (
        f"warning: 500 of the {len(ids) + 500} rows of model.predictions name no case of the "
        "cohort (e.g. 'zz000', 'zz001', 'zz002'); they are not analysed"
    ) in log
