"""The pytest plugin, run with ``pytester``: one item per criterion, fixtures, marker.

Most tests judge a precomputed ``result.json`` (``--medval-result``) or replace
``medval.run.run_spec`` by a stand-in that counts its calls, so no model runs;
one test runs the shipped example end to end on the demo cohort.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from medval import Estimate
from medval._result import ValidationResult

pytest_plugins = ["pytester"]

# pytester's in-process runs restore sys.modules afterwards: an extension module
# first imported inside one is dropped and cannot be loaded again ("cannot load
# module more than once per process"). Import what the plugin reaches up front,
# so this file also passes on its own, not only after other tests did it.
import medval.gate  # noqa: E402
import medval.report  # noqa: E402
import medval.run  # noqa: E402
import medval.stats  # noqa: E402, F401  (scipy.special and numpy.fft with it)

REPO = Path(__file__).resolve().parents[1]

SPEC = """
[task]
class_names = ["no lesion", "lesion"]
positive_class = "lesion"
[data]
dicom_dir = "cohort/dicom"
labels = "cohort/labels.csv"
[model]
file = "model.pt"

[[criteria]]
name = "auroc-goal"
key = "discrimination.auroc"
op = ">="
threshold = 0.85

[[criteria]]
name = "scanner-floor"
key = "subgroup.manufacturer={group}.auroc"
op = ">="
threshold = 0.85
min_n = 30
small_groups = "skip"

[[criteria]]
name = "ece"
key = "calibration.ece"
op = "<="
threshold = 0.05
severity = "warn"

[[criteria]]
name = "typo-key"
key = "discrimination.aurc"
op = ">="
threshold = 0.8
"""
NAMES = ["auroc-goal", "scanner-floor", "ece", "typo-key"]

HAND_WRITTEN = """
from medval.gate import require

def test_overall_auroc(medval_result):
    require(medval_result, "discrimination.auroc", ">=", 0.85)

def test_predictions(medval_predictions):
    assert len(medval_predictions.case_ids) == 4

def test_cohort(medval_cohort):
    assert list(medval_cohort.index) == ["c1", "c2", "c3", "c4"]

def test_plain():
    assert True
"""


def _est(value: float, low: float, high: float, n: int) -> Estimate:
    return Estimate(value, low, high, confidence_level=0.95, method="test", n=n)


def _result() -> ValidationResult:
    r = ValidationResult()
    r.estimates["discrimination.auroc"] = _est(0.91, 0.86, 0.95, 300)
    r.estimates["subgroup.manufacturer=GE.auroc"] = _est(0.90, 0.85, 0.94, 412)
    r.estimates["subgroup.manufacturer=Philips.auroc"] = _est(0.88, 0.842, 0.92, 412)
    r.estimates["subgroup.manufacturer=Tiny.auroc"] = _est(0.60, 0.30, 0.90, 12)
    r.estimates["calibration.ece"] = _est(0.05, 0.03, 0.08, 300)
    r.values["task.class_names"] = ["no lesion", "lesion"]
    r.values["task.positive_class"] = "lesion"
    return r


@pytest.fixture
def workdir(pytester: pytest.Pytester) -> Path:
    """A spec, a result.json and its predictions.csv in the pytester folder."""
    from medval.gate import write_predictions_csv

    (pytester.path / "medval.toml").write_text(SPEC, encoding="utf-8")
    _result().write_json(pytester.path / "result.json")
    write_predictions_csv(
        pytester.path / "predictions.csv",
        ["c1", "c2", "c3", "c4"],
        ["internal"] * 4,
        [0, 1, 0, 1],
        [0.1, 0.8, 0.3, 0.6],
    )
    return pytester.path


class _FakeRun:
    """Stands in for ``medval.run.run_spec``: counts calls, returns a fixed outcome."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.calls: list[dict[str, Any]] = []
        self.error = error

    def __call__(self, spec: Any, **kwargs: Any) -> Any:
        import pandas as pd

        from medval.gate import read_predictions_csv
        from medval.run import RunOutcome

        self.calls.append(kwargs)
        if self.error is not None:
            raise self.error
        folder = Path(spec.path).parent
        preds = read_predictions_csv(
            folder / "predictions.csv", class_names=["no lesion", "lesion"], positive_class="lesion"
        )
        cohort = pd.DataFrame({"split": ["internal"] * 4}, index=["c1", "c2", "c3", "c4"])
        return RunOutcome(
            _result(), folder, folder / "report.html", folder / "result.json", (), preds, cohort
        )


@pytest.fixture
def fake_run(monkeypatch: pytest.MonkeyPatch) -> _FakeRun:
    # Imported here, not first inside the in-process run (which unloads new modules).
    import pandas  # noqa: F401

    import medval.run

    fake = _FakeRun()
    monkeypatch.setattr(medval.run, "run_spec", fake)
    return fake


