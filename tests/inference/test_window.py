"""Sliding window: positions, Gaussian weights, blending against MONAI and the full forward."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.data.utils import compute_importance_map
from monai.inferers import sliding_window_inference
from torch import nn

from medval import InputError
from medval.inference import gaussian_importance, segment
from medval.inference._window import plan_windows, window_starts


class Local(nn.Module):
    """Fully convolutional, receptive field 3 per axis (one 3x3 conv, then 1x1)."""

    def __init__(self, dims: int = 2) -> None:
        super().__init__()
        conv = nn.Conv2d if dims == 2 else nn.Conv3d
        drop = nn.Dropout2d if dims == 2 else nn.Dropout3d
        self.a, self.drop, self.b = conv(1, 4, 3, padding=1), drop(0.3), conv(4, 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(self.drop(torch.relu(self.a(x))))


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(11)


def _model(dims: int, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)  # parameters only; segment never touches the global RNG
    return Local(dims).eval()


def test_window_starts_by_hand() -> None:
    assert window_starts(10, 4, 0.5) == [0, 2, 4, 6]
    assert window_starts(20, 8, 0.25) == [0, 6, 12]
    assert window_starts(11, 4, 0.5) == [0, 2, 4, 5, 7]  # 7 / 4 apart, rounded
    assert window_starts(3, 8, 0.5) == [0]
    assert window_starts(9, 4, 0.0) == [0, 2, 5]  # no overlap asked: ceil(5 / 4) + 1 windows
    assert window_starts(5, 1, 0.9) == [0, 1, 2, 3, 4]  # step at least 1


@pytest.mark.parametrize(("size", "patch", "overlap"), [(37, 8, 0.5), (100, 16, 0.25), (9, 9, 0.5)])
def test_windows_cover_the_axis(size: int, patch: int, overlap: float) -> None:
    starts = window_starts(size, patch, overlap)
    assert starts[0] == 0
    assert starts[-1] == size - patch
    steps = np.diff(starts)
    assert (steps >= 1).all()
    assert (steps <= max(patch * (1 - overlap), 1) + 0.5).all()


def test_gaussian_matches_monai() -> None:
    patch = (7, 9, 11)
    ours = gaussian_importance(patch)
    theirs = compute_importance_map(patch, mode="gaussian", sigma_scale=0.125).numpy()
    assert ours.max() == 1.0
    assert ours.min() > np.exp(-8 * 3)
    keep = theirs > 1e-3  # MONAI clamps its weights at 1e-3
    np.testing.assert_allclose(ours[keep], theirs[keep] / theirs.max(), rtol=1e-5)


def test_gaussian_of_an_even_patch_peaks_at_the_centre_pair() -> None:
    g = gaussian_importance((6,))
    np.testing.assert_allclose(g, g[::-1])
    assert g[2] == g[3] == 1.0


def test_extract_pads_with_zeros_symmetrically(rng: np.random.Generator) -> None:
    frame = rng.normal(size=(3, 5)).astype(np.float32)
    w = plan_windows((3, 5), (6, 4), 0.5)
    assert w.padded == (6, 5)
    assert w.pad == (1, 0)
    out = np.full((6, 4), 9.0, dtype=np.float32)
    w.extract(frame, (0, 1), out)
    expected = np.zeros((6, 4), dtype=np.float32)
    expected[1:4] = frame[:, 1:5]
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize(
    ("shape", "patch", "overlap"),
    [((6, 20, 16), (4, 8, 8), 0.5), ((3, 20, 16), (4, 8, 8), 0.5), ((6, 20, 20), (6, 8, 8), 0.25)],
)
def test_3d_blend_matches_monai_sliding_window(
    rng: np.random.Generator, shape: tuple[int, ...], patch: tuple[int, ...], overlap: float
) -> None:
    """Same windows, same Gaussian, symmetric zero padding: MONAI blends the same probabilities."""
    model = _model(3)
    vol = rng.normal(size=shape).astype(np.float32)
    ours = segment(model, vol, mode="3d", patch_size=patch, overlap=overlap, batch_size=3)
    weights = torch.from_numpy(gaussian_importance(patch))[None, None]
    with torch.no_grad():
        theirs = sliding_window_inference(
            torch.from_numpy(vol)[None, None], patch, 2, lambda x: torch.softmax(model(x), 1),
            overlap=overlap, mode="gaussian", roi_weight_map=weights,
        )  # fmt: skip
    np.testing.assert_allclose(ours.probabilities, theirs[0].numpy(), atol=2e-6, rtol=0)


def test_2d_in_plane_blend_matches_monai_sliding_window(rng: np.random.Generator) -> None:
    model = _model(2)
    vol = rng.normal(size=(4, 20, 12)).astype(np.float32)
    ours = segment(model, vol, mode="2d", patch_size=(8, 8), overlap=0.5, batch_size=5)
    weights = torch.from_numpy(gaussian_importance((8, 8)))[None, None]
    with torch.no_grad():
        theirs = sliding_window_inference(
            torch.from_numpy(vol)[:, None], (8, 8), 4, lambda x: torch.softmax(model(x), 1),
            overlap=0.5, mode="gaussian", roi_weight_map=weights,
        )  # fmt: skip
    np.testing.assert_allclose(ours.probabilities, theirs.numpy().transpose(1, 0, 2, 3), atol=2e-6)


def _seams(size: int, patch: int, overlap: float, radius: int) -> np.ndarray:
    """Voxels within ``radius`` of an inner window edge (a window sees less there)."""
    near = np.zeros(size, dtype=bool)
    for s in window_starts(size, patch, overlap):
        if s > 0:
            near[s : s + radius] = True
        if s + patch < size:
            near[s + patch - radius : s + patch] = True
    return near


@pytest.mark.parametrize("dims", [2, 3])
def test_blend_equals_the_full_forward_away_from_the_seams(
    rng: np.random.Generator, dims: int
) -> None:
    model = _model(dims)
    vol = rng.normal(size=(6, 20, 20) if dims == 2 else (14, 20, 20)).astype(np.float32)
    patch = (8, 8) if dims == 2 else (8, 8, 8)
    out = segment(model, vol, mode=f"{dims}d", patch_size=patch, overlap=0.25).probabilities
    with torch.no_grad():
        x = torch.from_numpy(vol)
        full = torch.softmax(model(x[:, None] if dims == 2 else x[None, None]), 1)
        full_np = full.numpy().transpose(1, 0, 2, 3) if dims == 2 else full[0].numpy()
    seam = np.zeros(vol.shape, dtype=bool)
    for axis in range(3 - dims, 3):
        near = _seams(vol.shape[axis], 8, 0.25, radius=1)
        seam |= near.reshape([-1 if a == axis else 1 for a in range(3)])
    assert (~seam).mean() > 0.25
    np.testing.assert_allclose(out[:, ~seam], full_np[:, ~seam], atol=1e-6, rtol=0)
    assert np.abs(out[:, seam] - full_np[:, seam]).max() > 1e-4  # the windows are windows


def test_pointwise_model_blends_to_the_full_forward_everywhere(rng: np.random.Generator) -> None:
    """Receptive field 1: every window is exact, so the weights must average to the value."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv3d(1, 3, 1), nn.Dropout3d(0.2)).eval()
    vol = rng.normal(size=(9, 13, 11)).astype(np.float32)
    out = segment(model, vol, mode="3d", patch_size=(4, 6, 5), overlap=0.6).probabilities
    with torch.no_grad():
        full = torch.softmax(model(torch.from_numpy(vol)[None, None]), 1)[0].numpy()
    np.testing.assert_allclose(out, full, atol=1e-6, rtol=0)


