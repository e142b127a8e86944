"""JUnit XML: one testcase per criterion, xunit2 structure, digests as properties."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from lxml import etree

from medval import Estimate
from medval._result import ValidationResult
from medval.gate import check_criteria, judge, junit_xml, suite_properties, write_junit

pytest_plugins = ["pytester"]

XSD = Path(__file__).with_name("junit-xunit2.xsd")


@pytest.fixture
def verdicts() -> list:  # type: ignore[type-arg]
    r = ValidationResult()
    r.estimates["discrimination.auroc"] = Estimate(
        0.9, 0.84, 0.95, confidence_level=0.95, method="t", n=300
    )
    r.provenance.update({"model_sha256": "a" * 64, "data_manifest_sha256": "b" * 64})
    crit = check_criteria(
        [
            {"name": "ok", "key": "discrimination.auroc", "op": ">=", "threshold": 0.8},
            {"name": "warn", "key": "discrimination.auroc", "op": ">=", "threshold": 0.85,
             "severity": "warn"},
            {"name": "bad", "key": "discrimination.auroc", "op": ">=", "threshold": 0.85},
            {"name": "err", "key": "missing.key", "op": ">=", "threshold": 0.85},
        ],
        source="t",
    )  # fmt: skip
    return [r, judge(r, crit)]


def test_structure_counts_and_properties(verdicts: list, tmp_path: Path) -> None:  # type: ignore[type-arg]
    result, vs = verdicts
    path = write_junit(vs, tmp_path / "sub" / "junit.xml", properties=suite_properties(result))
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites"
    (suite,) = root.findall("testsuite")
    assert suite.attrib["tests"] == "4"
    assert suite.attrib["failures"] == "1" and suite.attrib["errors"] == "1"
    cases = suite.findall("testcase")
    assert [c.attrib["name"] for c in cases] == ["ok", "warn", "bad", "err"]
    assert [[child.tag for child in c] for c in cases] == [
        ["system-out"],
        ["system-out"],
        ["failure", "system-out"],
        ["error", "system-out"],
    ]
    assert cases[1].findtext("system-out", "").startswith("WARNING: ")
    assert cases[2].find("failure").attrib["message"] == "auroc CI low 0.840 < 0.85 (n=300)"  # type: ignore[union-attr]
    props = {p.attrib["name"]: p.attrib["value"] for p in suite.iter("property")}
    assert props["medval.model_sha256"] == "a" * 64
    assert props["medval.data_manifest_sha256"] == "b" * 64
    assert "medval.spec_sha256" not in props  # None values are left out
    assert path.read_text(encoding="utf-8").startswith('<?xml version="1.0" encoding="UTF-8"?>')


def test_validates_against_the_xunit2_schema(verdicts: list) -> None:  # type: ignore[type-arg]
    result, vs = verdicts
    schema = etree.XMLSchema(etree.parse(str(XSD)))
    doc = etree.fromstring(junit_xml(vs, properties=suite_properties(result)).encode())
    assert schema.validate(doc), schema.error_log
    # The schema is strict enough to catch a misplaced element.
    case = doc.find("testsuite/testcase[3]")
    case.append(case.find("failure"))
    assert not schema.validate(doc)


def test_pytest_xunit2_output_also_validates(pytester: pytest.Pytester) -> None:
    """The checker itself accepts what pytest writes as xunit2 (a second reference)."""
    pytester.makepyfile("def test_a():\n    assert 0\n\ndef test_b():\n    pass\n")
    pytester.runpytest("--junitxml=j.xml", "-o", "junit_family=xunit2", "-p", "no:medval")
    schema = etree.XMLSchema(etree.parse(str(XSD)))
    assert schema.validate(etree.parse(str(pytester.path / "j.xml"))), schema.error_log


HOSTILE = [
    "ctrl\x00\x01\x08\x0b\x0c\x1b[2K\x7f\x9b",
    "cdata ]]> end",
    "<script>alert(1)</script> & \"quoted\" 'single'",
    "lone \ud800 surrogate, nonchar \ufffe\uffff",
    "line\nbreak\r\ttab \u202eRLO",
]


def test_hostile_strings_still_give_well_formed_valid_xml(tmp_path: Path) -> None:
    # A Manufacturer with control characters made junit.xml unreadable (issue 15, item 5).
    from medval.gate import Verdict

    vs = [
        Verdict(
            name=f"c{i} {text}", status=status, key="subgroup.x", op=">=", threshold=0.8,
            severity="fail", reason=f"auroc < 0.8 on manufacturer={text}",
            groups=({"group": text, "status": status, "reason": text},),
        )
        for i, (text, status) in enumerate(
            zip(HOSTILE, ["fail", "error", "pass", "warn", "fail"], strict=True)
        )
    ]  # fmt: skip
    props = {"medval.model_file": HOSTILE[0], HOSTILE[2]: HOSTILE[3]}
    path = write_junit(vs, tmp_path / "junit.xml", properties=props)
    root = ET.parse(path).getroot()  # raised ParseError (or the write UnicodeEncodeError)
    cases = root.findall("testsuite/testcase")
    assert [c.attrib["name"].split(" ")[0] for c in cases] == ["c0", "c1", "c2", "c3", "c4"]
    assert "<script>alert(1)</script>" in cases[2].attrib["name"]
    assert "cdata ]]> end" in cases[1].find("error").attrib["message"]  # type: ignore[union-attr]
    for node in root.iter():
        for text in [node.text or "", *node.attrib.values()]:
            lines = text.replace("\t", " ").split("\n")
            assert all(line.isprintable() for line in lines), repr(text)
    schema = etree.XMLSchema(etree.parse(str(XSD)))
    assert schema.validate(etree.parse(str(path))), schema.error_log
