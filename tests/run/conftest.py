"""A small demo cohort and spec template shared by the run tests."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

SPEC = """
[task]
class_names = ["no lesion", "lesion"]
positive_class = "lesion"
[data]
dicom_dir = "cohort/dicom"
labels = "cohort/labels.csv"
{data}
[preprocess]
{preprocess}
[model]
{model}
[analysis]
n_resamples = 100
[conformal]
enabled = false
[shift]
enabled = false
{extra}
"""


_PREPROCESS = "window = [40, 400]\nsize = [32, 32]"


def write_spec(
    folder: Path,
    name: str,
    model: str,
    data: str = "",
    extra: str = "",
    preprocess: str = _PREPROCESS,
) -> Path:
    """``folder/<name>.toml`` from :data:`SPEC`."""
    path = folder / f"{name}.toml"
    text = SPEC.format(model=model, data=data, extra=extra, preprocess=preprocess)
    path.write_text(text, encoding="utf-8")
    return path


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def perturbed_state(seed: int) -> dict[str, Any]:
    """The demo net's initial weights plus seeded noise: a distinct, working model."""
    import torch

    from medval.demo import make_model

    g = torch.Generator().manual_seed(seed)
    return {
        name: v + 0.3 * torch.randn(v.shape, generator=g) if v.is_floating_point() else v
        for name, v in make_model().state_dict().items()
    }


@pytest.fixture(scope="session")
def small_cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 24-patient demo cohort, written once; link it as ``<folder>/cohort``."""
    from medval.demo import write_cohort

    root = tmp_path_factory.mktemp("small-cohort") / "cohort"
    write_cohort(root, seed=0, n_patients=(8, 8, 8))
    return root
