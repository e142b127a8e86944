"""Test-time augmentation: transforms by alias."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from medval._errors import InputError

__all__ = ["TTA", "resolve_tta"]

Transform = Callable[[torch.Tensor], torch.Tensor]


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


def _hflip(x: torch.Tensor) -> torch.Tensor:
    return torch.flip(x, dims=(-1,))


def _vflip(x: torch.Tensor) -> torch.Tensor:
    return torch.flip(x, dims=(-2,))


def _hvflip(x: torch.Tensor) -> torch.Tensor:
    return torch.flip(x, dims=(-2, -1))


#: Built-in augmentation sets by alias (inputs of shape (batch, ..., H, W)).
TTA: dict[str, tuple[Transform, ...]] = {
    "hflip": (_identity, _hflip),
    "flips": (_identity, _hflip, _vflip, _hvflip),
}


def resolve_tta(tta: str | Sequence[Transform] | None) -> tuple[Transform, ...]:
    """The transforms to apply; ``None`` is the identity alone."""
    if tta is None:
        return (_identity,)
    if isinstance(tta, str):
        if tta not in TTA:
            raise InputError(f"unknown tta {tta!r}; valid: {sorted(TTA)} or a list of callables.")
        return TTA[tta]
    transforms = tuple(tta)
    if not transforms or not all(callable(t) for t in transforms):
        raise InputError("tta must be an alias or a non-empty sequence of callables.")
    return transforms
