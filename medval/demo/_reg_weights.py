"""The bone-age demo's shipped regressor weights and the recipe that trained them.

As for the classification demo (:mod:`medval.demo._weights`), training is
chaotic in floating point, so the demo ships one trained state dict
(``weights/regressor.pt``) with its recipe (``weights/regressor.json``: the
training cohort, settings, architecture, preprocessing, the machine it ran
on, the SHA-256 of the weights and reference numbers of the shipped model on
the demo cohort). The training set is a separate draw of the cohort
generator (its own seed, sites A and B only, in memory), so the demo
cohort's cases, and site C entirely, are unseen. Its images go through the
same :class:`medval.io.Pipeline` as deployment (:func:`regression_pipeline`,
from the frame a DICOM reader would decode). :func:`train_regression_recipe`
retrains from the recipe; its model depends on the machine.
:func:`regressor_reference_scores` recomputes the reference numbers from a
written cohort through :class:`medval.io.DicomDataset`.
"""

from __future__ import annotations

import csv
import importlib.resources
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "REG_RECIPE_FILE",
    "REG_WEIGHTS_FILE",
    "load_regression_recipe",
    "regression_training_data",
    "regressor_predictions",
    "regressor_reference_scores",
    "score_regressor_predictions",
    "shipped_regressor",
    "train_regression_recipe",
]

REG_WEIGHTS_FILE = "regressor.pt"
REG_RECIPE_FILE = "regressor.json"


def _weights_dir() -> Path:
    # medval is installed as plain files (wheel or editable), never zipped.
    return Path(str(importlib.resources.files("medval.demo"))) / "weights"


def shipped_regressor() -> Path:
    """Path of the shipped regressor state dict (load with ``weights_only=True``)."""
    return _weights_dir() / REG_WEIGHTS_FILE


def load_regression_recipe() -> dict[str, Any]:
    """The recorded recipe of the shipped regressor (see the module docstring)."""
    data: dict[str, Any] = json.loads((_weights_dir() / REG_RECIPE_FILE).read_text("utf-8"))
    return data


def regression_training_data(
    *, seed: int, n_patients: tuple[int, int, int]
) -> tuple[NDArray[np.float32], NDArray[np.float64], NDArray[np.bool_]]:
    """Synthesize a cohort in memory and preprocess it as deployment does.

    Parameters
    ----------
    seed : int
        Cohort seed (:func:`medval.demo._reg_cohort.regression_cases`).
    n_patients : tuple of 3 ints
        Patients at sites A, B and C (0 leaves a site out).

    Returns
    -------
    images : numpy.ndarray of float32, shape (n, 1, 64, 64)
        Each case's decoded frame through :func:`regression_pipeline`.
    labels : numpy.ndarray of float64, shape (n,)
        Bone-age readings (months).
    degraded : numpy.ndarray of bool, shape (n,)
        Images with a degradation.
    """
    from medval.demo._reg_cohort import regression_cases
    from medval.demo._regnet import regression_pipeline

    pipeline = regression_pipeline()
    cases = regression_cases(seed=seed, n_patients=n_patients)
    images = np.stack([pipeline.apply(c.frame()) for c in cases]).astype(np.float32)
    labels = np.array([c.label for c in cases], dtype=np.float64)
    degraded = np.array([bool(c.image.degradation) for c in cases])
    return images, labels, degraded


def train_regression_recipe(
    recipe: Mapping[str, Any] | None = None, *, progress: bool = False
) -> tuple[Any, Any]:
    """Train the demo regressor from a recipe on this machine.

    Parameters
    ----------
    recipe : mapping, optional
        Default: the shipped recipe. Keys used: ``training_data`` (``seed``,
        ``n_patients``), ``train_seed``, ``epochs``, ``warmup_epochs``,
        ``batch_size``, ``lr``, ``beta``, ``augment``, ``augment_ranges``,
        ``augment_share`` (default 0.5), ``architecture`` (``width``,
        ``dropout``).
    progress : bool, default False
        Show a progress bar on stderr.

    Returns
    -------
    model : medval.demo.RegNet
        Trained, in eval mode.
    log : medval.demo.RegTrainingLog
    """
    from medval.demo._regnet import RegNet, make_regressor, train_regressor

    r = dict(load_regression_recipe() if recipe is None else recipe)
    data, arch = r["training_data"], r["architecture"]
    images, labels, _ = regression_training_data(
        seed=int(data["seed"]),
        n_patients=tuple(data["n_patients"]),
    )
    model = make_regressor()
    if (int(arch["width"]), float(arch["dropout"])) != (model.width, model.dropout.p):
        import torch

        with torch.random.fork_rng(devices=[]):
            torch.random.manual_seed(0)
            model = RegNet(width=int(arch["width"]), dropout=float(arch["dropout"]))
    ranges = {k: (float(v[0]), float(v[1])) for k, v in r["augment_ranges"].items()}
    log = train_regressor(
        model, images, labels, seed=int(r["train_seed"]), epochs=int(r["epochs"]),
        warmup_epochs=int(r["warmup_epochs"]), batch_size=int(r["batch_size"]),
        lr=float(r["lr"]), beta=float(r["beta"]), augment=bool(r["augment"]),
        augment_ranges=ranges, augment_share=float(r.get("augment_share", 0.5)),
        progress=progress,
    )  # fmt: skip
    return model, log


