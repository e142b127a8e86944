"""The engine on Ray Data (``pip install medval[ray]``, ``medval validate --engine ray``).

The pipeline is ``read_parquet(manifest)`` (the pending shards only) → the
unit's ``decode`` as CPU tasks → the unit's model in an actor pool
(``map_batches`` with a callable class and ``compute=ActorPoolStrategy``;
one GPU per actor only where the cluster has GPUs) → the driver, which
collects rows in whatever order they arrive and commits each shard's part
when it is whole (parts are named by shard, not by Ray's run-dependent file
names). Ray's traps handled here:

- ``num_gpus=1`` on a cluster without a GPU waits forever: the cluster's
  resources are read first and a GPU request it cannot meet stops the run.
- Ray does not retry exceptions raised in user code: decoding turns a bad
  file into an error row (see :class:`medval.engine.Unit`).
- Output order is not preserved: rows are joined on case id.
- Usage statistics are sent unless ``RAY_USAGE_STATS_ENABLED=0``: medval
  sets it to 0 before Ray starts (unless the user set it) and says so.
"""

from __future__ import annotations

import collections
import logging
import os
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

from medval._errors import MissingDependencyError, SpecError
from medval.engine._unit import ShardCollector, Unit

__all__ = ["RayOptions", "RayPool", "require_ray", "run_ray", "start_ray", "stop_ray"]

_USAGE = "RAY_USAGE_STATS_ENABLED"
# Fractions of a CPU: on a two-CPU machine the decode tasks, the model actors and
# Ray Data's own actors must fit together, or the pipeline waits for resources.
_DECODE_CPUS = 0.25
_ACTOR_CPUS = 0.5
_OWNED = [False]  # whether this process started the Ray instance it uses


class RayOptions:
    """How to reach and use the cluster.

    Parameters
    ----------
    address : str or None
        ``ray.init(address=...)``: an existing cluster (``"auto"``, or
        ``"ray://host:10001"``); None starts a local instance.
    workers : int, default 1
        Model actors in the pool.
    gpus_per_worker : float or None
        GPUs per actor; None: 1 where the cluster has GPUs, else 0.
    num_cpus : int or None
        CPUs of a local instance (None: all).
    """

    def __init__(
        self,
        address: str | None = None,
        *,
        workers: int = 1,
        gpus_per_worker: float | None = None,
        num_cpus: int | None = None,
    ) -> None:
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise SpecError(f"--workers must be a positive int; got {workers!r}.")
        if gpus_per_worker is not None and gpus_per_worker < 0:
            raise SpecError(f"--gpus-per-worker must be >= 0; got {gpus_per_worker!r}.")
        self.address = address
        self.workers = workers
        self.gpus_per_worker = gpus_per_worker
        self.num_cpus = num_cpus


def require_ray() -> Any:
    """The ray module, or MissingDependencyError with the fix (checked before any work)."""
    try:
        import ray
    except ImportError as exc:
        raise MissingDependencyError(
            "--engine ray needs Ray Data: pip install 'medval[ray]'."
        ) from exc
    if getattr(ray, "__file__", None) is None:
        # A folder named "ray" on the path (Ray's own /tmp/ray session folder, when run
        # from /tmp) imports as an empty namespace package.
        raise MissingDependencyError(
            "--engine ray needs Ray Data: pip install 'medval[ray]'. ('import ray' found a "
            "folder named 'ray', not the package: run from another folder if Ray is installed.)"
        )
    return ray


def start_ray(options: RayOptions, *, log: Callable[[str], None]) -> tuple[Any, bool]:
    """Connect to (or start) Ray with usage statistics off; (ray module, started here)."""
    ray = require_ray()
    if ray.is_initialized():
        return ray, _OWNED[0]
    if os.environ.get(_USAGE) is None:
        os.environ[_USAGE] = "0"
    if os.environ[_USAGE] == "0":
        log(f"Ray usage statistics are off ({_USAGE}=0)")
    else:
        log(f"WARNING: Ray usage statistics are on ({_USAGE}={os.environ[_USAGE]})")
    # Ray's own INFO lines name its session folder (an absolute path): keep them off the console.
    logging.getLogger("ray").setLevel(logging.WARNING)
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    kwargs: dict[str, Any] = {
        "include_dashboard": False, "log_to_driver": False, "logging_level": logging.WARNING,
    }  # fmt: skip
    if options.address is not None:
        kwargs["address"] = options.address
    elif options.num_cpus is not None:
        kwargs["num_cpus"] = options.num_cpus
    ray.init(**kwargs)
    ray.data.DataContext.get_current().enable_progress_bars = False
    _OWNED[0] = True
    return ray, True


def stop_ray() -> None:
    """Shut Ray down if :func:`start_ray` started it (a cluster joined is left alone)."""
    if _OWNED[0]:
        import ray

        ray.shutdown()
        _OWNED[0] = False


