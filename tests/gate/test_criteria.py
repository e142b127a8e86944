"""Criteria and [baseline] in the spec: checked on load; the shipped JSON Schema."""

from __future__ import annotations

import json
import tomllib
from importlib import resources
from pathlib import Path

import pytest

from medval import SpecError
from medval.gate import json_schema, json_schema_text, read_spec, spec_criteria
from medval.run import spec_template

HEAD = """
[task]
class_names = ["no lesion", "lesion"]
[data]
dicom_dir = "d"
labels = "l.csv"
[model]
file = "m.pt"
"""
CRIT = """
[[criteria]]
name = "auroc"
key = "discrimination.auroc"
op = ">="
threshold = 0.85
"""


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "medval.toml"
    p.write_text(text, encoding="utf-8")
    return p


def test_criteria_parse_with_defaults(tmp_path: Path) -> None:
    spec = read_spec(_write(tmp_path, HEAD + CRIT))
    (c,) = spec.criteria
    assert (c.name, c.key, c.op, c.threshold) == ("auroc", "discrimination.auroc", ">=", 0.85)
    assert (c.bound, c.severity, c.min_n, c.small_groups) == ("auto", "fail", 0, "warn")
    assert not spec.has("baseline") and spec_criteria(spec) == spec.criteria


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (
            ("op = \">=\"", "op = \"=>\""),
            r"criteria\.op = '=>' is not allowed; allowed values: '>='",
        ),
        (("threshold = 0.85", "treshold = 0.85"), r"unknown key criteria\.treshold; allowed keys"),
        (("threshold = 0.85", "threshold = '0.85'"), r"threshold must be a number with op '>='"),
        (("name = \"auroc\"", "name = \"my test\""), r"may hold only letters"),
        (
            ("op = \">=\"", "op = \">=\"\nseverity = \"fatal\""),
            r"severity = 'fatal'.*'fail', 'warn'",
        ),
        (("op = \">=\"", "op = \">=\"\nbound = \"lower\""), r"bound = 'lower' is not allowed"),
        (("op = \">=\"", "op = \">=\"\nmin_n = -1"), r"min_n must be >= 0"),
        (("op = \">=\"", "op = \">=\"\nsmall_groups = 1"), r"small_groups: expected string"),
        (("name = \"auroc\"\n", ""), r"missing required key criteria\.name"),
        (("discrimination.auroc", "x.{grp}.auroc"), r"one '\{group\}' placeholder"),
    ],
)  # fmt: skip
def test_bad_criteria_name_key_value_and_allowed(
    tmp_path: Path, edit: tuple[str, str], match: str
) -> None:
    with pytest.raises(SpecError, match=match) as exc:
        read_spec(_write(tmp_path, HEAD + CRIT.replace(*edit)))
    assert "criteria[0]" in str(exc.value)


def test_duplicate_names_and_wrong_shape(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"duplicate criteria\.name 'auroc'"):
        read_spec(_write(tmp_path, HEAD + CRIT + CRIT))
    with pytest.raises(SpecError, match="array of tables"):
        read_spec(_write(tmp_path, "criteria = 3\n" + HEAD))


def test_baseline_section(tmp_path: Path) -> None:
    spec = read_spec(_write(tmp_path, HEAD + '[baseline]\npredictions = "p.csv"\nmargin = 0.02\n'))
    assert spec.has("baseline") and spec["baseline.metric"] == "auroc"
    crit = spec_criteria(spec)[-1]
    assert (crit.name, crit.key, crit.op, crit.threshold, crit.bound) == (
        "noninferiority.auroc",
        "noninferiority.auroc.difference",
        ">",
        -0.02,
        "low",
    )


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ('predictions = "p.csv"\n', r"missing required key baseline\.margin"),
        (
            'margin = 0.02\nmetric = "aucroc"\n',
            r"baseline\.metric = 'aucroc' is not a metric; did you mean 'auroc'\? Allowed",
        ),
        ("margin = 1.5\n", r"baseline\.margin must be a number in \[0, 1\)"),
        ('margin = 0.1\npredictions = "a"\nmodel = "b"\n', "not both"),
        ("margin = 0.1\nmargn = 2\n", r"unknown key baseline\.margn"),
    ],
)
def test_bad_baseline(tmp_path: Path, body: str, match: str) -> None:
    with pytest.raises(SpecError, match=match):
        read_spec(_write(tmp_path, HEAD + "[baseline]\n" + body))


def test_reserved_name(tmp_path: Path) -> None:
    text = HEAD + CRIT.replace('"auroc"\n', '"noninferiority.auroc"\n', 1)
    with pytest.raises(SpecError, match="reserved"):
        read_spec(_write(tmp_path, text + "[baseline]\nmargin = 0.02\n"))


def test_demo_spec_criteria_are_valid(tmp_path: Path) -> None:
    text = spec_template().format(name="m", center=40, width=400, size="64, 64", seed=0)
    spec = read_spec(_write(tmp_path, text))
    names = [c.name for c in spec.criteria]
    assert "internal-auroc" in names and "external-auroc" in names
    assert {c.severity for c in spec.criteria} == {"fail", "warn"}


def test_shipped_schema_is_current_and_validates_specs(tmp_path: Path) -> None:
    shipped = resources.files("medval.gate").joinpath("medval.schema.json").read_text("utf-8")
    assert shipped == json_schema_text(), "regenerate medval/gate/medval.schema.json"
    import jsonschema

    schema = json.loads(shipped)
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    demo = spec_template().format(name="m", center=40, width=400, size="64, 64", seed=0)
    assert not list(validator.iter_errors(tomllib.loads(demo)))
    bad = tomllib.loads(demo.replace('\nbound = "low"', '\nbnd = "low"', 1))
    assert [e.message for e in validator.iter_errors(bad)]
    assert json_schema()["properties"]["criteria"]["items"]["properties"]["op"]["enum"][0] == ">="
