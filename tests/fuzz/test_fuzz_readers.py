"""Fuzzed readers: every input is accepted or refused with medval's own error, nothing else.

Property-based (hypothesis): real DICOM files written with pydicom, then
mutated (bytes flipped, cut, inserted); labels and predictions CSVs and specs
generated from the characters and keys that break parsers. The invariant is
the one the command line relies on: a reader returns, or raises a
``MedvalError`` subclass (exit 2 or 3 with a message), never another
exception (exit 4), a hang or unbounded memory. The example counts are fixed
(``derandomize``), so CI runs the same cases each time.
"""

from __future__ import annotations

import contextlib
import io
import string
from pathlib import Path
from typing import Any

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from medval._errors import MedvalError  # noqa: E402

#: Examples per property; the README's reliability section states the totals.
N_DICOM, N_CSV, N_SPEC = 400, 300, 300


def fuzz(n: int) -> Any:
    """Fixed, derandomised examples: the same n cases on every run."""
    return settings(
        max_examples=n,
        derandomize=True,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        database=None,
    )


def _seed_files() -> list[bytes]:
    """Valid files the mutations start from: CT native, MR MONOCHROME1, RLE-compressed."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, RLELossless, generate_uid

    out = []
    for kind in ("native", "mono1", "rle"):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = MRImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid(entropy_srcs=[kind])
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = MRImageStorage, meta.MediaStorageSOPInstanceUID
        ds.PatientID, ds.Modality, ds.Manufacturer = "FUZZ-1", "MR", "Vendor"
        ds.StudyInstanceUID = ds.SeriesInstanceUID = generate_uid(entropy_srcs=[kind, "s"])
        ds.Rows = ds.Columns = 8
        ds.SamplesPerPixel, ds.BitsAllocated, ds.BitsStored, ds.HighBit = 1, 16, 12, 11
        ds.PixelRepresentation = 0
        ds.PhotometricInterpretation = "MONOCHROME1" if kind == "mono1" else "MONOCHROME2"
        if kind == "mono1":
            ds.RescaleSlope, ds.RescaleIntercept = "2", "-1024"
        ds.PixelData = (np.arange(64, dtype=np.uint16) * 7).tobytes()
        if kind == "rle":
            ds.compress(RLELossless, np.arange(64, dtype=np.uint16).reshape(8, 8) * 7)
        buffer = io.BytesIO()
        ds.save_as(buffer, enforce_file_format=True)
        out.append(buffer.getvalue())
    return out


SEEDS = _seed_files()


@st.composite
def mutated_dicom(draw: Any) -> bytes:
    data = bytearray(SEEDS[draw(st.integers(0, len(SEEDS) - 1))])
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["flip", "set", "cut", "insert", "big"]))
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "flip":
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "set":
            data[pos] = draw(st.integers(0, 255))
        elif op == "cut":
            del data[pos:]
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=12))
        elif pos + 4 <= len(data):  # a huge length or dimension
            data[pos : pos + 4] = draw(st.sampled_from([b"\xff\xff\xff\xff", b"\xff\xff\x00\x00",
                                                        b"\x00\x00\x00\x80"]))  # fmt: skip
        if not data:
            break
    return bytes(data)


@fuzz(N_DICOM)
@given(data=mutated_dicom())
def test_the_header_scan_never_crashes(data: bytes) -> None:
    from medval.io._scan import scan_one

    row, reason, values = scan_one(data, b"salt", {})
    assert (row is None) == (values is None)
    assert (row is None) == isinstance(reason, str)


@fuzz(N_DICOM // 4)
@given(data=mutated_dicom())
def test_decoding_never_crashes(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    from medval.io import read_image
    from medval.io._scan import scan_one

    row, _, _ = scan_one(data, b"salt", {})
    if row is None:
        return  # excluded at the scan: never decoded
    path = tmp_path_factory.mktemp("decode") / "x.dcm"
    path.write_bytes(data)
    try:
        frame = read_image(path)
    except MedvalError:
        return
    assert frame.pixels.ndim == 2


_CSV_TOKENS = [",", '"', "\n", "\r", "\t", " ", ";", "\\", "\ufeff", "\x00", "é", "0", "1",
               "0.5", "nan", "inf", "-1", "1e309", "case_id", "file", "label", "split",
               "probability", "a.dcm"]  # fmt: skip
_CSV_CHARS = st.sampled_from(_CSV_TOKENS)


@st.composite
def csv_text(draw: Any, header: str) -> str:
    head = header if draw(st.booleans()) else "".join(draw(st.lists(_CSV_CHARS, max_size=8)))
    body = "".join(draw(st.lists(_CSV_CHARS, max_size=60)))
    return head + "\n" + body


@fuzz(N_CSV)
@given(text=csv_text("case_id,file,label,split"))
def test_the_labels_reader_never_crashes(tmp_path_factory: pytest.TempPathFactory,
                                         text: str) -> None:  # fmt: skip
    from medval.io import read_labels

    path = tmp_path_factory.mktemp("labels") / "labels.csv"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        frame = read_labels(path, class_names=["0", "1"])
    except MedvalError:
        return
    assert set(frame["label"]) <= {0, 1}


@fuzz(N_CSV)
@given(text=csv_text("case_id,probability"))
def test_the_predictions_reader_never_crashes(tmp_path_factory: pytest.TempPathFactory,
                                              text: str) -> None:  # fmt: skip
    from medval.gate import read_baseline_scores

    path = tmp_path_factory.mktemp("preds") / "predictions.csv"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        scores = read_baseline_scores(path, ["0", "1", "a.dcm"])
    except MedvalError:
        return
    assert np.all((scores >= 0) & (scores <= 1))


_KEYS = st.sampled_from(["class_names", "positive_class", "dicom_dir", "labels", "table",
                         "file", "factory", "output", "mc_samples", "seed", "n_resamples",
                         "size", "window", "steps", "op", "method", "test_splits", "margin",
                         "expect", "mean", "std", "enabled", "key", "threshold", "x"])  # fmt: skip
_SCALARS = st.one_of(st.integers(-3, 70000), st.floats(allow_nan=True), st.booleans(),
                     st.text(string.printable, max_size=8))  # fmt: skip
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(_KEYS, inner, max_size=3)),
    max_leaves=8,
)


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return "nan" if v != v else ("inf" if v == float("inf") else
                                     "-inf" if v == float("-inf") else repr(v))  # fmt: skip
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return '"' + v.encode("unicode_escape").decode("ascii").replace('"', '\\"') + '"'
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return "{" + ", ".join(f"{k} = {_toml_value(x)}" for k, x in v.items()) + "}"


_SECTIONS = st.sampled_from(["task", "data", "model", "preprocess", "analysis", "conformal",
                             "uncertainty", "shift", "splits", "baseline", "output",
                             "nope"])  # fmt: skip


@fuzz(N_SPEC)
@given(spec=st.dictionaries(_SECTIONS, st.dictionaries(_KEYS, _VALUES, max_size=4), max_size=6),
       criteria=st.lists(st.dictionaries(_KEYS, _VALUES, max_size=4), max_size=2))  # fmt: skip
def test_the_spec_reader_never_crashes(
    tmp_path_factory: pytest.TempPathFactory, spec: dict[str, Any], criteria: list[Any]
) -> None:
    from medval.gate import read_spec

    lines = []
    for section, keys in spec.items():
        lines.append(f"[{section}]")
        lines += [f"{k} = {_toml_value(v)}" for k, v in keys.items()]
    for c in criteria:
        lines.append("[[criteria]]")
        lines += [f"{k} = {_toml_value(v)}" for k, v in c.items()]
    path: Path = tmp_path_factory.mktemp("spec") / "medval.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with contextlib.suppress(MedvalError):
        read_spec(path)
