"""What both kinds of inputs offer their sections: splits, key prefixes, cohort columns."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from medval._errors import InputError
from medval._result import split_prefix
from medval.gate import EvaluationConfig, evaluated_splits

__all__ = ["CaseView", "cohort_frame", "frozen", "resolve_splits", "with_splits"]


class CaseView:
    """Split masks, key prefixes and cohort columns aligned with :attr:`case_ids`.

    Mixed into the frozen :class:`~medval.evaluation.Inputs` and
    :class:`SegmentationInputs`, which hold ``splits``, ``test_splits`` and
    ``cohort``.
    """

    splits: NDArray[np.str_]
    test_splits: tuple[str, ...]
    cohort: Any
    clusters: NDArray[Any] | None
    config: EvaluationConfig

    @property
    def case_ids(self) -> NDArray[np.str_]:
        raise NotImplementedError

    def mask(self, split: str) -> NDArray[np.bool_]:
        """The cases of one split."""
        out: NDArray[np.bool_] = self.splits == split
        return out

    def prefix(self, split: str) -> str:
        """The key prefix of an evaluated split (``""`` for the primary one)."""
        return split_prefix(split, self.test_splits)

    def column(self, name: str) -> NDArray[Any] | None:
        """A cohort column aligned with the cases (as strings), or None if absent or incomplete."""
        if self.cohort is None or name not in self.cohort.columns:
            return None
        values = self.cohort.loc[self.case_ids, name]
        if values.isna().any():
            return None
        return np.asarray(values.astype(str).to_numpy())

    def split_clusters(self, m: NDArray[np.bool_]) -> NDArray[Any] | None:
        """The patient keys of the cases ``m`` (None when every case is its own patient)."""
        return None if self.clusters is None else self.clusters[m]

    def interval_options(self, m: NDArray[np.bool_]) -> dict[str, Any]:
        """The bootstrap settings of an interval over the cases ``m`` (patient-clustered)."""
        cfg = self.config
        return {"clusters": self.split_clusters(m), "n_resamples": cfg.n_resamples,
                "confidence_level": cfg.confidence_level, "random_state": cfg.seed}  # fmt: skip


def cohort_frame(cohort: Any, ids: NDArray[np.str_], config: EvaluationConfig) -> tuple[Any, Any]:
    """(file scan or None, cohort DataFrame or None): every case in it, the settings checked."""
    import pandas as pd

    from medval.gate import check_settings

    data = cohort if hasattr(cohort, "exclusions") else None
    frame = data.cohort if data is not None else cohort
    if frame is not None:
        missing = ids[~pd.Index(ids).isin(frame.index)]
        if missing.size:
            raise InputError(
                f"{missing.size} cases have no row in the cohort (e.g. "
                f"{missing[:5].tolist()}); give the cohort a row for every case."
            )
    check_settings(config, None if frame is None else frame[frame.index.isin(ids)])
    return data, frame


def frozen(a: NDArray[Any]) -> NDArray[Any]:
    """A read-only copy."""
    out = np.array(a, copy=True)
    out.setflags(write=False)
    return out


def with_splits(probe: Any, config: EvaluationConfig, data: Any) -> Any:
    """``probe`` (a frozen inputs dataclass) with its splits, patient clusters and file paths."""
    import dataclasses

    splits, present, tests, cal = resolve_splits(probe, config)
    keys = probe.column("patient_key")
    clusters = None if keys is None or len(np.unique(keys)) == len(keys) else frozen(keys)
    return dataclasses.replace(
        probe,
        splits=frozen(splits),
        clusters=clusters,
        paths={} if data is None else dict(getattr(data, "paths", {}) or {}),
        present=present,
        test_splits=tests,
        calibration_split=cal,
    )


def resolve_splits(
    view: CaseView, config: EvaluationConfig
) -> tuple[NDArray[Any], tuple[str, ...], tuple[str, ...], str | None]:
    """(split of each case, splits present, evaluated splits, calibration split or None).

    Cases without a ``split`` column are all in split ``"all"``; every
    evaluated split must hold cases.
    """
    splits = view.column("split")
    if splits is None:
        splits = np.full(view.case_ids.shape, "all")
    present = tuple(dict.fromkeys(splits.tolist()))
    tests = evaluated_splits(
        present, calibration_split=config.calibration_split, test_splits=config.test_splits
    )
    unknown = [t for t in tests if t not in present]
    if unknown or not tests:
        raise InputError(
            f"test splits {list(unknown or tests)} have no cases; present: {list(present)}."
        )
    cal = config.calibration_split if config.calibration_split in present else None
    return splits, present, tuple(tests), cal
