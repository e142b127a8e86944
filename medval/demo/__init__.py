"""Synthetic multi-scanner DICOM cohorts and small CNNs with dropout.

``write_cohort`` writes three fictional CT sites (the third out of
distribution) as real DICOM files with fake PHI, and ``make_model`` /
``train`` give a small one-logit CNN to validate on it; ``shipped_weights``
is that CNN trained once from the recorded recipe (``load_recipe``), so the
demo gives the same answer on every machine. The segmentation demo
(``write_segmentation_cohort``, ``make_segmenter``) and the bone-age
regression demo (``write_regression_cohort``, ``make_regressor``,
``shipped_regressor``) follow the same pattern. torch and pydicom load only
when a name that needs them is first used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = [
    "REG_PREPROCESS",
    "SEG_WINDOW",
    "DemoCohortInfo",
    "DemoNet",
    "RegCase",
    "RegCohortInfo",
    "RegNet",
    "RegTrainingLog",
    "SegCase",
    "SegCohortInfo",
    "SegNet",
    "SegTrainingLog",
    "TrainingLog",
    "load_recipe",
    "load_regression_recipe",
    "load_segmenter_recipe",
    "make_model",
    "make_regressor",
    "make_segmenter",
    "regression_cases",
    "regression_pipeline",
    "regression_spec_fields",
    "regression_training_data",
    "regressor_predictions",
    "regressor_reference_scores",
    "score_regressor_predictions",
    "segmentation_cases",
    "segmenter_reference_scores",
    "shipped_regressor",
    "shipped_segmenter",
    "shipped_segmenter_weights",
    "shipped_weights",
    "train",
    "train_recipe",
    "train_regression_recipe",
    "train_regressor",
    "train_segmenter",
    "train_segmenter_recipe",
    "window_volume",
    "write_cohort",
    "write_regression_cohort",
    "write_segmentation_cohort",
]

_LAZY = {
    "DemoCohortInfo": "medval.demo._cohort",
    "write_cohort": "medval.demo._cohort",
    "DemoNet": "medval.demo._model",
    "TrainingLog": "medval.demo._model",
    "make_model": "medval.demo._model",
    "train": "medval.demo._model",
    "load_recipe": "medval.demo._weights",
    "shipped_weights": "medval.demo._weights",
    "train_recipe": "medval.demo._weights",
    "SegCase": "medval.demo._seg_cohort",
    "SegCohortInfo": "medval.demo._seg_cohort",
    "segmentation_cases": "medval.demo._seg_cohort",
    "write_segmentation_cohort": "medval.demo._seg_cohort",
    "SEG_WINDOW": "medval.demo._unet",
    "SegNet": "medval.demo._unet",
    "SegTrainingLog": "medval.demo._unet",
    "make_segmenter": "medval.demo._unet",
    "train_segmenter": "medval.demo._unet",
    "window_volume": "medval.demo._unet",
    "load_segmenter_recipe": "medval.demo._seg_weights",
    "segmenter_reference_scores": "medval.demo._seg_weights",
    "shipped_segmenter": "medval.demo._seg_weights",
    "shipped_segmenter_weights": "medval.demo._seg_weights",
    "train_segmenter_recipe": "medval.demo._seg_weights",
    "RegCase": "medval.demo._reg_cohort",
    "RegCohortInfo": "medval.demo._reg_cohort",
    "regression_cases": "medval.demo._reg_cohort",
    "write_regression_cohort": "medval.demo._reg_cohort",
    "REG_PREPROCESS": "medval.demo._regnet",
    "RegNet": "medval.demo._regnet",
    "RegTrainingLog": "medval.demo._regnet",
    "make_regressor": "medval.demo._regnet",
    "regression_pipeline": "medval.demo._regnet",
    "regression_spec_fields": "medval.demo._regnet",
    "train_regressor": "medval.demo._regnet",
    "load_regression_recipe": "medval.demo._reg_weights",
    "regression_training_data": "medval.demo._reg_weights",
    "regressor_predictions": "medval.demo._reg_weights",
    "regressor_reference_scores": "medval.demo._reg_weights",
    "score_regressor_predictions": "medval.demo._reg_weights",
    "shipped_regressor": "medval.demo._reg_weights",
    "train_regression_recipe": "medval.demo._reg_weights",
}

if TYPE_CHECKING:
    from medval.demo._cohort import DemoCohortInfo, write_cohort
    from medval.demo._model import DemoNet, TrainingLog, make_model, train
    from medval.demo._reg_cohort import (
        RegCase,
        RegCohortInfo,
        regression_cases,
        write_regression_cohort,
    )
    from medval.demo._reg_weights import (
        load_regression_recipe,
        regression_training_data,
        regressor_predictions,
        regressor_reference_scores,
        score_regressor_predictions,
        shipped_regressor,
        train_regression_recipe,
    )
    from medval.demo._regnet import (
        REG_PREPROCESS,
        RegNet,
        RegTrainingLog,
        make_regressor,
        regression_pipeline,
        regression_spec_fields,
        train_regressor,
    )
    from medval.demo._seg_cohort import (
        SegCase,
        SegCohortInfo,
        segmentation_cases,
        write_segmentation_cohort,
    )
    from medval.demo._seg_weights import (
        load_segmenter_recipe,
        segmenter_reference_scores,
        shipped_segmenter,
        shipped_segmenter_weights,
        train_segmenter_recipe,
    )
    from medval.demo._unet import (
        SEG_WINDOW,
        SegNet,
        SegTrainingLog,
        make_segmenter,
        train_segmenter,
        window_volume,
    )
    from medval.demo._weights import load_recipe, shipped_weights, train_recipe


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'medval.demo' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
