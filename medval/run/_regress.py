"""A regression spec on the user's data: load → cohort → predict → evaluate → judge → write.

The same steps as a classification run (models loaded before the scan, every
image decoded once before the model, the [preprocess] pipeline, the input
statistics), with numeric labels and a regression head
(:func:`medval.inference.predict_regression`) or a predictions CSV
(:func:`medval.io.read_regression_predictions`).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from medval._errors import DataError
from medval._provenance import (
    file_sha256,
)
from medval._result import signing_key
from medval.gate import EvaluationConfig, Spec
from medval.run._infer import finish_inference, plan_loader
from medval.run._integrity import prepare_integrity
from medval.run._log import Log, RunOutcome
from medval.run._model import Models, _model_provenance, input_check, preprocess_pipeline
from medval.run._outdir import OutputFolder
from medval.run._screen import check_share, file_names, screen_images
from medval.run._spec import _pipeline, _read_earlier, _record_reproduction, read_data
from medval.run._write import judge_and_write, run_provenance

__all__ = ["run_regression_into"]


def _predict(
    spec: Spec, data: Any, used: list[str], models: Models, *, progress: bool, log: Log
) -> tuple[Any, dict[str, Any], Any, Any, Any, Any]:
    """(predictions, provenance, data less undecodable images, pipeline, device, intensities)."""
    from medval import io

    unit = spec["task.unit"]
    if spec["model.predictions"] is not None:
        path = spec.resolve("model.predictions")
        log(f"reading the model's predictions from {path.name}")
        preds, unmatched = io.read_regression_predictions(path, used, unit=unit)
        check_share(spec, data, log=log)
        if unmatched:
            log(f"{unmatched} predictions rows name no evaluated case (ignored)")
        prov = {"model_file": path.name, "model_sha256": file_sha256(path),
                "model_kind": "precomputed predictions",
                "predictions_rows_unmatched": unmatched}  # fmt: skip
        return preds, prov, data, None, None, None
    from medval.inference import predict_regression, resolve_device

    pipeline = preprocess_pipeline(spec, log=log)
    data, used = screen_images(spec, data, used, pipeline, progress=progress, log=log)
    dataset = io.DicomDataset(
        [data.paths[c] for c in used], list(used), pipeline=pipeline, names=file_names(data, used)
    )
    intensities = input_check(spec, dataset, data, log=log)
    device = resolve_device(None if spec["model.device"] == "auto" else spec["model.device"])
    mc = spec["model.mc_samples"]

    def run_model(batches: Any, **options: Any) -> Any:
        """predict_regression with the spec's settings; ``options`` override (run/_infer.py)."""
        return predict_regression(
            models.members[0].module, batches, output=spec["model.output"],
            quantile_levels=tuple(spec["model.quantile_levels"] or ()), device=device,
            seed=spec["analysis.seed"], unit=unit, **{"mc_samples": mc, **options},
        )  # fmt: skip

    plan = plan_loader(spec, dataset, device, run_model, log=log)
    log(f"running the model on {len(used)} cases ({device}, {mc} MC-dropout samples)")
    preds = run_model(plan.loader, progress=progress, precision=spec["model.precision"],
                  batch_limit=plan.limit)  # fmt: skip
    provenance = _model_provenance(models.members)
    provenance.update(finish_inference(spec, plan, dataset, run_model, preds, data, log=log))
    return preds, provenance, data, pipeline, device, intensities


def _predictions_csv(out: Path, preds: Any, cohort: Any) -> None:
    """One row per evaluated case: case_id, split, label, prediction, sigma."""
    sigma = preds.sigma()
    splits = cohort["split"].reindex(list(preds.case_ids))
    with (out / "predictions.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["case_id", "split", "label", "prediction", "sigma"])
        for i, cid in enumerate(preds.case_ids):
            w.writerow([
                cid, splits.iloc[i], repr(float(preds.labels[i])), repr(float(preds.values[i])),
                "" if sigma is None else repr(float(sigma[i])),
            ])  # fmt: skip


def run_regression_into(
    folder: OutputFolder,
    spec: Spec,
    *,
    models: Models,
    progress: bool,
    quiet: bool,
    argv: Sequence[str] | None,
    reproduce: str | Path | None,
    tolerance: float | None,
    checklist: str,
    junit_xml: str | Path | None,
) -> RunOutcome:
    """:func:`medval.run.run_spec` for ``task.type = "regression"`` (models already loaded)."""
    import numpy as np

    from medval import gate
    from medval.evaluation import evaluate

    earlier = None if reproduce is None else _read_earlier(reproduce, tolerance)
    log = Log(quiet)
    data = read_data(spec, salt=os.environ.get(spec["data.salt_env"]), progress=progress, log=log)
    cohort = data.cohort
    used = [str(c) for c in cohort.index[cohort["split"] != "train"]]
    if not used:
        raise DataError("every labelled case is in split 'train'; nothing to evaluate.")
    gate.check_spec_against_cohort(spec, cohort.loc[used])
    guard = prepare_integrity(spec, data, log=log, signing_key=signing_key())
    preds, provenance, data, pipeline, device, intensities = _predict(
        spec, data, used, models, progress=progress, log=log
    )
    cohort = data.cohort
    preds = preds.with_labels(
        np.asarray(cohort["label"].reindex(list(preds.case_ids)), dtype=np.float64)
    )
    log("computing metrics and confidence intervals")
    result = evaluate(
        preds, data, config=EvaluationConfig.from_sections(spec.sections),
        input_statistics=intensities, progress=progress,
    )  # fmt: skip
    result.values["task.name"] = spec["task.name"]
    result.values["task.range"] = spec["task.range"]
    result.provenance.update(
        {
            **provenance,
            "preprocess": {
                **_pipeline(pipeline),
                "model output": spec["model.output"],
                "MC-dropout samples": spec["model.mc_samples"],
            },
            **run_provenance(spec, argv, device),
        }
    )

    def reproduction() -> None:
        if earlier is not None:
            _record_reproduction(result, earlier, tolerance, log)

    verdicts, outputs = judge_and_write(
        folder, spec, result, log=log, checklist=checklist, junit_xml=junit_xml,
        extra=lambda out: _predictions_csv(out, preds, cohort), judged=reproduction,
        integrity=guard,
    )  # fmt: skip
    return RunOutcome(
        result, folder.given, folder.final(outputs.report), folder.final(outputs.result_json),
        verdicts, preds, cohort,
    )  # fmt: skip
