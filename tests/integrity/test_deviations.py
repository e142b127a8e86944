"""Deviations from a registration: every kind, its sentence and its direction."""

from __future__ import annotations

from pathlib import Path

import pytest

from medval.gate import Spec
from medval.integrity import Deviation, Registration, SplitManifest, deviations, protocol

from ._specs import criterion, make_spec

SPLITS = {"internal": SplitManifest("a" * 64, 500), "external": SplitManifest("b" * 64, 500)}


def _reg(spec: Spec, splits: dict[str, SplitManifest] | None = None) -> Registration:
    return Registration(
        registered_at="2026-01-01T00:00:00Z",
        medval_version="0.1.0",
        protocol_sha256="",
        protocol=protocol(spec),
        splits={k: v.to_dict() for k, v in (SPLITS if splits is None else splits).items()},
    )


def _one(tmp_path: Path, before: str, after: str) -> Deviation:
    reg = _reg(make_spec(tmp_path, before, name="before"))
    found = deviations(reg, make_spec(tmp_path, after, name="after"), SPLITS)
    assert len(found) == 1, found
    return found[0]


def test_the_registered_run_has_no_deviation(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, criterion())
    assert deviations(_reg(spec), spec, SPLITS) == ()


def test_lowered_threshold_is_the_example_sentence(tmp_path: Path) -> None:
    dev = _one(tmp_path, criterion(threshold=0.85), criterion(threshold=0.8))
    assert dev == Deviation(
        "criterion-threshold",
        "external-auroc",
        "threshold for external-auroc lowered from 0.85 to 0.8 after registration",
        True,
    )


@pytest.mark.parametrize(
    ("op", "old", "new", "verb", "loosened"),
    [(">=", 0.85, 0.9, "raised", False), (">", 0.85, 0.8, "lowered", True),
     ("<=", 0.1, 0.2, "raised", True), ("<", 0.1, 0.05, "lowered", False),
     ("==", 0.1, 0.2, "raised", None)],
)  # fmt: skip
def test_threshold_direction_follows_the_op(
    tmp_path: Path, op: str, old: float, new: float, verb: str, loosened: bool | None
) -> None:
    dev = _one(tmp_path, criterion(op=op, threshold=old), criterion(op=op, threshold=new))
    assert dev.text == f"threshold for external-auroc {verb} from {old} to {new} after registration"
    assert dev.loosened is loosened


@pytest.mark.parametrize(
    ("before", "after", "kind", "text", "loosened"),
    [
        ("", 'bound = "value"', "criterion-bound", "bound of external-auroc changed from 'auto' to 'value' after registration", True),  # noqa: E501
        ('bound = "low"', 'bound = "value"', "criterion-bound", None, True),
        ('bound = "value"', 'bound = "low"', "criterion-bound", None, False),
        ('bound = "low"', 'bound = "auto"', "criterion-bound", None, None),
        ("", 'severity = "warn"', "criterion-severity", "severity of external-auroc changed from 'fail' to 'warn' after registration", True),  # noqa: E501
        ('severity = "warn"', "", "criterion-severity", None, False),
        ("min_n = 10", "min_n = 30", "criterion-min_n", "min_n of external-auroc changed from 10 to 30 after registration", True),  # noqa: E501
        ('min_n = 10\nsmall_groups = "fail"', 'min_n = 30\nsmall_groups = "fail"', "criterion-min_n", None, False),  # noqa: E501
        ("", 'small_groups = "skip"', "criterion-small_groups", None, True),
        ('small_groups = "fail"', 'small_groups = "warn"', "criterion-small_groups", None, True),
        ('small_groups = "skip"', 'small_groups = "fail"', "criterion-small_groups", None, False),
        ("", 'description = "why"', "criterion-description", None, False),
    ],
)  # fmt: skip
def test_criterion_fields(
    tmp_path: Path, before: str, after: str, kind: str, text: str | None, loosened: bool | None
) -> None:
    dev = _one(tmp_path, criterion(more=before), criterion(more=after))
    assert (dev.kind, dev.key, dev.loosened) == (kind, "external-auroc", loosened)
    if text is not None:
        assert dev.text == text