def test_one_window_over_the_volume_is_one_forward(rng: np.random.Generator) -> None:
    model = _model(3)
    vol = rng.normal(size=(5, 12, 10)).astype(np.float32)
    with torch.no_grad():
        full = torch.softmax(model(torch.from_numpy(vol)[None, None]), 1)[0].numpy()
    for patch in (None, (5, 12, 10)):
        out = segment(model, vol, mode="3d", patch_size=patch).probabilities
        np.testing.assert_array_equal(out, full)


@pytest.mark.parametrize(
    ("shape", "patch", "overlap", "match"),
    [
        ((4, 4), (4,), 0.5, "patch_size must be 2 positive integers"),
        ((4, 4), (4, 0), 0.5, "patch_size must be 2 positive integers"),
        ((4, 4), (4, 2.5), 0.5, "patch_size must be 2 positive integers"),
        ((4, 4), "ab", 0.5, "patch_size must be 2 positive integers"),
        ((4, 4), (2, 2), 1.0, r"overlap must be a number in \[0, 1\)"),
        ((4, 4), (2, 2), -0.1, r"overlap must be a number in \[0, 1\)"),
        ((4, 4), (2, 2), "half", r"overlap must be a number in \[0, 1\)"),
    ],
)
def test_bad_windows_are_refused(
    shape: tuple[int, ...], patch: object, overlap: object, match: str
) -> None:
    with pytest.raises(InputError, match=match):
        plan_windows(shape, patch, overlap)  # type: ignore[arg-type]
