"""Engines: the same unit of work in this process or on a Ray cluster.

A header scan writes a de-identified cohort manifest (:func:`write_manifest`);
inference runs it shard by shard (:func:`run_shards` with ``engine="local"``
or ``"ray"``), each shard's predictions committed as one Parquet part
(:func:`commit_part`); a killed run resumes with the shards not yet
committed; evaluation reads the parts back by case id.
"""

from medval.engine._driver import ENGINES, parts_folder, prepare_work, run_shards
from medval.engine._local import run_local
from medval.engine._manifest import (
    DEFAULT_SHARD_SIZE,
    MANIFEST_FILE,
    Manifest,
    read_manifest,
    write_manifest,
)
from medval.engine._parts import commit_part, committed_shards, part_path, read_parts
from medval.engine._ray import RayOptions, RayPool, require_ray, run_ray, start_ray, stop_ray
from medval.engine._unit import ShardCollector, Unit

__all__ = [
    "DEFAULT_SHARD_SIZE",
    "ENGINES",
    "MANIFEST_FILE",
    "Manifest",
    "RayOptions",
    "RayPool",
    "ShardCollector",
    "Unit",
    "commit_part",
    "committed_shards",
    "part_path",
    "parts_folder",
    "prepare_work",
    "read_manifest",
    "read_parts",
    "require_ray",
    "run_local",
    "run_ray",
    "run_shards",
    "start_ray",
    "stop_ray",
    "write_manifest",
]
