"""Every spec value that names a split, a cohort column or a choice is checked before any work.

A typo exits 2 naming the key, the value, the allowed values and the closest
one; the model is never loaded, no pixel and no prediction is read.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import medval.gate
import medval.io
from medval import Predictions, SpecError, evaluate, stats
from medval.cli import main
from medval.gate import CHOICES, REGRESSION_OUTPUTS, SCHEMA, choices, json_schema, read_spec
from medval.gate._criteria import CRITERION_FIELDS
from medval.gate._inference import AUTO_KEYS

SPEC = """\
[task]
class_names = ["benign", "malignant"]

[data]
table = "meta.csv"

[model]
predictions = "preds.csv"

[analysis]
n_resamples = 200
{analysis}
[conformal]
{conformal}
[shift]
{shift}
[output]
dir = "out"
{extra}
"""


def _boom(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("heavy work started before the spec was checked")


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A metadata table (no model_name column) and its precomputed predictions."""
    rng = np.random.default_rng(3)
    meta = ["case_id,label,split,patient_id,manufacturer,kvp,sex,age"]
    preds = ["case_id,probability"]
    for i in range(240):
        patient = i // 2
        split = ("train", "calibration", "internal", "external")[patient % 4]
        y = int(rng.random() < 0.4)
        maker = "Vendor C" if split == "external" else ("Vendor A", "Vendor B")[patient % 2]
        p = 1 / (1 + np.exp(-(rng.normal() + 2.5 * y - 1.25)))
        meta.append(f"c{i},{y},{split},MRN-{patient},{maker},120,{'FM'[patient % 2]},{30 + i % 50}")
        preds.append(f"c{i},{float(p)!r}")
    (tmp_path / "meta.csv").write_text("\n".join(meta) + "\n", encoding="utf-8")
    (tmp_path / "preds.csv").write_text("\n".join(preds) + "\n", encoding="utf-8")
    return tmp_path


def _spec(folder: Path, *, analysis: str = "", conformal: str = "", shift: str = "",
          extra: str = "") -> str:  # fmt: skip
    path = folder / "medval.toml"
    text = SPEC.format(analysis=analysis, conformal=conformal, shift=shift, extra=extra)
    path.write_text(text, encoding="utf-8")
    return str(path)


@pytest.fixture
def no_heavy_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """Reading predictions, loading a model or reading a pixel fails the test."""
    monkeypatch.setattr(medval.gate, "read_baseline_scores", _boom)
    monkeypatch.setattr(medval.io, "load_model", _boom)
    monkeypatch.setattr(medval.io.DicomDataset, "__getitem__", _boom)


CRITERION = '\n[[criteria]]\nname = "c"\nkey = "{key}"\nop = ">="\nthreshold = 0.5\n{more}'