def regressor_predictions(model: Any, root: Path | str) -> dict[str, NDArray[Any]]:
    """A model's deterministic predictions on a written cohort, read as deployment reads it.

    Parameters
    ----------
    model : torch.nn.Module
        Maps ``(B, 1, 64, 64)`` to ``(B, 2)``: mean (months), log variance.
    root : pathlib.Path or str
        A folder written by :func:`medval.demo.write_regression_cohort`.

    Returns
    -------
    dict
        ``case_id``, ``split`` (str arrays), ``label``, ``mean``,
        ``log_variance`` (float64 arrays), in ``labels.csv`` order; eval
        mode (no dropout).
    """
    import torch

    from medval.demo._regnet import regression_pipeline
    from medval.io import DicomDataset

    root = Path(root)
    with (root / "labels.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    dataset = DicomDataset(
        [root / "dicom" / r["file"] for r in rows], [r["case_id"] for r in rows],
        pipeline=regression_pipeline(), names=[r["file"] for r in rows],
    )  # fmt: skip
    loader = torch.utils.data.DataLoader(dataset, batch_size=64, shuffle=False)
    model.eval()
    with torch.no_grad():
        out = torch.cat([model(batch["image"]) for batch in loader]).double().numpy()
    return {
        "case_id": np.array([r["case_id"] for r in rows]),
        "split": np.array([r["split"] for r in rows]),
        "label": np.array([float(r["label"]) for r in rows]),
        "mean": out[:, 0],
        "log_variance": out[:, 1],
    }


def regressor_reference_scores(model: Any, root: Path | str) -> dict[str, float]:
    """Reference numbers of a regressor on a written demo cohort, per split.

    ``score_regressor_predictions(regressor_predictions(model, root))``.

    Parameters
    ----------
    model : torch.nn.Module
        As for :func:`regressor_predictions`.
    root : pathlib.Path or str
        A folder written by :func:`medval.demo.write_regression_cohort`.

    Returns
    -------
    dict
        See :func:`score_regressor_predictions`.
    """
    return score_regressor_predictions(regressor_predictions(model, root))


def score_regressor_predictions(predictions: Mapping[str, NDArray[Any]]) -> dict[str, float]:
    """The reference numbers of :func:`regressor_predictions`' output, per split.

    Parameters
    ----------
    predictions : mapping
        ``split``, ``label``, ``mean`` and ``log_variance`` arrays of one
        length (as :func:`regressor_predictions` returns).

    Returns
    -------
    dict
        For each split ``s`` (``calibration``, ``internal``, ``external``):
        ``mae.s`` (months), ``label_sd.s`` (ddof 0), ``bias.s`` (mean of
        prediction minus label), ``sigma_mean.s`` (mean predicted
        standard deviation, months), ``nll.s`` (mean Gaussian negative log
        likelihood in nats, months as the unit) and ``spearman_sigma_error.s``
        (Spearman correlation of the predicted sigma with the absolute
        error: does the variance head rank the errors; NaN when sigma or
        the error is constant).
    """
    from scipy.stats import spearmanr

    p = predictions
    sigma = np.exp(0.5 * np.asarray(p["log_variance"], dtype=np.float64))
    error = np.asarray(p["mean"], dtype=np.float64) - np.asarray(p["label"], dtype=np.float64)
    out: dict[str, float] = {}
    for split in ("calibration", "internal", "external"):
        k = np.asarray(p["split"]) == split
        e, s = error[k], sigma[k]
        out[f"mae.{split}"] = float(np.mean(np.abs(e)))
        out[f"label_sd.{split}"] = float(np.std(np.asarray(p["label"])[k]))
        out[f"bias.{split}"] = float(np.mean(e))
        out[f"sigma_mean.{split}"] = float(np.mean(s))
        out[f"nll.{split}"] = float(np.mean(0.5 * np.log(2 * np.pi * s**2) + 0.5 * (e / s) ** 2))
        ranked = np.ptp(s) > 0 and np.ptp(e) > 0  # else the correlation is undefined
        rho = float(spearmanr(s, np.abs(e))[0]) if ranked else float("nan")
        out[f"spearman_sigma_error.{split}"] = rho
    return out
