"""Synthetic left-hand radiographs whose skeletal maturity sets a bone age in months.

A hand is drawn in field-of-view units (the image spans [-0.5, 0.5] both
ways, fingers up): forearm (radius and ulna), carpal bones, four
metacarpals and two phalanges per finger, inside soft tissue, plus a lead
side marker. Its bone age ``B`` (months, :data:`BONE_AGE_RANGE`) fixes
what a reader of a Greulich-Pyle atlas looks at: how many carpal
ossification centres have appeared and how large they are, how wide the
epiphyses are against their shafts, how wide the growth-plate gaps still
are (closing from about 9 years, fused by 17), the size of the hand and the
mineral density of bone. Nuisance variation: position, rotation, hand
size, finger spread, soft-tissue thickness, exposure and the marker's
corner.

About a third of the images are degraded (:data:`DEGRADATIONS`): motion
blur, a lead apron band across part of the hand, or underexposure. Their
maturity cues are partly gone, so their bone age is less predictable, the
heteroscedastic part of the task.

A :class:`DetectorModel` then blurs (its resolution), applies its response
(gain, offset and a gamma on the attenuation), adds noise, and rounds to
12-bit stored values (MONOCHROME1 detectors store the inverse). Blurs use
:func:`scipy.ndimage.gaussian_filter`, whose plain C loops give the same
bytes on every CPU.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from numpy.typing import NDArray

from medval._errors import InputError

__all__ = [
    "BONE_AGE_RANGE",
    "DEGRADATIONS",
    "MAX_STORED",
    "DetectorModel",
    "HandAnatomy",
    "HandImage",
    "draw_anatomy",
    "synthesize_hand",
]

#: Bone ages (months) the phantom draws, 1 to 18 years.
BONE_AGE_RANGE = (12.0, 216.0)
#: Kinds of degraded image ("" = none).
DEGRADATIONS = ("", "blur", "apron", "underexposed")
#: 12-bit stored values: BitsStored 12, PixelRepresentation 0.
MAX_STORED = 4095

_DEGRADED_SHARE = 0.32
# Carpal ossification centres: appearance age (months) and position (hand frame),
# in the order they appear (capitate and hamate first, pisiform last).
_CARPALS = (
    (3.0, (-0.035, -0.235)), (6.0, (0.040, -0.235)), (30.0, (0.100, -0.275)),
    (42.0, (-0.030, -0.300)), (54.0, (-0.115, -0.215)), (66.0, (-0.095, -0.290)),
    (80.0, (0.030, -0.175)), (110.0, (0.115, -0.205)),
)  # fmt: skip
_CARPAL_RADIUS = (0.012, 0.034)
_METACARPAL_X = (-0.135, -0.045, 0.045, 0.135)
_JOINT = 0.014  # joint space between a bone's head and the next epiphysis
_EPIPHYSIS_HALF_HEIGHT = 0.012
_MAX_GAP = 0.045  # growth-plate gap of an open plate
_TISSUE, _MARKER, _APRON = 0.30, 1.5, 1.3
_EDGE = 0.006  # soft edge of every shape (FOV units)
Segment = tuple[float, float, float, float, float]  # x0, y0, x1, y1, half width


@dataclasses.dataclass(frozen=True)
class DetectorModel:
    """How one site's X-ray detector turns attenuation into stored values.

    ``stored = offset + gain * (attenuation / 1.6) ** gamma`` after a
    Gaussian blur of ``blur_px`` pixels, plus white noise of ``noise_sd``;
    rounded and clipped to 0-4095; inverted (``4095 - stored``) when
    ``monochrome1``.

    Attributes
    ----------
    matrix : int
        Rows and columns of the image.
    pixel_spacing : float
        Imager pixel spacing (mm).
    gain, offset, gamma, blur_px, noise_sd : float
        Response, blur (pixels) and noise (stored units).
    monochrome1 : bool
        High stored values display dark (PhotometricInterpretation).
    """

    matrix: int
    pixel_spacing: float
    gain: float
    offset: float
    gamma: float
    blur_px: float
    noise_sd: float
    monochrome1: bool = False


@dataclasses.dataclass(frozen=True)
class HandAnatomy:
    """One patient's hand, the same in each of their images.

    ``size`` multiplies the maturity-driven hand scale; ``spread`` fans the
    fingers; ``tissue`` scales soft-tissue attenuation.
    """

    bone_age: float
    size: float
    spread: float
    tissue: float


@dataclasses.dataclass(frozen=True)
class HandImage:
    """One synthesized radiograph: uint16 stored values and how it was degraded."""

    stored: NDArray[np.uint16]
    degradation: str


def draw_anatomy(rng: np.random.Generator, bone_age: float) -> HandAnatomy:
    """A patient's hand at ``bone_age`` months, with random size, spread and tissue."""
    return HandAnatomy(
        bone_age=float(bone_age),
        size=float(np.clip(rng.normal(1.0, 0.035), 0.9, 1.1)),
        spread=float(rng.uniform(0.85, 1.15)),
        tissue=float(rng.uniform(0.85, 1.15)),
    )


