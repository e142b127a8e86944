"""A Cohort from a CSV metadata table (users without DICOM files)."""

from __future__ import annotations

import pathlib

import pytest

from medval import io
from medval._errors import DataError

HEADER = "case_id,label,split,patient_id,site,manufacturer,model_name,kvp,sex,age\n"


def _write(tmp_path: pathlib.Path, body: str, header: str = HEADER) -> pathlib.Path:
    path = tmp_path / "meta.csv"
    path.write_text(header + body, encoding="utf-8")
    return path


def test_rows_become_a_deidentified_cohort(tmp_path: pathlib.Path) -> None:
    path = _write(
        tmp_path,
        "c1,lesion,internal,MRN-ZZ-001,St Elsewhere General,GE,Revolution,120,F,58\n"
        "c2,no lesion,internal,MRN-ZZ-001,St Elsewhere General,GE,Revolution,,female,93\n"
        "c3,1,external,MRN-ZZ-002,Hill Clinic,Siemens,Force,100,M,\n",
    )
    data = io.read_cohort_table(path, class_names=["no lesion", "lesion"], salt="s")
    c = data.cohort
    assert list(c.index) == ["c1", "c2", "c3"]
    assert c["label"].tolist() == [1, 0, 1]
    assert c["split"].tolist() == ["internal", "internal", "external"]
    assert (
        c.loc["c1", "patient_key"]
        == c.loc["c2", "patient_key"]
        == io.pseudonym("MRN-ZZ-001", salt=b"s", prefix="pt-")
    )
    assert c.loc["c3", "site_key"] != c.loc["c1", "site_key"]
    assert c["age_band"].tolist()[:2] == ["40-59", "90+"] and c["age_band"].isna().iloc[2]
    assert c["sex"].tolist() == ["F", "F", "M"]
    assert c.loc["c1", "kvp"] == 120.0 and c["kvp"].isna().iloc[1]
    blob = c.to_csv()
    for planted in ("MRN-ZZ-001", "St Elsewhere", "Hill Clinic"):
        assert planted not in blob
    assert data.paths == {} and data.n_files == 3 and len(data.manifest_sha256) == 64


def test_unknown_columns_are_refused_with_the_allowed_ones(tmp_path: pathlib.Path) -> None:
    path = _write(tmp_path, "c1,1,ZZ Doe\n", header="case_id,label,patient_name\n")
    with pytest.raises(DataError, match=r"column\(s\) \['patient_name'\].*allowed: \['case_id'"):
        io.read_cohort_table(path, class_names=["a", "b"])


@pytest.mark.parametrize(
    ("body", "header", "match"),
    [
        ("c1,1\nc1,0\n", "case_id,label\n", r"column 'case_id' \(row 2: 'c1'; row 3: 'c1'\)"),
        ("c1,1\n,0\n", "case_id,label\n", r"'case_id' \(row 3: None\); every row needs"),
        ("c1,maybe\n", "case_id,label\n", r"column 'label' \(row 2: 'maybe'\); labels must be"),
        ("c1,1,loud\n", "case_id,label,kvp\n", r"column 'kvp' \(row 2: 'loud'\); give a number"),
        ("c1,1,-3\n", "case_id,label,age\n", r"column 'age' \(row 2: '-3'\)"),
        ("c1\n", "case_id\n", r"lacks required column\(s\) \['label'\]"),
    ],
)
def test_bad_values_name_column_and_row(
    tmp_path: pathlib.Path, body: str, header: str, match: str
) -> None:
    with pytest.raises(DataError, match=match):
        io.read_cohort_table(_write(tmp_path, body, header), class_names=["a", "b"])


def test_missing_file_and_parquet_without_engine(tmp_path: pathlib.Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        io.read_cohort_table(tmp_path / "nope.csv", class_names=["a", "b"])
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        pq = tmp_path / "meta.parquet"
        pq.write_bytes(b"PAR1")
        with pytest.raises(ImportError, match="pip install pyarrow"):
            io.read_cohort_table(pq, class_names=["a", "b"])


def test_table_cohort_feeds_evaluate(tmp_path: pathlib.Path) -> None:
    import numpy as np

    from medval import Predictions, evaluate

    rng = np.random.default_rng(0)
    lines = []
    for i in range(240):
        split = ("calibration", "internal")[i % 2]
        lines.append(f"c{i},{int(rng.random() < 0.4)},{split},P{i // 2},,GE,X,120,F,50\n")
    data = io.read_cohort_table(_write(tmp_path, "".join(lines)), class_names=["a", "b"])
    y = data.cohort["label"].to_numpy()
    score = 1 / (1 + np.exp(-(rng.normal(size=y.size) + 2 * y - 1)))
    preds = Predictions(list(data.cohort.index), np.c_[1 - score, score], class_names=("a", "b"))
    r = evaluate(preds, data.cohort, n_resamples=200, conformal=False)
    assert r["evaluation.clustered_by"] == "patient"
    assert r["subgroup.manufacturer=GE.auroc"].value == pytest.approx(
        r["subgroup.overall.auroc"].value
    )


def test_text_fields_lose_control_characters_and_a_header_alone_is_refused(
    tmp_path: pathlib.Path,
) -> None:
    path = _write(tmp_path, "c1,1,internal,p,s,GE\x1b[2K\u202e,Rev\tolution,,F,58\n")
    cohort = io.read_cohort_table(path, class_names=["no lesion", "lesion"], salt="s").cohort
    assert (cohort.loc["c1", "manufacturer"], cohort.loc["c1", "model_name"]) == (
        "GE[2K",
        "Rev olution",
    )
    with pytest.raises(DataError, match=r"'meta\.csv' has a header but no rows"):
        io.read_cohort_table(_write(tmp_path, ""), class_names=["a", "b"])
