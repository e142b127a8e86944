"""What the model will see: intensity summaries of preprocessed inputs, per split and scanner.

Run before the model, on a seeded sample of at most ``max_images`` images
per group (cheap: a few hundred files at most), so a normalisation the
model was not trained on shows up before any prediction is made.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from medval._errors import InputError

__all__ = ["MAX_IMAGES", "input_statistics"]

#: Images sampled per group.
MAX_IMAGES = 64
_PERCENTILES = (1.0, 50.0, 99.0)


def _groups(case_ids: list[str], cohort: Any) -> list[tuple[str, str, list[int]]]:
    """(by, group, dataset indices): every case, then each split, then each scanner."""
    out = [("all", "all", list(range(len(case_ids))))]
    frame = getattr(cohort, "cohort", cohort)
    if frame is None:
        return out
    rows = frame.reindex(case_ids)
    by_column: Mapping[str, Any] = {}
    if "split" in rows.columns:
        by_column = {"split": rows["split"]}
    scanner = [c for c in ("manufacturer", "model_name") if c in rows.columns]
    if scanner:
        parts = rows[scanner].astype("string").fillna("unknown")
        by_column = {**by_column, "scanner": parts.agg(" ".join, axis=1)}
    for by, values in by_column.items():
        labels = [str(v) for v in values.fillna("unknown")]
        for name in sorted(set(labels)):
            out.append((by, name, [i for i, v in enumerate(labels) if v == name]))
    return out


def _summary(values: np.ndarray[Any, Any]) -> dict[str, float]:
    p1, p50, p99 = (float(v) for v in np.percentile(values, _PERCENTILES))
    return {"mean": float(values.mean()), "sd": float(values.std()),
            "p1": p1, "p50": p50, "p99": p99}  # fmt: skip


def input_statistics(
    dataset: Any,
    cohort: Any = None,
    *,
    seed: int = 0,
    max_images: int = MAX_IMAGES,
) -> list[dict[str, Any]]:
    """Pixel statistics of the preprocessed inputs: all cases, per split, per scanner.

    Parameters
    ----------
    dataset : DicomDataset
        Its ``case_ids`` and items (``item["image"]``): exactly what the
        model gets.
    cohort : pandas.DataFrame or CohortData, optional
        Indexed by case id: groups by its ``split`` column and by scanner
        (``manufacturer`` and ``model_name``). Without it, one group.
    seed : int, default 0
        Seed of the sample (numpy ``default_rng``), drawn group by group.
    max_images : int, default 64
        Images sampled per group (all of a smaller group).

    Returns
    -------
    list of dict
        One row per group: ``by`` (``"all"``, ``"split"``, ``"scanner"``),
        ``group``, ``n_cases``, ``n_sampled`` and, over the sampled images'
        pixels pooled, ``mean``, ``sd`` (population), ``p1``, ``p50``, ``p99``,
        and per channel ``channel_mean`` and ``channel_sd`` (lists of C).

    Raises
    ------
    InputError
        ``max_images`` below 1.
    DataError
        From the dataset, when a sampled file cannot be read.
    """
    if max_images < 1:
        raise InputError(f"max_images must be >= 1; got {max_images}.")
    case_ids = [str(c) for c in dataset.case_ids]
    rng = np.random.default_rng(seed)
    plan = []
    for by, name, members in _groups(case_ids, cohort):
        chosen = members
        if len(members) > max_images:
            chosen = sorted(int(i) for i in rng.choice(members, size=max_images, replace=False))
        plan.append((by, name, len(members), chosen))
    pixels: dict[int, np.ndarray[Any, Any]] = {}
    for index in sorted({i for *_, chosen in plan for i in chosen}):
        image = dataset[index]["image"]
        image = image.detach().cpu().numpy() if hasattr(image, "detach") else image
        arr = np.asarray(image, dtype=np.float64)
        pixels[index] = arr.reshape(arr.shape[0] if arr.ndim == 3 else 1, -1)
    rows = []
    for by, name, n_cases, chosen in plan:
        if not chosen:
            continue
        per_channel = _channels(pixels[i] for i in chosen)
        values = np.concatenate([c.ravel() for c in per_channel]) if per_channel else np.zeros(1)
        rows.append({"by": by, "group": name, "n_cases": n_cases, "n_sampled": len(chosen),
                     **_summary(values),
                     "channel_mean": [float(c.mean()) for c in per_channel],
                     "channel_sd": [float(c.std()) for c in per_channel]})  # fmt: skip
    return rows


def _channels(images: Any) -> list[np.ndarray[Any, Any]]:
    """Pixels pooled per channel over images of shape (C, pixels); C must agree."""
    stacked: list[list[np.ndarray[Any, Any]]] = []
    for image in images:
        if stacked and len(stacked) != image.shape[0]:
            raise InputError(
                f"preprocessed images have {len(stacked)} and {image.shape[0]} channels; the "
                "pipeline must give every image the same number (a channels step)."
            )
        if not stacked:
            stacked = [[] for _ in range(image.shape[0])]
        for c in range(image.shape[0]):
            stacked[c].append(image[c])
    return [np.concatenate(parts) for parts in stacked]
