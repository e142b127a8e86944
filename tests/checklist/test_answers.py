"""Answers files: validation errors and the commented template."""

from __future__ import annotations

from pathlib import Path

import pytest

from medval._errors import SpecError
from medval.checklist import init_template, load_checklist, parse_answers, read_answers


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "answers.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_valid_answers_are_read(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "checklist: claim-2024\nitems:\n"
        "  1: {status: reported, text: 'Title names a CNN.'}\n"
        "  34: {status: not_applicable, reason: retrospective accuracy study}\n"
        "  41: {status: missing}\n",
    )
    answers = read_answers(path)
    assert sorted(answers) == ["1", "34"]
    assert answers["1"].status == "reported" and answers["1"].text == "Title names a CNN."
    assert answers["34"].reason == "retrospective accuracy study"


@pytest.mark.parametrize(
    ("items", "match"),
    [
        ("45: {status: reported, text: x}", r"item 45 is not in claim-2024 \(items 1 to 44\)"),
        ("3: {status: done, text: x}", r"item 3: unknown status 'done'; valid: \['reported'"),
        ("34: {status: not_applicable}", r"item 34: not_applicable needs a reason; add `reason"),
        ("34: {status: not_applicable, reason: '  '}", r"item 34: not_applicable needs a reason"),
        ("5: {status: reported}", r"item 5: status reported needs text"),
        ("5: {status: reported, txt: x}", r"item 5: unknown fields \['txt'\]"),
        ("5: reported", r"item 5: expected a mapping with status, text and reason"),
        ("5: {status: reported, text: [a]}", r"item 5: 'text' must be text; got list"),
    ],
)
def test_answer_errors_name_the_item_and_the_fix(tmp_path: Path, items: str, match: str) -> None:
    path = _write(tmp_path, f"items:\n  {items}\n")
    with pytest.raises(SpecError, match=r"answers\.yaml: " + match):
        read_answers(path)


def test_answers_for_another_checklist_are_refused() -> None:
    with pytest.raises(SpecError, match=r"for 'tripod-ai-2024' but the checklist is 'claim-2024'"):
        parse_answers({"checklist": "tripod-ai-2024", "items": {}})


def test_item_answered_twice_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, "items:\n  3: {status: missing}\n  3: {status: missing}\n")
    with pytest.raises(SpecError, match=r"line 3: the key 3 appears twice"):
        read_answers(path)
    with pytest.raises(SpecError, match=r"item 3 is answered twice"):
        parse_answers({"items": {3: {"status": "missing"}, "3": {"status": "missing"}}})


def test_file_and_shape_errors(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"answers file nope\.yaml does not exist; write one"):
        read_answers(tmp_path / "nope.yaml")
    with pytest.raises(SpecError, match=r"expected a mapping with 'checklist' and 'items'"):
        read_answers(_write(tmp_path, "- 1\n- 2\n"))
    with pytest.raises(SpecError, match=r"unknown top-level keys \['answers'\]"):
        read_answers(_write(tmp_path, "answers: {}\n"))


def test_tripod_item_numbers_with_letters(tmp_path: Path) -> None:
    path = _write(tmp_path, "items:\n  '12e': {status: reported, text: Methods 2.4}\n")
    assert list(read_answers(path, "tripod-ai-2024")) == ["12e"]
    with pytest.raises(SpecError, match=r"item 12h is not in tripod-ai-2024"):
        parse_answers({"items": {"12h": {"status": "missing"}}}, "tripod-ai-2024")


@pytest.mark.parametrize("name", ["claim-2024", "tripod-ai-2024"])
def test_template_lists_the_human_items_and_parses_as_is(tmp_path: Path, name: str) -> None:
    text = init_template(name)
    cl = load_checklist(name)
    assert read_answers(_write(tmp_path, text), name) == {}
    active = [line.strip() for line in text.splitlines() if not line.lstrip().startswith("#")]
    for it in cl.items:
        key = it.number if it.number.isdigit() else f'"{it.number}"'
        if it.klass == "A":
            assert f"{key}:" not in active, it.number
            assert f"#  {key}: {{status: not_applicable" in text
        else:
            assert f"{key}:" in active, it.number
    assert cl.url in text


def test_filled_template_validates(tmp_path: Path) -> None:
    text = init_template().replace(
        '  1:\n    status: missing\n    text: ""', "  1:\n    status: reported\n    text: Title"
    )
    assert read_answers(_write(tmp_path, text))["1"].text == "Title"
