"""Auto-fill of CLAIM 2024 / TRIPOD+AI from a synthetic result, answers, completeness."""

from __future__ import annotations

import json

import pytest

from medval import ValidationResult
from medval._errors import InputError, SpecError
from medval.checklist import (
    Answer,
    fill,
    load_checklist,
    parse_answers,
    summary,
    to_rows,
)

CLAIM_A = {"12", "13", "19", "20", "21", "23", "28", "29", "30", "32", "33", "35", "36"}
CLAIM_A |= {"37", "38", "39"}  # every A item but 18 (no multi-reader labels)


def _copy(r: ValidationResult) -> ValidationResult:
    return ValidationResult.from_dict(json.loads(r.to_json()))


def test_at_least_17_items_are_reported_from_the_result(synthetic_run) -> None:
    result, _ = synthetic_run
    statuses = fill(result)
    assert len(statuses) == 44
    reported = {st.number for st in statuses if st.status == "reported"}
    assert len(reported) >= 17
    assert reported >= CLAIM_A
    assert all(st.source == "auto" for st in statuses if st.status == "reported")
    counts = summary(statuses)
    assert counts["auto_reported"] == len(reported)
    assert sum(counts[s] for s in ("reported", "partial", "missing", "not_applicable")) == 44


def test_status_rules_without_answers(synthetic_run) -> None:
    result, _ = synthetic_run
    by = {st.number: st for st in fill(result)}
    # H items stay missing; the limitations item carries suggestions only.
    for number in ("1", "3", "14", "26", "34", "41", "44"):
        assert by[number].status == "missing" and by[number].source == "none"
    assert by["40"].status == "missing" and by["40"].suggestion
    assert by["2"].suggestion and "AUROC" in by["2"].suggestion
    # S items with evidence are partial until a person adds the sentence.
    for number in ("7", "8", "10", "17", "22", "43"):
        assert by[number].status == "partial" and by[number].evidence, number
    # An S item whose evidence is absent is missing, not partial.
    assert by["31"].status == "missing" and by["31"].evidence is None
    assert by["18"].status == "missing"  # no agreement data in the result
    # One model file recorded by the run: the ensembling question is answered.
    assert by["27"].status == "reported" and "8 MC-dropout passes" in by["27"].evidence
    for st in by.values():
        if st.evidence is not None:
            assert st.anchor is not None and st.anchor.startswith("#")


def test_evidence_carries_numbers_from_the_result(synthetic_run) -> None:
    result, _ = synthetic_run
    by = {st.number: st for st in fill(result)}
    auroc = result.estimates["discrimination.auroc"]
    assert f"{auroc.value:.3f} [{auroc.low:.3f}, {auroc.high:.3f}]" in by["32"].evidence
    v = result.values
    assert f"{v['cohort.n_files']} files read, 1 excluded" in by["35"].evidence
    assert "Cygnus CY-9 (160 cases, kVp 140)" in by["13"].evidence
    assert "0 patient keys shared" in by["20"].evidence
    sens, n_pos = result.estimates["operating_point.sensitivity"], v["cohort.n_positive"]
    tp = round(sens.value * n_pos)
    assert f"internal: TP {tp}, FN {n_pos - tp}," in by["39"].evidence
    assert "'external' (160 cases, 80 patients): AUROC" in by["33"].evidence


def test_evidence_is_phi_free(synthetic_run) -> None:
    result, cohort = synthetic_run
    text = json.dumps(to_rows(fill(result)))
    assert "site-9/x.dcm" not in text  # excluded file names stay out
    for value in [*cohort.index[:50], *cohort["patient_key"][:50], *cohort["study_key"][:50]]:
        assert f"{value}" not in text


