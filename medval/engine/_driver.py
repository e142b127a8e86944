"""Running a manifest's shards on an engine, resuming, and checking exactly-once.

A run's parts live in a work folder keyed by everything that decides the
predictions (spec, model files, cohort manifest, seed): a rerun with the
same key takes the shards already committed and runs only the others; a
different key starts afresh. The finished run reads every part back and
checks that the case ids are the manifest's, each exactly once.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from medval._errors import DataError, SpecError
from medval.engine._local import run_local
from medval.engine._manifest import Manifest, read_manifest
from medval.engine._parts import committed_shards, read_parts
from medval.engine._ray import RayOptions, run_ray
from medval.engine._unit import Unit

__all__ = ["ENGINES", "parts_folder", "prepare_work", "run_shards"]

#: Engines ``--engine`` accepts.
ENGINES = ("local", "ray")
_MARKER = "medval-work.json"


def prepare_work(folder: str | Path) -> Path:
    """Claim ``folder`` as a work folder (created when new); checked before anything is written.

    Raises
    ------
    SpecError
        When ``folder`` is a file, or not empty and not a medval work folder.
    """
    base = Path(folder)
    marker = base / _MARKER
    if base.exists() and not base.is_dir():
        raise SpecError(f"the work folder {base.name!r} is a file; pass another --work-dir.")
    if base.is_dir() and any(base.iterdir()) and not marker.is_file():
        raise SpecError(
            f"the work folder {base.name!r} holds files medval did not write; pass an empty "
            "or new --work-dir."
        )
    base.mkdir(parents=True, exist_ok=True)
    if not marker.is_file():
        marker.write_text(json.dumps({"key": None}) + "\n", encoding="utf-8")
    return base


def parts_folder(folder: str | Path, key: str, *, log: Callable[[str], None]) -> Path:
    """The parts folder of run ``key`` in a prepared work folder; parts of another key removed."""
    base = Path(folder)
    marker = base / _MARKER
    try:
        old = json.loads(marker.read_text(encoding="utf-8")).get("key")
    except (OSError, ValueError):
        old = None
    if old is not None and old != key and (base / "parts").exists():
        log("the work folder holds parts of another spec, model or cohort: starting afresh")
        shutil.rmtree(base / "parts", ignore_errors=True)
    (base / "parts").mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps({"key": key}) + "\n", encoding="utf-8")
    return base / "parts"


def run_shards(
    unit: Unit,
    manifest: Manifest,
    parts: Path,
    *,
    engine: str,
    batch_size: int,
    device: str = "cpu",
    ray_options: RayOptions | None = None,
    log: Callable[[str], None],
) -> Any:
    """Run every shard not yet committed; every case's row (a DataFrame, manifest order).

    Raises
    ------
    SpecError
        An unknown engine.
    DataError
        When the parts do not hold each manifest case exactly once.
    """
    if engine not in ENGINES:
        raise SpecError(f"--engine must be one of {list(ENGINES)}; got {engine!r}.")
    shard_cases = manifest.shard_cases()
    done = committed_shards(parts, shard_cases)
    pending = sorted(set(shard_cases) - done)
    if done:
        n_done = sum(len(shard_cases[s]) for s in done)
        log(
            f"resuming: {len(done)} of {len(shard_cases)} shards ({n_done} cases) already "
            f"committed; running the other {len(pending)}"
        )

    def committed(shard: int, n: int) -> None:
        log(f"shard {shard} committed ({n} cases)")

    if pending:
        frame = read_manifest(manifest.path)
        if engine == "local":
            run_local(unit, frame, parts, pending, batch_size=batch_size, on_commit=committed)
        else:
            run_ray(
                unit, manifest.path, frame, parts, pending, options=ray_options or RayOptions(),
                batch_size=batch_size, device=device, log=log, on_commit=committed,
            )  # fmt: skip
    rows = read_parts(parts, shard_cases)
    ids = [str(c) for c in rows["case_id"]]
    if len(set(ids)) != len(ids) or set(ids) != set(manifest.case_ids):
        extra = sorted(set(ids) - set(manifest.case_ids))[:3]
        missing = sorted(set(manifest.case_ids) - set(ids))[:3]
        raise DataError(
            f"the parts hold {len(ids)} rows ({len(set(ids))} distinct cases) for a manifest of "
            f"{len(manifest.case_ids)}; missing e.g. {missing}, unexpected e.g. {extra}. Delete "
            "the work folder and rerun."
        )
    order = {c: i for i, c in enumerate(manifest.case_ids)}
    return rows.iloc[sorted(range(len(ids)), key=lambda i: order[ids[i]])].reset_index(drop=True)
