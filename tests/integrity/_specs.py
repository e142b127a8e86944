"""Spec files for the integrity tests."""

from __future__ import annotations

from pathlib import Path

from medval.gate import Spec, read_spec

BASE = """
[task]
class_names = ["no lesion", "lesion"]
positive_class = "lesion"
[data]
dicom_dir = "cohort/dicom"
labels = "cohort/labels.csv"
[model]
predictions = "preds.csv"
{extra}
"""

CRITERION = """
[[criteria]]
name = "{name}"
key = "{key}"
op = "{op}"
threshold = {threshold}
{more}
"""


def criterion(
    name: str = "external-auroc",
    key: str = "split.external.discrimination.auroc",
    op: str = ">=",
    threshold: float = 0.85,
    more: str = "",
) -> str:
    return CRITERION.format(name=name, key=key, op=op, threshold=threshold, more=more)


def make_spec(folder: Path, extra: str = "", name: str = "medval") -> Spec:
    path = folder / f"{name}.toml"
    path.write_text(BASE.format(extra=extra), encoding="utf-8")
    return read_spec(path)
