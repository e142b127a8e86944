"""Running torch models: batching, devices (and, later, MC dropout, TTA, ensembles)."""

from medval.inference._predict import predict, resolve_device

__all__ = ["predict", "resolve_device"]
