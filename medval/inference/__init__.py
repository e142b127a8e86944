"""Running torch models: batching, devices, MC dropout (with head caching), TTA, ensembles."""

from medval.inference._halving import BatchLimit
from medval.inference._head import DROPOUT_TYPES, dropout_modules
from medval.inference._loader import loader_workers, make_loader
from medval.inference._memory import (
    CPU_BATCH_SIZE,
    auto_batch_size,
    fit_batch_size,
    measure_batch_size,
)
from medval.inference._precision import (
    PRECISIONS,
    PrecisionCheck,
    check_precision,
    compare_precision,
)
from medval.inference._predict import predict, resolve_device
from medval.inference._regress import REGRESSION_OUTPUTS, predict_regression
from medval.inference._segment import SegmentOutput, segment
from medval.inference._tta import TTA
from medval.inference._window import gaussian_importance

__all__ = [
    "CPU_BATCH_SIZE",
    "DROPOUT_TYPES",
    "PRECISIONS",
    "REGRESSION_OUTPUTS",
    "TTA",
    "BatchLimit",
    "PrecisionCheck",
    "SegmentOutput",
    "auto_batch_size",
    "check_precision",
    "compare_precision",
    "dropout_modules",
    "fit_batch_size",
    "gaussian_importance",
    "loader_workers",
    "make_loader",
    "measure_batch_size",
    "predict",
    "predict_regression",
    "resolve_device",
    "segment",
]