def test_op_key_column_field_changes(tmp_path: Path) -> None:
    dev = _one(tmp_path, criterion(op=">="), criterion(op=">"))
    assert dev.text == "op of external-auroc changed from '>=' to '>' after registration"
    assert dev.loosened is False
    assert _one(tmp_path, criterion(op=">"), criterion(op=">=")).loosened is True
    dev = _one(tmp_path, criterion(key="discrimination.auroc"), criterion(key="x.auroc"))
    assert (dev.kind, dev.loosened) == ("criterion-key", None)
    table = 'key = "conformal.by_group"\nop = ">="\nthreshold = 0.8\n'
    before = f'[[criteria]]\nname = "cov"\n{table}column = "sex"\nfield = "coverage"\n'
    after = f'[[criteria]]\nname = "cov"\n{table}column = "site"\nfield = "set_size"\n'
    reg = _reg(make_spec(tmp_path, before, name="b"))
    found = deviations(reg, make_spec(tmp_path, after, name="a"), SPLITS)
    assert [d.kind for d in found] == ["criterion-column", "criterion-field"]


def test_op_and_threshold_changed_together(tmp_path: Path) -> None:
    reg = _reg(make_spec(tmp_path, criterion(op=">=", threshold=0.85), name="b"))
    found = deviations(
        reg, make_spec(tmp_path, criterion(op="<=", threshold=0.8), name="a"), SPLITS
    )
    assert [(d.kind, d.loosened) for d in found] == [
        ("criterion-op", None),
        ("criterion-threshold", None),
    ]


def test_removed_and_added_criteria(tmp_path: Path) -> None:
    reg = _reg(make_spec(tmp_path, criterion(name="a1") + criterion(name="b1"), name="b"))
    found = deviations(
        reg, make_spec(tmp_path, criterion(name="a1") + criterion(name="c1"), name="a"), SPLITS
    )
    assert found == (
        Deviation("criterion-removed", "b1", "criterion b1 was removed after registration", True),
        Deviation("criterion-added", "c1", "criterion c1 was added after registration", False),
    )


@pytest.mark.parametrize(
    ("before", "after", "text", "loosened"),
    [
        ("", "[analysis]\nconfidence_level = 0.9", "analysis.confidence_level changed from 0.95 to 0.9 after registration", True),  # noqa: E501
        ("", "[analysis]\nconfidence_level = 0.99", None, False),
        ("", "[analysis]\nn_resamples = 500", "analysis.n_resamples changed from 2000 to 500 after registration", None),  # noqa: E501
        ("", "[analysis]\nseed = 3", None, None),
        ("[gate]\nstrict_registration = true", "", None, True),
        ("[gate]\nusage_budget = 5", "[gate]\nusage_budget = 50", None, True),
        ('[gate]\nmultiplicity = "holm"', "", None, True),
        ("", "[shift]\nenabled = false", "shift.enabled changed from True to False after registration", None),  # noqa: E501
    ],
)  # fmt: skip
def test_settings(
    tmp_path: Path, before: str, after: str, text: str | None, loosened: bool | None
) -> None:
    dev = _one(tmp_path, before, after)
    assert (dev.kind, dev.loosened) == ("setting", loosened)
    if text is not None:
        assert dev.text == text


def test_baseline_margin_is_judged_through_its_criterion(tmp_path: Path) -> None:
    before = '[baseline]\npredictions = "old.csv"\nmargin = 0.05\n'
    dev = _one(tmp_path, before, before.replace("0.05", "0.1"))
    assert dev.kind == "criterion-threshold"
    assert dev.text == (
        "threshold for noninferiority.auroc lowered from -0.05 to -0.1 after registration"
    )
    assert dev.loosened is True


def test_splits(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, criterion())
    registered = {**SPLITS, "calibration": SplitManifest("c" * 64, 100)}
    now = {"external": SplitManifest("d" * 64, 480), "internal": SplitManifest("e" * 64, 500),
           "extra": SplitManifest("f" * 64, 7)}  # fmt: skip
    found = deviations(_reg(spec, registered), spec, now)
    assert [(d.kind, d.key, d.text, d.loosened) for d in found] == [
        ("split-missing", "calibration",
         "calibration split 'calibration' was registered (100 cases) but is not evaluated now",
         True),
        ("split-changed", "external",
         "test split 'external' changed after registration: 500 cases then, 480 now", None),
        ("split-unregistered", "extra", "test split 'extra' (7 cases) was not registered", None),
        ("split-changed", "internal",
         "test split 'internal' changed after registration: 500 cases then, 500 now "
         "(the same count: other cases, labels or image bytes)", None),
    ]  # fmt: skip


def test_order_is_criteria_then_settings_then_splits(tmp_path: Path) -> None:
    reg = _reg(make_spec(tmp_path, criterion(threshold=0.9), name="b"))
    after = make_spec(tmp_path, criterion() + "[analysis]\nconfidence_level = 0.9\n", name="a")
    found = deviations(reg, after, {"internal": SPLITS["internal"]})
    assert [d.kind for d in found] == ["criterion-threshold", "setting", "split-missing"]
    assert found[0].to_dict()["loosened"] is True
