"""Synthetic CT-like volumes with ellipsoidal lesions for the segmentation demo.

A volume is ``(z, y, x) = (32, 64, 64)`` voxels: air outside an elliptic body
whose outline drifts slowly along z, a rim of fat, soft tissue with
correlated 3-D texture, a denser "liver" region, bright vessels running along
z (look-alikes of hyperdense lesions), and 0 to 4 ellipsoidal lesions
(hypo- or hyperdense, radii 2-12 mm, log-uniform, so detection by size band
is meaningful). Geometry is in millimetres, so a scanner's pixel spacing and
slice spacing change how many voxels a lesion covers. The reference mask is
the analytic ellipsoid sampled at voxel centres (label 1, "lesion").

A :class:`Scanner` then applies its calibration (tissue contrast and offset), a
Gaussian blur (in-plane kernel; along z, the slice profile of the slice
thickness) and white noise, and the result is rounded to the uint16 stored
values of a DICOM file with ``RescaleSlope`` 1 and ``RescaleIntercept``
-1024. Blurs use :func:`scipy.ndimage.gaussian_filter`, whose plain C loops
give the same bytes on every CPU.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "LESION_RADIUS_MM",
    "RESCALE_INTERCEPT",
    "VOLUME_SHAPE",
    "Lesion",
    "PhantomVolume",
    "Scanner",
    "synthesize_volume",
]

VOLUME_SHAPE = (32, 64, 64)
RESCALE_INTERCEPT = -1024
LESION_RADIUS_MM = (2.0, 12.0)

_AIR_HU, _FAT_HU, _TISSUE_HU, _LIVER_HU = -1000.0, -100.0, 40.0, 60.0
_EDGE_MM = 0.6  # width of the soft lesion border
_MAX_LESIONS = 4


@dataclasses.dataclass(frozen=True)
class Scanner:
    """Geometry and acquisition signature of one site's CT scanner.

    Attributes
    ----------
    pixel_spacing : float
        In-plane spacing (mm), rows and columns alike.
    slice_spacing : float
        Distance between slice positions (mm), the ``ImagePositionPatient``
        step.
    slice_thickness : float
        Nominal reconstructed thickness (mm); above ``slice_spacing`` means
        overlapping reconstruction. Sets the z blur.
    scale, offset : float
        Calibration of tissue (HU above -500):
        ``observed = scale * (HU - 40) + 40 + offset``.
    blur_mm : float
        In-plane Gaussian blur sigma (mm) of the reconstruction kernel.
    noise_sd : float
        White noise standard deviation (HU).
    """

    pixel_spacing: float
    slice_spacing: float
    slice_thickness: float
    scale: float
    offset: float
    blur_mm: float
    noise_sd: float


@dataclasses.dataclass(frozen=True)
class Lesion:
    """One planted lesion (physical units, volume index frame, z first).

    ``center_mm`` is measured from the centre of voxel ``(0, 0, 0)``;
    ``radii_mm`` are the semi-axes (z, in-plane a, in-plane b), the in-plane
    axes rotated by ``angle`` radians; ``contrast_hu`` is signed (negative:
    hypodense); ``n_voxels`` is its size in the reference mask.
    """

    center_mm: tuple[float, float, float]
    radii_mm: tuple[float, float, float]
    angle: float
    contrast_hu: float
    n_voxels: int

    @property
    def radius_mm(self) -> float:
        """Equivalent-sphere radius (geometric mean of the semi-axes)."""
        return float(np.prod(self.radii_mm) ** (1.0 / 3.0))


@dataclasses.dataclass(frozen=True)
class PhantomVolume:
    """A synthesized case: stored values, reference mask and lesion list.

    ``stored`` is uint16 (z, y, x), HU = stored - 1024; ``mask`` uint8
    (z, y, x) in {0, 1}; index 0 along z is the lowest slice position.
    """

    stored: NDArray[np.uint16]
    mask: NDArray[np.uint8]
    lesions: tuple[Lesion, ...]

    @property
    def hu(self) -> NDArray[np.float32]:
        """The volume in Hounsfield units (float32)."""
        out: NDArray[np.float32] = self.stored.astype(np.float32) + np.float32(RESCALE_INTERCEPT)
        return out


def _sigmoid(x: NDArray[np.float64]) -> NDArray[np.float64]:
    out: NDArray[np.float64] = 0.5 * (1.0 + np.tanh(0.5 * x))
    return out


def _texture(
    rng: np.random.Generator, sigma_vox: tuple[float, float, float]
) -> NDArray[np.float64]:
    from scipy.ndimage import gaussian_filter

    field = gaussian_filter(rng.standard_normal(VOLUME_SHAPE), sigma_vox, mode="reflect")
    out: NDArray[np.float64] = field / field.std()
    return out


def _ellipsoid_distance(
    zz: NDArray[np.float64],
    yy: NDArray[np.float64],
    xx: NDArray[np.float64],
    center: tuple[float, float, float],
    radii: tuple[float, float, float],
    angle: float,
) -> NDArray[np.float64]:
    """Normalised radial coordinate: 1 on the ellipsoid surface."""
    dz, dy, dx = zz - center[0], yy - center[1], xx - center[2]
    c, s = np.cos(angle), np.sin(angle)
    u, v = c * dy + s * dx, -s * dy + c * dx
    out: NDArray[np.float64] = np.sqrt(
        (dz / radii[0]) ** 2 + (u / radii[1]) ** 2 + (v / radii[2]) ** 2
    )
    return out


def _place_lesions(
    rng: np.random.Generator,
    n_lesions: int,
    extent: tuple[float, float, float],
    body: tuple[float, float, float, float],
) -> list[tuple[tuple[float, float, float], tuple[float, float, float], float, float]]:
    """Centres, radii, angle, contrast of non-overlapping lesions inside the body."""
    cy, cx, ay, ax = body
    placed: list[tuple[tuple[float, float, float], tuple[float, float, float], float, float]] = []
    lo, hi = np.log(LESION_RADIUS_MM[0]), np.log(LESION_RADIUS_MM[1])
    for _ in range(n_lesions):
        radius = float(np.exp(rng.uniform(lo, hi)))
        radii = tuple(radius * float(f) for f in rng.uniform(0.8, 1.2, size=3))
        angle = float(rng.uniform(0.0, np.pi))
        sign = 1.0 if rng.uniform() < 0.4 else -1.0
        contrast = sign * float(rng.uniform(40.0, 75.0))
        r_max = max(radii)
        for _attempt in range(60):
            z = float(rng.uniform(r_max, max(extent[0] - r_max, r_max + 1e-3)))
            # Uniform in the inner body ellipse shrunk by the lesion size.
            rho, theta = np.sqrt(rng.uniform()), rng.uniform(0.0, 2 * np.pi)
            y = cy + rho * max(0.8 * ay - r_max, 1.0) * np.sin(theta)
            x = cx + rho * max(0.8 * ax - r_max, 1.0) * np.cos(theta)
            if all(
                np.hypot(np.hypot(z - c[0], y - c[1]), x - c[2]) > r_max + max(r) + 2.0
                for c, r, _, _ in placed
            ):
                placed.append(((z, float(y), float(x)), radii, angle, contrast))  # type: ignore[arg-type]
                break
    return placed


def synthesize_volume(
    rng: np.random.Generator, scanner: Scanner, *, n_lesions: int
) -> PhantomVolume:
    """One CT-like volume of shape ``VOLUME_SHAPE`` with its lesion mask.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of every random choice (anatomy, lesions, noise).
    scanner : Scanner
        Voxel spacing and acquisition signature.
    n_lesions : int
        Lesions to plant, 0 to 4 (fewer when they cannot be placed without
        overlap, which is rare).

    Returns
    -------
    PhantomVolume
    """
    from scipy.ndimage import gaussian_filter

    if not 0 <= n_lesions <= _MAX_LESIONS:
        from medval._errors import InputError

        raise InputError(f"n_lesions must be 0 to {_MAX_LESIONS}; got {n_lesions!r}.")
    nz, ny, nx = VOLUME_SHAPE
    ps, sz = scanner.pixel_spacing, scanner.slice_spacing
    zz, yy, xx = np.meshgrid(
        np.arange(nz) * sz, np.arange(ny) * ps, np.arange(nx) * ps, indexing="ij"
    )
    extent = (nz * sz, ny * ps, nx * ps)
    zc = zz[:, 0, 0][:, None, None] / extent[0]

    cy = extent[1] / 2 + rng.uniform(-1.5, 1.5)
    cx = extent[2] / 2 + rng.uniform(-1.5, 1.5)
    ay, ax = rng.uniform(19.0, 22.0), rng.uniform(22.0, 25.0)
    wobble = 1.0 + 0.06 * np.sin(2 * np.pi * (zc + rng.uniform()))
    rho = np.hypot((yy - cy) / (ay * wobble), (xx - cx) / (ax * wobble))
    body = _sigmoid((1.0 - rho) * 40.0)
    inner = _sigmoid((0.88 - rho) * 40.0)

    texture_sigma = (1.5 / sz, 1.5 / ps, 1.5 / ps)
    tissue = _TISSUE_HU + 12.0 * _texture(rng, texture_sigma)
    # A denser organ filling one side of the body.
    side = 1.0 if rng.uniform() < 0.5 else -1.0
    organ = _ellipsoid_distance(
        zz, yy, xx,
        (extent[0] * rng.uniform(0.4, 0.6), cy + rng.uniform(-3.0, 3.0), cx + side * 0.35 * ax),
        (extent[0] * 0.6, 0.65 * ay, 0.5 * ax), rng.uniform(-0.4, 0.4),
    )  # fmt: skip
    tissue += (_LIVER_HU - _TISSUE_HU) * _sigmoid((1.0 - organ) / 0.05)
    fat = _FAT_HU + 8.0 * _texture(rng, (0.5, 0.7, 0.7))
    hu = _AIR_HU + body * (fat - _AIR_HU) + inner * (tissue - fat)

    # Vessels along z: bright tubes, so brightness alone does not mean lesion.
    for _ in range(int(rng.poisson(4.0))):
        r, theta = 0.75 * np.sqrt(rng.uniform()), rng.uniform(0.0, 2 * np.pi)
        vy = cy + r * ay * np.sin(theta) + 2.0 * np.sin(2 * np.pi * zc + rng.uniform(0, 6))
        vx = cx + r * ax * np.cos(theta)
        radius = rng.uniform(0.8, 1.8)
        hu += rng.uniform(60.0, 110.0) * _sigmoid((radius - np.hypot(yy - vy, xx - vx)) / 0.3)

    mask = np.zeros(VOLUME_SHAPE, dtype=np.uint8)
    lesions: list[Lesion] = []
    for center, radii, angle, contrast in _place_lesions(rng, n_lesions, extent, (cy, cx, ay, ax)):
        # Work in the lesion's bounding box (with room for the soft border).
        box = tuple(
            slice(max(int((c - max(radii) - 3.0) // sp), 0), int((c + max(radii) + 3.0) // sp) + 2)
            for c, sp in zip(center, (sz, ps, ps), strict=True)
        )
        dist = _ellipsoid_distance(zz[box], yy[box], xx[box], center, radii, angle)
        hu[box] += contrast * _sigmoid((1.0 - dist) * min(radii) / _EDGE_MM)
        inside = np.zeros(VOLUME_SHAPE, dtype=bool)
        inside[box] = dist <= 1.0
        # A lesion smaller than a voxel still marks the voxel holding its centre.
        iz, iy, ix = (min(round(c / s), n - 1) for c, s, n in
                      zip(center, (sz, ps, ps), VOLUME_SHAPE, strict=True))  # fmt: skip
        inside[iz, iy, ix] = True
        mask[inside] = 1
        lesions.append(Lesion(center, radii, angle, contrast, int(inside.sum())))

    s = scanner
    # Calibration acts on tissue contrast around soft tissue; air stays air.
    observed = np.where(hu > -500.0, s.scale * (hu - _TISSUE_HU) + _TISSUE_HU + s.offset, hu)
    # Slice profile: FWHM of the thickness, in z voxels of the slice spacing.
    sigma = (s.slice_thickness / 2.355 / sz, s.blur_mm / ps, s.blur_mm / ps)
    observed = gaussian_filter(observed, sigma, mode="nearest")
    observed += s.noise_sd * rng.standard_normal(VOLUME_SHAPE)
    stored = np.clip(np.rint(observed) - RESCALE_INTERCEPT, 0, 4095).astype(np.uint16)
    return PhantomVolume(stored=stored, mask=mask, lesions=tuple(lesions))
