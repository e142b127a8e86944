"""Running torch models: batching, devices, MC dropout (with head caching), TTA, ensembles."""

from medval.inference._head import DROPOUT_TYPES, dropout_modules
from medval.inference._predict import predict, resolve_device
from medval.inference._tta import TTA

__all__ = ["DROPOUT_TYPES", "TTA", "dropout_modules", "predict", "resolve_device"]