def test_one_item_per_criterion(pytester: pytest.Pytester, workdir: Path) -> None:
    res = pytester.runpytest("--medval-spec", "medval.toml", "--collect-only", "-q")
    res.stdout.fnmatch_lines([f"medval.toml::{n}" for n in NAMES] + ["4 tests collected*"])
    assert res.ret == pytest.ExitCode.OK


def test_baseline_criterion_is_an_item_too(pytester: pytest.Pytester, workdir: Path) -> None:
    spec = workdir / "medval.toml"
    spec.write_text(SPEC + '\n[baseline]\npredictions = "p.csv"\nmargin = 0.02\n', "utf-8")
    res = pytester.runpytest("--medval-spec", str(spec), "--collect-only", "-q")
    res.stdout.fnmatch_lines(["medval.toml::noninferiority.auroc", "5 tests collected*"])


def test_failing_criterion_is_a_failing_item_with_a_readable_message(
    pytester: pytest.Pytester, workdir: Path
) -> None:
    res = pytester.runpytest(
        "--medval-spec", "medval.toml", "--medval-result", "result.json", "--junitxml=j.xml"
    )
    res.assert_outcomes(passed=2, failed=2, warnings=1)
    assert res.ret == pytest.ExitCode.TESTS_FAILED
    res.stdout.fnmatch_lines(
        [
            "*medval criterion failed: scanner-floor (subgroup.manufacturer={group}.auroc)",
            "*auroc CI low 0.842 < 0.85 on manufacturer=Philips (n=412)",
            "*medval could not judge: typo-key (discrimination.aurc)",
            "*key 'discrimination.aurc' is not in the result*",
            "*ece: ece CI high 0.080 > 0.05 (n=300)",
        ]
    )
    assert "MedvalGateWarning" in res.stdout.str()
    # The group detail lists the small group as skipped.
    res.stdout.fnmatch_lines(["*skip*too few cases on manufacturer=Tiny (n=12) < min_n 30"])
    # pytest's own JUnit XML carries one testcase per criterion.
    cases = list(ET.parse(workdir / "j.xml").getroot().iter("testcase"))
    outcome = {c.attrib["name"]: [ch.tag for ch in c if ch.tag == "failure"] for c in cases}
    assert outcome == {
        "auroc-goal": [],
        "scanner-floor": ["failure"],
        "ece": [],
        "typo-key": ["failure"],
    }
    status = {c.attrib["name"]: c.find("properties/property").attrib["value"] for c in cases}  # type: ignore[union-attr]
    assert status == {
        "auroc-goal": "pass",
        "scanner-floor": "fail",
        "ece": "warn",
        "typo-key": "error",
    }


def test_spec_from_the_ini_file(pytester: pytest.Pytester, workdir: Path) -> None:
    pytester.makeini("[pytest]\nmedval_spec = medval.toml\n")
    res = pytester.runpytest("--medval-result", "result.json", "-k", "auroc-goal")
    res.assert_outcomes(passed=1, deselected=3)


def test_k_selects_criteria(pytester: pytest.Pytester, workdir: Path) -> None:
    res = pytester.runpytest(
        "--medval-spec", "medval.toml", "--medval-result", "result.json", "-k", "auroc-goal or ece"
    )
    res.assert_outcomes(passed=2, deselected=2, warnings=1)
    assert res.ret == pytest.ExitCode.OK


def test_fixtures_are_computed_once_per_session(
    pytester: pytest.Pytester, workdir: Path, fake_run: _FakeRun
) -> None:
    pytester.makepyfile(test_mine=HAND_WRITTEN)
    res = pytester.runpytest(
        "--medval-spec", "medval.toml", "--medval-out", "out", "-p", "no:cacheprovider"
    )
    # 4 hand-written tests pass; criteria: 2 pass, 2 fail (as above).
    res.assert_outcomes(passed=6, failed=2, warnings=1)
    assert len(fake_run.calls) == 1
    assert fake_run.calls[0]["out_dir"] == (workdir / "out").resolve()


def test_medval_marker_deselects_validation_without_running_it(
    pytester: pytest.Pytester, workdir: Path, fake_run: _FakeRun
) -> None:
    pytester.makepyfile(test_mine=HAND_WRITTEN)
    res = pytester.runpytest("--medval-spec", "medval.toml", "-m", "not medval")
    # Only test_plain is left: every criterion and every fixture user is "medval".
    res.assert_outcomes(passed=1, deselected=7)
    assert fake_run.calls == []
    res = pytester.runpytest("--medval-spec", "medval.toml", "-m", "medval", "--co", "-q")
    res.stdout.fnmatch_lines(["*7/8 tests collected (1 deselected)*"])


def test_marker_is_registered_for_strict_markers(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        "import pytest\n\n@pytest.mark.medval\ndef test_slow_validation():\n    pass\n"
    )
    res = pytester.runpytest("--strict-markers")
    res.assert_outcomes(passed=1)
    res = pytester.runpytest("--markers")
    res.stdout.fnmatch_lines(["@pytest.mark.medval: a validation test*slow*"])


