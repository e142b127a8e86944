"""Benchmark: header scan and inference throughput, in process vs. Ray with 1 and 2 workers.

Run: ``python benchmarks/bench_engine.py`` (``--quick`` for a smoke size); needs
``medval[ray]``. Also run by ``benchmarks/bench_scale.py --part engine``.

The demo cohort scaled to about 5,000 DICOM files (the demo's three sites, its
shipped weights and spec, MC dropout as the spec sets it):

* header scan: ``io.load_cohort`` in this process (the anchor), then with the
  chunks on a local Ray instance (``medval.engine.RayPool``), 1 and 2 workers;
* inference over the evaluated cases (decode, preprocess, model): the
  in-process path (``DataLoader`` + ``inference.predict``, the anchor), the
  shard unit in this process (``--engine local``), and Ray Data with 1 and 2
  model actors (``--engine ray``), each committing Parquet parts.

Ray's start-up is timed apart. On the 2-core development machine Ray's own
processes share the two cores with the work, so the ratios there measure the
overhead; the point of the engine is more machines and GPUs.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any


def _write(folder: Path, n_patients: tuple[int, int, int]) -> Path:
    from medval import demo
    from medval.run import spec_template

    info = demo.write_cohort(folder / "cohort", seed=0, n_patients=n_patients)
    shutil.copyfile(demo.shipped_weights(), folder / "model.pt")
    center, width = info.window
    spec = folder / "medval.toml"
    spec.write_text(
        spec_template().format(
            name=spec.name, center=center, width=width,
            size=", ".join(map(str, info.image_size)), seed=0,
        ),
        encoding="utf-8",
    )  # fmt: skip
    return spec


def _scan(spec: Any, pool: Any = None) -> Any:
    from medval.run import read_data

    return read_data(spec, salt="bench", progress=False, pool=pool)


def _in_process(spec: Any, data: Any, used: list[str]) -> float:
    from torch.utils.data import DataLoader

    from medval import io
    from medval.inference import predict
    from medval.run._model import load_models, preprocess_pipeline

    members = load_models(spec, trust_pickle=False, log=lambda *_: None).members
    pipeline = preprocess_pipeline(spec, log=lambda *_: None)
    dataset = io.DicomDataset([data.paths[c] for c in used], used, pipeline=pipeline)
    loader = DataLoader(dataset, batch_size=spec["model.batch_size"])
    t = time.perf_counter()
    predict(
        members[0].module, loader, output=spec["model.output"],
        class_names=list(spec["task.class_names"]), mc_samples=spec["model.mc_samples"],
        seed=spec["analysis.seed"], embeddings=spec["model.embeddings"],
    )  # fmt: skip
    return time.perf_counter() - t


def _engine(spec: Any, data: Any, used: list[str], work: Path, name: str, ray: Any) -> float:
    from medval.run import EngineRun
    from medval.run._model import load_models
    from medval.run._shards import engine_predictions

    models = load_models(spec, trust_pickle=False, log=lambda *_: None)
    shutil.rmtree(work, ignore_errors=True)
    t = time.perf_counter()
    engine_predictions(
        spec, data, used, engine=EngineRun(name, str(work), 64, False, ray), models=models,
        out_dir=work.parent / "out", trusted=False, log=lambda *_: None,
    )  # fmt: skip
    return time.perf_counter() - t


def engine(quick: bool = False) -> None:
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    from medval.engine import RayOptions, RayPool, start_ray, stop_ray
    from medval.gate import read_spec

    n = (60, 60, 40) if quick else (960, 960, 640)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        t = time.perf_counter()
        spec = read_spec(_write(folder, n))
        data = _scan(spec)
        print(f"wrote the demo cohort: {data.n_files} files in {time.perf_counter() - t:.1f} s")
        t = time.perf_counter()
        data = _scan(spec)
        scan_one = time.perf_counter() - t
        t = time.perf_counter()
        start_ray(RayOptions(num_cpus=2), log=lambda *_: None)
        print(f"Ray start-up (local, 2 CPUs): {time.perf_counter() - t:.1f} s (not counted)")
        scans = {}
        for workers in (1, 2):
            pool = RayPool(RayOptions(workers=workers), log=lambda *_: None)
            t = time.perf_counter()
            _scan(spec, pool)
            scans[workers] = time.perf_counter() - t
        files = data.n_files
        print(f"\nheader scan of {files} files:")
        print(f"  in process        {scan_one:6.1f} s  {files / scan_one:7.0f} files/s  (anchor)")
        for w, s in scans.items():
            print(f"  Ray, {w} worker(s)  {s:6.1f} s  {files / s:7.0f} files/s  "
                  f"{scan_one / s:.2f}x the anchor")  # fmt: skip
        cohort = data.cohort
        used = [str(c) for c in cohort.index[cohort["split"] != "train"]]
        mc = spec["model.mc_samples"]
        print(f"\ninference on {len(used)} images (decode, preprocess, model, {mc} MC samples):")
        base = _in_process(spec, data, used)
        print(f"  in process (DataLoader)  {base:6.1f} s  {len(used) / base:6.1f} img/s  (anchor)")
        rows = [("shard unit, local", "local", None)]
        rows += [(f"Ray, {w} model actor(s)", "ray", RayOptions(workers=w)) for w in (1, 2)]
        for label, name, ray in rows:
            s = _engine(spec, data, used, folder / "work", name, ray)
            print(f"  {label:23s}  {s:6.1f} s  {len(used) / s:6.1f} img/s  {base / s:.2f}x")
        stop_ray()
    print("\nGPU: not run here (no CUDA device); see bench_inference.py on a GPU machine.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small smoke size")
    engine(parser.parse_args().quick)


if __name__ == "__main__":
    main()
