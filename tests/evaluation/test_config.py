"""One configuration, declared once: spec tables, JSON Schema, evaluate, README, checks."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest

from medval import EvaluationConfig, SpecError, evaluate
from medval.gate import (
    CHOICES,
    SCHEMA,
    SPEC_KEYS,
    check_values,
    json_schema,
    read_spec,
    reference_table,
    settings,
)
from medval.run import spec_template

from .conftest import synthetic

README = Path(__file__).resolve().parents[2] / "README.md"
_GENERATED_SECTIONS = ("analysis", "conformal", "uncertainty", "shift")


def _plain(value: Any) -> Any:
    return [_plain(v) for v in value] if isinstance(value, (list, tuple)) else value


def test_every_setting_is_a_spec_key_with_the_same_default_and_choices() -> None:
    for s in settings():
        section, key = s.key.split(".")
        types, default = SCHEMA[section][key]
        assert types == s.types, s.key
        if s.key != "baseline.margin":  # required when [baseline] is given
            assert default == _plain(s.default), s.key
        if s.choices:
            assert CHOICES[section][key] == s.choices
            prop = json_schema()["properties"][section]["properties"][key]
            assert prop["enum"] == list(s.choices)


def test_the_evaluation_sections_of_the_spec_hold_only_settings() -> None:
    declared = {s.key for s in settings()}
    for section in _GENERATED_SECTIONS:
        for key in SCHEMA[section]:
            assert f"{section}.{key}" in declared, (
                f"{section}.{key} is not an EvaluationConfig field"
            )


def test_evaluate_takes_exactly_the_config_fields() -> None:
    assert list(SPEC_KEYS) == [f.name for f in dataclasses.fields(EvaluationConfig)]
    preds, cohort = synthetic(1, mc=False)
    with pytest.raises(TypeError, match="did you mean 'subgroup_columns'"):
        evaluate(preds, cohort, subgroup_column=["sex"])
    with pytest.raises(TypeError, match="'random_state' is now 'seed'"):
        evaluate(preds, cohort, random_state=1)
    with pytest.raises(TypeError, match="conformal=False"):
        evaluate(preds, cohort, conformal_method=None)


def test_keywords_and_config_give_the_same_result() -> None:
    preds, cohort = synthetic(2, mc=False)
    config = EvaluationConfig(seed=3, n_resamples=300, subgroup_columns=("sex",))
    a = evaluate(preds, cohort, config=config)
    b = evaluate(preds, cohort, seed=3, n_resamples=300, subgroup_columns=["sex"])
    assert a.to_json() == b.to_json()
    assert a.provenance["settings"]["analysis.seed"] == 3
    assert a.provenance["settings"]["shift.subgroup_columns"] == ["sex"]
    # A keyword overrides the config it is given with.
    c = evaluate(preds, cohort, config=config, seed=4)
    assert c.provenance["seed"] == 4


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("n_resamples", 50, "n_resamples must be an integer >= 100; got 50"),
        ("n_resamples", 200.0, "n_resamples must be an integer >= 100; got 200.0"),
        ("confidence_level", 1.2, r"confidence_level must be a number in [0.5, 1); got 1.2"),
        ("confidence_level", float("nan"), "confidence_level must be a number in [0.5, 1)"),
        ("triage_max_fnr", 0.7, "triage_max_fnr must be a number in (0, 0.5); got 0.7"),
        ("small_cell", 0, "small_cell must be an integer >= 1; got 0"),
        ("conformal", "yes", "conformal must be true or false; got 'yes'"),
        ("bootstrap_method", "bca2", "did you mean 'bca'?"),
        ("uncertainty_measure", "varience", "did you mean 'variance'?"),
        ("reference_metric", "aurco", "did you mean 'auroc'?"),
        ("reference_margin", 1.5, "reference_margin must be a number in [0, 1); got 1.5"),
    ],
)
def test_values_are_checked_from_the_declaration(field: str, value: Any, message: str) -> None:
    config = dataclasses.replace(EvaluationConfig(), **{field: value})
    with pytest.raises(SpecError) as exc:
        check_values(config)
    assert message in str(exc.value)
    # The same check names the spec key when it comes from a spec.
    with pytest.raises(SpecError) as exc:
        check_values(config, keys=SPEC_KEYS, source="medval.toml")
    assert f"medval.toml: {SPEC_KEYS[field]}" in str(exc.value)


def test_a_bad_value_in_a_spec_exits_before_anything_runs(tmp_path: Path) -> None:
    text = spec_template().format(name="m", center=40, width=400, size="64, 64", seed=0)
    text = text.replace("[shift]\n", '[uncertainty]\nmeasure = "varience"\n\n[shift]\n')
    path = tmp_path / "medval.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SpecError, match=r"uncertainty\.measure = 'varience'.*did you mean"):
        read_spec(path)


def test_a_spec_and_its_config_agree(tmp_path: Path) -> None:
    text = spec_template().format(name="m", center=40, width=400, size="64, 64", seed=7)
    path = tmp_path / "medval.toml"
    path.write_text(text, encoding="utf-8")
    spec = read_spec(path)
    config = EvaluationConfig.from_sections(spec.sections)
    assert config.seed == 7 and config.test_splits == ("internal", "external")
    for key, value in config.as_spec().items():
        assert _plain(spec[key] if spec.sections.get(key.split(".")[0]) else value) == value


def test_the_readme_settings_table_is_generated_from_the_declaration() -> None:
    text = README.read_text(encoding="utf-8")
    block = re.search(r"<!-- settings:start -->\n(.*?)<!-- settings:end -->", text, re.S)
    assert block is not None, "README lost its generated settings table"
    assert block.group(1) == reference_table(), (
        "README's settings table is stale: replace the block with medval.gate.reference_table()"
    )