@pytest.mark.parametrize(
    ("where", "text", "message"),
    [
        (
            "shift",
            'subgroup_columns = ["sex", "manufactuer"]',
            "shift.subgroup_columns[1] = 'manufactuer' is not a cohort column; "
            "did you mean 'manufacturer'? Allowed: 'age_band', 'kvp', 'label', 'manufacturer', "
            "'patient_key', 'sex', 'split'.",
        ),
        (
            "shift",
            'subgroup_columns = ["manufacturer", "model_name"]',  # whitelisted, not in this table
            "shift.subgroup_columns[1] = 'model_name' is not a cohort column",
        ),
        (
            "analysis",
            'calibration_split = "calibraton"',
            "analysis.calibration_split = 'calibraton' is not a split of the evaluated cases; "
            "did you mean 'calibration'? Allowed: 'calibration', 'internal', 'external'.",
        ),
        (
            "analysis",
            'calibration_split = "train"',  # the model is never run on train
            "analysis.calibration_split = 'train' is not a split of the evaluated cases",
        ),
        (
            "analysis",
            'test_splits = ["internal", "extrnal"]',
            "analysis.test_splits[1] = 'extrnal' is not a split of the evaluated cases; "
            "did you mean 'external'?",
        ),
        (
            "shift",
            'reference_split = "calibratoin"',
            "shift.reference_split = 'calibratoin' is not a split of the evaluated cases; "
            "did you mean 'calibration'?",
        ),
        (
            "conformal",
            'group_columns = ["manufacturer", "sexx"]',
            "conformal.group_columns[1] = 'sexx' is not a cohort column; did you mean 'sex'?",
        ),
        (
            "conformal",
            'mondrian = "manufactrer"',
            "conformal.mondrian = 'manufactrer' is not 'class' or a cohort column; "
            "did you mean 'manufacturer'? Allowed: 'class', 'age_band',",
        ),
        (
            "shift",
            'subgroup_columns = ["patient_name"]',
            "shift.subgroup_columns[0] = 'patient_name' is an identifying column, and "
            "identifying columns are never analysed",
        ),
        (
            "shift",
            'subgroup_columns = ["manufacturer", "patient_id"]',
            "shift.subgroup_columns[1] = 'patient_id' is an identifying column",
        ),
        (
            "shift",
            'subgroup_columns = ["manufacturer"]\nintersections = [["manufacturer", "sex"]]',
            "shift.intersections[0][1] = 'sex' is not one of shift.subgroup_columns "
            "['manufacturer']: an intersection crosses two subgroup columns",
        ),
        (
            "shift",
            'intersections = [["manufacturer", "sexe"]]',
            "shift.intersections[0][1] = 'sexe' is not a cohort column; did you mean 'sex'?",
        ),
        (
            "extra",
            CRITERION.format(
                key="conformal.by_group", more='column = "manufactuer"\nfield = "coverage"\n'
            ),
            "criteria[0] ('c'): criteria.column = 'manufactuer' is not a cohort column; "
            "did you mean 'manufacturer'?",
        ),
        (
            "extra",
            CRITERION.format(key="conformal.by_group", more='column = "kvp"\nfield = "coverage"\n'),
            "criteria[0] ('c'): criteria.column = 'kvp' is not a conformal.group_columns column "
            "(or conformal.mondrian). Allowed: 'manufacturer', 'sex', 'age_band'.",
        ),
        (
            "extra",
            CRITERION.format(key="subgroup.manufactuer={group}.auroc", more=""),
            "criteria[0] ('c'): criteria.key 'subgroup.manufactuer={group}.auroc' names "
            "subgroup column 'manufactuer', which is not analysed; did you mean 'manufacturer'?",
        ),
        (
            "extra",
            CRITERION.format(key="split.extrnal.discrimination.auroc", more=""),
            "criteria[0] ('c'): criteria.key 'split.extrnal.discrimination.auroc' names split "
            "'extrnal', which is "
            "not an evaluated split; did you mean 'external'? Allowed: 'internal', 'external'",
        ),
        (
            "extra",
            '\n[baseline]\npredictions = "preds.csv"\nmargin = 0.05\nsplit = "internl"\n',
            "baseline.split = 'internl' is not a split of the evaluated cases; "
            "did you mean 'internal'?",
        ),
    ],
)
def test_a_typo_exits_2_before_the_predictions_are_read(
    folder: Path,
    no_heavy_work: None,
    capsys: pytest.CaptureFixture[str],
    where: str,
    text: str,
    message: str,
) -> None:
    assert main(["validate", _spec(folder, **{where: text})]) == 2
    err = capsys.readouterr().err
    assert "spec error" in err and "medval.toml: " + message in err, err