def test_crashing_analysis_is_an_error_never_a_pass(
    pytester: pytest.Pytester, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pandas  # noqa: F401

    import medval.run

    fake = _FakeRun(error=RuntimeError("analysis crashed"))
    monkeypatch.setattr(medval.run, "run_spec", fake)
    pytester.makepyfile(test_mine=HAND_WRITTEN)
    res = pytester.runpytest("--medval-spec", "medval.toml", "-k", "not plain")
    res.assert_outcomes(errors=7, deselected=1)
    assert res.ret == pytest.ExitCode.TESTS_FAILED
    res.stdout.fnmatch_lines(["*RuntimeError: analysis crashed*"])
    assert len(fake.calls) == 1  # tried once, the same error reported for every item


def test_malformed_spec_is_a_usage_error_naming_the_key(
    pytester: pytest.Pytester, workdir: Path
) -> None:
    spec = workdir / "medval.toml"
    spec.write_text(SPEC.replace("threshold = 0.85", "treshold = 0.85", 1), "utf-8")
    res = pytester.runpytest("--medval-spec", "medval.toml")
    assert res.ret == pytest.ExitCode.USAGE_ERROR
    res.stderr.fnmatch_lines(
        ["*--medval-spec: medval.toml: criteria[[]0[]]*unknown key criteria.treshold*"]
    )


def test_fixtures_skip_without_a_spec(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_auroc(medval_result):\n    assert medval_result\n")
    res = pytester.runpytest("-rs")
    res.assert_outcomes(skipped=1)
    res.stdout.fnmatch_lines(["*no medval spec: pass --medval-spec medval.toml*"])


def test_fixtures_from_an_existing_result(pytester: pytest.Pytester, workdir: Path) -> None:
    pytester.makepyfile(
        """
        import numpy as np

        def test_result(medval_result):
            assert medval_result.estimates["discrimination.auroc"].low == 0.86

        def test_predictions(medval_predictions):
            assert list(medval_predictions.case_ids) == ["c1", "c2", "c3", "c4"]
            np.testing.assert_allclose(medval_predictions.probabilities[:, 1], [0.1, 0.8, 0.3, 0.6])
            assert list(medval_predictions.labels) == [0, 1, 0, 1]
        """
    )
    res = pytester.runpytest(
        "--medval-spec", "medval.toml", "--medval-result", "result.json", "-k", "test_"
    )
    res.assert_outcomes(passed=2, deselected=4)


def _modules_after(code: str, tmp_path: Path) -> tuple[set[str], str]:
    """Run ``code`` in a fresh interpreter; the top-level modules it imported, and stdout."""
    out = tmp_path / "modules.json"
    script = (
        f"{code}\nimport json, sys\n"
        f"open({str(out)!r}, 'w').write(json.dumps(sorted(sys.modules)))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return set(json.loads(out.read_text())), proc.stdout


def test_importing_the_plugin_imports_no_torch(tmp_path: Path) -> None:
    modules, _ = _modules_after("import medval.pytest_plugin", tmp_path)
    assert "medval.pytest_plugin" in modules
    heavy = {m.split(".")[0] for m in modules} & {"torch", "evidently", "pydicom", "matplotlib"}
    assert not heavy


def test_pytest_help_imports_no_torch(tmp_path: Path) -> None:
    modules, stdout = _modules_after("import pytest\npytest.main(['--help'])", tmp_path)
    assert "medval.pytest_plugin" in modules and "--medval-spec" in stdout  # plugin loaded
    heavy = {m.split(".")[0] for m in modules} & {"torch", "evidently", "pydicom", "matplotlib"}
    assert not heavy


def test_repo_pytest_collects_only_tests() -> None:
    import tomllib

    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    assert config["tool"]["pytest"]["ini_options"]["testpaths"] == ["tests"]


def test_example_runs_on_the_demo(pytester: pytest.Pytester, demo_run: Path) -> None:
    """examples/medval.toml and examples/test_validation.py, as the README runs them."""
    from medval.gate import read_spec, spec_criteria

    shutil.copytree(REPO / "examples", pytester.path / "examples")
    (pytester.path / "medval-demo").symlink_to(demo_run, target_is_directory=True)
    criteria = [c.name for c in spec_criteria(read_spec(pytester.path / "examples/medval.toml"))]
    res = pytester.runpytest_subprocess(
        "examples/test_validation.py",
        "--medval-spec",
        "examples/medval.toml",
        "--medval-out",
        "validation",
        "--junitxml=validation/pytest.xml",
        "-p",
        "no:cacheprovider",
    )
    outcomes = res.parseoutcomes()
    assert "failed" not in outcomes and "errors" not in outcomes, res.stdout.str()
    xml = ET.parse(pytester.path / "validation" / "pytest.xml")
    names = [c.attrib["name"] for c in xml.iter("testcase")]
    hand_written = [n for n in names if n.startswith("test_")]
    assert [n for n in names if not n.startswith("test_")] == criteria
    assert len(hand_written) == 5 and outcomes["passed"] == len(criteria) + 5
    assert (pytester.path / "validation" / "report.html").is_file()
