"""Prediction parts: one Parquet file per shard, committed whole, read back by case id.

A part is written to a temporary name, flushed to disk and renamed to
``shard-NNNNN.parquet``: a reader (or a resumed run) sees a whole part or
none. A part counts as committed only when it reads back and holds exactly
its shard's case ids, once each; anything else is redone. Rows carry
``case_id``, ``error`` (the exclusion reason of an image that could not be
decoded, else null) and the prediction columns as lists of floats per case.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from medval._errors import DataError

__all__ = ["commit_part", "committed_shards", "part_path", "read_parts"]

_PART = re.compile(r"^shard-(\d{5,})\.parquet$")


def part_path(folder: str | os.PathLike[str], shard: int) -> Path:
    """Where shard ``shard``'s part lives (named by shard, the same in every run)."""
    return Path(folder) / f"shard-{shard:05d}.parquet"


def commit_part(folder: str | os.PathLike[str], shard: int, rows: Any) -> Path:
    """Write ``rows`` (a pandas DataFrame) as shard ``shard``'s part, atomically."""
    target = part_path(folder, shard)
    tmp = target.parent / f".{target.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        rows.to_parquet(tmp, index=False)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return target


def committed_shards(
    folder: str | os.PathLike[str], shard_cases: Mapping[int, Sequence[str]]
) -> set[int]:
    """The shards whose part exists, reads back and holds exactly the shard's cases."""
    import pyarrow.parquet as pq

    done: set[int] = set()
    base = Path(folder)
    if not base.is_dir():
        return done
    for entry in base.iterdir():
        m = _PART.match(entry.name)
        if m is None or int(m.group(1)) not in shard_cases:
            continue
        shard = int(m.group(1))
        try:
            ids = pq.read_table(entry, columns=["case_id"]).column("case_id").to_pylist()
        except Exception:  # a torn or foreign file: the shard is redone
            continue
        if sorted(ids) == sorted(shard_cases[shard]) and len(set(ids)) == len(ids):
            done.add(shard)
    return done


def read_parts(folder: str | os.PathLike[str], shards: Iterable[int]) -> Any:
    """Every part of ``shards`` as one pandas DataFrame (rows in part order)."""
    import pandas as pd

    frames = [pd.read_parquet(part_path(folder, s)) for s in sorted(shards)]
    if not frames:
        raise DataError("no prediction parts to read: the run committed no shard.")
    return pd.concat(frames, ignore_index=True)
