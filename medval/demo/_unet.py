"""The segmentation demo model: a small slice-wise 2-D U-Net with dropout.

:class:`SegNet` follows the U-Net of Ronneberger et al. (2015, "U-Net:
Convolutional Networks for Biomedical Image Segmentation", MICCAI), shrunk to
two resolution levels. ``Dropout2d`` in the bottleneck and decoder stays
active under Monte Carlo dropout (Gal & Ghahramani 2016, "Dropout as a
Bayesian Approximation", ICML), so repeated stochastic passes give voxel-wise
uncertainty. There is no normalisation layer (the net is shallow enough to
train without), so train and eval mode differ only in the dropout: switching
the whole model to ``train()`` for MC dropout changes nothing else.

The model does no windowing: its input is CT in HU windowed to [0, 1] with
:data:`SEG_WINDOW` (centre 40, width 400), as :func:`window_volume` does; the
demo spec declares that window as its ``[preprocess]`` step. Training
(:func:`train_segmenter`) minimises cross-entropy plus soft Dice (Milletari et
al. 2016, "V-Net", 3DV) with Adam and is deterministic given its seed.
"""

from __future__ import annotations

import dataclasses
import importlib
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from medval._errors import InputError

__all__ = [
    "SEG_WINDOW",
    "SegNet",
    "SegTrainingLog",
    "make_segmenter",
    "train_segmenter",
    "window_volume",
]

# (centre, width) in HU of the soft-tissue window the model expects.
SEG_WINDOW = (40.0, 400.0)


def window_volume(hu: NDArray[Any]) -> NDArray[np.float32]:
    """Window HU to [0, 1] with :data:`SEG_WINDOW` (the model's input scale).

    Parameters
    ----------
    hu : numpy.ndarray, any shape
        Values in Hounsfield units.

    Returns
    -------
    numpy.ndarray of float32, same shape
        ``clip((hu - (centre - width / 2)) / width, 0, 1)``.
    """
    centre, width = SEG_WINDOW
    low = centre - width / 2.0
    out: NDArray[np.float32] = np.clip(
        (np.asarray(hu, dtype=np.float32) - np.float32(low)) / np.float32(width), 0.0, 1.0
    ).astype(np.float32)
    return out


def _block(c_in: int, c_out: int, dropout: float) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(c_in, c_out, kernel_size=3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(c_out, c_out, kernel_size=3, padding=1),
        nn.ReLU(inplace=True),
    ]
    if dropout > 0:
        layers.append(nn.Dropout2d(p=dropout))
    return nn.Sequential(*layers)


class SegNet(nn.Module):
    """Two-level 2-D U-Net with two output logits (background, lesion).

    Encoder blocks of ``base`` and ``2 * base`` channels, a ``4 * base``
    bottleneck, transposed-convolution upsampling with skip concatenation,
    and a 1x1 head. Each block is (Conv3x3 + ReLU) x 2;
    bottleneck and decoder blocks end in ``Dropout2d(p=dropout)``.

    Parameters
    ----------
    base : int, default 12
        Channels of the first level.
    dropout : float, default 0.2
        Channel-dropout probability in the bottleneck and decoder.

    Notes
    -----
    Input ``(B, 1, H, W)``: HU windowed with :func:`window_volume`, ``H`` and
    ``W`` multiples of 4. Output ``(B, 2, H, W)`` logits; softmax over
    dim 1 gives background and lesion probabilities.
    """

    def __init__(self, base: int = 12, dropout: float = 0.2) -> None:
        super().__init__()
        if not isinstance(base, int) or isinstance(base, bool) or base < 1:
            raise InputError(f"base must be a positive int; got {base!r}.")
        if not 0.0 <= dropout < 1.0:
            raise InputError(f"dropout must be in [0, 1); got {dropout!r}.")
        self.base, self.dropout = base, dropout
        self.enc1 = _block(1, base, 0.0)
        self.enc2 = _block(base, 2 * base, 0.0)
        self.bottleneck = _block(2 * base, 4 * base, dropout)
        self.pool = nn.MaxPool2d(2)
        self.up2 = nn.ConvTranspose2d(4 * base, 2 * base, kernel_size=2, stride=2)
        self.dec2 = _block(4 * base, 2 * base, dropout)
        self.up1 = nn.ConvTranspose2d(2 * base, base, kernel_size=2, stride=2)
        self.dec1 = _block(2 * base, base, dropout)
        self.head = nn.Conv2d(base, 2, kernel_size=1)
        # He initialisation keeps activations at scale through the ReLUs (no
        # normalisation layers to do it).
        for module in self.modules():
            if isinstance(module, nn.Conv2d | nn.ConvTranspose2d):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Fixed centring of the [0, 1] window (mid-grey 0.5 -> 0); not learned.
        e1 = self.enc1((x - 0.5) * 4.0)
        e2 = self.enc2(self.pool(e1))
        b = self.bottleneck(self.pool(e2))
        d2 = self.dec2(torch.cat([self.up2(b), e2], dim=1))
        d1 = self.dec1(torch.cat([self.up1(d2), e1], dim=1))
        out: torch.Tensor = self.head(d1)
        return out