class RayPool:
    """``concurrent.futures``-style ``map`` on Ray tasks: results in order, ``workers`` in flight.

    The header scan runs its chunks on it (``io.load_cohort(pool=...)``); every
    node must see the DICOM folder at the same path.
    """

    def __init__(self, options: RayOptions, *, log: Callable[[str], None]) -> None:
        self.ray, _ = start_ray(options, log=log)
        self.workers = options.workers

    def map(self, fn: Callable[..., Any], *iterables: Any) -> Any:
        task = self.ray.remote(num_cpus=1)(fn)
        waiting: collections.deque[Any] = collections.deque()
        for args in zip(*iterables, strict=False):
            waiting.append(task.remote(*args))
            if len(waiting) >= self.workers:
                yield self.ray.get(waiting.popleft())
        while waiting:
            yield self.ray.get(waiting.popleft())


def _gpus(ray: Any, options: RayOptions, device: str) -> float:
    """GPUs per actor, checked against the cluster before anything is scheduled."""
    have = float(ray.cluster_resources().get("GPU", 0.0))
    want = options.gpus_per_worker
    if want is None:
        want = 1.0 if have > 0 and device != "cpu" else 0.0
    if device.startswith("cuda") and have == 0:
        raise SpecError(
            f"model.device = {device!r} but the Ray cluster has no GPU; set model.device = "
            "'auto' or 'cpu', or connect to a cluster with GPUs (--address)."
        )
    if want * options.workers > have:
        raise SpecError(
            f"{options.workers} worker(s) x {want:g} GPU need {want * options.workers:g} GPUs; "
            f"the Ray cluster has {have:g}. Lower --workers or --gpus-per-worker (0 runs on CPUs)."
        )
    return want


def _medval_cause(exc: BaseException) -> BaseException | None:
    """The medval error a worker raised, unwrapped from Ray's task errors (None if none)."""
    from medval._errors import MedvalError

    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, MedvalError):
            return e
        todo += [getattr(e, "cause", None), e.__cause__, e.__context__]
    return None


class _ModelActor:
    """A pool actor: builds the unit's model once, maps decoded batches, commits whole shards.

    Ray Data hands a block to one task and never splits it, but it merges the
    outputs of a task into one block, so the driver may see every row only at
    the end. The actor therefore commits each shard itself as soon as it holds
    all of its rows (the parts folder must be shared, like the images), and
    marks those rows ``committed``; the driver commits whatever reaches it
    unmarked.
    """

    def __init__(self, unit: Unit, parts: str, shard_cases: dict[int, list[str]]) -> None:
        self.step = unit.model()
        self.collector = ShardCollector(parts, shard_cases)

    def __call__(self, batch: Any) -> Any:
        out = self.step(batch)
        self.collector.add(out)
        out["committed"] = [int(s) in self.collector.committed for s in out["shard"]]
        return out


def run_ray(
    unit: Unit,
    manifest_path: str | Path,
    manifest: Any,
    parts: str | Path,
    pending: Collection[int],
    *,
    options: RayOptions,
    batch_size: int,
    device: str,
    log: Callable[[str], None],
    on_commit: Callable[[int, int], None] | None = None,
) -> list[int]:
    """Run the ``pending`` shards on Ray Data; the shards committed (see the module)."""
    ray, started = start_ray(options, log=log)
    try:
        gpus = _gpus(ray, options, device)
        todo = manifest[manifest["shard"].isin(list(pending))]
        shard_cases = {int(s): list(g["case_id"]) for s, g in todo.groupby("shard", sort=True)}
        collector = ShardCollector(parts, shard_cases, on_commit)
        import pyarrow.fs as pafs
        from ray.data.expressions import col

        ds = ray.data.read_parquet(str(manifest_path), filesystem=pafs.LocalFileSystem())
        # A block per pending shard (the manifest is small): the shards stream through the
        # pool and every actor gets work, instead of one block for the whole cohort.
        ds = ds.filter(expr=col("shard").is_in(sorted(shard_cases)))
        ds = ds.repartition(len(shard_cases))
        ds = ds.map_batches(
            unit.decode, batch_format="pandas", batch_size=batch_size, num_cpus=_DECODE_CPUS
        )
        ds = ds.map_batches(
            _ModelActor,
            fn_constructor_args=(unit, str(parts), shard_cases),
            batch_format="pandas",
            batch_size=batch_size,
            compute=ray.data.ActorPoolStrategy(size=options.workers),
            num_cpus=_ACTOR_CPUS,
            num_gpus=gpus,
        )
        log(
            f"Ray: {len(shard_cases)} shards on {options.workers} model worker(s)"
            + (f", {gpus:g} GPU each" if gpus else ", CPU")
        )
        try:
            for batch in ds.iter_batches(batch_format="pandas", batch_size=None):
                collector.add(batch)
        except Exception as exc:
            raise _medval_cause(exc) or exc from None
        collector.finish()
        return collector.committed
    finally:
        if started:
            stop_ray()
