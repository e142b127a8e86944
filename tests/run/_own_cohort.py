"""A team's own MR cohort, models and reference pipeline, built without medval.

What issue 14's acceptance test runs medval against: DICOM files written with
pydicom by three vendors on three intensity scales (one stores MONOCHROME1
with a rescale slope and intercept, one RLE Lossless), labels keyed by case id
only, small CNNs trained here on their own preprocessing, and a hand-written
reference pipeline (pydicom, numpy, torch) that scores the same files the way
the team's own code would. Nothing here imports medval.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import importlib.util
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "MODEL_DEF",
    "VENDORS",
    "Case",
    "imagenet_input",
    "load_model_def",
    "per_vendor_auroc",
    "read_modality",
    "reference_probabilities",
    "train",
    "training_set",
    "write_cohort",
    "zscore_input",
]

Array = NDArray[np.float64]
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_PREVALENCE = 0.4
_BLOB_SD = 0.06  # of the field of view
_TEXTURE = 0.1
# MONOCHROME1 storage: 12 bits, modality = 2 * stored - 1024.
_BITS_M1, _SLOPE_M1, _INTERCEPT_M1 = 12, 2.0, -1024.0


@dataclasses.dataclass(frozen=True)
class Vendor:
    """One scanner: its header values, matrix, intensity scale and how it stores pixels."""

    manufacturer: str
    model_name: str
    folder: str
    size: int  # rows = columns
    gain: float  # modality units per unit of tissue signal (times a per-scan factor)
    offset: float
    field_strength: float
    storage: str  # "plain" (int16), "rle" (uint16, RLE Lossless), "monochrome1"
    masked: bool = False  # background suppression: the air is set to the offset


VENDORS = (
    Vendor("VendorA", "Aurora 15", "vendor-a/aurora", 64, 400.0, 100.0, 1.5, "plain"),
    Vendor("VendorB", "Borealis 30", "vendor-b/borealis", 56, 1500.0, 200.0, 3.0, "rle", True),
    Vendor("VendorC", "Cygnus 15", "vendor-c/cygnus", 72, 900.0, 120.0, 1.5, "monochrome1"),
)


@dataclasses.dataclass(frozen=True)
class Case:
    case_id: str
    file: str  # relative to the DICOM folder
    manufacturer: str
    label: int


def tissue_image(
    rng: np.random.Generator, size: int, lesion: bool, faintest: float = 0.0, masked: bool = False
) -> Array:
    """A magnitude image on a unit scale: a body disc with smooth texture and noise, and for
    a lesion a round blob whose height is drawn from [faintest, 0.8] (below about 0.15 it
    hides in the noise, so no model is perfect)."""
    from scipy import ndimage

    yy, xx = np.mgrid[0:size, 0:size] / size
    body = (yy - 0.5) ** 2 + (xx - 0.5) ** 2 < 0.42**2
    texture = ndimage.gaussian_filter(rng.standard_normal((size, size)), size / 8)
    image = np.where(body, 1.0 + _TEXTURE * texture / texture.std(), 0.05)
    if lesion:
        r, angle = rng.uniform(0.15, 0.3), rng.uniform(0.0, 2.0 * np.pi)
        cy, cx = 0.5 + r * np.sin(angle), 0.5 + r * np.cos(angle)
        bump = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * _BLOB_SD**2))
        image = image + rng.uniform(faintest, 0.8) * bump
    out: Array = np.abs(image + 0.15 * rng.standard_normal((size, size)))
    return np.where(body, out, 0.0) if masked else out


def modality_image(
    rng: np.random.Generator, vendor: Vendor, lesion: bool, faintest: float = 0.0
) -> Array:
    """The image in the vendor's modality units; each scan has its own gain (MR has no HU)."""
    gain = vendor.gain * rng.uniform(0.7, 1.3)
    return vendor.offset + gain * tissue_image(rng, vendor.size, lesion, faintest, vendor.masked)


def _uid(seed: int, *parts: object) -> str:
    from pydicom.uid import generate_uid

    return str(generate_uid(entropy_srcs=["own-cohort", str(seed), *map(str, parts)]))


