"""A classifier spec's model step on an engine (``--engine local|ray``), shard by shard.

The work a worker receives is a :class:`ClassifierUnit`: the spec's path, the
data root and the model files' digests, nothing else. Each worker re-reads the
spec, builds the ``[preprocess]`` pipeline and loads the models itself (the
files must be visible to every worker), and refuses a model file whose SHA-256
differs from the driver's. Predictions are those of
:func:`medval.inference.predict` with the spec's settings: MC-dropout masks
keyed by (seed, case id), so sharding and batching do not change them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from medval._errors import DataError, SpecError
from medval.gate import Spec

__all__ = ["ClassifierUnit", "EngineRun", "engine_predictions"]

_ARRAYS = ("probabilities", "mc_probabilities", "embeddings", "concentrations")


@dataclasses.dataclass(frozen=True)
class EngineRun:
    """``--engine`` and its options, as the CLI passes them to a run."""

    name: str = "local"
    work_dir: str | None = None  # default: beside the output folder, "<out>.work"
    shard_size: int | None = None
    keep_parts: bool = False
    ray: Any = None  # medval.engine.RayOptions


@dataclasses.dataclass
class ClassifierUnit:
    """The unit of work of a classifier spec (picklable; see :class:`medval.engine.Unit`)."""

    spec_path: str
    root: str
    trusted: bool
    model_sha256: tuple[str, ...]
    device: str
    _pipeline: Any = dataclasses.field(default=None, repr=False, compare=False)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_pipeline"] = None  # rebuilt in each worker
        return state

    def _spec(self) -> Spec:
        from medval.gate import read_spec

        return read_spec(self.spec_path)

    def pipeline(self) -> Any:
        if self._pipeline is None:
            from medval.run._model import preprocess_pipeline

            self._pipeline = preprocess_pipeline(self._spec(), log=_silent)
        return self._pipeline

    def decode(self, rows: Any) -> Any:
        """Manifest rows -> ``case_id``, ``shard``, ``error``, ``image`` bytes, ``shape``."""
        import numpy as np
        import pandas as pd

        from medval import io

        rel = [str(p) for p in rows["path"]]
        dataset = io.DicomDataset(
            [Path(self.root, p) for p in rel], [str(c) for c in rows["case_id"]],
            pipeline=self.pipeline(), names=rel,
        )  # fmt: skip
        errors: list[str | None] = []
        images: list[bytes] = []
        shapes: list[str] = []
        for i in range(len(dataset)):
            try:
                image = dataset[i]["image"].numpy().astype(np.float32, copy=False)
            except io.ImageError as exc:
                errors.append(exc.reason)
                images.append(b"")
                shapes.append("")
                continue
            errors.append(None)
            images.append(np.ascontiguousarray(image).tobytes())
            shapes.append(",".join(str(d) for d in image.shape))
        return pd.DataFrame(
            {
                "case_id": [str(c) for c in rows["case_id"]],
                "shard": np.asarray(rows["shard"], dtype=np.int64),
                "error": pd.array(errors, dtype=object),
                "image": images,
                "shape": shapes,
            }
        )

    def model(self) -> Callable[[Any], Any]:
        """Load the models here; returns decoded rows -> prediction rows."""
        from medval.inference import BatchLimit, predict, resolve_device
        from medval.run._model import load_models

        spec = self._spec()
        members = load_models(spec, trust_pickle=self.trusted, log=_silent).members
        got = tuple(m.sha256 for m in members)
        if got != self.model_sha256:
            raise DataError(
                "a model file on this worker differs from the one the run started with "
                "(SHA-256); every worker must see the same files."
            )
        module = members[0].module if len(members) == 1 else [m.module for m in members]
        device = resolve_device(None if self.device == "auto" else self.device)
        tta = spec["model.tta"]
        options = {
            "output": spec["model.output"], "device": device,
            "class_names": list(spec["task.class_names"]), "mc_samples": spec["model.mc_samples"],
            "seed": spec["analysis.seed"], "embeddings": spec["model.embeddings"],
            "tta": None if tta == "none" else tta, "precision": spec["model.precision"],
            # out-of-memory halvings stay with this worker (its outputs do not depend on them)
            "batch_limit": BatchLimit(),
        }  # fmt: skip

        def step(rows: Any) -> Any:
            return _predict_rows(rows, module, predict, options)

        return step


def _predict_rows(rows: Any, module: Any, predict: Any, options: dict[str, Any]) -> Any:
    import numpy as np
    import torch

    out = rows[["case_id", "shard", "error"]].reset_index(drop=True)
    columns: dict[str, list[Any]] = {name: [None] * len(out) for name in _ARRAYS}
    ok = [i for i, e in enumerate(out["error"]) if _missing(e)]
    if ok:
        images = [
            np.frombuffer(rows["image"].iloc[i], dtype=np.float32).reshape(
                tuple(int(d) for d in rows["shape"].iloc[i].split(","))
            )
            for i in ok
        ]
        ids = [str(out["case_id"].iloc[i]) for i in ok]
        x = torch.from_numpy(np.stack(images))
        preds = predict(module, [{"image": x, "case_id": ids}], **options)
        arrays = {
            "probabilities": preds.probabilities,
            "mc_probabilities": None
            if preds.mc_probabilities is None
            else np.swapaxes(preds.mc_probabilities, 0, 1),
            "embeddings": preds.embeddings,
            "concentrations": preds.concentrations,
        }
        for name, values in arrays.items():
            if values is not None:
                for j, i in enumerate(ok):
                    columns[name][i] = np.asarray(values[j], dtype=np.float64).ravel().tolist()
    for name, values in columns.items():
        out[name] = values
    return out


def _missing(value: Any) -> bool:
    """No error: None, NaN or pandas' NA (what a null reads back as from Parquet)."""
    import pandas as pd

    return value is None or bool(pd.isna(value))