@pytest.mark.parametrize(
    ("where", "text", "message"),
    [
        (
            "shift",
            'adjust = "bonferroni"',
            "shift.adjust = 'bonferroni' is not allowed. Allowed: 'holm', 'bh'.",
        ),
        (
            "shift",
            'intersections = [["manufacturer", "sex", "age_band"]]',
            "shift.intersections[0] = ['manufacturer', 'sex', 'age_band'] must name exactly "
            "two columns",
        ),
        ("shift", 'subgroup_columns = ["sex", 3]', "shift.subgroup_columns[1] must be a column"),
        ("analysis", "test_splits = []", "analysis.test_splits is empty"),
        (
            "analysis",
            'threshold_rule = "sensitivity"',
            "analysis.threshold_rule = 'sensitivity' needs analysis.threshold_target",
        ),
        (
            "analysis",
            'threshold_rule = "specificity"\nthreshold_target = 1.5',
            r"analysis.threshold_target must be a number in (0, 1]; got 1.5.",
        ),
        (
            "analysis",
            "threshold_target = 0.9",
            "analysis.threshold_target = 0.9 applies only to analysis.threshold_rule "
            "'sensitivity' or 'specificity'; the rule is 'youden'.",
        ),
        (
            "analysis",
            'threshold = 0.3\nthreshold_rule = "sensitivity"\nthreshold_target = 0.9',
            "analysis.threshold fixes the operating threshold, so analysis.threshold_rule = "
            "'sensitivity' would be ignored",
        ),
        (
            "analysis",
            'threshold_rule = "sensitivty"',
            "analysis.threshold_rule = 'sensitivty' is not allowed; did you mean 'sensitivity'?",
        ),
    ],
)
def test_values_needing_no_data_are_refused_by_the_reader(
    folder: Path, capsys: pytest.CaptureFixture[str], where: str, text: str, message: str
) -> None:
    path = _spec(folder, **{where: text})
    with pytest.raises(SpecError) as exc:
        read_spec(path)
    assert message in str(exc.value)
    assert main(["validate", path]) == 2
    assert message in capsys.readouterr().err


def test_defaults_skip_the_columns_a_cohort_lacks(folder: Path, no_heavy_work: None) -> None:
    from medval.run import read_data

    spec = read_spec(_spec(folder))
    data = read_data(spec, salt="s", progress=False)
    cohort = data.cohort[data.cohort["split"] != "train"]
    assert "model_name" not in cohort.columns
    # The default subgroup and coverage columns name model_name: used where present.
    medval.gate.check_spec_against_cohort(spec, cohort)
    # Written in the file, the same list must exist.
    written = read_spec(_spec(folder, conformal='group_columns = ["manufacturer", "model_name"]'))
    with pytest.raises(SpecError, match=r"conformal\.group_columns\[1\] = 'model_name' is not"):
        medval.gate.check_spec_against_cohort(written, cohort)


def test_a_dicom_typo_is_refused_before_a_pixel_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import torch

    from medval.demo import make_model, write_cohort

    write_cohort(tmp_path / "cohort", seed=0, n_patients=(10, 10, 10))
    torch.save(make_model().state_dict(), tmp_path / "model.pt")
    monkeypatch.setattr(medval.io.DicomDataset, "__getitem__", _boom)
    spec = tmp_path / "medval.toml"
    spec.write_text(
        '[task]\nclass_names = ["no lesion", "lesion"]\n'
        '[data]\ndicom_dir = "cohort/dicom"\nlabels = "cohort/labels.csv"\n'
        '[model]\nfile = "model.pt"\nfactory = "medval.demo:make_model"\n'
        '[shift]\nsubgroup_columns = ["manufacturer", "modelname"]\n',
        encoding="utf-8",
    )
    assert main(["validate", str(spec)]) == 2
    err = capsys.readouterr().err
    assert (
        "medval.toml: shift.subgroup_columns[1] = 'modelname' is not a cohort column; "
        "did you mean 'model_name'? Allowed:" in err
    ), err
    assert not (tmp_path / "validation").exists()
    # The model loads before the cohort is scanned: an unreadable one exits 3 first.
    (tmp_path / "model.pt").write_bytes(b"not a model")
    assert main(["validate", str(spec)]) == 3


# --- evaluate() runs the same checks first ---------------------------------------------------