def _sigmoid(x: NDArray[np.float64]) -> NDArray[np.float64]:
    out: NDArray[np.float64] = 0.5 * (1.0 + np.tanh(0.5 * x))
    return out


def _rasterize(n: int, segments: list[Segment]) -> NDArray[np.float64]:
    """Soft mask (0-1) of the union of capsules (image frame) on the n x n pixel grid.

    The union of soft shapes is the sigmoid of the largest margin
    (half width minus distance to the segment); each capsule is evaluated
    only within its bounding box widened by ten edge widths, beyond which
    the mask is below 1e-4.
    """
    margin = np.full((n, n), -np.inf)
    centres = (np.arange(n) + 0.5) / n - 0.5
    for x0, y0, x1, y1, hw in segments:
        reach = hw + 10.0 * _EDGE
        # Pixel (i, j) has its centre at x = centres[j], y = -centres[i].
        j0 = max(int(np.floor((min(x0, x1) - reach + 0.5) * n - 0.5)), 0)
        j1 = min(int(np.ceil((max(x0, x1) + reach + 0.5) * n - 0.5)) + 1, n)
        i0 = max(int(np.floor((0.5 - max(y0, y1) - reach) * n - 0.5)), 0)
        i1 = min(int(np.ceil((0.5 - min(y0, y1) + reach) * n - 0.5)) + 1, n)
        if i0 >= i1 or j0 >= j1:
            continue
        x, y = centres[None, j0:j1], -centres[i0:i1, None]
        dx, dy = x1 - x0, y1 - y0
        s = np.clip(((x - x0) * dx + (y - y0) * dy) / max(dx * dx + dy * dy, 1e-12), 0.0, 1.0)
        inside = hw - np.hypot(x - (x0 + s * dx), y - (y0 + s * dy))
        np.maximum(margin[i0:i1, j0:j1], inside, out=margin[i0:i1, j0:j1])
    return _sigmoid(margin / _EDGE)


def _maturity(bone_age: float) -> dict[str, float]:
    """The atlas cues at a bone age: scale, epiphysis width, plate gap, density."""
    t = float(np.clip((bone_age - BONE_AGE_RANGE[0]) / (BONE_AGE_RANGE[1] - BONE_AGE_RANGE[0]),
                      0.0, 1.0))  # fmt: skip
    return {
        "scale": 0.92 + 0.23 * t,
        "epiphysis": 0.35 + 0.65 * min(1.0, max(bone_age - 12.0, 0.0) / 156.0),
        "gap": _MAX_GAP * float(np.clip((204.0 - bone_age) / 96.0, 0.0, 1.0)),
        "radius_gap": _MAX_GAP * float(np.clip((216.0 - bone_age) / 96.0, 0.0, 1.0)),
        "density": 0.70 + 0.30 * t,
    }


def _across(cx: float, cy: float, half: float, ux: float, uy: float) -> Segment:
    """An epiphysis: a short capsule centred at (cx, cy), normal to the direction (ux, uy)."""
    return (cx - half * uy, cy + half * ux, cx + half * uy, cy - half * ux,
            _EPIPHYSIS_HALF_HEIGHT)  # fmt: skip


def _ray(
    base: tuple[float, float],
    direction: tuple[float, float],
    bones: tuple[tuple[float, float], ...],
    m: dict[str, float],
) -> list[Segment]:
    """A metacarpal and its phalanges along one finger.

    ``bones`` are (shaft length, half width); every bone after the first
    starts with an epiphysis separated from its shaft by the growth gap.
    """
    ux, uy = direction
    out: list[Segment] = []
    along = 0.0
    for i, (length, hw) in enumerate(bones):
        if i > 0:
            along += _JOINT + _EPIPHYSIS_HALF_HEIGHT
            half = max(hw * m["epiphysis"] - _EPIPHYSIS_HALF_HEIGHT, 1e-4)
            out.append(_across(base[0] + along * ux, base[1] + along * uy, half, ux, uy))
            along += _EPIPHYSIS_HALF_HEIGHT + m["gap"]
        start = along + hw
        along += length
        out.append((base[0] + start * ux, base[1] + start * uy,
                    base[0] + (along - hw) * ux, base[1] + (along - hw) * uy, hw))  # fmt: skip
    return out


