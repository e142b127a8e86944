"""The checklist files: CLAIM 2024, TRIPOD+AI, the crosswalk, and their validation."""

from __future__ import annotations

import copy
import subprocess
import sys

import pytest

from medval._errors import SpecError
from medval.checklist import (
    available_checklists,
    checklist_dir,
    load_checklist,
    load_crosswalk,
)
from medval.checklist._load import load_yaml, parse_checklist
from medval.checklist._rules import RULES

# Classes from shared/reference/claim-2024-items.md.
CLAIM_A = {12, 13, 18, 19, 20, 21, 23, 28, 29, 30, 32, 33, 35, 36, 37, 38, 39}
CLAIM_S = {7, 8, 9, 10, 11, 16, 17, 22, 24, 25, 27, 31, 43}
ANCHORS = {
    "#summary", "#provenance", "#cohort", "#acquisition", "#performance", "#calibration",
    "#uncertainty", "#conformal", "#subgroups", "#shift", "#integrity",
}  # fmt: skip


def _raw(name: str) -> dict:
    path = checklist_dir() / f"{name}.yaml"
    return load_yaml(path.read_text(encoding="utf-8"), path.name)


def test_shipped_checklists_are_found() -> None:
    assert available_checklists() == ["claim-2024", "tripod-ai-2024"]
    assert (checklist_dir() / "crosswalk.yaml").is_file()


def test_claim_has_44_unique_items_with_description_and_link() -> None:
    cl = load_checklist("claim-2024")
    assert cl.numbers == tuple(str(i) for i in range(1, 45))
    for it in cl.items:
        assert len(it.description) > 40, it.number
        assert it.description != it.topic
        assert it.link == "https://doi.org/10.1148/ryai.240300"
        assert it.section and it.topic
    assert cl.url == "https://doi.org/10.1148/ryai.240300"
    assert "Tejani" in cl.citation


def test_claim_classes_follow_the_reference_table() -> None:
    cl = load_checklist("claim-2024")
    assert {int(it.number) for it in cl.items if it.klass == "A"} == CLAIM_A
    assert {int(it.number) for it in cl.items if it.klass == "S"} == CLAIM_S
    assert len(CLAIM_A) == 17


@pytest.mark.parametrize("name", ["claim-2024", "tripod-ai-2024"])
def test_every_computed_item_has_a_known_rule_and_anchor(name: str) -> None:
    for it in load_checklist(name).items:
        if it.klass in ("A", "S"):
            assert it.rule in RULES, it.number
            assert it.anchor in ANCHORS, it.number
            assert it.keys, it.number
        elif it.rule is not None:
            assert it.anchor in ANCHORS


def test_tripod_has_27_items_in_52_entries_and_marks_the_computed_core() -> None:
    cl = load_checklist("tripod-ai-2024")
    assert len(cl.items) == 52
    assert len({n.rstrip("abcdefg") for n in cl.numbers}) == 27
    assert all(it.link == "https://doi.org/10.1136/bmj-2023-078378" for it in cl.items)
    for number in ("12e", "20a", "20b", "20c", "21", "23a", "23b"):
        assert cl.item(number).klass == "A", number
    assert cl.item("14").klass == "S"  # subgroup gaps computed, rationale human


def test_crosswalk_references_exist_and_are_one_to_one() -> None:
    cw = load_crosswalk()
    claim20 = cw["claim_2020_items"]
    assert sorted(claim20) == list(range(1, 43))  # CLAIM 2020 had 42 items
    tripod = set(load_checklist("tripod-ai-2024").numbers)
    seen24, seen20 = [], []
    for row in cw["rows"]:
        assert row["claim_2024"] is not None or row["claim_2020"] is not None
        if row["claim_2024"] is not None:
            assert 1 <= row["claim_2024"] <= 44
            seen24.append(row["claim_2024"])
        if row["claim_2020"] is not None:
            assert row["claim_2020"] in claim20
            seen20.append(row["claim_2020"])
        both = row["claim_2024"] is not None and row["claim_2020"] is not None
        assert row["relation_2020"] in (("same", "part") if both else (None,)), row
        assert set(row["tripod_ai"]) <= tripod, row
        assert (row["relation_tripod"] is None) == (not row["tripod_ai"])
    assert sorted(seen24) == list(range(1, 45))
    assert sorted(seen20) == list(range(1, 43))


def test_unknown_checklist_names_the_valid_ones() -> None:
    with pytest.raises(SpecError, match=r"unknown checklist 'claim-2020'.*claim-2024"):
        load_checklist("claim-2020")


def _mutated(change) -> dict:
    data = copy.deepcopy(_raw("claim-2024"))
    change(data)
    return data


def test_validation_rejects_duplicate_item_numbers() -> None:
    data = _mutated(lambda d: d["items"][1].update(number=1))
    with pytest.raises(SpecError, match=r"item numbers \['1'\] appear more than once"):
        parse_checklist(data, "bad.yaml")


def test_validation_rejects_an_unknown_rule_naming_the_item() -> None:
    data = _mutated(lambda d: d["items"][12]["auto"].update(rule="guess"))
    with pytest.raises(SpecError, match=r"item 13\): unknown auto rule 'guess'; valid: \["):
        parse_checklist(data, "bad.yaml")


def test_validation_rejects_a_computed_item_without_rule() -> None:
    data = _mutated(lambda d: d["items"][12].pop("auto"))
    with pytest.raises(SpecError, match=r"item 13\): class A items need an 'auto' rule"):
        parse_checklist(data, "bad.yaml")


def test_validation_rejects_missing_description_and_bad_link() -> None:
    data = _mutated(lambda d: d["items"][0].update(description=" "))
    with pytest.raises(SpecError, match=r"item 1\): 'description' must be a non-empty string"):
        parse_checklist(data, "bad.yaml")
    data = _mutated(lambda d: d["items"][0].update(link="http://example.org"))
    with pytest.raises(SpecError, match=r"'link' must be an https:// address"):
        parse_checklist(data, "bad.yaml")


def test_validation_checks_the_declared_count_and_statuses() -> None:
    data = _mutated(lambda d: d["items"].pop())
    with pytest.raises(SpecError, match="declares n_items 44 but lists 43"):
        parse_checklist(data, "bad.yaml")
    data = _mutated(lambda d: d.update(statuses=["reported", "missing"]))
    with pytest.raises(SpecError, match="'statuses' must be"):
        parse_checklist(data, "bad.yaml")


def test_yaml_errors_name_the_file_and_line() -> None:
    with pytest.raises(SpecError, match=r"x\.yaml, line 3: the key 'a' appears twice"):
        load_yaml("a: 1\nb: 2\na: 3\n", "x.yaml")
    with pytest.raises(SpecError, match=r"x\.yaml, line 2: not valid YAML"):
        load_yaml("a: [1,\n: b: c\n", "x.yaml")


def test_import_is_light() -> None:
    code = "import sys, medval.checklist; print(','.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    loaded = {m.split(".")[0] for m in out.stdout.strip().split(",")}
    assert not loaded & {"yaml", "pandas", "scipy", "torch", "jinja2", "evidently", "pydicom"}