def _data(rng: np.random.Generator, n: int = 300) -> tuple[Predictions, pd.DataFrame]:
    patients = np.arange(n) // 2
    y = (rng.random(n // 2) < 0.4)[patients].astype(int)
    score = 1 / (1 + np.exp(-(rng.normal(size=n) + 2.0 * y - 1.0)))
    split = np.array(["calibration", "internal", "external"])[patients % 3]
    ids = [f"c{i:04d}" for i in range(n)]
    cohort = pd.DataFrame(
        {
            "case_id": ids,
            "patient_key": [f"p{k}" for k in patients],
            "split": split,
            "label": y,
            "manufacturer": np.where(patients % 2 == 0, "GE", "Siemens"),
        }
    ).set_index("case_id")
    return Predictions(ids, np.c_[1 - score, score], class_names=("neg", "pos")), cohort


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"subgroup_columns": ["manufactuer"]},
            "subgroup_columns[0] = 'manufactuer' is not a cohort column; "
            "did you mean 'manufacturer'? Allowed: 'label', 'manufacturer', 'patient_key', "
            "'split'.",
        ),
        (
            {"calibration_split": "calibraton"},
            "calibration_split = 'calibraton' is not a split of the evaluated cases; "
            "did you mean 'calibration'? Allowed: 'calibration', 'internal', 'external'.",
        ),
        ({"subgroup_columns": ["patient_name"]}, "'patient_name' is an identifying column"),
        ({"drift_reference": "intrnal"}, "drift_reference = 'intrnal' is not a split"),
        ({"group_columns": ["sex"]}, "group_columns[0] = 'sex' is not a cohort column"),
        ({"subgroup_adjust": "bonferroni"}, "subgroup_adjust = 'bonferroni' is not an adj"),
        (
            {"subgroup_intersections": [["manufacturer", "split", "label"]]},
            "subgroup_intersections[0] = ['manufacturer', 'split', 'label'] must name exactly two",
        ),
        ({"threshold_rule": "sensitivity"}, "threshold_rule = 'sensitivity' needs threshold_targ"),
        ({"threshold_target": 0.8}, "threshold_target = 0.8 applies only to threshold_rule"),
        (
            {"threshold_rule": "specificity", "threshold_target": 0.9, "calibration_split": None},
            "threshold_rule = 'specificity' chooses the threshold on the calibration split, and "
            "none is set; set calibration_split to one of 'calibration', 'internal', 'external'",
        ),
    ],
)
def test_evaluate_checks_its_settings_before_any_statistic(
    rng: np.random.Generator,
    monkeypatch: pytest.MonkeyPatch,
    kwargs: dict[str, Any],
    message: str,
) -> None:
    preds, cohort = _data(rng)
    monkeypatch.setattr(stats, "auroc_ci", _boom)
    monkeypatch.setattr(stats, "choose_threshold", _boom)
    with pytest.raises(SpecError) as exc:
        evaluate(preds, cohort, n_resamples=200, **kwargs)
    assert message in str(exc.value)


def test_evaluate_checks_only_the_cases_it_predicts(rng: np.random.Generator) -> None:
    preds, cohort = _data(rng)
    keep = (cohort["split"] != "calibration").to_numpy()
    part = Predictions(preds.case_ids[keep], preds.probabilities[keep], class_names=("neg", "pos"))
    match = "chooses the threshold on the calibration split, and the evaluated cases have no split"
    with pytest.raises(SpecError, match=match):
        # The cohort has the split, but no predicted case is in it: nothing to fix a threshold on.
        evaluate(part, cohort, calibration_split="calibration", threshold_rule="sensitivity",
                 threshold_target=0.9)  # fmt: skip


def _highest_reaching(values: np.ndarray, good: Any) -> float:
    """The extreme candidate threshold that keeps ``good(t)``: brute force, independent of stats."""
    ok = [float(t) for t in values if good(t)]
    return max(ok) if ok else float("nan")