def make_segmenter(base: int = 12, dropout: float = 0.2) -> SegNet:
    """Factory (``"medval.demo:make_segmenter"`` in specs) with fixed initial weights.

    The initial weights are drawn in a forked RNG seeded with 0, so the
    factory plus the :func:`train_segmenter` seed fix the trained model; the
    global RNG state is left untouched.
    """
    with torch.random.fork_rng(devices=[]):
        torch.random.manual_seed(0)
        return SegNet(base=base, dropout=dropout)


@dataclasses.dataclass(frozen=True)
class SegTrainingLog:
    """What :func:`train_segmenter` did.

    Attributes
    ----------
    seed, epochs, batch_size : int
    lr : float
    n_volumes : int
        Training volumes.
    n_slices_per_epoch : int
        Slices seen per epoch: every slice with lesion voxels plus
        ``negative_ratio`` times as many lesion-free slices, drawn afresh each
        epoch.
    epoch_losses : tuple[float, ...]
        Mean loss (cross-entropy + soft Dice) of every epoch.
    """

    seed: int
    epochs: int
    batch_size: int
    lr: float
    n_volumes: int
    n_slices_per_epoch: int
    epoch_losses: tuple[float, ...]

    @property
    def final_loss(self) -> float:
        """Mean loss of the last epoch."""
        return self.epoch_losses[-1]


def _stack_slices(
    volumes: Sequence[NDArray[Any]], masks: Sequence[NDArray[Any]]
) -> tuple[torch.Tensor, torch.Tensor]:
    if len(volumes) != len(masks) or not volumes:
        raise InputError(
            f"volumes and masks must be non-empty and of equal length; got {len(volumes)} "
            f"volumes and {len(masks)} masks."
        )
    xs, ys = [], []
    for i, (vol, mask) in enumerate(zip(volumes, masks, strict=True)):
        v, m = np.asarray(vol), np.asarray(mask)
        if v.ndim != 3 or v.shape != m.shape or v.shape[1] % 4 or v.shape[2] % 4:
            raise InputError(
                f"volume {i} must be (z, y, x) with y and x multiples of 4 and its mask of "
                f"the same shape; got {v.shape} and {m.shape}."
            )
        if not np.isin(m, (0, 1)).all():
            raise InputError(f"mask {i} must hold only labels 0 and 1; got {np.unique(m)[:5]}.")
        xs.append(window_volume(v))
        ys.append(m.astype(np.int64))
    if len({x.shape[1:] for x in xs}) != 1:
        raise InputError("all volumes must share one in-plane shape (y, x); resample first.")
    return torch.from_numpy(np.concatenate(xs)[:, None]), torch.from_numpy(np.concatenate(ys))


