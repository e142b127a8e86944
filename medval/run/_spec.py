"""A spec on the user's data: read spec → load models → load cohort → predict → evaluate → write.

Holds no statistics: :func:`medval.evaluate` computes everything, the same
function the Python API calls.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from medval._errors import DataError, SpecError
from medval._provenance import (
    file_sha256,
)
from medval._result import ValidationResult, signing_key
from medval._text import short_repr
from medval.gate import EvaluationConfig, Spec, read_spec
from medval.run._integrity import prepare_integrity, with_reference_split
from medval.run._log import Log, RunOutcome
from medval.run._model import baseline_scores, load_models, model_files, model_predictions
from medval.run._outdir import OutputFolder, check_inputs_outside, spec_inputs
from medval.run._write import judge_and_write, run_provenance

__all__ = ["read_data", "run_into", "run_spec"]


def run_spec(
    spec: Spec | str | Path,
    *,
    out_dir: str | Path | None = None,
    trust_code: bool = False,
    trust_pickle: bool = False,
    progress: bool = False,
    quiet: bool = False,
    argv: Sequence[str] | None = None,
    baseline: str | Path | None = None,
    reproduce: str | Path | None = None,
    tolerance: float | None = None,
    checklist: str = "claim-2024",
    junit_xml: str | Path | None = None,
    engine: Any = None,
) -> RunOutcome:
    """Run a validation spec: load the models, read the cohort, predict, evaluate, judge, write.

    Parameters
    ----------
    spec : Spec or path to ``medval.toml``
    out_dir : path, optional
        Default: the spec's ``output.dir`` relative to the spec file. Written
        whole or not at all (:class:`OutputFolder`): the outputs go to a
        staging folder beside it that replaces the folder only once the run is
        complete, with ``manifest.json`` listing every file's SHA-256. It
        must be new, empty or an earlier run, and hold none of the spec's
        inputs (checked before any work).
    trust_code : bool, default False
        The user's word (CLI ``--trust-code``) that the spec's code may run: a
        model file that is a full pickle or TorchScript (both run code from
        the file), and factories or transforms outside the spec's folder
        (:func:`medval.gate.check_trust`). A spec cannot set it.
    trust_pickle : bool, default False
        The former name of ``trust_code``.
    progress, quiet : bool
        Progress bars; silence step messages.
    argv : sequence of str, optional
        The command line to record (paths reduced to their last part).
    baseline : path, optional
        Baseline predictions CSV (overrides ``baseline.predictions``; the
        margin comes from the spec's ``[baseline]``).
    reproduce : path, optional
        An earlier run's ``result.json``: the new result is compared with it
        (:func:`medval.diff.diff_results`) and the report states whether it
        reproduces that run within ``tolerance``.
    tolerance : float, optional
        For ``reproduce``; default :data:`medval.diff.DEFAULT_TOLERANCE`.
    checklist : str, default "claim-2024"
        The report's checklist (``"tripod-ai-2024"`` for TRIPOD+AI).
    junit_xml : path, optional
        Also write the verdicts as JUnit XML: inside the output folder as one
        of its files, elsewhere atomically after the folder is in place.
    engine : medval.run.EngineRun, optional
        Run the model shard by shard on an engine (``"local"``: this process;
        ``"ray"``: Ray Data), resuming from the shards a killed run committed
        (classifier specs). None: the in-process DataLoader.

    Raises
    ------
    SpecError
        A bad spec or option; an output folder that is a file, not writable,
        or a folder holding something else than a run; an input inside it.
    DataError
        Unusable data, or outputs that could not be written (a full disk):
        the previous run in the output folder is then left as it was.

    Notes
    -----
    With :data:`medval.SIGNING_KEY_ENV` (``MEDVAL_SIGNING_KEY``) set,
    ``result.json`` carries an HMAC of its content (the key is not written);
    ``medval gate`` with the key set accepts only such a result.
    """
    if not isinstance(spec, Spec):
        spec = read_spec(spec)
    key = "--out" if out_dir is not None else "output.dir"
    out = Path(spec.resolve("output.dir") if out_dir is None else out_dir)
    check_inputs_outside(spec_inputs(spec, baseline=baseline), out, out_key=key)
    folder = OutputFolder(out, key=key)
    with folder:
        return run_into(
            folder, spec, trusted=trust_code or trust_pickle, progress=progress, quiet=quiet,
            argv=argv, baseline=baseline, reproduce=reproduce, tolerance=tolerance,
            checklist=checklist, junit_xml=junit_xml, engine=engine,
        )  # fmt: skip


def run_into(
    folder: OutputFolder,
    spec: Spec,
    *,
    trusted: bool,
    progress: bool,
    quiet: bool,
    argv: Sequence[str] | None,
    baseline: str | Path | None,
    reproduce: str | Path | None,
    tolerance: float | None,
    checklist: str,
    junit_xml: str | Path | None,
    engine: Any = None,
) -> RunOutcome:
    """:func:`run_spec` into an entered :class:`OutputFolder`, committed at the end."""
    import numpy as np

    from medval import gate
    from medval.evaluation import evaluate

    if engine is not None and (spec["task.type"] != "classification" or _precomputed(spec)):
        raise SpecError(
            "--engine runs a classifier's model shard by shard; it is not built for "
            f"{spec['task.type']} specs or for model.predictions yet. Run without --engine."
        )
    if spec["task.type"] == "segmentation":
        from medval.run._segment import run_segmentation_into

        if baseline is not None or reproduce is not None:
            raise SpecError("--baseline and --reproduce are not built for segmentation specs yet.")
        return run_segmentation_into(
            folder, spec, trusted=trusted, progress=progress, quiet=quiet, argv=argv,
            checklist=checklist, junit_xml=junit_xml,
        )  # fmt: skip
    if spec["task.type"] == "regression":
        from medval.run._regress import run_regression_into

        if baseline is not None:
            raise SpecError("--baseline is not built for regression specs yet.")
        gate.check_trust(spec.sections, spec.path.parent, trusted=trusted)
        models = load_models(spec, trust_pickle=trusted, log=Log(quiet))
        return run_regression_into(
            folder, spec, models=models, progress=progress, quiet=quiet, argv=argv,
            reproduce=reproduce, tolerance=tolerance, checklist=checklist, junit_xml=junit_xml,
        )  # fmt: skip
    earlier = None if reproduce is None else _read_earlier(reproduce, tolerance)
    if baseline is not None and not spec.has("baseline"):
        raise SpecError(
            "--baseline needs a [baseline] section in the spec with a pre-declared margin."
        )
    # Before anything loads: the spec may name only its own folder's code unless trusted.
    gate.check_trust(spec.sections, spec.path.parent, trusted=trusted)
    log = Log(quiet)
    class_names = list(spec["task.class_names"])
    # The models and predictions files load first: a bad factory, weights file, format
    # or CSV fails in seconds, not after the DICOM scan.
    models = load_models(spec, trust_pickle=trusted, baseline=baseline, log=log)
    predicted = _read_prediction_files(spec, baseline)
    data = read_data(
        spec, salt=os.environ.get(spec["data.salt_env"]), progress=progress, log=log,
        pool=_scan_pool(engine, log),
    )  # fmt: skip
    cohort = data.cohort
    n_unmatched = _unmatched_predictions(predicted, cohort, log)
    used = [str(c) for c in cohort.index[cohort["split"] != "train"]]
    if not used:
        raise DataError("every labelled case is in split 'train'; nothing to evaluate.")
    # Every split and column the spec names, checked before a pixel is read.
    gate.check_spec_against_cohort(spec, cohort.loc[used])
    guard = prepare_integrity(spec, data, log=log, signing_key=signing_key())
    scored = model_predictions(
        spec, data, used, models=models, progress=progress, log=log, engine=engine,
        out_dir=folder.target, trusted=trusted,
    )  # fmt: skip
    data = scored.data  # less the images that cannot be decoded (excluded, with reasons)
    cohort = data.cohort
    preds = scored.predictions.with_labels(
        np.asarray(cohort["label"].reindex(list(scored.predictions.case_ids)), dtype=np.int64)
    )
    provenance = dict(scored.provenance)
    pos = spec["task.positive_class"]
    pos_index = 1 if pos is None else class_names.index(pos)
    images = data
    preds, data = _to_units(spec, preds, data, pos_index, log)
    cohort = data.cohort
    reference, reference_name = None, "baseline"
    if spec.has("baseline"):
        reference, reference_name, extra = baseline_scores(
            spec, baseline, [str(c) for c in preds.case_ids], scored, models=models, log=log,
            units=None if images is data else (images, _unit_rule(spec)),
        )  # fmt: skip
        provenance.update(extra)
        log(f"comparing with the baseline (margin {spec['baseline.margin']})")
    log("computing metrics and confidence intervals")
    result = evaluate(
        preds, data, config=with_reference_split(
            spec, EvaluationConfig.from_sections(spec.sections),
            [str(x) for x in dict.fromkeys(cohort["split"])],
        ),
        positive_class=pos_index, reference=reference, reference_name=reference_name,
        input_statistics=scored.input_statistics, progress=progress,
    )  # fmt: skip
    if n_unmatched is not None:  # model.predictions: its rows naming no case of the cohort
        result.provenance["predictions_rows_unmatched"] = n_unmatched
    if "leakage.pixel_duplicate_groups" in result.values:
        log("hashed pixel data for duplicates")
    result.provenance.update(
        {
            **provenance,
            "preprocess": {
                **_pipeline(scored.pipeline),
                "model output": spec["model.output"],
                "MC-dropout samples": spec["model.mc_samples"],
                **_model_settings(spec),
            },
            **run_provenance(spec, argv, scored.device),
        }
    )
    ids = [str(c) for c in preds.case_ids]

    def reproduction() -> None:
        if earlier is not None:
            _record_reproduction(result, earlier, tolerance, log)

    def predictions_csv(out: Path) -> None:
        if len(class_names) == 2:  # the baseline format: one positive-class probability
            gate.write_predictions_csv(
                out / "predictions.csv",
                ids,
                [str(x) for x in cohort["split"].reindex(list(preds.case_ids))],
                [] if preds.labels is None else [int(x) for x in preds.labels],
                [float(x) for x in preds.probabilities[:, pos_index]],
            )

    verdicts, outputs = judge_and_write(
        folder, spec, result, log=log, checklist=checklist, junit_xml=junit_xml,
        extra=predictions_csv, judged=reproduction, integrity=guard,
    )  # fmt: skip
    return RunOutcome(
        result, folder.given, folder.final(outputs.report), folder.final(outputs.result_json),
        verdicts, preds, cohort,
    )  # fmt: skip


def _scan_pool(engine: Any, log: Log) -> Any:
    """``--engine ray``: the header scan runs on the cluster too (None otherwise)."""
    if engine is None or engine.name != "ray":
        return None
    from medval.engine import RayPool

    return RayPool(engine.ray, log=log)


def _precomputed(spec: Spec) -> bool:
    return spec["model.predictions"] is not None


def _read_prediction_files(spec: Spec, baseline: str | Path | None) -> dict[str, float] | None:
    """Check every predictions CSV before the scan; the model's rows (None without one)."""
    from medval import gate

    if baseline is not None:
        gate.read_prediction_scores(baseline, what="--baseline")
    elif spec.has("baseline") and spec["baseline.predictions"] is not None:
        gate.read_prediction_scores(
            spec.resolve("baseline.predictions"), what="baseline.predictions"
        )
    if spec["model.predictions"] is None:
        return None
    return gate.read_prediction_scores(spec.resolve("model.predictions"), what="model.predictions")


def _unmatched_predictions(predicted: dict[str, float] | None, cohort: Any, log: Log) -> int | None:
    """Rows of ``model.predictions`` naming no case of the cohort: counted and logged."""
    if predicted is None:
        return None
    known = set(cohort.index.astype(str))
    unmatched = [c for c in predicted if c not in known]
    if unmatched:
        shown = ", ".join(short_repr(c) for c in unmatched[:3])
        log(
            f"warning: {len(unmatched)} of the {len(predicted)} rows of model.predictions "
            f"name no case of the cohort (e.g. {shown}); they are not analysed"
        )
    return len(unmatched)


def _unit_rule(spec: Spec) -> dict[str, Any]:
    return {"rule": spec["data.aggregate"], "top_k": spec["data.top_k"]}


def _to_units(spec: Spec, preds: Any, data: Any, pos_index: int, log: Log) -> tuple[Any, Any]:
    """Image predictions -> one per labelled series, study or patient (as given otherwise)."""
    import dataclasses

    from medval import io

    if getattr(data, "unit", "image") == "image":
        return preds, data
    # Images in split 'train' were not run: their units are not evaluated either.
    data = dataclasses.replace(data, cohort=data.cohort.loc[list(preds.case_ids)])
    preds, data = io.aggregate_units(preds, data, positive_class=pos_index, **_unit_rule(spec))
    log(
        f"{data.n_images} image predictions aggregated to {len(data.cohort)} "
        f"{data.unit}s ({data.aggregation})"
    )
    return preds, data


def _pipeline(pipeline: Any) -> dict[str, Any]:
    """The resolved preprocessing (every step, every parameter) and its warnings."""
    if pipeline is None:  # precomputed predictions: no image was read
        return {}
    return {"pipeline": pipeline.describe(), "warnings": pipeline.warnings}


def _model_settings(spec: Spec) -> dict[str, Any]:
    """The model step's settings for the report (none with precomputed predictions)."""
    if spec["model.file"] is None:
        return {}
    return {
        "test-time augmentation": spec["model.tta"],
        "ensemble members": len(model_files(spec)),
    }


def _read_earlier(path: str | Path, tolerance: float | None) -> tuple[ValidationResult, str]:
    """The run to reproduce, read (and the tolerance checked) before any heavy work."""
    from medval.diff import DEFAULT_TOLERANCE

    t = DEFAULT_TOLERANCE if tolerance is None else tolerance
    if not (isinstance(t, (int, float)) and t >= 0 and t == t and t != float("inf")):
        raise SpecError(f"--tolerance must be a finite number >= 0; got {tolerance!r}.")
    p = Path(path)
    if p.is_dir():
        p = p / "result.json"
    result = ValidationResult.read_json(p)
    return result, file_sha256(p)


def _record_reproduction(
    result: ValidationResult,
    earlier: tuple[ValidationResult, str],
    tolerance: float | None,
    log: Log,
) -> None:
    from medval.diff import DEFAULT_TOLERANCE, diff_results

    t = DEFAULT_TOLERANCE if tolerance is None else float(tolerance)
    d = diff_results(earlier[0], result, tolerance=t)
    largest = "none" if d.largest is None else f"{d.largest[0]:.3g} ({d.largest[1]})"
    result.provenance["reproduces"] = {
        "result_sha256": earlier[1],
        "tolerance": t,
        "agree": d.agree,
        "compared": sum(d.compared.values()),
        "n_differences": len(d.differences),
        "largest": largest,
    }
    word = "reproduces" if d.agree else "does NOT reproduce"
    log(f"{word} run {earlier[1][:16]} within {t:g} ({len(d.differences)} differences)")


def read_data(
    spec: Spec, *, salt: str | None, progress: bool, log: Any = None, pool: Any = None
) -> Any:
    """The spec's cohort: DICOM folder + labels CSV, or a metadata table.

    ``pool`` runs the header scan's chunks (``--engine ray``: a
    :class:`medval.engine.RayPool`).
    """
    from medval import io

    regression = spec["task.type"] == "regression"
    class_names = None if regression else list(spec["task.class_names"])
    bounds = spec["task.range"]
    value_range = None if bounds is None else (float(bounds[0]), float(bounds[1]))
    if spec["data.table"] is not None:
        path = spec.resolve("data.table")
        if log is not None:
            log(f"reading the metadata table {path.name}")
        data = io.read_cohort_table(
            path, class_names=class_names, value_range=value_range, salt=salt
        )
    else:
        if log is not None:
            workers = spec["data.workers"]
            where = " (on Ray)" if pool is not None else ""
            log(
                "reading DICOM headers and labels"
                + (f" ({workers} processes)" if workers > 1 and pool is None else where)
            )
        data = io.load_cohort(
            spec.resolve("data.dicom_dir"),
            spec.resolve("data.labels"),
            class_names=class_names,
            value_range=value_range,
            salt=salt,
            progress=progress,
            workers=spec["data.workers"],
            key=spec["data.labels_key"],
            case_id_from=spec["data.case_id_from"],
            max_pixel_bytes=spec["data.max_pixel_bytes"],
            pool=pool,
        )
    if log is not None:
        what = "cases" if data.unit == "image" else f"images of labelled {data.unit}s"
        log(
            f"{len(data.cohort)} {what} included, {len(data.exclusions)} files excluded "
            f"(labels keyed by {data.label_key})"
        )
        if data.unmatched_labels:
            rows = ", ".join(str(u.line) for u in data.unmatched_labels[:10])
            log(
                f"warning: {len(data.unmatched_labels)} labels row(s) matched no image "
                f"(rows {rows}{' ...' if len(data.unmatched_labels) > 10 else ''})"
            )
    if spec.has("splits") or not io.has_splits(data.cohort):
        sp = spec.sections.get("splits") or {}
        pos = spec["task.positive_class"]
        data = io.assign_splits(
            data,
            calibration_fraction=sp.get("calibration_fraction", io.DEFAULT_CALIBRATION_FRACTION),
            seed=spec["analysis.seed"] if sp.get("seed") is None else sp["seed"],
            external=sp.get("external"),
            positive_class=None
            if class_names is None
            else 1
            if pos is None
            else class_names.index(pos),
        )
        if log is not None:
            log(f"splits assigned by medval ({data.split_rule})")
    return data
