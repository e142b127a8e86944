"""A seeded synthetic segmentation cohort for the mask-guarantee tests.

Three scanners x ``n_per_scanner`` 2-D images (64 x 64 by default). About 20%
of the images are healthy (empty reference); the others hold 1 to 3
elliptical lesions with log-uniform semi-axes from 0.8 to 11 pixels (so some
lesions are a handful of pixels), random aspect and orientation. The model's
foreground probability is ``sigmoid(gain * logit + bias)`` of a blurred,
noisy version of the truth:

- ``logit = contrast * 8 * (gaussian_blur(truth, 1.2) - 0.4)`` with a
  per-image contrast (log-normal) so some images are hard;
- plus smooth correlated noise (blurred white noise, SD about 1.3);
- plus false-positive blobs (0-2 Gaussian bumps of height 4-9) on 35% of the
  images;
- scanner-dependent miscalibration: A is roughly calibrated, B is
  over-confident (gain 1.4), C is under-confident (gain 0.55, bias -1.6):
  its lesions sit at lower probabilities, so a threshold calibrated on all
  scanners misses more of C's lesion voxels than alpha and a per-scanner
  (Mondrian) threshold is needed.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

SCANNERS = {"A": (1.0, 0.0), "B": (1.4, 0.4), "C": (0.55, -1.6)}


@dataclasses.dataclass(frozen=True)
class SegCohort:
    """Probabilities (n, H, W) float32, references (n, H, W) bool, scanners (n,) str."""

    probabilities: NDArray[np.float32]
    references: NDArray[np.bool_]
    scanners: NDArray[np.str_]


def _lesions(rng: np.random.Generator, shape: tuple[int, int]) -> NDArray[np.bool_]:
    yy, xx = np.mgrid[: shape[0], : shape[1]].astype(np.float64)
    mask = np.zeros(shape, dtype=bool)
    for _ in range(int(rng.integers(1, 4))):
        r = float(np.exp(rng.uniform(np.log(0.8), np.log(11.0))))
        a, b = r * rng.uniform(0.7, 1.4), r * rng.uniform(0.7, 1.4)
        cy, cx = rng.uniform(6, shape[0] - 6), rng.uniform(6, shape[1] - 6)
        th = rng.uniform(0, np.pi)
        u = (yy - cy) * np.cos(th) + (xx - cx) * np.sin(th)
        v = -(yy - cy) * np.sin(th) + (xx - cx) * np.cos(th)
        mask |= (u / a) ** 2 + (v / b) ** 2 <= 1.0
    if not mask.any():  # a sub-pixel ellipse: keep its centre pixel
        mask[int(cy), int(cx)] = True
    return mask


def make_cohort(
    *, seed: int = 0, n_per_scanner: int = 100, shape: tuple[int, int] = (64, 64)
) -> SegCohort:
    """Draw the cohort (deterministic for a given seed)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[0], : shape[1]].astype(np.float64)
    probs, refs, scanners = [], [], []
    for name, (gain, bias) in SCANNERS.items():
        for _ in range(n_per_scanner):
            healthy = rng.random() < 0.2
            truth = np.zeros(shape, dtype=bool) if healthy else _lesions(rng, shape)
            contrast = float(np.exp(rng.normal(0.0, 0.35)))
            blurred = ndimage.gaussian_filter(truth.astype(np.float64), 1.2)
            logit = contrast * 8.0 * (blurred - 0.4)
            noise = ndimage.gaussian_filter(rng.normal(size=shape), 1.5)
            logit += noise * (1.3 / noise.std())
            if rng.random() < 0.35:
                for _ in range(int(rng.integers(1, 3))):
                    cy, cx = rng.uniform(0, shape[0]), rng.uniform(0, shape[1])
                    s = rng.uniform(1.0, 3.0)
                    bump = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * s * s))
                    logit += rng.uniform(4.0, 9.0) * bump
            p = 1.0 / (1.0 + np.exp(-(gain * logit + bias)))
            probs.append(p.astype(np.float32))
            refs.append(truth)
            scanners.append(name)
    return SegCohort(np.stack(probs), np.stack(refs), np.array(scanners))


@functools.lru_cache(maxsize=2)
def cohort(seed: int = 0) -> SegCohort:
    """The default cohort, drawn once per process (shared by the test modules)."""
    return make_cohort(seed=seed)