def _attenuation(
    rng: np.random.Generator, anatomy: HandAnatomy, n: int
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Soft tissue, bone and marker attenuation on an n x n grid (row 0 at the top)."""
    m = _maturity(anatomy.bone_age)
    # Forearm: radius with its distal epiphysis, and ulna (hand frame, fingers up).
    top = -0.33
    half = max(0.045 * m["epiphysis"] - _EPIPHYSIS_HALF_HEIGHT, 1e-4)
    bones: list[Segment] = [
        (-0.075, -0.75, -0.075, top - 0.045, 0.045),
        _across(-0.075, top + m["radius_gap"] + _EPIPHYSIS_HALF_HEIGHT, half, 0.0, 1.0),
        (0.085, -0.75, 0.085, top - 0.06, 0.03),
    ]
    for appears, (px, py) in _CARPALS:
        if anatomy.bone_age > appears:
            grown = min(1.0, (anatomy.bone_age - appears) / 96.0)
            r = _CARPAL_RADIUS[0] + (_CARPAL_RADIUS[1] - _CARPAL_RADIUS[0]) * grown
            bones.append((px, py, px, py, r))
    tissue: list[Segment] = [(0.0, -0.75, 0.0, -0.22, 0.17), (0.0, -0.2, 0.0, 0.02, 0.2)]
    for k, bx in enumerate(_METACARPAL_X):
        fan = anatomy.spread * bx * 0.9
        norm = float(np.hypot(fan, 1.0))
        ux, uy = fan / norm, 1.0 / norm
        base = (bx * 0.8, -0.13)
        lengths = ((0.19, 0.024), (0.14 - 0.012 * abs(k - 1.5), 0.02), (0.085, 0.017))
        bones += _ray(base, (ux, uy), lengths, m)
        tissue.append((base[0], base[1], base[0] + 0.5 * ux, base[1] + 0.5 * uy, 0.042))

    # Hand frame -> image frame: scale, rotate, shift.
    angle = np.deg2rad(rng.uniform(-12.0, 12.0))
    sx, sy = rng.uniform(-0.04, 0.04, size=2)
    scale = m["scale"] * anatomy.size
    c, s = float(np.cos(angle)), float(np.sin(angle))

    def place(seg: Segment) -> Segment:
        x0, y0, x1, y1, hw = seg
        y0, y1 = y0 - 0.06, y1 - 0.06
        return (
            sx + scale * (c * x0 - s * y0),
            sy + scale * (s * x0 + c * y0),
            sx + scale * (c * x1 - s * y1),
            sy + scale * (s * x1 + c * y1),
            scale * hw,
        )

    corner = int(rng.integers(4))
    mx, my = (0.38 if corner % 2 else -0.38), (0.4 if corner // 2 else -0.4)
    marker = _rasterize(n, [(mx - 0.03, my, mx + 0.03, my, 0.02)])
    return (
        _TISSUE * anatomy.tissue * _rasterize(n, [place(t) for t in tissue]),
        m["density"] * _rasterize(n, [place(b) for b in bones]),
        _MARKER * marker,
    )


def synthesize_hand(
    rng: np.random.Generator,
    anatomy: HandAnatomy,
    detector: DetectorModel,
    *,
    degradation: str | None = None,
) -> HandImage:
    """One radiograph of ``anatomy`` as the detector stores it.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of every random choice of this image (pose, marker,
        degradation, exposure, noise).
    anatomy : HandAnatomy
        The patient's hand (:func:`draw_anatomy`).
    detector : DetectorModel
        Matrix, response, blur and noise of the site's detector.
    degradation : str, optional
        One of :data:`DEGRADATIONS`; default: drawn (about a third degraded,
        the kinds equally likely).

    Returns
    -------
    HandImage
        ``stored``: uint16 (matrix, matrix), values 0-4095.
    """
    from scipy.ndimage import gaussian_filter

    if degradation is None:
        kinds = DEGRADATIONS[1:]
        degradation = (
            kinds[int(rng.integers(len(kinds)))] if rng.uniform() < _DEGRADED_SHARE else ""
        )
    if degradation not in DEGRADATIONS:
        raise InputError(f"degradation must be one of {list(DEGRADATIONS)}; got {degradation!r}.")
    n = detector.matrix
    tissue, bone, marker = _attenuation(rng, anatomy, n)
    severity = rng.uniform(0.6, 1.0)
    noise = detector.noise_sd
    if degradation == "underexposed":
        bone = bone * (0.5 - 0.25 * severity)
        noise *= 1.0 + 2.0 * severity
    attenuation = tissue + bone
    if degradation == "blur":
        attenuation = gaussian_filter(attenuation, 0.035 * severity * n, mode="nearest")
    if degradation == "apron":
        # A lead apron edge across the hand: a band of uniform high attenuation.
        gy = -((np.arange(n) + 0.5) / n - 0.5)[:, None]
        centre, half = rng.uniform(-0.3, 0.15), 0.08 + 0.08 * severity
        attenuation = np.maximum(
            attenuation, _APRON * _sigmoid((half - np.abs(gy - centre)) / _EDGE)
        )
    attenuation = attenuation + marker
    attenuation = gaussian_filter(attenuation, detector.blur_px, mode="nearest")
    exposure = rng.uniform(0.92, 1.08)
    response = np.clip(exposure * attenuation / 1.6, 0.0, 1.0) ** detector.gamma
    observed = detector.offset + detector.gain * response + noise * rng.standard_normal((n, n))
    stored = np.clip(np.rint(observed), 0, MAX_STORED)
    if detector.monochrome1:
        stored = MAX_STORED - stored
    return HandImage(stored=stored.astype(np.uint16), degradation=degradation)
