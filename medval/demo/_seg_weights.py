"""The segmentation demo's shipped U-Net weights and the recipe that trained them.

As for the classification demo (:mod:`medval.demo._weights`), training is
chaotic in floating point, so the demo ships one trained state dict
(``weights/segmenter.pt``) with its recipe (``weights/segmenter.json``: the
training cohort, settings, architecture, the machine it ran on, the SHA-256
of the weights and reference numbers of the shipped model). The training set
is a separate draw of the phantom generator (its own seed, sites A and B
only), so the demo cohort's cases, and site C entirely, are unseen.
:func:`train_segmenter_recipe` retrains from the recipe; its model depends
on the machine. :func:`segmenter_reference_scores` recomputes the reference
numbers (deterministic forward pass, no dropout) on a small fixed cohort.
"""

from __future__ import annotations

import importlib.resources
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "SEG_RECIPE_FILE",
    "SEG_WEIGHTS_FILE",
    "load_segmenter_recipe",
    "segmenter_reference_scores",
    "shipped_segmenter",
    "shipped_segmenter_weights",
    "train_segmenter_recipe",
]

SEG_WEIGHTS_FILE = "segmenter.pt"
SEG_RECIPE_FILE = "segmenter.json"


def _weights_dir() -> Path:
    # medval is installed as plain files (wheel or editable), never zipped.
    return Path(str(importlib.resources.files("medval.demo"))) / "weights"


def shipped_segmenter_weights() -> Path:
    """Path of the shipped segmenter state dict (load with ``weights_only=True``)."""
    return _weights_dir() / SEG_WEIGHTS_FILE


def load_segmenter_recipe() -> dict[str, Any]:
    """The recorded recipe of the shipped segmenter (see the module docstring)."""
    data: dict[str, Any] = json.loads((_weights_dir() / SEG_RECIPE_FILE).read_text("utf-8"))
    return data


def shipped_segmenter() -> Any:
    """The shipped :class:`~medval.demo.SegNet`, weights loaded, in eval mode."""
    import torch

    from medval.demo._unet import make_segmenter

    arch = load_segmenter_recipe()["architecture"]
    model = make_segmenter(base=int(arch["base"]), dropout=float(arch["dropout"]))
    state = torch.load(shipped_segmenter_weights(), weights_only=True, map_location="cpu")
    model.load_state_dict(state)
    model.eval()
    return model


def train_segmenter_recipe(
    recipe: Mapping[str, Any] | None = None, *, progress: bool = False
) -> tuple[Any, Any]:
    """Train the demo segmenter from a recipe on this machine.

    Parameters
    ----------
    recipe : mapping, optional
        Default: the shipped recipe. Keys used: ``training_data``
        (``seed``, ``n_per_site``, ``sites``), ``train_seed``, ``epochs``,
        ``batch_size``, ``lr``, ``architecture`` (``base``, ``dropout``) and,
        optional, ``negative_ratio``, ``scale_range``, ``offset_range_hu``,
        ``noise_range_hu`` (:func:`medval.demo.train_segmenter`'s defaults
        when absent).
    progress : bool, default False
        Show a progress bar on stderr.

    Returns
    -------
    model : medval.demo.SegNet
    log : medval.demo.SegTrainingLog
    """
    from medval.demo._seg_cohort import segmentation_cases
    from medval.demo._unet import train_segmenter

    r = dict(load_segmenter_recipe() if recipe is None else recipe)
    data, arch = r["training_data"], r["architecture"]
    cases = segmentation_cases(
        seed=int(data["seed"]), n_per_site=int(data["n_per_site"]), sites=tuple(data["sites"])
    )
    return train_segmenter(
        [c.volume.hu for c in cases],
        [c.volume.mask for c in cases],
        seed=int(r["train_seed"]),
        epochs=int(r["epochs"]),
        batch_size=int(r["batch_size"]),
        lr=float(r["lr"]),
        base=int(arch["base"]),
        dropout=float(arch["dropout"]),
        negative_ratio=float(r.get("negative_ratio", 1.0)),
        scale_range=tuple(r.get("scale_range", (1.0, 1.0))),
        offset_range_hu=tuple(r.get("offset_range_hu", (0.0, 0.0))),
        noise_range_hu=tuple(r.get("noise_range_hu", (0.0, 0.0))),
        progress=progress,
    )


def segmenter_reference_scores(
    model: Any, *, seed: int = 0, n_per_site: int = 4
) -> dict[str, float]:
    """Reference numbers of a segmenter on a small in-memory demo cohort.

    Deterministic forward pass (eval mode, no dropout), lesion where the
    lesion logit beats the background logit.

    Parameters
    ----------
    model : torch.nn.Module
        Maps ``(B, 1, 64, 64)`` windowed slices to ``(B, 2, 64, 64)`` logits.
    seed, n_per_site : int
        The cohort (:func:`medval.demo.segmentation_cases`).

    Returns
    -------
    dict
        ``dice.internal`` and ``dice.external``: mean per-case Dice
        (Dice 1945) over cases with lesions at sites A+B and at site C;
        ``healthy_with_fp.internal`` / ``.external``: fraction of lesion-free
        cases with any predicted lesion voxel; ``lesion_voxels.predicted``:
        total predicted lesion voxels.
    """
    import torch

    from medval.demo._seg_cohort import segmentation_cases
    from medval.demo._unet import window_volume

    dice: dict[bool, list[float]] = {False: [], True: []}
    fp: dict[bool, list[bool]] = {False: [], True: []}
    total = 0
    model.eval()
    with torch.no_grad():
        for case in segmentation_cases(seed=seed, n_per_site=n_per_site):
            x = torch.from_numpy(window_volume(case.volume.hu)[:, None])
            logits = model(x)
            pred = (logits[:, 1] > logits[:, 0]).numpy()
            truth = case.volume.mask.astype(bool)
            total += int(pred.sum())
            external = case.site.external
            if truth.any():
                dice[external].append(2.0 * (pred & truth).sum() / (pred.sum() + truth.sum()))
            else:
                fp[external].append(bool(pred.any()))
    out: dict[str, float] = {}
    for external, name in ((False, "internal"), (True, "external")):
        out[f"dice.{name}"] = float(np.mean(dice[external])) if dice[external] else float("nan")
        out[f"healthy_with_fp.{name}"] = float(np.mean(fp[external])) if fp[external] else 0.0
    out["lesion_voxels.predicted"] = float(total)
    return out