@pytest.mark.parametrize("rule", ["sensitivity", "specificity"])
def test_both_target_rules_through_evaluate(rng: np.random.Generator, rule: str) -> None:
    preds, cohort = _data(rng)
    r = evaluate(
        preds, cohort, threshold_rule=rule, threshold_target=0.85, n_resamples=200,
        conformal=False, shift=False,
    )  # fmt: skip
    cal = (cohort["split"] == "calibration").to_numpy()
    y, s = cohort["label"].to_numpy()[cal], preds.probabilities[cal, 1]
    candidates = np.r_[np.unique(s), np.nextafter(s.max(), np.inf)]
    t = r["operating_point.threshold"]
    sens = lambda t: (s[y == 1] >= t).mean()  # noqa: E731
    spec = lambda t: (s[y == 0] < t).mean()  # noqa: E731
    if rule == "sensitivity":  # the highest threshold keeping sensitivity >= 0.85
        assert t == _highest_reaching(candidates, lambda u: sens(u) >= 0.85)
        assert sens(t) >= 0.85
    else:  # the lowest threshold reaching specificity >= 0.85
        assert t == -_highest_reaching(-candidates, lambda u: spec(-u) >= 0.85)
        assert spec(t) >= 0.85
    assert r["operating_point.rule"] == rule and r["operating_point.target"] == 0.85
    assert r["operating_point.chosen_on"] == "calibration"
    youden = evaluate(preds, cohort, n_resamples=200, conformal=False, shift=False)
    assert "operating_point.target" not in youden.values


def test_a_target_rule_through_the_spec(folder: Path) -> None:
    text = 'threshold_rule = "specificity"\nthreshold_target = 0.8'
    path = _spec(folder, analysis=text)
    spec = read_spec(path)
    assert (spec["analysis.threshold_rule"], spec["analysis.threshold_target"]) == (
        "specificity", 0.8,
    )  # fmt: skip
    assert main(["validate", path, "--quiet"]) == 0
    values = json.loads((folder / "out" / "result.json").read_text(encoding="utf-8"))["values"]
    meta = pd.read_csv(folder / "meta.csv")
    p = pd.read_csv(folder / "preds.csv").set_index("case_id")["probability"]
    cal = meta[meta["split"] == "calibration"]
    want = stats.choose_threshold(
        cal["label"].to_numpy(), p[cal["case_id"]].to_numpy(), rule="specificity", target=0.8
    )
    assert values["operating_point.threshold"] == want
    assert (values["operating_point.rule"], values["operating_point.target"]) == (
        "specificity", 0.8,
    )  # fmt: skip


# --- the reader and the JSON Schema allow the same values ------------------------------------

_PROBE = "zz-not-a-choice"
_BASE: dict[str, Any] = {
    "task": {"class_names": ["benign", "malignant"]},
    "data": {"table": "meta.csv"},
    "model": {"predictions": "preds.csv"},
    "criteria": [{"name": "c", "key": "discrimination.auroc", "op": ">=", "threshold": 0.5}],
}
# Keys whose allowed values depend on another key (task.class_names), not a fixed set.
# data.masks and data.cases: segmentation keys, refused in a classification spec.
_DEPENDENT = {("task", "positive_class"), ("data", "masks"), ("data", "cases"), ("task", "unit")}
# Values that need a companion key to be accepted.
_COMPANION = {"sensitivity": {"threshold_target": 0.9}, "specificity": {"threshold_target": 0.9}}


