"""The demo model's shipped weights and the recipe that trained them.

Training is chaotic in floating point: another CPU's vector kernels, BLAS or
thread count change the order of summations, and SGD amplifies the
difference, so the same seed trains a different model on another machine.
The demo therefore ships one trained state dict (``weights/classifier.pt``,
about 30 KiB) with the recipe that produced it (``weights/classifier.json``:
cohort seed, training settings, the machine it ran on, the SHA-256 of the
weights and the numbers the shipped model gives). Inference alone moves
probabilities by about 1e-7 between machines, so the shipped model gives the
same verdicts everywhere. :func:`train_recipe` retrains from the recipe
(``medval demo --train``); its model depends on the machine.
"""

from __future__ import annotations

import importlib.resources
import json
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["RECIPE_FILE", "WEIGHTS_FILE", "load_recipe", "shipped_weights", "train_recipe"]

WEIGHTS_FILE = "classifier.pt"
RECIPE_FILE = "classifier.json"


def _weights_dir() -> Path:
    # medval is installed as plain files (wheel or editable), never zipped.
    return Path(str(importlib.resources.files("medval.demo"))) / "weights"


def shipped_weights() -> Path:
    """Path of the shipped demo state dict (load with ``weights_only=True``)."""
    return _weights_dir() / WEIGHTS_FILE


def load_recipe() -> dict[str, Any]:
    """The recorded recipe of the shipped weights (see the module docstring)."""
    data: dict[str, Any] = json.loads((_weights_dir() / RECIPE_FILE).read_text("utf-8"))
    return data


def train_recipe(
    recipe: Mapping[str, Any] | None = None,
    *,
    cohort_root: Path | None = None,
    progress: bool = False,
) -> tuple[dict[str, Any], Any]:
    """Train the demo model from a recipe on this machine.

    Parameters
    ----------
    recipe : mapping, optional
        Default: the shipped recipe (:func:`load_recipe`). Keys used:
        ``cohort_seed``, ``train_seed``, ``epochs``, ``batch_size``, ``lr``,
        ``augment``.
    cohort_root : pathlib.Path, optional
        An existing demo cohort written with the recipe's cohort seed;
        default: one is written to a temporary folder.
    progress : bool, default False

    Returns
    -------
    state_dict : dict
        The trained weights.
    log : medval.demo.TrainingLog
    """
    import numpy as np

    from medval import io
    from medval.demo._cohort import CLASS_NAMES, write_cohort
    from medval.demo._model import make_model, train
    from medval.demo._phantom import IMAGE_SIZE, WINDOW

    r = dict(load_recipe() if recipe is None else recipe)
    with tempfile.TemporaryDirectory(prefix="medval-recipe-") as tmp:
        root = cohort_root
        if root is None:
            root = Path(tmp) / "cohort"
            write_cohort(root, seed=int(r["cohort_seed"]))
        data = io.load_cohort(root / "dicom", root / "labels.csv", class_names=CLASS_NAMES)
        ids = list(data.cohort.index[data.cohort["split"] == "train"])
        dataset = io.DicomDataset(
            [data.paths[c] for c in ids], ids, window=WINDOW, size=(IMAGE_SIZE, IMAGE_SIZE)
        )
        labels = data.cohort.loc[ids, "label"].to_numpy(dtype=np.int64)
        model = make_model()
        log = train(
            model,
            dataset,
            labels,
            seed=int(r["train_seed"]),
            epochs=int(r["epochs"]),
            batch_size=int(r["batch_size"]),
            lr=float(r["lr"]),
            augment=bool(r["augment"]),
            progress=progress,
        )
    return model.state_dict(), log
