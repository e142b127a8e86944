"""The cohort manifest: one de-identified row per evaluated case, split into shards.

Every engine (this process, or a Ray cluster) works from the same Parquet file:
a header scan writes it once, inference takes it a shard at a time, and the
shard is the unit that is committed, resumed and checked. Its columns are the
case id, the relative path of the image under the data root, the cohort's
de-identified columns (salted patient key, scanner, sex, age band, split: see
:data:`medval._types.DICOM_COLUMNS`) and the shard number. No label, no
absolute path, nothing from a header that the scan did not de-identify.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from medval._errors import InputError

__all__ = ["MANIFEST_FILE", "Manifest", "read_manifest", "write_manifest"]

MANIFEST_FILE = "manifest.parquet"
#: Cases per shard when not given: small enough that a killed run loses little.
DEFAULT_SHARD_SIZE = 256
_NOT_WRITTEN = frozenset({"label"})


@dataclasses.dataclass(frozen=True)
class Manifest:
    """A written manifest.

    Attributes
    ----------
    path : pathlib.Path
        The Parquet file.
    case_ids : tuple of str
        Every case, in cohort order.
    shards : tuple of int
        Each case's shard, aligned with ``case_ids``.
    digest : str
        SHA-256 of the rows (ids, paths, shards) and of the data's own
        manifest: the same cohort and sharding give the same digest.
    """

    path: Path
    case_ids: tuple[str, ...]
    shards: tuple[int, ...]
    digest: str

    @property
    def n_shards(self) -> int:
        return max(self.shards) + 1 if self.shards else 0

    def shard_cases(self) -> dict[int, list[str]]:
        """shard -> its case ids, in cohort order."""
        out: dict[int, list[str]] = {}
        for case, shard in zip(self.case_ids, self.shards, strict=True):
            out.setdefault(shard, []).append(case)
        return out


def write_manifest(
    cohort: Any,
    paths: Mapping[str, str | os.PathLike[str]],
    root: str | os.PathLike[str],
    used: Sequence[str],
    folder: str | os.PathLike[str],
    *,
    shard_size: int = DEFAULT_SHARD_SIZE,
    data_digest: str = "",
) -> Manifest:
    """Write ``folder/manifest.parquet`` for the ``used`` cases.

    Parameters
    ----------
    cohort : pandas.DataFrame
        The de-identified cohort, indexed by case id.
    paths : mapping of str to path
        case id -> image file; each must lie under ``root``.
    root : path
        The data root; only paths relative to it are written.
    used : sequence of str
        The cases to run, in order; shard ``k`` holds cases
        ``k * shard_size`` to ``(k + 1) * shard_size - 1``.
    folder : path
        Where to write (created if needed).
    shard_size : int, default 256
        Cases per shard.
    data_digest : str, default ""
        The data's own manifest hash (file contents), folded into the digest.

    Raises
    ------
    InputError
        On a bad ``shard_size``, a case without a path, or a path outside
        ``root``.
    """
    import pandas as pd

    if isinstance(shard_size, bool) or not isinstance(shard_size, int) or shard_size < 1:
        raise InputError(
            f"shard_size must be a positive int (cases per shard); got {shard_size!r}."
        )
    base = Path(root).resolve()
    rel = []
    for case in used:
        if case not in paths:
            raise InputError(f"case {case!r} has no image file; every manifest row needs one.")
        path = Path(paths[case]).resolve()
        if base not in path.parents:
            raise InputError(
                f"the image of case {case!r} lies outside the data root; the manifest holds "
                "paths relative to it. Put the images under data.dicom_dir."
            )
        rel.append(path.relative_to(base).as_posix())
    shards = [i // shard_size for i in range(len(used))]
    frame = cohort.loc[list(used)].drop(columns=[c for c in cohort.columns if c in _NOT_WRITTEN])
    frame = frame.reset_index(drop=True)
    frame.insert(0, "case_id", [str(c) for c in used])
    frame.insert(1, "path", rel)
    frame["shard"] = pd.array(shards, dtype="int64")
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    target = out / MANIFEST_FILE
    tmp = out / f".{MANIFEST_FILE}.tmp-{os.getpid()}"
    # One row group per shard: an engine reads the file as one block per shard and
    # streams them, instead of one block for the whole cohort.
    frame.to_parquet(tmp, index=False, row_group_size=shard_size)
    os.replace(tmp, target)
    return Manifest(target, tuple(frame["case_id"]), tuple(shards), _digest(frame, data_digest))


def read_manifest(path: str | os.PathLike[str]) -> Any:
    """The manifest as a pandas DataFrame (``case_id``, ``path``, ..., ``shard``).

    Raises
    ------
    InputError
        When the file is not a manifest (missing columns) or holds a case twice.
    """
    import pandas as pd

    frame = pd.read_parquet(path)
    missing = [c for c in ("case_id", "path", "shard") if c not in frame.columns]
    if missing:
        raise InputError(
            f"{Path(path).name} is not a medval manifest: columns {missing} are missing."
        )
    dup = frame["case_id"][frame["case_id"].duplicated()]
    if len(dup):
        raise InputError(f"{Path(path).name} holds case {dup.iloc[0]!r} twice.")
    return frame


def _digest(frame: Any, data_digest: str) -> str:
    h = hashlib.sha256(data_digest.encode())
    for case, rel, shard in zip(frame["case_id"], frame["path"], frame["shard"], strict=True):
        h.update(f"{case}\t{rel}\t{int(shard)}\n".encode())
    return h.hexdigest()
