"""Running torch models: batching, devices, MC dropout (with head caching), TTA, ensembles."""

from medval.inference._head import DROPOUT_TYPES, dropout_modules
from medval.inference._predict import predict, resolve_device
from medval.inference._regress import REGRESSION_OUTPUTS, predict_regression
from medval.inference._segment import SegmentOutput, segment
from medval.inference._tta import TTA
from medval.inference._window import gaussian_importance

__all__ = [
    "DROPOUT_TYPES",
    "REGRESSION_OUTPUTS",
    "TTA",
    "SegmentOutput",
    "dropout_modules",
    "gaussian_importance",
    "predict",
    "predict_regression",
    "resolve_device",
    "segment",
]
