"""The report's acquisition tables: one per modality, with that modality's columns."""

from __future__ import annotations

import re

from medval import Estimate, ValidationResult
from medval.report import render_html
from medval.report._shift import acquisition_context


def _result(rows: list[dict[str, object]]) -> ValidationResult:
    """The least a report needs, plus the acquisition rows."""
    r = ValidationResult()
    r.values.update(
        {
            "evaluation.splits": ["internal"],
            "operating_point.threshold": 0.5,
            "operating_point.rule": "youden",
            "cohort.n_cases": 10,
        }
    )
    r.estimates["discrimination.auroc"] = Estimate(0.8, 0.7, 0.9, n=10)
    r.tables["cohort.acquisition"] = rows
    return r


def _tables(html: str) -> dict[str, tuple[str, list[str]]]:
    out = {}
    for anchor, body in re.findall(r'<table id="(acquisition-[^"]+)">(.*?)</table>', html, re.S):
        caption = re.search(r"<caption>(.*?)</caption>", body, re.S)
        heads = re.findall(r'<th scope="col"[^>]*>([^<]*)</th>', body)
        out[anchor] = (caption.group(1) if caption else "", heads)
    return out


IMAGE = {"photometric_interpretation": "MONOCHROME2", "bits_stored": "12"}
CT = {"modality": "CT", "manufacturer": "GE", "model_name": "Revolution", "n_cases": 12,
      "kvp": "100-120", "exposure_mas": None, "ctdi_vol": "8.5", "convolution_kernel": "STANDARD",
      "slice_thickness": "2.5", "pixel_spacing": "0.7", **IMAGE}  # fmt: skip
MR = {"modality": "MR", "manufacturer": "SIEMENS", "model_name": "Skyra", "n_cases": 7,
      "magnetic_field_strength": "3", "scanning_sequence": "GR/IR", "sequence_name":
      "*tfl3d1_16ns", "echo_time": "2.46", "repetition_time": "2300", "slice_thickness": "1",
      "pixel_spacing": "0.9", **IMAGE}  # fmt: skip


def test_one_table_per_modality_with_its_headers() -> None:
    html = render_html(_result([CT, MR]), result_sha256="0" * 64, generated_at="T")
    tables = _tables(html)
    assert list(tables) == ["acquisition-ct", "acquisition-mr"]
    ct_caption, ct_heads = tables["acquisition-ct"]
    mr_caption, mr_heads = tables["acquisition-mr"]
    assert "CT" in ct_caption and "MR" in mr_caption
    assert ct_heads == ["Manufacturer", "Model", "Cases", "kVp", "Exposure (mAs)",
                        "CTDIvol (mGy)", "Kernel", "Slice thickness (mm)", "Pixel spacing (mm)",
                        "Photometric interpretation", "Bits stored"]  # fmt: skip
    assert mr_heads == ["Manufacturer", "Model", "Cases", "Field strength (T)",
                        "Scanning sequence", "Sequence name", "TE (ms)", "TR (ms)",
                        "Slice thickness (mm)", "Pixel spacing (mm)",
                        "Photometric interpretation", "Bits stored"]  # fmt: skip
    assert html.count('id="acquisition"') == 1  # the checklist links here


def test_a_modality_column_without_values_shows_a_dash() -> None:
    html = render_html(_result([CT]), result_sha256="0" * 64, generated_at="T")
    body = re.search(r'<table id="acquisition-ct">(.*?)</table>', html, re.S)
    assert body is not None
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", body.group(1))
    assert cells == ["Revolution", "12", "100-120", "—", "8.5", "STANDARD", "2.5", "0.7",
                     "MONOCHROME2", "12"]  # fmt: skip


def test_rows_of_an_older_result_without_modality_still_render() -> None:
    old = {"manufacturer": "GE", "model_name": "X", "n_cases": 3, "kvp": "120",
           "slice_thickness": None, "pixel_spacing": "0.7",
           "convolution_kernel": "B30f"}  # fmt: skip
    html = render_html(_result([old]), result_sha256="0" * 64, generated_at="T")
    caption, heads = _tables(html)["acquisition-unknown"]
    assert "modality not recorded" in caption
    assert heads[3:] == ["kVp", "Kernel", "Slice thickness (mm)", "Pixel spacing (mm)"]


def test_odd_modality_names_are_escaped_and_anchors_unique() -> None:
    evil = "<script>alert(1)</script>"
    rows = [
        {"modality": evil, "manufacturer": "A", "n_cases": 1, "kvp": "80"},
        {"modality": "script alert 1 script", "manufacturer": "B", "n_cases": 1},
        {"modality": "US", "manufacturer": "C", "n_cases": 2, "novel_field": "x"},
    ]
    context = acquisition_context(_result(rows))
    anchors = [m["anchor"] for m in context["modalities"]]
    assert len(set(anchors)) == 3 and all(re.fullmatch(r"[a-z0-9-]+", a) for a in anchors)
    assert context["modalities"][2]["columns"] == [{"key": "novel_field", "label": "novel field"}]
    html = render_html(_result(rows), result_sha256="0" * 64, generated_at="T")
    assert "<script>alert" not in html and "&lt;script&gt;" in html


def test_no_acquisition_rows_no_tables() -> None:
    html = render_html(_result([]), result_sha256="0" * 64, generated_at="T")
    assert 'id="acquisition' not in html