def _with(section: str, key: str, value: Any) -> str:
    """The base spec with one key set, as TOML (JSON scalars and arrays are TOML too)."""
    spec = json.loads(json.dumps(_BASE))
    if section == "criteria":
        spec["criteria"][0][key] = value
    else:
        table = spec.setdefault(section, {"margin": 0.1} if section == "baseline" else {})
        table[key] = value
        if (section, key) == ("analysis", "threshold_rule"):
            table.update(_COMPANION.get(value, {}))
        if (section, key) == ("model", "output") and value in REGRESSION_OUTPUTS:
            spec["task"] = {"type": "regression", "unit": "months"}
            if value == "quantiles":
                table["quantile_levels"] = [0.05, 0.5, 0.95]
    lines = []
    for name, body in spec.items():
        for table in body if isinstance(body, list) else [body]:
            lines.append(f"[[{name}]]" if isinstance(body, list) else f"[{name}]")
            lines += [f"{k} = {json.dumps(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


def _refusal(tmp_path: Path, section: str, key: str, value: Any) -> str | None:
    path = tmp_path / "medval.toml"
    path.write_text(_with(section, key, value), encoding="utf-8")
    try:
        read_spec(path)
    except SpecError as exc:
        if f"{section}.{key}" in str(exc):
            return str(exc)
    return None


def _string_keys() -> list[tuple[str, str]]:
    """String keys with a closed set of values (the integer-or-"auto" keys: their own test)."""
    auto = {("model", k) for k in AUTO_KEYS}
    keys = [(s, k) for s, fields in SCHEMA.items() for k, (types, _) in fields.items()
            if str in types and (s, k) not in _DEPENDENT | auto]  # fmt: skip
    keys += [("criteria", k) for k, (types, _) in CRITERION_FIELDS.items() if types == (str,)]
    return keys


def test_every_enum_the_reader_accepts_is_exactly_what_the_json_schema_allows(
    tmp_path: Path,
) -> None:
    schema = json_schema()["properties"]
    checked = 0
    for section, key in _string_keys():
        table = schema[section]["items"] if section == "criteria" else schema[section]
        enum = table["properties"][key].get("enum")
        refusal = _refusal(tmp_path, section, key, _PROBE)
        where = f"{section}.{key}"
        assert (refusal is not None) == (enum is not None), (where, refusal, enum)
        if enum is None or refusal is None:
            continue
        listed = re.search(r"[Aa]llowed(?: values)?: (.*)\.$", refusal)
        assert listed is not None, refusal
        assert ast.literal_eval(f"[{listed.group(1)}]") == enum, where
        for value in enum:
            assert _refusal(tmp_path, section, key, value) is None, (where, value)
        checked += 1
    assert checked == len(choices()) + 4  # the spec's choices and op, bound, severity, small_groups


def test_the_declared_choices_are_the_analysis_registries() -> None:
    from medval.conformal import SCORES
    from medval.shift import subgroup_table

    assert set(CHOICES["conformal"]["method"]) == set(SCORES)
    with pytest.raises(ValueError, match="valid") as exc:
        subgroup_table([0, 1], [0.2, 0.8], {"g": ["a", "b"]}, threshold=0.5, adjust=_PROBE)
    listed = ast.literal_eval(str(exc.value).split("valid: ")[1].rstrip("."))
    assert set(CHOICES["shift"]["adjust"]) == set(listed)
    with pytest.raises(ValueError, match="valid: youden, sensitivity, specificity"):
        stats.choose_threshold([0, 1], [0.2, 0.8], rule=_PROBE)  # type: ignore[arg-type]
    assert CHOICES["analysis"]["threshold_rule"] == ("youden", "sensitivity", "specificity")
    assert choices()[("baseline", "metric")] == tuple(sorted(stats.METRICS))


@pytest.mark.parametrize("key", sorted(AUTO_KEYS))
def test_integer_or_auto_keys_accept_what_the_json_schema_allows(tmp_path: Path, key: str) -> None:
    """model.batch_size, model.loader_workers: an integer >= the least, or "auto"; nothing else."""
    import jsonschema

    least = AUTO_KEYS[key][0]
    validator = jsonschema.Draft202012Validator(json_schema())
    values: list[tuple[Any, bool]] = [
        ("auto", True), (least, True), (least + 7, True),
        (least - 1, False), (_PROBE, False), ("Auto", False),
    ]  # fmt: skip
    for value, ok in values:
        refusal = _refusal(tmp_path, "model", key, value)
        assert (refusal is None) == ok, (key, value, refusal)
        spec = json.loads(json.dumps(_BASE))
        spec["model"][key] = value
        assert validator.is_valid(spec) == ok, (key, value)
    refusal = _refusal(tmp_path, "model", key, _PROBE)
    assert refusal is not None and refusal.endswith("Allowed: 'auto'.")
    path = tmp_path / "low.toml"
    path.write_text(_with("model", key, least - 1), encoding="utf-8")
    with pytest.raises(SpecError, match=rf"model\.{key} must be an integer >= {least} or "):
        read_spec(path)
