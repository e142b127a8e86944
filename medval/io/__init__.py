"""Reading data: DICOM headers and pixels, preprocessing, labels, tables, model files, PHI policy.

This is the only package that touches DICOM files. Importing it is light:
pydicom and pandas load inside the functions that use them, and the
torch-based names (:class:`DicomDataset`, :func:`load_model`) load on first
access.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from medval.io._dicom import (
    MAX_PIXEL_BYTES,
    SCAN_COLUMNS,
    CohortScan,
    Exclusion,
    read_dicom_cohort,
)
from medval.io._factory import Factory
from medval.io._hook import Transform, defining_file_sha256
from medval.io._intensity import MAX_IMAGES, input_statistics
from medval.io._join import CASE_ID_RULES, build_cohort, case_name, load_cohort
from medval.io._labels import (
    AGGREGATIONS,
    LABEL_COLUMNS,
    LABEL_KEYS,
    CohortData,
    UnmatchedLabel,
    read_labels,
)
from medval.io._masks import MASK_SUFFIXES, find_mask, read_mask
from medval.io._phi import (
    AGE_BANDS,
    PHI_KEYWORDS,
    SALT_ENV_VAR,
    age_band,
    pseudonym,
    resolve_salt,
    sex,
)
from medval.io._preprocess import NO_NORMALISATION, STEP_TYPES, Frame, Pipeline
from medval.io._regression_csv import read_regression_predictions
from medval.io._screen import (
    MAX_EXCLUDED_FRACTION,
    check_excluded_fraction,
    decode_check,
    exclude_cases,
    excluded_share,
)
from medval.io._series import SeriesCohort, read_cases, series_cohort
from medval.io._splits import DEFAULT_CALIBRATION_FRACTION, assign_splits, has_splits
from medval.io._steps import (
    CenterCrop,
    Channels,
    ClipPercentile,
    Dtype,
    Normalize,
    Resize,
    Window,
)
from medval.io._table import TABLE_COLUMNS, read_cohort_table
from medval.io._units import aggregate_scores, aggregate_units
from medval.io._volume import Volume, read_series

__all__ = [
    "AGE_BANDS",
    "AGGREGATIONS",
    "CASE_ID_RULES",
    "DEFAULT_CALIBRATION_FRACTION",
    "LABEL_COLUMNS",
    "LABEL_KEYS",
    "MASK_SUFFIXES",
    "MAX_EXCLUDED_FRACTION",
    "MAX_IMAGES",
    "MAX_PIXEL_BYTES",
    "NO_NORMALISATION",
    "PHI_KEYWORDS",
    "SALT_ENV_VAR",
    "SCAN_COLUMNS",
    "STEP_TYPES",
    "TABLE_COLUMNS",
    "CenterCrop",
    "Channels",
    "ClipPercentile",
    "CohortData",
    "CohortScan",
    "DicomDataset",
    "Dtype",
    "Exclusion",
    "Factory",
    "Frame",
    "ImageError",
    "LoadedModel",
    "Normalize",
    "Pipeline",
    "Resize",
    "SeriesCohort",
    "Transform",
    "UnmatchedLabel",
    "Volume",
    "Window",
    "age_band",
    "aggregate_scores",
    "aggregate_units",
    "assign_splits",
    "build_cohort",
    "case_name",
    "check_excluded_fraction",
    "decode_check",
    "defining_file_sha256",
    "exclude_cases",
    "excluded_share",
    "find_mask",
    "has_splits",
    "input_statistics",
    "load_cohort",
    "load_model",
    "pseudonym",
    "read_cases",
    "read_cohort_table",
    "read_dicom_cohort",
    "read_image",
    "read_labels",
    "read_mask",
    "read_regression_predictions",
    "read_series",
    "resolve_salt",
    "series_cohort",
    "sex",
]

# Names that import torch; loaded on first attribute access.
_LAZY = {
    "DicomDataset": "medval.io._dataset",
    "ImageError": "medval.io._dataset",
    "read_image": "medval.io._dataset",
    "LoadedModel": "medval.io._model",
    "load_model": "medval.io._model",
}

if TYPE_CHECKING:
    from medval.io._dataset import DicomDataset, ImageError, read_image
    from medval.io._model import LoadedModel, load_model


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'medval.io' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
