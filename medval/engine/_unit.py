"""The unit of work every engine runs, and the collector that commits it shard by shard.

A unit has two steps, so an engine can run them on different workers: ``decode``
(CPU: manifest rows in, one row per case out, with the preprocessed image or the
reason it could not be decoded) and ``model()`` (built once per worker: decoded
rows in, prediction rows out). Rows are pandas DataFrames carrying ``case_id``
and ``shard``. A file that cannot be decoded is a row with its ``error``, never
an exception: engines do not retry user code, so one corrupt file must not fail
a job.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from medval._errors import DataError
from medval.engine._parts import commit_part

__all__ = ["ShardCollector", "Unit"]


class Unit(Protocol):
    """What an engine runs: picklable, holding no model and no arrays."""

    def decode(self, rows: Any) -> Any:
        """Manifest rows -> decoded rows (``case_id``, ``shard``, ``error``, the image)."""
        ...

    def model(self) -> Callable[[Any], Any]:
        """Build the model once (in the worker that runs it); returns rows -> predictions."""
        ...


class ShardCollector:
    """Gathers prediction rows arriving in any order; commits each shard once it is whole.

    Parameters
    ----------
    folder : path
        The parts folder.
    shard_cases : mapping of int to sequence of str
        Each pending shard's case ids.
    on_commit : callable, optional
        Called with (shard, number of rows) after each commit.
    """

    def __init__(
        self,
        folder: str | Path,
        shard_cases: Mapping[int, Sequence[str]],
        on_commit: Callable[[int, int], None] | None = None,
    ) -> None:
        self.folder = Path(folder)
        self.expected = {s: frozenset(c) for s, c in shard_cases.items()}
        self.rows: dict[int, dict[str, Any]] = {s: {} for s in shard_cases}
        self.on_commit = on_commit
        self.committed: list[int] = []

    def add(self, batch: Any) -> list[int]:
        """Take one batch of prediction rows (a DataFrame); commit completed shards.

        Rows with a true ``committed`` column belong to a shard a worker has
        already committed itself: the shard is marked done, not written again.
        Returns the shards this call committed or marked.
        """
        import pandas as pd

        now: list[int] = []
        if "committed" in batch.columns:
            done = batch["committed"].astype(bool)
            for s in sorted({int(x) for x in batch.loc[done, "shard"]}):
                if s in self.rows:
                    n = len(self.expected[s])
                    del self.rows[s]
                    self.committed.append(s)
                    now.append(s)
                    if self.on_commit is not None:
                        self.on_commit(s, n)
            batch = batch.loc[~done].drop(columns=["committed"])
        for shard, group in batch.groupby("shard", sort=False):
            s = int(shard)
            if s not in self.rows:
                if s in self.committed:  # a re-executed task: its rows are already committed
                    continue
                raise DataError(f"prediction rows arrived for shard {s}, which was not run.")
            held = self.rows[s]
            for case, row in zip(group["case_id"], group.itertuples(index=False), strict=True):
                if case not in self.expected[s]:
                    raise DataError(f"shard {s} returned case {case!r}, which is not in it.")
                held.setdefault(str(case), row)  # exactly once, even if a task ran twice
            if len(held) == len(self.expected[s]):
                frame = pd.DataFrame(list(held.values()), columns=batch.columns)
                commit_part(self.folder, s, frame)
                del self.rows[s]
                self.committed.append(s)
                now.append(s)
                if self.on_commit is not None:
                    self.on_commit(s, len(frame))
        return now

    def finish(self) -> None:
        """Raise when a shard never completed (rows lost by the engine)."""
        if self.rows:
            s, held = next(iter(self.rows.items()))
            raise DataError(
                f"the engine returned {len(held)} of the {len(self.expected[s])} cases of shard "
                f"{s}; rerun to process the missing shards."
            )


def batches_of(rows: Any, size: int) -> Iterable[Any]:
    """``rows`` (a DataFrame) in consecutive slices of ``size``."""
    for start in range(0, len(rows), size):
        yield rows.iloc[start : start + size]