def _dataset(vendor: Vendor, image: Array, case: Case, number: int, seed: int) -> Any:
    """The pydicom dataset of one MR image, stored the vendor's way."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, RLELossless

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MRImageStorage
    meta.MediaStorageSOPInstanceUID = _uid(seed, "sop", number)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = MRImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = _uid(seed, "study", number)
    ds.SeriesInstanceUID = _uid(seed, "series", number)
    ds.Modality = "MR"
    ds.PatientID = f"PAT{number:05d}"
    ds.PatientName = f"ZZTEST^{number:05d}"
    ds.PatientSex = "FM"[number % 2]
    ds.PatientAge = f"{40 + number % 40:03d}Y"
    ds.Manufacturer = vendor.manufacturer
    ds.ManufacturerModelName = vendor.model_name
    ds.MagneticFieldStrength = vendor.field_strength
    ds.SeriesDescription = "T2 AX"
    ds.InstanceNumber = 1
    ds.SamplesPerPixel = 1
    ds.Rows = ds.Columns = vendor.size
    ds.BitsAllocated = 16
    ds.PixelSpacing = [240.0 / vendor.size] * 2
    if vendor.storage == "monochrome1":
        # Stored so that modality LUT then inversion over the stored range gives `image`:
        # lo + hi - (slope * s + intercept) = image, (lo, hi) the 12-bit range in modality units.
        stored = (2**_BITS_M1 - 1) - (image - _INTERCEPT_M1) / _SLOPE_M1
        pixels = np.round(stored).astype(np.uint16)
        ds.PhotometricInterpretation = "MONOCHROME1"
        ds.BitsStored, ds.HighBit, ds.PixelRepresentation = _BITS_M1, _BITS_M1 - 1, 0
        ds.RescaleSlope, ds.RescaleIntercept = _SLOPE_M1, _INTERCEPT_M1
    else:
        signed = vendor.storage == "plain"
        pixels = np.round(image).astype(np.int16 if signed else np.uint16)
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 15, int(signed)
    ds.PixelData = pixels.tobytes()
    if vendor.storage == "rle":
        ds.compress(RLELossless)
    return ds


def write_cohort(
    root: Path,
    *,
    n_per_vendor: int,
    seed: int,
    label_columns: Sequence[str] = ("case_id", "label"),
) -> list[Case]:
    """``root/dicom/<vendor folder>/case_NNNN.dcm`` and ``root/labels.csv``.

    One image per patient; the case id is the file name without ``.dcm``.
    ``label_columns`` may add ``file`` (the path relative to ``root/dicom``).
    """
    import pydicom

    cases = []
    for v, vendor in enumerate(VENDORS):
        rng = np.random.default_rng([seed, v])
        labels = np.zeros(n_per_vendor, dtype=int)
        labels[: round(_PREVALENCE * n_per_vendor)] = 1
        folder = root / "dicom" / vendor.folder
        folder.mkdir(parents=True)
        for label in rng.permutation(labels):
            number = len(cases) + 1
            case = Case(f"case_{number:04d}", f"{vendor.folder}/case_{number:04d}.dcm",
                        vendor.manufacturer, int(label))  # fmt: skip
            image = modality_image(rng, vendor, bool(label))
            ds = _dataset(vendor, image, case, number, seed)
            pydicom.dcmwrite(root / "dicom" / case.file, ds, enforce_file_format=True)
            cases.append(case)
    with (root / "labels.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(label_columns)
        writer.writerows([getattr(c, k) for k in label_columns] for c in cases)
    return cases


# The team's reference pipeline: how its own code turns a file into the model's input.


def read_modality(path: Path) -> Array:
    """Pixels in modality units (pydicom's modality LUT), MONOCHROME1 turned bright-is-high."""
    import pydicom
    from pydicom.pixels import apply_modality_lut

    ds = pydicom.dcmread(path)
    x = np.asarray(apply_modality_lut(ds.pixel_array, ds), dtype=np.float64)
    if ds.PhotometricInterpretation == "MONOCHROME1":
        x = x.max() + x.min() - x  # any mirror will do before a per-image normalisation
    return x


def _resize(x: Array, size: int) -> Any:
    """(H, W) -> torch (1, size, size): bilinear, antialiased, float32 (torchvision's default)."""
    import torch

    t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))[None, None]
    return torch.nn.functional.interpolate(
        t, size=(size, size), mode="bilinear", antialias=True, align_corners=False
    )[0]


def zscore_input(x: Array, size: int = 32) -> Any:
    """Per-image z-score, then resize: (1, size, size)."""
    return _resize((x - x.mean()) / x.std(), size)