def test_a_bare_evaluate_result_is_honest_about_what_it_lacks(synthetic_run) -> None:
    result = _copy(synthetic_run[0])
    for key in ("versions", "model_file", "model_sha256", "data_manifest_sha256"):
        result.provenance.pop(key)
    for key in ("cohort.n_files", "cohort.n_included", "cohort.n_excluded"):
        result.values.pop(key)
    for key in ("cohort.flow", "cohort.exclusions", "cohort.exclusion_reasons"):
        result.tables.pop(key)
    by = {st.number: st for st in fill(result)}
    assert by["23"].status == "missing"  # no package versions recorded
    assert by["12"].status == "partial" and "No file-level exclusion record" in by["12"].evidence
    assert by["35"].status == "partial"
    assert by["27"].status == "partial"  # samples, but no record of the model files


def test_single_split_leaves_external_testing_partial(synthetic_run) -> None:
    result = _copy(synthetic_run[0])
    result.values["evaluation.splits"] = ["internal"]
    by = {st.number: st for st in fill(result)}
    assert by["33"].status == "partial"
    assert "no external test split" in by["33"].evidence


def _answers_for_everything_else(statuses) -> dict:
    items = {}
    for st in statuses:
        if st.status == "reported":
            continue
        if st.number in ("18", "34"):
            items[st.number] = {"status": "not_applicable", "reason": "single reader / no trial"}
        else:
            items[st.number] = {"status": "reported", "text": f"Manuscript section for {st.number}"}
    return {"checklist": "claim-2024", "items": items}


def test_completeness_is_right_when_answers_fill_the_rest(synthetic_run, tmp_path) -> None:
    result, _ = synthetic_run
    first = fill(result)
    auto = sum(1 for st in first if st.status == "reported")
    data = _answers_for_everything_else(first)
    path = tmp_path / "answers.yaml"
    path.write_text(json.dumps(data), encoding="utf-8")  # JSON is YAML
    statuses = fill(result, path)
    assert summary(statuses) == {
        "reported": 42,
        "partial": 0,
        "missing": 0,
        "not_applicable": 2,
        "total": 44,
        "auto_reported": auto,
    }
    by = {st.number: st for st in statuses}
    assert by["18"].reason == "single reader / no trial"
    assert by["7"].source == "auto+answer" and by["7"].evidence  # evidence kept
    assert by["1"].source == "answer" and by["1"].answer == "Manuscript section for 1"


def test_partial_answers_and_parsed_answers(synthetic_run) -> None:
    result, _ = synthetic_run
    answers = parse_answers({"items": {"9": {"status": "partial", "text": "window only"}}})
    assert answers == {"9": Answer("9", "partial", text="window only")}
    statuses = fill(result, answers)
    counts = summary(statuses)
    base = summary(fill(result))
    assert counts["partial"] == base["partial"] + 1
    assert counts["missing"] == base["missing"] - 1


def test_bad_answers_and_bad_inputs_raise(synthetic_run) -> None:
    result, _ = synthetic_run
    with pytest.raises(SpecError, match=r"item 99 is not in claim-2024"):
        fill(result, {"items": {99: {"status": "missing"}}})
    with pytest.raises(InputError, match=r"fill\(\) needs a ValidationResult"):
        fill([1, 2, 3])  # type: ignore[arg-type]


def test_rows_are_plain_and_the_dict_form_gives_the_same(synthetic_run) -> None:
    result, _ = synthetic_run
    rows = to_rows(fill(result))
    assert len(rows) == 44
    keys = {"number", "section", "topic", "class", "status", "evidence", "anchor", "reason"}
    assert keys <= set(rows[0])
    json.dumps(rows)  # JSON-native
    assert to_rows(fill(result.to_dict())) == rows


def test_tripod_fills_its_computed_core(synthetic_run) -> None:
    result, _ = synthetic_run
    statuses = fill(result, checklist="tripod-ai-2024")
    by = {st.number: st for st in statuses}
    assert len(statuses) == len(load_checklist("tripod-ai-2024").items)
    for number in ("11", "12e", "20a", "20b", "20c", "21", "23a", "23b"):
        assert by[number].status == "reported", number
    assert by["14"].status == "partial" and "sex" in by["14"].evidence
    assert by["17"].status == "missing"
