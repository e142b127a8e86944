"""The model step of a spec run: the model's (or the baseline's) predictions on the cases.

``model.file`` may list several files, all built by ``model.factory``: a deep
ensemble (Lakshminarayanan et al. 2017). :func:`medval.inference.predict` runs
them together: the ensemble's probabilities are the mean of the members'
probabilities (never of logits), and with ``model.mc_samples = T`` every
member's T MC-dropout samples (times the ``model.tta`` augmentations) are
stacked along the sample axis of ``mc_probabilities``, so the uncertainty
analysis sees members x augmentations x T samples. Embeddings come from the
first member.

:func:`load_models` loads every model file (and the baseline's) before the
DICOM folder is scanned, so a bad factory, weights file or format stops the
run in seconds. ``model.factory`` may be a ``.py`` file relative to the spec
(its SHA-256 is recorded as ``factory_sha256``).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from medval._errors import InputError, SpecError
from medval._provenance import file_sha256
from medval.gate import Spec
from medval.run._infer import finish_inference, plan_loader
from medval.run._screen import apply_failures, check_share, file_names, screen_images

__all__ = [
    "Models",
    "Scored",
    "baseline_scores",
    "ensemble_sha256",
    "load_models",
    "model_files",
    "model_predictions",
]


@dataclasses.dataclass(frozen=True)
class Models:
    """The spec's models, loaded before any data is read."""

    members: list[Any]  # medval.io.LoadedModel per model.file (none with model.predictions)
    baseline: Any = None  # the baseline's LoadedModel (None unless baseline.model runs)


@dataclasses.dataclass(frozen=True)
class Scored:
    """The candidate's predictions and what the baseline step reuses."""

    predictions: Any  # medval.Predictions
    provenance: dict[str, Any]
    loader: Any = None  # the DataLoader over the cases (None with model.predictions)
    device: Any = None
    pipeline: Any = None  # the io.Pipeline the images went through
    input_statistics: Any = None  # evaluation.InputStatistics, measured before the model ran
    data: Any = None  # the io.CohortData less the files that cannot be decoded


def load_models(
    spec: Spec, *, trust_pickle: bool, baseline: str | Path | None = None, log: Any
) -> Models:
    """Load ``model.file`` (each ensemble member) and ``baseline.model``.

    ``baseline`` is the ``--baseline`` predictions file, which replaces the
    baseline model.
    """
    from medval import io

    members = []
    files = model_files(spec)
    if files:
        log("loading the model" if len(files) == 1 else f"loading {len(files)} models")
        factory = _factory(spec, "model")
        members = [
            io.load_model(
                path,
                factory=factory,
                trust_pickle=trust_pickle,
                output_key=spec["model.output_key"],
                output_index=spec["model.output_index"],
                label_column=spec["model.label_column"],
            )
            for path in files
        ]
    b = spec.sections["baseline"]
    if not spec.has("baseline") or baseline is not None or b["predictions"] is not None:
        return Models(members)
    if b["model"] is None:
        raise SpecError(
            "[baseline] needs baseline.predictions or baseline.model (or --baseline FILE)."
        )
    if not files:
        raise SpecError(
            "baseline.model needs the images: with model.predictions, give the "
            "baseline's predictions too (baseline.predictions)."
        )
    log("loading the baseline model")
    reference = io.load_model(
        spec.resolve("baseline.model"),
        factory=_factory(spec, "baseline"),
        trust_pickle=trust_pickle,
        output_key=b["output_key"],
        output_index=b["output_index"],
        label_column=b["label_column"],
    )
    return Models(members, reference)


def _factory(spec: Spec, section: str) -> Any:
    """``<section>.factory`` as a :class:`medval.io.Factory` (a .py path is from the spec)."""
    from medval import io

    value = spec.sections[section]["factory"]
    if value is None:
        return None
    return io.Factory(str(value), key=f"{section}.factory", base_dir=spec.path.parent)


