"""The engine in this process: the shards one after another, each committed when done."""

from __future__ import annotations

from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

from medval.engine._unit import ShardCollector, Unit, batches_of

__all__ = ["run_local"]


def run_local(
    unit: Unit,
    manifest: Any,
    parts: str | Path,
    pending: Collection[int],
    *,
    batch_size: int,
    on_commit: Callable[[int, int], None] | None = None,
) -> list[int]:
    """Decode and predict the ``pending`` shards of ``manifest`` here; the shards committed.

    Parameters
    ----------
    unit : Unit
        The work (:class:`medval.engine.Unit`).
    manifest : pandas.DataFrame
        From :func:`medval.engine.read_manifest`.
    parts : path
        The parts folder.
    pending : collection of int
        Shards to run.
    batch_size : int
        Cases per model batch.
    on_commit : callable, optional
        Called with (shard, rows) after each commit.
    """
    todo = manifest[manifest["shard"].isin(list(pending))]
    shard_cases = {int(s): list(g["case_id"]) for s, g in todo.groupby("shard", sort=True)}
    collector = ShardCollector(parts, shard_cases, on_commit)
    step = unit.model()
    for shard in sorted(shard_cases):
        rows = todo[todo["shard"] == shard]
        for batch in batches_of(rows, batch_size):
            collector.add(step(unit.decode(batch)))
    collector.finish()
    return collector.committed
