"""Case ids of the cases :func:`~medval.inference.predict` scores, batch by batch."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from medval._errors import InputError

__all__ = ["CaseIds"]


class CaseIds:
    """Ids by running position: ``case_ids=``, the batches, the dataset, else ``"0".."n-1"``.

    :meth:`take` names each batch's cases as they arrive (MC dropout keys its
    masks by them), :meth:`final` the returned ``case_ids``; both use the
    same order of sources.
    """

    def __init__(self, given: Sequence[str] | None, loader: Any) -> None:
        self.given = None if given is None else [str(i) for i in given]
        dataset_ids = getattr(getattr(loader, "dataset", None), "case_ids", None)
        self.dataset = None if dataset_ids is None else [str(i) for i in dataset_ids]
        self.seen = 0
        self.from_batches: list[str] = []
        self.complete = True  # every batch carried its ids

    def take(self, b: int, batch_ids: list[str] | None) -> list[str]:
        """Ids of the next ``b`` cases; ``batch_ids`` are those the batch carries.

        Raises
        ------
        InputError
            The batch's ids do not match its size, or ``case_ids`` /
            ``loader.dataset.case_ids`` run out.
        """
        start, self.seen = self.seen, self.seen + b
        if batch_ids is None:
            self.complete = False
        elif len(batch_ids) != b:
            raise InputError(
                f"a batch carries {len(batch_ids)} case_id values for {b} inputs "
                f"(cases {start}..{self.seen - 1}); each input needs one id."
            )
        else:
            self.from_batches.extend(batch_ids)
        if self.given is not None:
            return self._slice("case_ids", self.given, start)
        if batch_ids is not None:
            return batch_ids
        if self.dataset is not None:
            return self._slice("loader.dataset.case_ids", self.dataset, start)
        return [str(i) for i in range(start, self.seen)]

    def _slice(self, source: str, ids: list[str], start: int) -> list[str]:
        if len(ids) < self.seen:
            raise InputError(
                f"{source} has {len(ids)} ids but the loader yields more cases "
                f"({self.seen} so far); give one id per case."
            )
        return ids[start : self.seen]

    def final(self, n: int) -> np.ndarray:
        """The ``n`` case ids to return, from the first source that has them.

        Raises
        ------
        InputError
            The chosen source does not hold ``n`` ids.
        """
        for source, ids in (
            ("case_ids", self.given),
            ("the batches' case_id", self.from_batches if self.complete else None),
            ("loader.dataset.case_ids", self.dataset),
        ):
            if ids is not None:
                if len(ids) != n:
                    raise InputError(f"{source} has {len(ids)} ids but the model scored {n} cases.")
                return np.asarray(ids)
        return np.asarray([str(i) for i in range(n)])