def model_predictions(
    spec: Spec,
    data: Any,
    used: Sequence[str],
    *,
    models: Models,
    progress: bool,
    log: Any,
    engine: Any = None,
    out_dir: Path | None = None,
    trusted: bool = False,
) -> Scored:
    """Run the spec's model on the ``used`` cases, or read its precomputed predictions.

    Before the model, every ``used`` image is decoded once: those that fail
    are excluded and the rest run (:func:`screen_images`); ``Scored.data``
    is the cohort without them.
    """
    import numpy as np

    from medval import gate, io
    from medval._types import Predictions

    class_names = list(spec["task.class_names"])
    if spec["model.predictions"] is not None:
        path = spec.resolve("model.predictions")
        log(f"reading the model's predictions from {path.name}")
        pos_name = spec["task.positive_class"] or class_names[1]
        score = gate.read_baseline_scores(path, [str(c) for c in used], what="model predictions")
        columns = [1.0 - score, score] if class_names.index(pos_name) == 1 else [score, 1 - score]
        preds = Predictions(
            np.asarray(used, dtype=str), np.column_stack(columns), class_names=tuple(class_names)
        )
        check_share(spec, data, log=log)
        return Scored(preds, {"model_file": path.name, "model_sha256": file_sha256(path),
                              "model_kind": "precomputed predictions"}, data=data)  # fmt: skip
    from medval.inference import resolve_device

    members = models.members
    pipeline = preprocess_pipeline(spec, log=log)
    if engine is not None:
        return _on_engine(spec, data, used, pipeline, models, engine, out_dir, trusted, log)
    data, used = screen_images(spec, data, used, pipeline, progress=progress, log=log)
    dataset = io.DicomDataset(
        [data.paths[c] for c in used], list(used), pipeline=pipeline, names=file_names(data, used)
    )
    intensities = input_check(spec, dataset, data, log=log)
    device = resolve_device(None if spec["model.device"] == "auto" else spec["model.device"])
    mc, tta = spec["model.mc_samples"], spec["model.tta"]
    run_model = _scorer(spec, members, device)
    plan = plan_loader(spec, dataset, device, run_model, log=log)
    loader = plan.loader
    what = "the model" if len(members) == 1 else f"an ensemble of {len(members)} models"
    augment = "" if tta == "none" else f", test-time augmentation {tta!r}"
    log(f"running {what} on {len(used)} cases ({device}, {mc} MC-dropout samples{augment})")
    preds = run_model(loader, progress=progress, precision=spec["model.precision"],
                  batch_limit=plan.limit)  # fmt: skip
    provenance = _model_provenance(members)
    provenance.update(finish_inference(spec, plan, dataset, run_model, preds, data, log=log))
    if tta != "none":
        provenance["tta"] = tta
    return Scored(preds, provenance, loader, device, pipeline, intensities, data)


def _scorer(spec: Spec, members: Sequence[Any], device: Any) -> Any:
    """``predict`` with the spec's settings; keyword ``options`` override (run/_infer.py)."""
    from medval.inference import predict

    tta = spec["model.tta"]

    def run_model(batches: Any, **options: Any) -> Any:
        return predict(
            members[0].module if len(members) == 1 else [m.module for m in members],
            batches,
            output=spec["model.output"],
            device=device,
            class_names=list(spec["task.class_names"]),
            seed=spec["analysis.seed"],
            embeddings=spec["model.embeddings"],
            tta=None if tta == "none" else tta,
            **{"mc_samples": spec["model.mc_samples"], **options},
        )

    return run_model


def _on_engine(
    spec: Spec, data: Any, used: Sequence[str], pipeline: Any, models: Models, engine: Any,
    out_dir: Path | None, trusted: bool, log: Any,
) -> Scored:  # fmt: skip
    """The model step through ``--engine``: decode and predict shard by shard, then as above.

    The precision is checked against the device first; after the engine the
    loader plan and :func:`finish_inference` run here as in process (the
    precision check re-scores its sample in float32 in this process and
    compares with the engine's outputs).
    """
    from medval import io
    from medval.inference import check_precision, resolve_device
    from medval.run._shards import engine_predictions

    device = resolve_device(None if spec["model.device"] == "auto" else spec["model.device"])
    try:
        check_precision(spec["model.precision"], device)
    except InputError as exc:
        raise SpecError(f"model.precision: {exc}") from exc
    # The scan's exclusions alone over the limit: stop before decoding anything.
    io.check_excluded_fraction(data, max_fraction=spec["data.max_excluded_fraction"])
    preds, failed, record = engine_predictions(
        spec, data, used, engine=engine, models=models, out_dir=Path(out_dir or "."),
        trusted=trusted, log=log,
    )  # fmt: skip
    data, used = apply_failures(spec, data, used, failed, log=log)
    dataset = io.DicomDataset(
        [data.paths[c] for c in used], list(used), pipeline=pipeline, names=file_names(data, used)
    )
    intensities = input_check(spec, dataset, data, log=log)
    run_model = _scorer(spec, models.members, device)
    plan = plan_loader(spec, dataset, device, run_model, log=log)
    provenance = {**_model_provenance(models.members), "engine": record}
    provenance.update(finish_inference(spec, plan, dataset, run_model, preds, data, log=log))
    if spec["model.tta"] != "none":
        provenance["tta"] = spec["model.tta"]
    return Scored(preds, provenance, plan.loader, device, pipeline, intensities, data)


