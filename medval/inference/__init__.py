"""Running torch models: batching, devices, MC dropout (with head caching), TTA, ensembles."""

from medval.inference._head import DROPOUT_TYPES, dropout_modules
from medval.inference._predict import predict, resolve_device
from medval.inference._segment import SegmentOutput, segment
from medval.inference._tta import TTA
from medval.inference._window import gaussian_importance

__all__ = [
    "DROPOUT_TYPES",
    "TTA",
    "SegmentOutput",
    "dropout_modules",
    "gaussian_importance",
    "predict",
    "resolve_device",
    "segment",
]