def _check_range(name: str, value: Sequence[float], low: float, high: float) -> tuple[float, float]:
    ok = len(value) == 2 and low <= value[0] <= value[1] <= high
    if not ok:
        raise InputError(
            f"{name} must be a (low, high) pair with {low} <= low <= high <= {high}; got {value!r}."
        )
    return float(value[0]), float(value[1])


def _augment_intensity(
    bx: torch.Tensor,
    generator: torch.Generator,
    scale_range: tuple[float, float],
    offset_range_hu: tuple[float, float],
    noise_range_hu: tuple[float, float],
) -> torch.Tensor:
    """Per-slice random scanner calibration and noise, in window units.

    ``HU' = s (HU - 40) + 40 + o + N(0, sd^2)`` with ``s``, ``o`` and ``sd``
    uniform in their ranges, applied where the window is above 0 (tissue and
    fat; air, clipped to 0, stays air), then clipped to [0, 1] again.
    """
    n = bx.shape[0]
    u = torch.rand(3, n, 1, 1, 1, generator=generator)
    width = SEG_WINDOW[1]
    scale = scale_range[0] + (scale_range[1] - scale_range[0]) * u[0]
    offset = (offset_range_hu[0] + (offset_range_hu[1] - offset_range_hu[0]) * u[1]) / width
    sd = (noise_range_hu[0] + (noise_range_hu[1] - noise_range_hu[0]) * u[2]) / width
    noise = torch.randn(bx.shape, generator=generator) * sd
    # The window centre (40 HU) sits at 0.5: calibration pivots there.
    out = 0.5 + scale * (bx - 0.5) + offset + noise
    return torch.where(bx > 0, out, bx).clamp(0.0, 1.0)


def _loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    ce = nn.functional.cross_entropy(logits, target)
    prob = torch.softmax(logits, dim=1)[:, 1]
    truth = (target == 1).to(prob.dtype)
    # Soft Dice over the whole batch, so lesion-free slices do not divide by 0.
    dice = (2 * (prob * truth).sum() + 1.0) / (prob.sum() + truth.sum() + 1.0)
    return ce + (1.0 - dice)


