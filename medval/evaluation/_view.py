"""What both kinds of inputs offer their sections: splits, key prefixes, cohort columns."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from medval._errors import InputError
from medval._result import split_prefix
from medval.gate import EvaluationConfig, evaluated_splits

__all__ = ["CaseView", "resolve_splits"]


class CaseView:
    """Split masks, key prefixes and cohort columns aligned with :attr:`case_ids`.

    Mixed into the frozen :class:`~medval.evaluation.Inputs` and
    :class:`SegmentationInputs`, which hold ``splits``, ``test_splits`` and
    ``cohort``.
    """

    splits: NDArray[np.str_]
    test_splits: tuple[str, ...]
    cohort: Any

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