def imagenet_input(x: Array, size: int = 32) -> Any:
    """Min-max onto [0, 1], resize, three channels, ImageNet mean and std: (3, size, size)."""
    import torch

    unit = _resize((x - x.min()) / (x.max() - x.min()), size).expand(3, -1, -1)
    mean, std = torch.tensor(IMAGENET_MEAN), torch.tensor(IMAGENET_STD)
    return (unit - mean[:, None, None]) / std[:, None, None]


def training_set(
    n_per_vendor: int, seed: int, prepare: Callable[[Array], Any], faintest: float = 0.3
) -> tuple[Any, Any]:
    """Fresh images of every vendor (not the cohort's), prepared: inputs (n, C, H, W), labels."""
    import torch

    rng = np.random.default_rng([seed, 99])
    inputs, labels = [], []
    for _ in range(n_per_vendor):
        for vendor in VENDORS:
            label = int(rng.uniform() < _PREVALENCE)
            inputs.append(prepare(modality_image(rng, vendor, bool(label), faintest)))
            labels.append(label)
    return torch.stack(inputs), torch.tensor(labels, dtype=torch.float32)


MODEL_DEF = '''"""The team's network: three conv blocks, global max pooling, one logit."""
from torch import nn


def block(c_in, c_out, pool):
    return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(),
            nn.MaxPool2d(2) if pool else nn.AdaptiveMaxPool2d(1)]


class SmallCNN(nn.Module):
    def __init__(self, in_channels=1):
        super().__init__()
        self.features = nn.Sequential(
            *block(in_channels, 8, True), *block(8, 16, True), *block(16, 16, False)
        )
        self.head = nn.Linear(16, 1)

    def forward(self, x):
        return self.head(self.features(x).flatten(1))


def build():
    """Grey-level input (1, H, W), trained on per-image z-scores."""
    return SmallCNN(1)


def build_rgb():
    """Three channels with ImageNet normalisation, like a torchvision backbone."""
    return SmallCNN(3)
'''


def load_model_def(path: Path) -> ModuleType:
    """The team's ``model_def.py``, imported from its file."""
    name = f"_own_model_def_{abs(hash(str(path)))}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """Tiny convolutions train faster on one thread than on two busy ones."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def train(
    build: Callable[[], Any],
    inputs: Any,
    labels: Any,
    *,
    seed: int,
    epochs: int = 10,
    lr: float = 1e-2,
) -> Any:
    """``build()`` trained by Adam on the logistic loss, batches of 32; returns it in eval mode.

    The initial weights, the shuffling and the updates all follow ``seed``.
    """
    import torch

    with torch.random.fork_rng(devices=[]), _one_thread():
        torch.manual_seed(seed)
        net = build()
        order = torch.Generator().manual_seed(seed)
        optimiser = torch.optim.Adam(net.parameters(), lr=lr)
        batches = [torch.randperm(len(labels), generator=order).split(32) for _ in range(epochs)]
        # One cycle: a short warm-up, then the rate decays, so the last weights are settled.
        schedule = torch.optim.lr_scheduler.OneCycleLR(
            optimiser, max_lr=lr, total_steps=sum(map(len, batches))
        )
        net.train()
        for batch in (b for epoch in batches for b in epoch):
            loss = torch.nn.functional.binary_cross_entropy_with_logits(
                net(inputs[batch])[:, 0], labels[batch]
            )
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
    return net.eval()


def reference_probabilities(
    paths: Sequence[Path], prepare: Callable[[Array], Any], forward: Callable[[Any], Any]
) -> NDArray[np.float64]:
    """Each file read, prepared and scored: the positive class's probability (sigmoid)."""
    import torch

    with torch.no_grad():
        x = torch.stack([prepare(read_modality(p)) for p in paths])
        logits = torch.as_tensor(np.asarray(forward(x), dtype=np.float64))
    return torch.sigmoid(logits[:, 0]).numpy()


def per_vendor_auroc(
    cases: Sequence[Case], scores: dict[str, float], case_ids: Sequence[str]
) -> dict[str, float]:
    """scikit-learn's AUROC per manufacturer over ``case_ids``."""
    from sklearn.metrics import roc_auc_score

    chosen = set(case_ids)
    out = {}
    for vendor in VENDORS:
        mine = [c for c in cases if c.manufacturer == vendor.manufacturer and c.case_id in chosen]
        out[vendor.manufacturer] = float(
            roc_auc_score([c.label for c in mine], [scores[c.case_id] for c in mine])
        )
    return out
