"""The bone-age demo model: a small CNN with a mean and a log-variance head.

:class:`RegNet` maps a preprocessed radiograph to ``(mean, log variance)``
of the bone age in months: a heteroscedastic Gaussian regression head (Nix
and Weigend 1994, "Estimating the mean and variance of the target
probability distribution", ICNN; Kendall and Gal 2017, "What Uncertainties
Do We Need in Bayesian Deep Learning for Computer Vision?", NeurIPS).
``Dropout`` before the head stays active under Monte Carlo dropout (Gal and
Ghahramani 2016, ICML), which adds the model's own (epistemic) spread to the
predicted (aleatoric) variance. The network works in standardised units;
``forward`` maps them to months with the fixed affine :data:`LABEL_CENTER`,
:data:`LABEL_SCALE`.

The input is the DICOM pixel data through :data:`REG_PREPROCESS`, the
steps a medval spec declares as its ``[preprocess]`` (built by
:func:`regression_pipeline`, :class:`medval.io.Pipeline`), so training and
deployment see the same arrays. :func:`train_regressor` minimises the
beta-NLL of Seitzer et al. (2022, "On the Pitfalls of Heteroscedastic
Uncertainty Estimation with Probabilistic Neural Networks", ICLR) after a
mean-squared-error warm-up, with Adam, deterministically given its seed.
"""

from __future__ import annotations

import dataclasses
import importlib
import math
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from medval._errors import InputError

__all__ = [
    "AUGMENT_RANGES",
    "LABEL_CENTER",
    "LABEL_SCALE",
    "REG_PREPROCESS",
    "RegNet",
    "RegTrainingLog",
    "make_regressor",
    "regression_pipeline",
    "regression_spec_fields",
    "train_regressor",
]

#: Months = LABEL_CENTER + LABEL_SCALE * (the network's standardised mean).
LABEL_CENTER = 114.0
LABEL_SCALE = 60.0
_LOG_SCALE2 = 2.0 * math.log(LABEL_SCALE)
#: The model's input: resized to 64 x 64, clipped to its own 1st-99th percentiles, onto [0, 1].
REG_PREPROCESS: tuple[dict[str, Any], ...] = (
    {"op": "resize", "size": [64, 64], "interpolation": "bilinear", "keep_aspect": False,
     "antialias": True},
    {"op": "clip_percentile", "low": 1.0, "high": 99.0},
    {"op": "normalize", "method": "minmax", "mean": None, "std": None},
)  # fmt: skip


def regression_pipeline() -> Any:
    """:data:`REG_PREPROCESS` as a :class:`medval.io.Pipeline` (after decoding and MONOCHROME1)."""
    from medval.io import Pipeline

    return Pipeline.from_steps(REG_PREPROCESS)


def regression_spec_fields() -> dict[str, str]:
    """The ``regression_spec.toml.template`` fields that :data:`REG_PREPROCESS` fixes.

    ``size``, ``clip_low`` and ``clip_high`` as TOML text; the writer adds
    ``name`` and ``seed``.
    """
    resize, clip = REG_PREPROCESS[0], REG_PREPROCESS[1]
    return {
        "size": ", ".join(str(int(v)) for v in resize["size"]),
        "clip_low": repr(float(clip["low"])),
        "clip_high": repr(float(clip["high"])),
    }


def _block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
    )


