"""``medval plan`` through ``medval.cli.main``: table, JSON, pilot, and every error path."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from medval._result import ValidationResult
from medval._types import Estimate
from medval.cli import main
from medval.stats import auroc_sample_size, noninferiority_sample_size, sensitivity_sample_size


def _estimate(value: float) -> Estimate:
    return Estimate(
        value=value,
        low=value - 0.05,
        high=value + 0.05,
        confidence_level=0.95,
        method="wilson",
        n=100,
    )


@pytest.fixture
def pilot(tmp_path: Path) -> Path:
    result = ValidationResult(
        estimates={
            "discrimination.auroc": _estimate(0.8),
            "operating_point.sensitivity": _estimate(0.85),
            "operating_point.specificity": _estimate(0.9),
        },
        values={"cohort.n_cases": 200, "cohort.n_positive": 50},
        tables={
            "subgroup.manufacturer": [
                {
                    "column": "manufacturer",
                    "value": "GE",
                    "n": 60,
                    "events": 12,
                    "metrics": {"auroc": {"estimate": {"value": 0.75}}},
                },
                {
                    "column": "manufacturer",
                    "value": "Siemens",
                    "n": 140,
                    "events": 38,
                    "metrics": {"auroc": {"estimate": {"value": 0.85}}},
                },
            ]
        },
    )
    path = tmp_path / "result.json"
    result.write_json(path)
    return path


def _json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:
    assert main(["plan", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_table_lists_every_target(capsys: pytest.CaptureFixture[str]) -> None:
    argv = [
        "plan",
        "--auroc",
        "0.85",
        "--prevalence",
        "0.2",
        "--sensitivity",
        "0.9",
        "--specificity",
        "0.8",
        "--margin",
        "0.05",
        "--images-per-patient",
        "3",
        "--icc",
        "0.3",
        "--subgroup",
        "GE=0.3",
        "--subgroup",
        "Siemens=0.7,auroc=0.9",
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    for label in (
        "auroc ",
        "sensitivity ",
        "specificity ",
        "auroc non-inferiority",
        "auroc [Siemens]",
        "set by GE",
    ):
        assert label in out
    want = auroc_sample_size(0.85, prevalence=0.2, half_width=0.05, images_per_patient=3, icc=0.3)
    auroc_row = next(line for line in out.splitlines() if line.startswith("auroc "))
    assert auroc_row.split()[-4:] == [
        str(want.n_cases),
        str(want.n_positive),
        str(want.n_negative),
        str(want.n_patients),
    ]


def test_json_matches_the_planners(capsys: pytest.CaptureFixture[str]) -> None:
    plan = _json(
        capsys,
        "--auroc",
        "0.8",
        "--prevalence",
        "0.3",
        "--margin",
        "0.05",
        "--auroc-correlation",
        "0.6",
        "--power",
        "0.9",
        "--difference",
        "0.01",
        "--confidence-level",
        "0.9",
        "--half-width",
        "0.04",
    )
    rows = {r["what"]: r for r in plan["targets"]}
    ni = noninferiority_sample_size(
        0.8,
        prevalence=0.3,
        margin=0.05,
        correlation=0.6,
        power=0.9,
        difference=0.01,
        confidence_level=0.9,
    )
    assert rows["auroc non-inferiority"]["n_cases"] == ni.n_cases
    assert (
        rows["auroc"]["n_cases"]
        == auroc_sample_size(0.8, prevalence=0.3, half_width=0.04, confidence_level=0.9).n_cases
    )
    assert plan["subgroups"] == {}


def test_pilot_supplies_the_assumed_values(capsys: pytest.CaptureFixture[str], pilot: Path) -> None:
    plan = _json(
        capsys, "--pilot", str(pilot), "--pilot-subgroup", "manufacturer", "--sensitivity", "0.7"
    )
    overall = {r["what"]: r for r in plan["targets"] if r["subgroup"] is None}
    assert overall["auroc"]["assumptions"] == {"auroc": 0.8, "prevalence": 0.25, "icc": 0.0}
    assert overall["sensitivity"]["assumptions"]["sensitivity"] == 0.7  # the option wins
    assert overall["specificity"]["assumptions"]["specificity"] == 0.9
    ge = auroc_sample_size(0.75, prevalence=0.2, half_width=0.05)
    total = plan["subgroups"]["auroc"]
    assert total["shares"] == {"GE": 0.3, "Siemens": 0.7}
    assert total["subgroups"]["GE"]["n_patients"] == ge.n_patients
    assert total["n_patients"] >= ge.n_patients / 0.3
    sens = sensitivity_sample_size(0.7, prevalence=0.2, half_width=0.05)
    assert plan["subgroups"]["sensitivity"]["subgroups"]["GE"]["n_cases"] == sens.n_cases


def test_demo_result_as_pilot(capsys: pytest.CaptureFixture[str], demo_run: Path) -> None:
    demo = demo_run / "result.json"
    plan = _json(capsys, "--pilot", str(demo), "--pilot-subgroup", "manufacturer")
    assert {r["subgroup"] for r in plan["targets"]} >= {None, "Aster Medical"}


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["--auroc", "1.2", "--prevalence", "0.2"], r"--auroc 1\.2: must lie strictly"),
        (["--auroc", "0.8", "--prevalence", "1.5"], r"--prevalence 1\.5"),
        (["--auroc", "0.8", "--prevalence", "0.2", "--half-width", "0"], "--half-width 0.0"),
        (["--auroc", "0.8", "--prevalence", "0.2", "--icc", "2"], "--icc 2.0"),
        (
            ["--auroc", "0.8", "--prevalence", "0.2", "--images-per-patient", "0"],
            "--images-per-patient 0",
        ),
        (
            [
                "--auroc",
                "0.8",
                "--prevalence",
                "0.2",
                "--margin",
                "0.05",
                "--auroc-correlation",
                "1",
            ],
            "--auroc-correlation 1.0",
        ),
        (
            ["--auroc", "0.8", "--prevalence", "0.2", "--margin", "0.05", "--power", "1"],
            "--power 1.0",
        ),
        (["--auroc", "0.8", "--prevalence", "0.2", "--confidence-level", "1"], "confidence_level"),
        (["--prevalence", "0.2"], "nothing to plan"),
        (["--auroc", "0.8"], "--prevalence is required"),
        (["--sensitivity", "0.8", "--prevalence", "0.2", "--margin", "0.05"], "--margin needs"),
        (["--auroc", "0.8", "--prevalence", "0.2", "--subgroup", "GE"], "expected NAME=SHARE"),
        (
            ["--auroc", "0.8", "--prevalence", "0.2", "--subgroup", "GE=0.3,foo=1"],
            "expected NAME=SHARE",
        ),
        (["--auroc", "0.8", "--prevalence", "0.2", "--subgroup", "GE=1.3"], r"share must lie"),
        (
            ["--auroc", "0.8", "--prevalence", "0.2", "--pilot-subgroup", "sex"],
            "--pilot-subgroup needs --pilot",
        ),
    ],
)
def test_bad_options_exit_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], match: str
) -> None:
    assert main(["plan", *argv]) == 2
    assert re.search(match, capsys.readouterr().err)


def test_pilot_errors(capsys: pytest.CaptureFixture[str], pilot: Path, tmp_path: Path) -> None:
    assert main(["plan", "--pilot", str(pilot), "--pilot-subgroup", "sex"]) == 2
    assert "its subgroup columns: manufacturer" in capsys.readouterr().err
    assert main(["plan", "--pilot", str(tmp_path / "missing.json")]) == 3
    assert "does not exist" in capsys.readouterr().err


def test_argparse_rejects_a_non_number(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["plan", "--auroc", "high"])
    assert info.value.code == 2
    assert "--auroc" in capsys.readouterr().err
