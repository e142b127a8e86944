"""`medval diff` and `diff_results`: do two runs agree within tolerance?"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from medval import DataError, Estimate, ExitCode, InputError, ValidationResult
from medval.cli import main
from medval.diff import DEFAULT_TOLERANCE, ResultDiff, assert_results_agree, diff_results, within

MODEL = "a" * 64
RETRAINED = "b" * 64


def _result(**changes: Any) -> ValidationResult:
    """A small hand-built result; ``changes`` maps a key to a new estimate/value/table."""
    est = {
        "discrimination.auroc": Estimate(
            0.912345, 0.871, 0.948, method="bootstrap_bca", n=126, seed=0, n_resamples=2000
        ),
        "calibration.slope": Estimate(1.08, 0.8, 1.4, method="bootstrap_percentile", n=126),
        "rates.sensitivity": Estimate(0.81, 0.7, 0.9, method="wilson", n=60),
    }
    values: dict[str, Any] = {
        "operating_point.threshold": 0.4213,
        "cohort.n_cases": 126,
        "evaluation.primary_split": "test",
        "conformal.enabled": True,
        "shift.summary": {"psi": 0.013, "groups": [0.1, 0.2]},
        "gate.status": "passed",
        "gate.counts": {"pass": 2, "warn": 0, "fail": 0, "error": 0},
    }
    tables: dict[str, Any] = {
        "curves.roc": [{"fpr": 0.0, "tpr": 0.1}, {"fpr": 0.5, "tpr": 0.9}],
        "gate.verdicts": [
            {"name": "auroc", "status": "pass", "observed": 0.871, "reason": "auroc 0.871"},
            {"name": "sens", "status": "pass", "observed": 0.7, "reason": "sens 0.700"},
        ],
    }
    provenance: dict[str, Any] = {
        "model_sha256": MODEL,
        "data_manifest_sha256": "d" * 64,
        "spec_sha256": "s" * 64,
        "command": "medval validate medval.toml",
        "versions": {"torch": "2.3.0", "numpy": "2.0.0"},
        "platform": "Linux x86_64, Python 3.11",
        "git_commit": "c" * 40,
    }
    for key, new in changes.items():
        store = next(
            s for s in (est, values, tables, provenance) if key in s or isinstance(new, Estimate)
        )
        if new is None:
            del store[key]
        else:
            store[key] = new
    return ValidationResult(estimates=est, values=values, tables=tables, provenance=provenance)


def _write(tmp_path: Path, name: str, result: ValidationResult) -> str:
    path = tmp_path / f"{name}.json"
    result.write_json(path)
    return str(path)


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["diff", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


_AUROC_SETTINGS: dict[str, Any] = {
    "method": "bootstrap_bca",
    "n": 126,
    "seed": 0,
    "n_resamples": 2000,
}


def _auroc(value: float, **kw: Any) -> Estimate:
    fields = {**_AUROC_SETTINGS, **kw}
    return Estimate(value, 0.871, 0.948, **fields)


# --- the tolerance rule ------------------------------------------------------------------


def test_within_is_absolute_up_to_one_and_relative_above() -> None:
    assert within(0.5, 0.5 + 0.9e-4, 1e-4)
    assert not within(0.5, 0.5 + 1.1e-4, 1e-4)
    assert within(1000.0, 1000.09, 1e-4)  # relative: 1e-4 * 1000 = 0.1
    assert not within(1000.0, 1000.2, 1e-4)
    assert within(0.3, 0.3, 0.0)


def test_default_tolerance_is_a_named_constant() -> None:
    import medval.diff._compare as mod

    assert DEFAULT_TOLERANCE == mod.DEFAULT_TOLERANCE == 1e-4
    assert "summation order" in (mod.diff_results.__doc__ or "")


# --- the API -----------------------------------------------------------------------------


def test_identical_results_agree_with_no_movement() -> None:
    d = diff_results(_result(), _result())
    assert d.agree
    assert d.differences == ()
    assert d.largest is None
    assert d.compared == {"estimates": 3, "values": 7, "tables": 2}
    assert all(h.equal for h in d.hashes)
    assert d.table().startswith(f"runs agree within tolerance {DEFAULT_TOLERANCE:g}")


def test_resultdiff_refuses_truthiness() -> None:
    with pytest.raises(TypeError, match="agree"):
        bool(diff_results(_result(), _result()))


def test_small_movement_agrees_and_is_reported_as_largest() -> None:
    d = diff_results(_result(), _result(**{"discrimination.auroc": _auroc(0.912345 + 3e-7)}))
    assert d.agree
    assert d.largest is not None
    assert d.largest[1:] == ("discrimination.auroc", "value")
    assert d.largest[0] == pytest.approx(3e-7)


def test_movement_beyond_tolerance_is_listed_largest_first() -> None:
    b = _result(
        **{
            "discrimination.auroc": _auroc(0.95),
            "operating_point.threshold": 0.4215,
            "curves.roc": [{"fpr": 0.0, "tpr": 0.1}, {"fpr": 0.5, "tpr": 0.8}],
        }
    )
    d = diff_results(_result(), b)
    assert not d.agree
    moved = [(x.key, x.field) for x in d.sorted_differences()]
    assert moved == [
        ("curves.roc", "[1].tpr"),
        ("discrimination.auroc", "value"),
        ("operating_point.threshold", ""),
    ]
    first = d.sorted_differences()[0]
    assert first.kind == "moved"
    assert first.abs_diff == pytest.approx(0.1)
    assert d.table().startswith("runs differ beyond tolerance 0.0001: 3 differences")


def test_estimate_settings_must_be_equal() -> None:
    b = _result(**{"discrimination.auroc": _auroc(0.912345, method="bootstrap_percentile", n=125)})
    d = diff_results(_result(), b, tolerance=1.0)
    got = {(x.field, x.kind) for x in d.differences}
    assert got == {("method", "changed"), ("n", "changed")}


def test_estimable_in_one_run_only_is_a_change() -> None:
    not_estimable = Estimate(0.9, **_AUROC_SETTINGS, reason="one class in a resample")
    b = _result(**{"discrimination.auroc": not_estimable})
    d = diff_results(_result(), b, tolerance=1.0)
    assert {(x.field, x.kind) for x in d.differences} == {
        ("low", "changed"),
        ("high", "changed"),
    }


def test_values_compare_strings_exactly_and_nested_element_wise() -> None:
    b = _result(
        **{
            "evaluation.primary_split": "external",
            "conformal.enabled": False,
            "cohort.n_cases": 127,
            "shift.summary": {"psi": 0.013, "groups": [0.1, 0.2, 0.3]},
        }
    )
    d = diff_results(_result(), b, tolerance=0.5)
    got = {(x.key, x.field, x.kind) for x in d.differences}
    assert got == {
        ("evaluation.primary_split", "", "changed"),
        ("conformal.enabled", "", "changed"),
        ("cohort.n_cases", "", "moved"),  # counts are exact whatever the tolerance
        ("shift.summary", "groups(length)", "changed"),
    }


def test_table_row_count_must_match() -> None:
    b = _result(**{"curves.roc": [{"fpr": 0.0, "tpr": 0.1}]})
    (x,) = diff_results(_result(), b).differences
    assert (x.key, x.field, x.a, x.b, x.kind) == ("curves.roc", "(rows)", 2, 1, "changed")


def test_verdict_change_differs_even_with_a_huge_tolerance() -> None:
    b = _result()
    b.tables["gate.verdicts"][1] = {"name": "sens", "status": "fail", "observed": 0.7,
                                    "reason": "sens 0.700 < 0.75"}  # fmt: skip
    b.values["gate.status"] = "failed"
    b.values["gate.counts"] = {"pass": 1, "warn": 0, "fail": 1, "error": 0}
    d = diff_results(_result(), b, tolerance=1e6)
    assert not d.agree
    got = {(x.key, x.field, x.kind) for x in d.differences}
    assert got == {
        ("gate.verdicts", "[sens].status", "verdict changed"),
        ("gate.status", "", "verdict changed"),
        ("gate.counts", "", "verdict changed"),
    }


def test_verdict_reason_text_alone_is_not_a_difference() -> None:
    b = _result()
    b.tables["gate.verdicts"][0] = {**b.tables["gate.verdicts"][0], "reason": "auroc 0.872"}
    assert diff_results(_result(), b).agree


def test_retrained_model_differs_by_hash_and_names_the_moved_keys() -> None:
    b = _result(model_sha256=RETRAINED, **{"discrimination.auroc": _auroc(0.89)})
    d = diff_results(_result(), b)
    assert not d.agree
    first, second = d.sorted_differences()
    assert (first.key, first.kind) == ("provenance.model_sha256", "hash differs")
    assert (second.key, second.field) == ("discrimination.auroc", "value")
    (model,) = [h for h in d.hashes if h.name == "model_sha256"]
    assert not model.equal
    assert model.decisive


def test_spec_hash_command_and_versions_are_informational() -> None:
    b = _result(
        spec_sha256="t" * 64,
        command="medval validate other.toml",
        versions={"torch": "2.4.0", "numpy": "2.0.0"},
        platform="Darwin arm64, Python 3.11",
    )
    d = diff_results(_result(), b)
    assert d.agree
    changed = {i.name for i in d.informational if not i.equal}
    assert changed == {"result_sha256", "command", "versions.torch", "platform"}
    assert "versions.torch" in d.table()
    (spec,) = [h for h in d.hashes if h.name == "spec_sha256"]
    assert not spec.equal
    assert not spec.decisive


def test_keys_only_in_one_run_are_differences() -> None:
    b = _result(**{"rates.sensitivity": None, "rates.specificity": Estimate(0.8, 0.7, 0.9)})
    d = diff_results(_result(), b)
    got = {(x.key, x.kind, x.a, x.b) for x in d.differences}
    assert got == {
        ("rates.sensitivity", "only in A", 0.81, None),
        ("rates.specificity", "only in B", None, 0.8),
    }
    assert "keys only in A: 1, only in B: 1" in d.table()


def test_keys_patterns_restrict_the_comparison() -> None:
    b = _result(**{"discrimination.auroc": _auroc(0.95), "calibration.slope": Estimate(1.5, 1, 2)})
    assert diff_results(_result(), b, keys="rates.*").agree
    d = diff_results(_result(), b, keys=["discrimination.*", "operating_point.*"])
    assert [x.key for x in d.differences] == ["discrimination.auroc"]
    assert d.compared == {"estimates": 1, "values": 1, "tables": 0}


def test_keys_matching_nothing_is_an_error() -> None:
    with pytest.raises(InputError, match=r"match no key of either run.*discrimination"):
        diff_results(_result(), _result(), keys="discrimnation.*")


@pytest.mark.parametrize("bad", [-1e-4, float("nan"), float("inf")])
def test_bad_tolerance_is_refused(bad: float) -> None:
    with pytest.raises(InputError, match="tolerance must be a finite number >= 0"):
        diff_results(_result(), _result(), tolerance=bad)


def test_paths_and_folders_are_read(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    _result().write_json(tmp_path / "run" / "result.json")
    d = diff_results(tmp_path / "run", _write(tmp_path, "b", _result()))
    assert d.agree
    assert d.sources[0].endswith("result.json")
    digest_a, digest_b = d.informational[0].a, d.informational[0].b
    assert digest_a == digest_b


def test_to_dict_is_json() -> None:
    b = _result(model_sha256=RETRAINED, **{"discrimination.auroc": _auroc(0.89)})
    data = json.loads(json.dumps(diff_results(_result(), b).to_dict()))
    assert data["agree"] is False
    assert data["differences"][0]["kind"] == "hash differs"
    assert data["differences"][1]["abs_diff"] == pytest.approx(0.022345)
    assert {h["name"] for h in data["hashes"]} == {"model_sha256", "data_manifest_sha256",
                                                   "spec_sha256"}  # fmt: skip


def test_missing_and_malformed_files_are_data_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(DataError, match=r"run A: .*nope\.json does not exist"):
        diff_results(tmp_path / "nope.json", _result())
    with pytest.raises(DataError, match=r"run B: .*bad\.json is not JSON"):
        diff_results(_result(), bad)
    with pytest.raises(InputError, match=r"must be a path to result\.json"):
        diff_results(_result(), 42)


# --- assert_results_agree ----------------------------------------------------------------


def test_assert_results_agree_passes_and_raises_with_the_table(tmp_path: Path) -> None:
    a = _write(tmp_path, "a", _result())
    assert_results_agree(a, _result())
    with pytest.raises(AssertionError, match=r"(?s)runs differ.*discrimination\.auroc"):
        assert_results_agree(a, _result(**{"discrimination.auroc": _auroc(0.95)}))
    assert_results_agree(a, _result(**{"discrimination.auroc": _auroc(0.95)}), tolerance=0.05)


def test_assert_results_agree_is_exported_lazily() -> None:
    import medval
    import medval.testing

    assert medval.assert_results_agree is assert_results_agree
    assert medval.testing.assert_results_agree is assert_results_agree
    assert medval.diff_results is diff_results
    assert isinstance(medval.diff_results(_result(), _result()), ResultDiff)


# --- the command line --------------------------------------------------------------------


def test_cli_identical_runs_exit_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = _write(tmp_path, "a", _result()), _write(tmp_path, "b", _result())
    code, out, err = _cli(capsys, a, b)
    assert code == ExitCode.OK
    assert out.startswith("runs agree within tolerance 0.0001")
    assert err == ""


def test_cli_moved_estimate_exits_1_naming_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = _write(tmp_path, "a", _result())
    b = _write(tmp_path, "b", _result(**{"discrimination.auroc": _auroc(0.9125)}))
    code, out, _ = _cli(capsys, a, b)
    assert code == ExitCode.GATE_FAILED
    assert "runs differ" in out
    assert "discrimination.auroc value" in out
    assert "0.912345" in out
    assert "0.9125" in out
    code, out, _ = _cli(capsys, a, b, "--tolerance", "1e-3")
    assert code == ExitCode.OK
    assert "runs agree within tolerance 0.001" in out


def test_cli_verdict_change_exits_1_with_huge_tolerance(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    changed = _result(**{"gate.status": "failed"})
    a, b = _write(tmp_path, "a", _result()), _write(tmp_path, "b", changed)
    code, out, _ = _cli(capsys, a, b, "--tolerance", "1000")
    assert code == ExitCode.GATE_FAILED
    assert "verdict changed" in out
    assert "gate.status" in out


def test_cli_retrained_model_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    retrained = _result(model_sha256=RETRAINED, **{"discrimination.auroc": _auroc(0.89)})
    a, b = _write(tmp_path, "a", _result()), _write(tmp_path, "b", retrained)
    code, out, _ = _cli(capsys, a, b)
    assert code == ExitCode.GATE_FAILED
    assert "model_sha256           DIFFERS" in out
    assert "hash differs" in out
    assert "discrimination.auroc value" in out


def test_cli_keys_is_repeatable(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = _write(tmp_path, "a", _result())
    b = _write(tmp_path, "b", _result(**{"discrimination.auroc": _auroc(0.95)}))
    code, _, _ = _cli(capsys, a, b, "--keys", "rates.*", "--keys", "calibration.*")
    assert code == ExitCode.OK
    code, out, _ = _cli(capsys, a, b, "--keys", "rates.*", "--keys", "discrimination.*")
    assert code == ExitCode.GATE_FAILED
    assert "discrimination.auroc" in out


def test_cli_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = _write(tmp_path, "a", _result())
    b = _write(tmp_path, "b", _result(**{"rates.sensitivity": None}))
    code, out, _ = _cli(capsys, a, b, "--json")
    assert code == ExitCode.GATE_FAILED
    data = json.loads(out)
    assert data["agree"] is False
    assert data["differences"][0]["key"] == "rates.sensitivity"
    assert data["differences"][0]["kind"] == "only in A"


def _not_a_result(tmp_path: Path) -> Path:
    path = tmp_path / "other.json"
    path.write_text('{"hello": "world"}', encoding="utf-8")
    return path


def _wrong_schema(tmp_path: Path) -> Path:
    data = copy.deepcopy(_result().to_dict())
    data["schema"] = "medval.result/99"
    path = tmp_path / "future.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def _not_json(tmp_path: Path) -> Path:
    path = tmp_path / "broken.json"
    path.write_text("{not json", encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p / "missing.json", r"run B: .*missing\.json does not exist"),
        (_not_json, r"run B: .*broken\.json is not JSON"),
        (_not_a_result, r"run B: .*other\.json is JSON but not a medval result"),
        (_wrong_schema, r"run B: .*future\.json is not a valid medval result.*medval\.result/99"),
    ],
)
def test_cli_bad_input_exits_2_naming_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], make: Any, message: str
) -> None:
    a = _write(tmp_path, "a", _result())
    code, out, err = _cli(capsys, a, str(make(tmp_path)))
    assert code == ExitCode.USAGE_ERROR
    assert out == ""
    assert err.startswith("medval: error: run B:")
    assert "pass the result.json written by" in err
    assert re.search(message, err)


@pytest.mark.parametrize("bad", ["-0.1", "nan"])
def test_cli_bad_tolerance_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], bad: str
) -> None:
    a = _write(tmp_path, "a", _result())
    code, _, err = _cli(capsys, a, a, f"--tolerance={bad}")
    assert code == ExitCode.USAGE_ERROR
    assert "medval: error: tolerance must be a finite number >= 0" in err


def test_cli_non_number_tolerance_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = _write(tmp_path, "a", _result())
    with pytest.raises(SystemExit) as info:
        main(["diff", a, a, "--tolerance", "tiny"])
    assert info.value.code == ExitCode.USAGE_ERROR
    assert "invalid float value: 'tiny'" in capsys.readouterr().err


def test_cli_keys_matching_nothing_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = _write(tmp_path, "a", _result())
    code, _, err = _cli(capsys, a, a, "--keys", "discrimnation.*")
    assert code == ExitCode.USAGE_ERROR
    assert "match no key of either run" in err
