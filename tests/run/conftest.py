"""A small demo cohort and spec template shared by the run tests."""

from __future__ import annotations

import csv
import hashlib
import shutil
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


# Folder names can carry PHI: none of this may reach an output.
PHI_FOLDER = "DOE_JOHN_MRN123"


@pytest.fixture(scope="session")
def hostile(tmp_path_factory: pytest.TempPathFactory, small_cohort: Path) -> Path:
    """The demo cohort with the crafted files under dicom/crafted/, labelled, and the model."""
    from medval.demo import shipped_weights

    from ..io._crafted import CRAFTED, write_crafted

    root = tmp_path_factory.mktemp("hostile") / PHI_FOLDER
    shutil.copytree(small_cohort, root / "cohort")
    write_crafted(root / "cohort" / "dicom" / "crafted")
    with (root / "cohort" / "labels.csv").open("a", newline="", encoding="utf-8") as f:
        rows = csv.writer(f)
        for i, name in enumerate(CRAFTED):
            rows.writerow([f"x{i:03d}", f"crafted/{name}", i % 2, ("internal", "external")[i % 2]])
    shutil.copyfile(shipped_weights(), root / "model.pt")
    return root


#: The model lines of a spec running the demo net's initial weights (``model.pt``).
DEMO_MODEL = 'file = "model.pt"\nfactory = "medval.demo:make_model"'
#: A criterion the demo net's initial weights fail (exit 1).
STRICT_CRITERION = """
[[criteria]]
name = "specificity"
key = "operating_point.specificity"
op = ">="
threshold = 0.99
"""
#: The key ``released_run`` signs its result with.
RELEASED_KEY = "released-run-key"


def spec_folder(root: Path, small_cohort: Path) -> Path:
    """``root/spec``: the small cohort linked as ``cohort`` and the demo net as ``model.pt``."""
    import torch

    from medval.demo import make_model

    folder = root / "spec"
    folder.mkdir()
    (folder / "cohort").symlink_to(small_cohort, target_is_directory=True)
    torch.save(make_model().state_dict(), folder / "model.pt")
    return folder


@pytest.fixture(scope="session")
def released_run(tmp_path_factory: pytest.TempPathFactory, small_cohort: Path) -> Path:
    """One complete ``medval validate --out released --junit-xml released/junit.xml`` run.

    Signed with ``MEDVAL_SIGNING_KEY=RELEASED_KEY``; the spec is ``spec/released.toml``,
    the run ``spec/released/``. Its one criterion (specificity CI low >= 0.99)
    fails: exit 1. Copy the run before changing it.
    """
    from medval.cli import main

    folder = spec_folder(tmp_path_factory.mktemp("released"), small_cohort)
    spec = write_spec(folder, "released", DEMO_MODEL, extra=STRICT_CRITERION)
    out = folder / "released"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MEDVAL_SIGNING_KEY", RELEASED_KEY)
        code = main(["validate", str(spec), "--out", str(out), "--junit-xml",
                     str(out / "junit.xml"), "--quiet"])  # fmt: skip
    assert code == 1
    return out