def train_segmenter(
    volumes: Sequence[NDArray[Any]],
    masks: Sequence[NDArray[Any]],
    *,
    seed: int,
    epochs: int,
    batch_size: int = 32,
    lr: float = 2e-3,
    base: int = 12,
    dropout: float = 0.2,
    negative_ratio: float = 1.0,
    scale_range: tuple[float, float] = (1.0, 1.0),
    offset_range_hu: tuple[float, float] = (0.0, 0.0),
    noise_range_hu: tuple[float, float] = (0.0, 0.0),
    progress: bool = False,
) -> tuple[SegNet, SegTrainingLog]:
    """Train a :class:`SegNet` slice-wise on HU volumes and their lesion masks.

    Parameters
    ----------
    volumes : sequence of numpy.ndarray, each (z, y, x)
        CT volumes in HU (windowed here with :func:`window_volume`).
    masks : sequence of numpy.ndarray, each (z, y, x)
        Label maps (0 background, 1 lesion), aligned with ``volumes``.
    seed : int
        Seeds slice sampling, flips and dropout inside a forked RNG; the
        global RNG state is untouched. Initial weights come from
        :func:`make_segmenter`.
    epochs : int
        Passes; each sees every lesion slice and ``negative_ratio`` times as
        many lesion-free slices.
    batch_size, lr : int, float
        Adam settings (defaults 32, 2e-3), cosine decay to 0 over the epochs.
    base, dropout : int, float
        Architecture (see :class:`SegNet`).
    negative_ratio : float, default 1.0
        Lesion-free slices per lesion slice in each epoch (at least one
        batch's worth, at most all of them); more of them teach the model to
        stay quiet on healthy tissue.
    scale_range, offset_range_hu, noise_range_hu : (float, float)
        Intensity augmentation, drawn uniformly per slice: tissue contrast
        scale around 40 HU, HU offset and the standard deviation (HU) of
        added white noise (see :func:`_augment_intensity`). The defaults
        ``(1, 1)``, ``(0, 0)``, ``(0, 0)`` switch it off (no random draws).
    progress : bool, default False
        Show a tqdm progress bar on stderr.

    Returns
    -------
    model : SegNet
        In eval mode.
    log : SegTrainingLog

    Raises
    ------
    InputError
        If the arrays or the settings are invalid.
    """
    for name, value, low in (
        ("epochs", epochs, 1),
        ("batch_size", batch_size, 1),
        ("seed", seed, 0),
    ):
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            kind = "a positive" if low else "a non-negative"
            raise InputError(f"{name} must be {kind} int; got {value!r}.")
    if not lr > 0:
        raise InputError(f"lr must be positive; got {lr!r}.")
    if not negative_ratio >= 0:
        raise InputError(f"negative_ratio must be non-negative; got {negative_ratio!r}.")
    scale_range = _check_range("scale_range", scale_range, 0.1, 10.0)
    offset_range_hu = _check_range("offset_range_hu", offset_range_hu, -500.0, 500.0)
    noise_range_hu = _check_range("noise_range_hu", noise_range_hu, 0.0, 500.0)
    augment = (scale_range, offset_range_hu, noise_range_hu) != ((1.0, 1.0), (0.0, 0.0), (0.0, 0.0))
    x, y = _stack_slices(volumes, masks)
    has_lesion = (y == 1).flatten(1).any(dim=1)
    positive, negative = torch.nonzero(has_lesion).flatten(), torch.nonzero(~has_lesion).flatten()
    n_neg = min(max(round(negative_ratio * positive.numel()), batch_size), negative.numel())
    model = make_segmenter(base=base, dropout=dropout)
    losses: list[float] = []
    with torch.random.fork_rng(devices=[]):
        torch.random.manual_seed(seed)
        generator = torch.Generator().manual_seed(seed)
        optimizer = torch.optim.Adam(model.parameters(), lr=lr)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
        model.train()
        epoch_iter: Any = range(epochs)
        if progress:
            tqdm = importlib.import_module("tqdm.auto").tqdm
            epoch_iter = tqdm(epoch_iter, desc="train", unit="epoch", file=sys.stderr)
        for _ in epoch_iter:
            chosen = negative[torch.randperm(negative.numel(), generator=generator)[:n_neg]]
            order = torch.cat([positive, chosen])
            order = order[torch.randperm(order.numel(), generator=generator)]
            total = 0.0
            for start in range(0, order.numel(), batch_size):
                idx = order[start : start + batch_size]
                bx, by = x[idx], y[idx]
                flips = torch.rand(2, idx.numel(), generator=generator) < 0.5
                for dim, flip in ((-1, flips[0]), (-2, flips[1])):
                    bx = torch.where(flip.view(-1, 1, 1, 1), bx.flip(dim), bx)
                    by = torch.where(flip.view(-1, 1, 1), by.flip(dim), by)
                if augment:
                    bx = _augment_intensity(
                        bx, generator, scale_range, offset_range_hu, noise_range_hu
                    )
                optimizer.zero_grad(set_to_none=True)
                loss = _loss(model(bx), by)
                loss.backward()  # type: ignore[no-untyped-call]
                optimizer.step()
                total += float(loss.detach()) * idx.numel()
            schedule.step()
            losses.append(total / order.numel())
            if progress:
                epoch_iter.set_postfix(loss=f"{losses[-1]:.4f}")
    model.eval()
    log = SegTrainingLog(
        seed=seed,
        epochs=epochs,
        batch_size=batch_size,
        lr=float(lr),
        n_volumes=len(volumes),
        n_slices_per_epoch=int(positive.numel() + n_neg),
        epoch_losses=tuple(losses),
    )
    return model, log