def _silent(*_: Any) -> None:
    return None


def engine_predictions(
    spec: Spec,
    data: Any,
    used: Sequence[str],
    *,
    engine: EngineRun,
    models: Any,
    out_dir: Path,
    trusted: bool,
    log: Any,
) -> tuple[Any, dict[str, str], dict[str, Any]]:
    """Run the model on ``used`` through ``engine``; (predictions, failures, provenance).

    ``failures`` maps each case that could not be decoded to its reason (the
    same reasons as the in-process decode check).
    """
    import numpy as np

    from medval import engine as eng
    from medval._types import Predictions
    from medval.inference import CPU_BATCH_SIZE

    root = os.path.commonpath([str(Path(data.paths[c]).resolve().parent) for c in used])
    out_dir = out_dir.resolve()
    work = Path(engine.work_dir) if engine.work_dir else out_dir.with_name(out_dir.name + ".work")
    if work.resolve() == out_dir or out_dir in work.resolve().parents:
        raise SpecError(
            "--work-dir must lie outside the output folder (the output folder is replaced "
            "whole at the end of a run); pass a folder beside it."
        )
    size = engine.shard_size or eng.DEFAULT_SHARD_SIZE
    digests = tuple(m.sha256 for m in models.members)
    eng.prepare_work(work)
    manifest = eng.write_manifest(
        data.cohort, data.paths, root, used, work, shard_size=size,
        data_digest=data.manifest_sha256,
    )  # fmt: skip
    factories = [m.factory_sha256 or "" for m in models.members]
    key = _run_key(spec, [*digests, *factories], manifest.digest)
    parts = eng.parts_folder(work, key, log=log)
    unit = ClassifierUnit(
        str(spec.path.resolve()), root, trusted, digests, str(spec["model.device"])
    )
    log(
        f"engine {engine.name}: {len(used)} cases in {manifest.n_shards} shards of up to "
        f"{size}; parts in {work.name}/"
    )
    batch = spec["model.batch_size"]
    rows = eng.run_shards(
        unit, manifest, parts, engine=engine.name,
        batch_size=batch if isinstance(batch, int) else CPU_BATCH_SIZE,
        device=str(spec["model.device"]), ray_options=engine.ray, log=log,
    )  # fmt: skip
    failures = {
        str(c): str(e)
        for c, e in zip(rows["case_id"], rows["error"], strict=True)
        if not _missing(e)
    }
    good = rows[[str(c) not in failures for c in rows["case_id"]]]
    n = len(good)
    k = len(good["probabilities"].iloc[0]) if n else 0
    fields: dict[str, Any] = {}
    if n:
        fields["probabilities"] = np.array(list(good["probabilities"]), dtype=np.float64)
        if good["mc_probabilities"].iloc[0] is not None:
            mc = np.array(list(good["mc_probabilities"]), dtype=np.float64).reshape(n, -1, k)
            fields["mc_probabilities"] = np.swapaxes(mc, 0, 1)
        for name in ("embeddings", "concentrations"):
            if good[name].iloc[0] is not None:
                fields[name] = np.array(list(good[name]), dtype=np.float64)
    preds = None
    if n:
        preds = Predictions(
            np.asarray([str(c) for c in good["case_id"]], dtype=str),
            class_names=tuple(str(c) for c in spec["task.class_names"]), **fields,
        )  # fmt: skip
    if not engine.keep_parts:
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    record = {"engine": engine.name, "shards": manifest.n_shards, "shard_size": size}
    return preds, failures, record


def _run_key(spec: Spec, digests: Sequence[str], manifest_digest: str) -> str:
    """What decides the predictions: the spec file, the models, the cohort manifest."""
    h = hashlib.sha256()
    h.update(spec.path.read_bytes())
    h.update(json.dumps([list(digests), manifest_digest]).encode())
    return h.hexdigest()