class RegNet(nn.Module):
    """Small CNN with a Gaussian head: bone age mean and log variance.

    Four conv blocks (1 -> w -> 2w -> 4w -> 4w channels, each Conv3x3 +
    BatchNorm + ReLU + MaxPool 2), global average pooling, ``Dropout(p)``
    and ``Linear(4w, 2)``.

    Parameters
    ----------
    width : int, default 12
        ``w``, channels of the first block.
    dropout : float, default 0.1
        Dropout probability before the head.

    Notes
    -----
    Input ``(B, 1, H, W)`` images preprocessed with :data:`REG_PREPROCESS`
    (64 x 64 in [0, 1]). Output ``(B, 2)``: column 0 the mean bone age in
    months, column 1 the log variance in months squared.
    """

    def __init__(self, width: int = 12, dropout: float = 0.1) -> None:
        super().__init__()
        if not isinstance(width, int) or isinstance(width, bool) or width < 1:
            raise InputError(f"width must be a positive int; got {width!r}.")
        if not 0.0 <= dropout < 1.0:
            raise InputError(f"dropout must be in [0, 1); got {dropout!r}.")
        self.width = w = width
        self.features = nn.Sequential(
            _block(1, w), _block(w, 2 * w), _block(2 * w, 4 * w), _block(4 * w, 4 * w)
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(p=dropout)
        self.head = nn.Linear(4 * w, 2)

    def standardised(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 2)``: mean and log variance in standardised units (what training fits)."""
        z = self.pool(self.features(x)).flatten(1)
        out: torch.Tensor = self.head(self.dropout(z))
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.standardised(x)
        return torch.stack((LABEL_CENTER + LABEL_SCALE * z[:, 0], z[:, 1] + _LOG_SCALE2), dim=1)


def make_regressor() -> RegNet:
    """Zero-argument factory (``"medval.demo:make_regressor"`` in specs).

    The initial weights are always the same (drawn in a forked RNG seeded
    with 0); the global RNG state is left untouched.
    """
    with torch.random.fork_rng(devices=[]):
        torch.random.manual_seed(0)
        return RegNet()


@dataclasses.dataclass(frozen=True)
class RegTrainingLog:
    """What :func:`train_regressor` did.

    Attributes
    ----------
    seed, epochs, warmup_epochs, batch_size : int
    lr, beta : float
    n_train : int
        Training images.
    epoch_losses : tuple[float, ...]
        Mean loss of every epoch (MSE during the warm-up, then beta-NLL),
        standardised units.
    final_loss : float
    augment : bool
        Whether the images were augmented.
    augment_ranges : dict of str to (float, float)
    augment_share : float
        The augmentation ranges and the share of images augmented (when
        ``augment``).
    """

    seed: int
    epochs: int
    warmup_epochs: int
    batch_size: int
    lr: float
    beta: float
    n_train: int
    epoch_losses: tuple[float, ...]
    final_loss: float
    augment: bool
    augment_ranges: dict[str, tuple[float, float]]
    augment_share: float


def _check_inputs(
    images: NDArray[Any], targets: Sequence[float] | NDArray[Any]
) -> tuple[torch.Tensor, torch.Tensor]:
    x = np.asarray(images)
    if x.ndim != 4 or x.shape[1] != 1 or x.shape[0] < 1:
        raise InputError(f"images must have shape (n, 1, H, W) with n >= 1; got {x.shape}.")
    y = np.asarray(targets, dtype=np.float64)
    if y.shape != (x.shape[0],):
        raise InputError(f"targets must have shape ({x.shape[0]},) to match images; got {y.shape}.")
    if not np.isfinite(y).all():
        raise InputError("targets must be finite numbers (months); got NaN or infinity.")
    z = (y - LABEL_CENTER) / LABEL_SCALE
    return torch.from_numpy(x.astype(np.float32)), torch.from_numpy(z.astype(np.float32))


def _beta_nll(z: torch.Tensor, y: torch.Tensor, beta: float) -> torch.Tensor:
    """Beta-NLL (Seitzer et al. 2022): the Gaussian NLL weighted by stop-gradient var**beta."""
    mean, logvar = z[:, 0], z[:, 1].clamp(-12.0, 6.0)
    nll = 0.5 * (logvar + (y - mean) ** 2 * torch.exp(-logvar))
    if beta > 0:
        nll = nll * torch.exp(beta * logvar).detach()
    return nll.mean()


def _augment(
    batch: torch.Tensor,
    generator: torch.Generator,
    ranges: dict[str, tuple[float, float]],
    share: float,
) -> torch.Tensor:
    """Per image: a mirror; for a ``share`` of them a gamma, a Gaussian blur and white noise."""
    b = batch.shape[0]
    chosen = torch.rand(b, generator=generator) < share
    identity = {"gamma": 1.0, "blur_px": 0.0, "noise_sd": 0.0}

    def draw(name: str) -> torch.Tensor:
        lo, hi = ranges[name]
        value = lo + (hi - lo) * torch.rand(b, generator=generator)
        return torch.where(chosen, value, torch.full_like(value, identity[name]))

    flip = torch.rand(b, generator=generator) < 0.5
    out = torch.where(flip.view(-1, 1, 1, 1), batch.flip(-1), batch)
    out = out.clamp(0.0, 1.0) ** draw("gamma").view(-1, 1, 1, 1)
    sigma = draw("blur_px").clamp_min(1e-3)
    offsets = torch.arange(-3, 4, dtype=torch.float32)
    kernel = torch.exp(-0.5 * (offsets[None, :] / sigma[:, None]) ** 2)
    kernel = kernel / kernel.sum(1, keepdim=True)
    h, w = out.shape[-2:]
    # Separable blur, one kernel per image (grouped convolutions).
    flat = out.view(1, b, h, w)
    flat = nn.functional.conv2d(
        nn.functional.pad(flat, (3, 3, 0, 0), mode="replicate"), kernel.view(b, 1, 1, 7), groups=b
    )
    flat = nn.functional.conv2d(
        nn.functional.pad(flat, (0, 0, 3, 3), mode="replicate"), kernel.view(b, 1, 7, 1), groups=b
    )
    noise = draw("noise_sd").view(-1, 1, 1, 1) * torch.randn(out.shape, generator=generator)
    return flat.view(b, 1, h, w) + noise


#: Default augmentation ranges (uniform): gamma, blur sigma (pixels), noise sd ([0, 1] scale).
AUGMENT_RANGES: dict[str, tuple[float, float]] = {
    "gamma": (0.8, 1.25),
    "blur_px": (0.0, 0.8),
    "noise_sd": (0.0, 0.04),
}


def train_regressor(
    model: RegNet,
    images: NDArray[Any],
    targets: Sequence[float] | NDArray[Any],
    *,
    seed: int = 0,
    epochs: int = 30,
    warmup_epochs: int = 5,
    batch_size: int = 32,
    lr: float = 3e-3,
    beta: float = 0.5,
    augment: bool = True,
    augment_ranges: dict[str, tuple[float, float]] | None = None,
    augment_share: float = 0.5,
    progress: bool = False,
) -> RegTrainingLog:
    """Train a :class:`RegNet` in place: MSE warm-up, then beta-NLL, with Adam.

    Parameters
    ----------
    model : RegNet
        Trained on CPU; left in eval mode.
    images : numpy.ndarray, shape (n, 1, H, W)
        Preprocessed images (:func:`regression_pipeline`).
    targets : array-like, shape (n,)
        Bone ages in months.
    seed : int, default 0
        Seeds shuffling, flips and dropout inside a forked RNG; the global
        RNG state is untouched.
    epochs, warmup_epochs, batch_size : int
        Epochs in all, of which the first ``warmup_epochs`` fit the mean
        alone by MSE (the variance head is untouched), so the variance is
        learnt from residuals of a sensible mean; mini-batch size.
    lr : float, default 3e-3
        Adam learning rate, cosine decay to 0 over the epochs.
    beta : float, default 0.5
        Exponent of the beta-NLL (0: the plain Gaussian NLL; 0.5 keeps the
        mean from being neglected where the variance is large).
    augment : bool, default True
        Per image: a random mirror (a mirrored left hand has the same bone
        age) and, for ``augment_share`` of the images, a random gamma,
        Gaussian blur and white noise with parameters uniform in
        ``augment_ranges``, so the model does not lean on one detector's
        contrast, sharpness and noise. The other images stay as they are, so
        the variance head also learns what clean images are worth.
    augment_ranges : dict, optional
        ``gamma``, ``blur_px`` (sigma in pixels) and ``noise_sd`` (on the
        [0, 1] scale) as (low, high); default :data:`AUGMENT_RANGES`.
    augment_share : float, default 0.5
        Chance that an image gets the intensity augmentation.
    progress : bool, default False
        Show a tqdm progress bar on stderr.

    Returns
    -------
    RegTrainingLog

    Raises
    ------
    InputError
        If the images, targets or settings are invalid.
    """
    for name, value in (("epochs", epochs), ("batch_size", batch_size)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise InputError(f"{name} must be a positive int; got {value!r}.")
    if not isinstance(warmup_epochs, int) or not 0 <= warmup_epochs < epochs:
        raise InputError(f"warmup_epochs must be an int in [0, epochs); got {warmup_epochs!r}.")
    if not lr > 0 or not beta >= 0:
        raise InputError(f"lr must be > 0 and beta >= 0; got lr={lr!r}, beta={beta!r}.")
    ranges = dict(AUGMENT_RANGES if augment_ranges is None else augment_ranges)
    if not 0.0 <= augment_share <= 1.0:
        raise InputError(f"augment_share must be in [0, 1]; got {augment_share!r}.")
    if set(ranges) != set(AUGMENT_RANGES):
        raise InputError(f"augment_ranges must have the keys {sorted(AUGMENT_RANGES)}; got "
                         f"{sorted(ranges)}.")  # fmt: skip
    x, y = _check_inputs(images, targets)
    n = x.shape[0]
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
        for epoch in epoch_iter:
            order = torch.randperm(n, generator=generator)
            total = 0.0
            for start in range(0, n, batch_size):
                idx = order[start : start + batch_size]
                batch = x[idx]
                if augment:
                    batch = _augment(batch, generator, ranges, augment_share)
                z = model.standardised(batch)
                loss: torch.Tensor
                if epoch < warmup_epochs:
                    loss = ((z[:, 0] - y[idx]) ** 2).mean()
                else:
                    loss = _beta_nll(z, y[idx], beta)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()  # type: ignore[no-untyped-call]
                optimizer.step()
                total += float(loss.detach()) * idx.numel()
            schedule.step()
            losses.append(total / n)
            if progress:
                epoch_iter.set_postfix(loss=f"{losses[-1]:.4f}")
    model.eval()
    return RegTrainingLog(
        seed=int(seed), epochs=epochs, warmup_epochs=warmup_epochs, batch_size=batch_size,
        lr=float(lr), beta=float(beta), n_train=n, epoch_losses=tuple(losses),
        final_loss=losses[-1], augment=augment, augment_ranges=ranges,
        augment_share=float(augment_share),
    )  # fmt: skip
