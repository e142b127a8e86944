"""The [data] keys of the labels join: choices checked at spec read, agreeing with io."""

from __future__ import annotations

from pathlib import Path

import pytest

from medval import io
from medval._errors import SpecError
from medval.gate import SCHEMA, read_spec
from medval.gate._spec import AGGREGATIONS, CASE_ID_RULES, LABEL_KEYS

BASE = """
[task]
class_names = ["a", "b"]
[data]
dicom_dir = "d"
labels = "l.csv"
{data}
[model]
predictions = "p.csv"
"""


def _spec(tmp_path: Path, data: str) -> Path:
    path = tmp_path / "medval.toml"
    path.write_text(BASE.format(data=data), encoding="utf-8")
    return path


def test_the_gate_lists_agree_with_io() -> None:
    assert tuple(io.LABEL_KEYS) == LABEL_KEYS
    assert CASE_ID_RULES == io.CASE_ID_RULES
    assert AGGREGATIONS == io.AGGREGATIONS
    assert SCHEMA["data"]["max_pixel_bytes"][1] == io.MAX_PIXEL_BYTES
    assert SCHEMA["data"]["max_excluded_fraction"][1] == io.MAX_EXCLUDED_FRACTION


def test_defaults(tmp_path: Path) -> None:
    spec = read_spec(_spec(tmp_path, ""))
    assert spec["data.labels_key"] is None
    assert spec["data.case_id_from"] == "stem"
    assert (spec["data.aggregate"], spec["data.top_k"]) == ("mean", 3)
    assert spec["data.max_pixel_bytes"] == 2 * 1024**3
    assert spec["data.max_excluded_fraction"] == 0.5


def test_the_bad_file_limits_are_read(tmp_path: Path) -> None:
    spec = read_spec(_spec(tmp_path, "max_pixel_bytes = 1024\nmax_excluded_fraction = 1"))
    assert (spec["data.max_pixel_bytes"], spec["data.max_excluded_fraction"]) == (1024, 1.0)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            'labels_key = "StudyUID"',
            r"data.labels_key = 'StudyUID' is not allowed.*StudyInstanceUID",
        ),
        ('case_id_from = "name"', r"data.case_id_from = 'name' is not allowed.*'stem', 'path'"),
        ('aggregate = "median"', r"data.aggregate = 'median' is not allowed.*noisy_or"),
        ("top_k = 0", r"data.top_k must be an integer >= 1"),
        ("max_pixel_bytes = 0", r"data.max_pixel_bytes must be an integer >= 1.*got 0"),
        ("max_pixel_bytes = 1.5", r"data\.max_pixel_bytes: expected integer"),
        ("max_excluded_fraction = 1.5", r"data.max_excluded_fraction must be in \[0, 1\]"),
        ("max_excluded_fraction = -0.1", r"data.max_excluded_fraction must be in \[0, 1\]"),
        ("max_excluded_fraction = nan", r"data.max_excluded_fraction must be in \[0, 1\]"),
    ],
)
def test_bad_values_are_refused_at_read(tmp_path: Path, line: str, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        read_spec(_spec(tmp_path, line))
