"""Synthetic CT slices: a textured soft-tissue phantom, an optional lesion, and
a scanner's acquisition signature (intensity calibration, blur, noise).

Everything is computed in Hounsfield units with numpy and returned as the
int16 stored values of a DICOM file with ``RescaleSlope`` 1 and
``RescaleIntercept`` -1024. Blurs are exact matrix products with a Gaussian
kernel matrix (reflecting boundaries), which is fast at 64 x 64 and needs no
scipy.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
from numpy.typing import NDArray

__all__ = ["IMAGE_SIZE", "RESCALE_INTERCEPT", "WINDOW", "Acquisition", "synthesize"]

IMAGE_SIZE = 64
RESCALE_INTERCEPT = -1024
# Soft-tissue window (center, width) in HU, recommended for the demo model.
WINDOW = (40.0, 400.0)

_TISSUE_HU = 40.0
_FAT_HU = -100.0
_AIR_HU = -1000.0


@dataclasses.dataclass(frozen=True)
class Acquisition:
    """How one scanner turns true HU into stored values.

    ``observed = scale * true + offset`` (calibration), then a Gaussian blur
    of ``blur_sigma`` pixels (reconstruction kernel and slice thickness), then
    white noise of ``noise_sd`` HU.
    """

    scale: float
    offset: float
    blur_sigma: float
    noise_sd: float


@functools.lru_cache(maxsize=32)
def _blur_matrix(n: int, sigma: float) -> NDArray[np.float64]:
    """(n, n) matrix ``B`` so that ``B @ x`` is ``x`` Gaussian-blurred along axis 0."""
    if sigma <= 0:
        return np.eye(n)
    radius = int(np.ceil(4.0 * sigma))
    offsets = np.arange(-radius, radius + 1)
    weights = np.exp(-0.5 * (offsets / sigma) ** 2)
    weights /= weights.sum()
    rows = np.repeat(np.arange(n), offsets.size)
    cols = (np.arange(n)[:, None] + offsets[None, :]).ravel()
    # Symmetric reflection at the borders: -1 -> 0, n -> n - 1.
    cols = np.where(cols < 0, -cols - 1, cols)
    cols = np.where(cols >= n, 2 * n - cols - 1, cols)
    matrix = np.zeros((n, n))
    np.add.at(matrix, (rows, cols), np.tile(weights, n))
    matrix.setflags(write=False)
    return matrix


def _blur(image: NDArray[np.float64], sigma: float) -> NDArray[np.float64]:
    b = _blur_matrix(image.shape[0], float(sigma))
    out: NDArray[np.float64] = b @ image @ b.T
    return out


def _texture(rng: np.random.Generator, n: int) -> NDArray[np.float64]:
    """Unit-variance correlated noise at two scales (parenchyma-like)."""
    fine = _blur(rng.standard_normal((n, n)), 1.2)
    coarse = _blur(rng.standard_normal((n, n)), 4.0)
    tex = fine / fine.std() + 0.8 * coarse / coarse.std()
    out: NDArray[np.float64] = tex / tex.std()
    return out


def _disk(
    yy: NDArray[np.float64],
    xx: NDArray[np.float64],
    cy: float,
    cx: float,
    radius: float,
    edge: float,
) -> NDArray[np.float64]:
    """Soft-edged disk profile in [0, 1]."""
    dist = np.hypot(yy - cy, xx - cx)
    out: NDArray[np.float64] = 1.0 / (1.0 + np.exp((dist - radius) / edge))
    return out


def synthesize(
    rng: np.random.Generator,
    *,
    lesion: bool,
    acquisition: Acquisition,
    texture_sd: float = 18.0,
    lesion_hu: tuple[float, float] = (55.0, 85.0),
    lesion_radius: tuple[float, float] = (2.5, 4.5),
) -> NDArray[np.int16]:
    """One (64, 64) slice as int16 stored values (HU + 1024).

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of every random choice (anatomy, lesion, noise).
    lesion : bool
        Whether a lesion is drawn, at a random place and size.
    acquisition : Acquisition
        The scanner's calibration, blur and noise.
    texture_sd, lesion_hu, lesion_radius : float, (float, float), (float, float)
        Texture amplitude (HU), lesion contrast range (HU) and radius range
        (pixels).

    Returns
    -------
    numpy.ndarray of int16, shape (64, 64)
    """
    n = IMAGE_SIZE
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float64)
    cy = (n - 1) / 2 + rng.uniform(-1.5, 1.5)
    cx = (n - 1) / 2 + rng.uniform(-1.5, 1.5)
    ay = rng.uniform(24.0, 28.5)
    ax = rng.uniform(28.0, 31.0)
    rho = np.hypot((yy - cy) / ay, (xx - cx) / ax)
    body = 1.0 / (1.0 + np.exp((rho - 1.0) * 40.0))
    inner = 1.0 / (1.0 + np.exp((rho - 0.88) * 40.0))

    tissue = _TISSUE_HU + texture_sd * _texture(rng, n)
    fat = _FAT_HU + 10.0 * rng.standard_normal((n, n))
    hu = _AIR_HU + body * (fat - _AIR_HU) + inner * (tissue - fat)

    # Vessels: small bright dots everywhere, so brightness alone is no cue.
    for _ in range(int(rng.poisson(5.0))):
        r, theta = 0.75 * np.sqrt(rng.uniform()), rng.uniform(0.0, 2 * np.pi)
        vy, vx = cy + r * ay * np.sin(theta), cx + r * ax * np.cos(theta)
        hu += rng.uniform(50.0, 90.0) * _disk(yy, xx, vy, vx, rng.uniform(0.8, 1.5), 0.4)

    if lesion:
        r, theta = 0.6 * np.sqrt(rng.uniform()), rng.uniform(0.0, 2 * np.pi)
        ly, lx = cy + r * ay * np.sin(theta), cx + r * ax * np.cos(theta)
        radius = rng.uniform(*lesion_radius)
        hu += rng.uniform(*lesion_hu) * _disk(yy, xx, ly, lx, radius, 0.7)

    a = acquisition
    observed = a.scale * hu + a.offset
    observed = _blur(observed, a.blur_sigma) + a.noise_sd * rng.standard_normal((n, n))
    stored: NDArray[np.int16] = np.clip(np.rint(observed) - RESCALE_INTERCEPT, 0, 4095).astype(
        np.int16
    )
    return stored