def preprocess_pipeline(spec: Spec, *, log: Any) -> Any:
    """The spec's ``[preprocess]`` as an :class:`medval.io.Pipeline` (a warning logged if any)."""
    from medval import gate, io

    steps = gate.preprocess_steps(spec.sections["preprocess"], source=spec.path.name)
    pipeline = io.Pipeline.from_steps(steps, base_dir=spec.path.parent)
    log("preprocessing: " + " -> ".join(s["op"] for s in pipeline.describe()))
    for warning in pipeline.warnings:
        log(f"WARNING: {warning}")
    return pipeline


def input_check(spec: Spec, dataset: Any, data: Any, *, log: Any) -> Any:
    """Intensities of the preprocessed inputs per split and scanner, checked before the model."""
    from medval import gate, io
    from medval.evaluation import InputStatistics

    rows = io.input_statistics(dataset, data, seed=spec["analysis.seed"])
    expect = gate.check_expect(spec.sections["preprocess"]) or {}
    stats = InputStatistics(tuple(rows), expect.get("mean"), expect.get("std"))
    overall = rows[0]
    log(f"input intensities (sample of {overall['n_sampled']} images): mean "
        f"{overall['mean']:.3g}, sd {overall['sd']:.3g}, 1st-99th percentile "
        f"{overall['p1']:.3g} to {overall['p99']:.3g}")  # fmt: skip
    for line in stats.messages():
        log(f"WARNING: {line}")
    return stats


def model_files(spec: Spec) -> list[Path]:
    """``model.file`` as absolute paths: one, or the ensemble's members in order."""
    files = spec["model.file"]
    if files is None:
        return []
    names = files if isinstance(files, list) else [files]
    return [(spec.path.parent / str(f)).resolve() for f in names]


def ensemble_sha256(member_sha256: Sequence[str]) -> str:
    """An ensemble's digest: SHA-256 of its members' hex digests, one per line, in order."""
    text = "".join(f"{h}\n" for h in member_sha256)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def _model_provenance(models: Sequence[Any]) -> dict[str, Any]:
    """One file: its name, SHA-256 and kind. An ensemble: the lists and one combined digest.

    ``factory_sha256``: the SHA-256 of ``model.factory``'s ``.py`` file (the file form).

    ``model_sha256`` stays one string either way (``medval diff`` compares it); for an
    ensemble it is :func:`ensemble_sha256` of the members' digests (so it changes when a
    member, or their order, changes) and ``ensemble_sha256`` lists them.
    """
    factory = {"factory_sha256": models[0].factory_sha256} if models[0].factory_sha256 else {}
    if len(models) == 1:
        m = models[0]
        return {"model_file": m.path_name, "model_sha256": m.sha256, "model_kind": m.kind,
                **factory}  # fmt: skip
    kinds = sorted({m.kind for m in models})
    return {
        "model_file": [m.path_name for m in models],
        "model_sha256": ensemble_sha256([m.sha256 for m in models]),
        "ensemble_sha256": [m.sha256 for m in models],
        "ensemble_members": len(models),
        "model_kind": ", ".join(kinds),
        **factory,
    }


def baseline_scores(
    spec: Spec,
    override: str | Path | None,
    case_ids: Sequence[str],
    scored: Scored,
    *,
    models: Models,
    log: Any,
    units: tuple[Any, dict[str, Any]] | None = None,
) -> tuple[Any, str, dict[str, Any]]:
    """The baseline's positive-class probability per case, its name, and its provenance.

    ``units`` (the image CohortData and the aggregation rule) when the cases
    are studies, series or patients: a baseline model's image scores are
    aggregated like the candidate's; a baseline predictions file names units.
    """
    import numpy as np

    from medval import gate

    b = spec.sections["baseline"]
    pos = spec["task.positive_class"]
    pos_index = 1 if pos is None else list(spec["task.class_names"]).index(pos)
    if override is not None or b["predictions"] is not None:
        path = Path(override) if override is not None else spec.resolve("baseline.predictions")
        log(f"reading baseline predictions {path.name}")
        return gate.read_baseline_scores(path, list(case_ids)), path.name, {}
    model = models.baseline
    if model is None or scored.loader is None:  # load_models refused these specs
        raise SpecError("[baseline] needs baseline.predictions or baseline.model.")
    from medval.inference import predict

    log(f"running the baseline model {model.path_name}")
    bp = predict(
        model.module,
        scored.loader,
        output=b["output"],
        device=scored.device,
        class_names=list(spec["task.class_names"]),
    )
    if units is not None:
        from medval import io

        bp, _ = io.aggregate_units(bp, units[0], positive_class=pos_index, **units[1])
    scores = bp.probabilities[:, pos_index].astype(np.float64)
    provenance = {"baseline_model_sha256": model.sha256}
    if model.factory_sha256:
        provenance["baseline_factory_sha256"] = model.factory_sha256
    return scores, model.path_name, provenance
