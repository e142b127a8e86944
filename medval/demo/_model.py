"""The demo model: a small CNN with dropout and one logit, and its training loop.

Training is deterministic given its seed: everything random runs inside
``torch.random.fork_rng`` seeded with ``torch.random.manual_seed``, the
shuffling uses its own ``torch.Generator``, and the caller's global RNG state
is left untouched.
"""

from __future__ import annotations

import dataclasses
import importlib
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from medval._errors import InputError

__all__ = ["DemoNet", "TrainingLog", "make_model", "train"]

DEFAULT_EPOCHS = 40
DEFAULT_LR = 5e-3


def _block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
    )


class DemoNet(nn.Module):
    """Small CNN for the demo's binary lesion finding.

    Three conv blocks (1 -> 8 -> 16 -> 32 channels, each Conv3x3 + BatchNorm +
    ReLU + MaxPool 2), global average pooling, ``Dropout(p=0.3)`` (so MC
    dropout has something to sample) and ``Linear(32, 1)``.

    Input ``(B, 1, H, W)`` float images in [0, 1]; output ``(B, 1)`` logits
    of the "lesion" class.
    """

    def __init__(self, dropout: float = 0.3) -> None:
        super().__init__()
        self.features = nn.Sequential(_block(1, 8), _block(8, 16), _block(16, 32))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(p=dropout)
        self.head = nn.Linear(32, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.pool(self.features(x)).flatten(1)
        out: torch.Tensor = self.head(self.dropout(z))
        return out


def make_model() -> DemoNet:
    """Zero-argument factory (``"medval.demo:make_model"`` in specs).

    The initial weights are always the same (drawn in a forked RNG seeded
    with 0), so factory plus :func:`train` seed fix the trained model; the
    global RNG state is left untouched.
    """
    with torch.random.fork_rng(devices=[]):
        torch.random.manual_seed(0)
        return DemoNet()


@dataclasses.dataclass(frozen=True)
class TrainingLog:
    """What :func:`train` did.

    Attributes
    ----------
    seed, epochs, batch_size : int
    lr : float
    n_train : int
        Number of training images.
    final_loss : float
        Mean BCE-with-logits loss over the last epoch.
    epoch_losses : tuple[float, ...]
        Mean loss of every epoch.
    augment : bool
        Whether random flips were applied.
    """

    seed: int
    epochs: int
    batch_size: int
    lr: float
    n_train: int
    final_loss: float
    epoch_losses: tuple[float, ...]
    augment: bool


def _stack_images(dataset: Any) -> torch.Tensor:
    """All ``item["image"]`` of a map-style or iterable dataset as one (n, 1, H, W)."""
    if hasattr(dataset, "__len__") and hasattr(dataset, "__getitem__"):
        items: Any = (dataset[i] for i in range(len(dataset)))
    else:
        items = iter(dataset)
    images = []
    for position, item in enumerate(items):
        image = item.get("image") if isinstance(item, Mapping) else None
        if not isinstance(image, torch.Tensor) or image.ndim != 3 or image.shape[0] != 1:
            got = type(item).__name__ if image is None else getattr(image, "shape", type(image))
            raise InputError(
                f"dataset item {position} must be a dict with an 'image' tensor of shape "
                f"(1, H, W); got {got}."
            )
        images.append(image.to(torch.float32))
    if not images:
        raise InputError("dataset is empty; train needs at least one image.")
    try:
        return torch.stack(images)
    except RuntimeError as exc:
        raise InputError(f"dataset images differ in shape; resize them first ({exc}).") from exc


def _check_labels(labels: Sequence[int] | NDArray[Any], n: int) -> torch.Tensor:
    y = np.asarray(labels)
    if y.shape != (n,):
        raise InputError(f"labels must have shape ({n},) to match the dataset; got {y.shape}.")
    if not np.isin(y, (0, 1)).all():
        bad = np.unique(y[~np.isin(y, (0, 1))])[:5].tolist()
        raise InputError(f"labels must be 0 or 1 (binary head); got values {bad}.")
    return torch.as_tensor(y.astype(np.float32)).unsqueeze(1)


def train(
    model: nn.Module,
    dataset: Any,
    labels: Sequence[int] | NDArray[Any],
    *,
    seed: int = 0,
    epochs: int = DEFAULT_EPOCHS,
    batch_size: int = 32,
    lr: float = DEFAULT_LR,
    augment: bool = True,
    progress: bool = False,
) -> TrainingLog:
    """Train a one-logit model in place with Adam and BCE-with-logits.

    Parameters
    ----------
    model : torch.nn.Module
        Maps ``(B, 1, H, W)`` to ``(B, 1)`` logits (e.g. :func:`make_model`).
        Trained on the device of its parameters; left in eval mode.
    dataset : map-style or iterable dataset
        Items are dicts with ``"image"``: float tensor ``(1, H, W)``; all
        images are loaded into memory once.
    labels : sequence of int, shape (n,)
        0/1 label of each dataset item, by position.
    seed : int, default 0
        Seeds initialisation-independent randomness (shuffling, flips,
        dropout) inside a forked RNG; the global RNG state is untouched.
    epochs, batch_size, lr : int, int, float
        Optimisation settings (defaults: 40 epochs, 32, 5e-3); the learning
        rate follows a cosine decay to zero over the epochs.
    augment : bool, default True
        Random horizontal and vertical flips.
    progress : bool, default False
        Show a tqdm progress bar on stderr.

    Returns
    -------
    TrainingLog

    Raises
    ------
    InputError
        If the dataset items, the labels or the settings are invalid.
    """
    for name, value in (("epochs", epochs), ("batch_size", batch_size)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise InputError(f"{name} must be a positive int; got {value!r}.")
    if not lr > 0:
        raise InputError(f"lr must be positive; got {lr!r}.")
    images = _stack_images(dataset)
    y = _check_labels(labels, images.shape[0])
    device = next(iter(model.parameters())).device
    images, y = images.to(device), y.to(device)
    n = images.shape[0]
    losses: list[float] = []
    fork_devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=fork_devices):
        torch.random.manual_seed(seed)
        generator = torch.Generator().manual_seed(seed)
        optimizer = torch.optim.Adam(model.parameters(), lr=lr)
        # Cosine decay lets the last epochs settle instead of ending on a noisy step.
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
        loss_fn = nn.BCEWithLogitsLoss()
        model.train()
        epoch_iter: Any = range(epochs)
        if progress:
            # importlib keeps mypy independent of the tqdm stubs.
            tqdm = importlib.import_module("tqdm.auto").tqdm
            epoch_iter = tqdm(epoch_iter, desc="train", unit="epoch", file=sys.stderr)
        for _ in epoch_iter:
            order = torch.randperm(n, generator=generator)
            total = 0.0
            for start in range(0, n, batch_size):
                idx = order[start : start + batch_size]
                batch = images[idx.to(device)]
                if augment:
                    flips = torch.rand(2, idx.numel(), generator=generator) < 0.5
                    batch = torch.where(flips[0].view(-1, 1, 1, 1).to(device),
                                        batch.flip(-1), batch)  # fmt: skip
                    batch = torch.where(flips[1].view(-1, 1, 1, 1).to(device),
                                        batch.flip(-2), batch)  # fmt: skip
                optimizer.zero_grad(set_to_none=True)
                loss = loss_fn(model(batch), y[idx.to(device)])
                loss.backward()
                optimizer.step()
                total += float(loss.detach()) * idx.numel()
            schedule.step()
            losses.append(total / n)
            if progress:
                epoch_iter.set_postfix(loss=f"{losses[-1]:.4f}")
    model.eval()
    return TrainingLog(
        seed=int(seed),
        epochs=epochs,
        batch_size=batch_size,
        lr=float(lr),
        n_train=n,
        final_loss=losses[-1],
        epoch_losses=tuple(losses),
        augment=augment,
    )
