"""Exclusion reasons carry no path: OS errors by class and errno, paths in messages masked."""

from __future__ import annotations

import pytest

from medval.io._scan import describe_error, short_message


def test_an_os_error_is_its_class_and_errno() -> None:
    exc = PermissionError(13, "Permission denied", "/data/DOE_JOHN_MRN123/cohort/dicom/a.dcm")
    assert short_message(exc) == describe_error(exc) == "PermissionError (errno 13)"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("cannot open '/data/DOE_JOHN/a.dcm' now", "cannot open '<path>' now"),
        ("in file /home/x/DOE/b.dcm", "in file <path>"),
        (r"at C:\Users\DOE\c.dcm", "at <path>"),
        ("range (1, 64) and/or 1/2 of the frames", "range (1, 64) and/or 1/2 of the frames"),
    ],
)
def test_absolute_paths_are_masked(text: str, shown: str) -> None:
    assert short_message(ValueError(text)) == shown
    assert describe_error(ValueError(text)) == f"ValueError: {shown}"


def test_one_line_of_at_most_120_characters() -> None:
    text = short_message(RuntimeError("plugins:\n  pillow: " + "x" * 200))
    assert text.startswith("plugins: pillow: x") and text.endswith("...") and len(text) == 120
    assert len(short_message(RuntimeError("y" * 200), None)) == 200
    assert short_message(RuntimeError()) == "RuntimeError"
