"""A segmentation spec: scan → one case at a time (volume, mask, model, score) → evaluate → write.

Cases stream: each series is read, run and scored into a few small arrays
(:func:`medval.segmentation.score_case`) before the next is read, so a cohort
never sits in memory. A case that cannot be used (a broken series, a mask on
another grid, no mask) is excluded with its reason and the run goes on.
"""

from __future__ import annotations

import csv
import io as _stdio
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from medval._errors import DataError, InputError, SpecError
from medval._result import signing_key
from medval.gate import EvaluationConfig, Spec
from medval.run._integrity import prepare_integrity
from medval.run._log import Log, RunOutcome
from medval.run._model import load_models
from medval.run._outdir import OutputFolder
from medval.run._write import judge_and_write, run_provenance

__all__ = ["SEGMENT_STEPS", "run_segmentation_into", "scoring_options"]

#: [preprocess] steps a segmentation spec may use: intensity only, slice by slice (a step
#: that moves pixels would take the image off its mask's grid).
SEGMENT_STEPS = ("window", "clip_percentile", "normalize", "dtype")


def scoring_options(spec: Spec) -> Any:
    """The spec's ``[task]`` and ``[segmentation]`` as :class:`segmentation.ScoringOptions`."""
    from medval.segmentation import ScoringOptions

    cfg = EvaluationConfig.from_sections(spec.sections)
    return ScoringOptions(
        structures=dict(spec["task.structures"]),
        multilabel=spec["task.multilabel"],
        threshold=cfg.mask_threshold,
        nsd_tolerance_mm=cfg.nsd_tolerance_mm,
        distance_cap_mm=cfg.distance_cap_mm,
        lesion_connectivity=cfg.lesion_connectivity,
        lesion_min_size_mm3=cfg.lesion_min_size_mm3,
        lesion_match=cfg.lesion_match,
        lesion_match_threshold=cfg.lesion_match_threshold,
        margin_max_steps=cfg.margin_max_steps,
        calibration_margin_mm=cfg.calibration_margin_mm,
        border_mm=cfg.border_mm,
    )


def _pipeline(spec: Spec) -> Any:
    """The declared intensity steps as an io.Pipeline (None: the volume as read)."""
    from medval import gate, io

    steps = gate.preprocess_steps(spec.sections["preprocess"], source=spec.path.name)
    for i, step in enumerate(steps):
        if step["op"] not in SEGMENT_STEPS:
            raise SpecError(
                f"{spec.path.name}: preprocess.steps[{i}].op {step['op']!r} is not available "
                f"for segmentation (allowed: {list(SEGMENT_STEPS)}): it would move pixels off "
                "the mask's grid. Resize or crop inside the model instead."
            )
    if not steps:
        return None
    return io.Pipeline.from_steps(steps, base_dir=spec.path.parent)


def _preprocess(pipeline: Any, volume: Any) -> Any:
    import numpy as np

    from medval import io

    if pipeline is None:
        return volume.array.astype(np.float32)
    slices = [pipeline.apply(io.Frame(pixels=z.astype(np.float64)))[0] for z in volume.array]
    return np.stack(slices).astype(np.float32)


def _probabilities(spec: Spec, models: Any, x: Any, case: str, device: Any) -> tuple[Any, Any]:
    """The deployed model's probabilities (C, ...) and, with MC samples, the voxel maps."""
    from medval import inference

    out = inference.segment(
        models.members[0].module, x, mode=spec["model.mode"],
        output="softmax" if spec["model.output"] == "logits" else spec["model.output"],
        patch_size=spec["model.patch_size"], overlap=spec["model.overlap"],
        batch_size=spec["model.batch_size"], mc_samples=spec["model.mc_samples"],
        seed=spec["analysis.seed"], case_id=case, device=device,
    )  # fmt: skip
    maps = None
    if out.entropy is not None:
        maps = {"entropy": out.entropy, "epistemic": out.epistemic, "aleatoric": out.aleatoric}
    return out.probabilities, maps


def _precomputed(folder: Path, case: str, shape: tuple[int, ...], structures: Any) -> Any:
    """A stored probability map, values in [0, 1]: (C, z, y, x) with channel = structure
    value, or (z, y, x) the foreground probability of the spec's one structure."""
    import numpy as np

    path = folder / f"{case}.npy"
    if not path.is_file():
        raise DataError(f"no probability map {case}.npy in model.predictions")
    try:
        p = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise DataError(
            f"probability map {case}.npy cannot be read ({type(exc).__name__})"
        ) from None
    p = np.asarray(p, dtype=np.float32)
    if p.shape == shape and len(structures) == 1:
        full = np.zeros((max(structures.values()) + 1, *shape), dtype=np.float32)
        full[0], full[max(structures.values())] = 1.0 - p, p
        p = full
    if p.shape[1:] != shape or not np.isfinite(p).all() or p.min() < 0 or p.max() > 1:
        raise DataError(
            f"probability map {case}.npy has shape {p.shape} or values outside [0, 1]; "
            f"expected probabilities of shape {shape} or (C, {', '.join(map(str, shape))})"
        )
    return p


def run_segmentation_into(
    folder: OutputFolder,
    spec: Spec,
    *,
    trusted: bool,
    progress: bool,
    quiet: bool,
    argv: Sequence[str] | None,
    checklist: str,
    junit_xml: str | Path | None,
) -> RunOutcome:
    """:func:`medval.run.run_spec` for ``task.type = "segmentation"``."""
    from medval import gate, io, segmentation
    from medval.evaluation import evaluate

    gate.check_trust(spec.sections, spec.path.parent, trusted=trusted)
    log = Log(quiet)
    models = load_models(spec, trust_pickle=trusted, log=log)
    pipeline = _pipeline(spec)
    options = scoring_options(spec)
    cases = io.read_cases(spec.resolve("data.cases"))
    root = spec.resolve("data.dicom_dir")
    masks = spec.resolve("data.masks")
    if not masks.is_dir():
        raise DataError(f"data.masks: {masks.name} is not a folder of reference masks.")
    predictions = None if spec["model.predictions"] is None else spec.resolve("model.predictions")
    log("reading DICOM headers")
    scan = io.read_dicom_cohort(
        root, salt=os.environ.get(spec["data.salt_env"]), progress=progress,
        workers=spec["data.workers"], max_pixel_bytes=spec["data.max_pixel_bytes"],
    )  # fmt: skip
    found = io.series_cohort(scan, cases)
    used = [c for c in found.cohort.index if found.cohort.loc[c, "split"] != "train"]
    if not used:
        raise DataError(
            f"none of the {len(cases)} cases of data.cases has a readable series folder "
            "under data.dicom_dir outside split 'train'."
        )
    gate.check_spec_against_cohort(spec, found.cohort.loc[used])
    guard = prepare_integrity(spec, log=log, signing_key=signing_key())
    log(f"{len(used)} cases, {len(found.exclusions)} files or cases excluded at the scan")
    if found.unmatched_cases:
        log(f"warning: {len(found.unmatched_cases)} cases of data.cases have no series folder")
    device = None
    if models.members:
        from medval import inference

        auto = spec["model.device"] == "auto"
        device = inference.resolve_device(None if auto else spec["model.device"])
    records: list[Any] = []
    excluded: list[dict[str, str]] = []
    warnings: dict[str, list[str]] = {}
    for k, case in enumerate(used, start=1):
        try:
            volume = io.read_series([found.paths[f] for f in found.files[case]], root=root)
            path = io.find_mask(masks, case)
            if path is None:
                raise DataError("no reference mask in data.masks")
            reference = io.read_mask(path, volume=volume, structures=options.structures, root=masks)
            if predictions is None:
                probs, maps = _probabilities(
                    spec, models, _preprocess(pipeline, volume), case, device
                )
            else:
                probs = _precomputed(predictions, case, volume.array.shape, options.structures)
                maps = None
            records.append(segmentation.score_case(
                case, probs, reference, volume.spacing, options=options, maps=maps
            ))  # fmt: skip
            for w in volume.warnings:
                warnings.setdefault(w.split(";")[0], []).append(case)
        except (DataError, InputError) as exc:
            excluded.append({"case_id": case, "reason": str(exc)})
        if not quiet and k % 25 == 0:
            log(f"scored {k} of {len(used)} cases")
    share = len(excluded) / len(used)
    if share > spec["data.max_excluded_fraction"]:
        raise DataError(
            f"{len(excluded)} of {len(used)} cases could not be used (e.g. "
            f"{excluded[0]['case_id']}: {excluded[0]['reason']}); above data.max_excluded_fraction "
            f"= {spec['data.max_excluded_fraction']}."
        )
    table = segmentation.SegmentationCases.from_records(records, options=options)
    cohort = found.cohort.loc[list(table.case_ids)]
    log(f"{table.n_cases} cases scored, {len(excluded)} excluded; computing metrics and intervals")
    cfg = EvaluationConfig.from_sections(spec.sections)
    result = evaluate(table, cohort, config=cfg, progress=progress)
    result.tables["cohort.excluded_cases"] = excluded
    result.tables["cohort.exclusions"] = [
        {"file": e.file, "reason": e.reason} for e in found.exclusions
    ]
    n_train = len(found.cohort) - len(used)
    result.tables["cohort.flow"] = [
        {"step": "files found under data.dicom_dir", "count": int(found.n_files)},
        {"step": "files excluded at the header scan (reasons below)",
         "count": len(scan.exclusions)},
        {"step": "cases listed in data.cases", "count": len(cases)},
        {"step": "cases without a series folder", "count": len(found.unmatched_cases)},
        {"step": "case folders excluded (more than one series)",
         "count": len(found.exclusions) - len(scan.exclusions)},
        {"step": "cases in split 'train' (not evaluated)", "count": n_train},
        {"step": "cases excluded before scoring (series, mask or model; listed)",
         "count": len(excluded)},
        {"step": "cases scored and analysed", "count": table.n_cases},
    ]  # fmt: skip
    result.values["cohort.unit"] = "case (one DICOM series)"
    result.values["cohort.n_files"] = int(found.n_files)
    result.values["cohort.n_cases_listed"] = len(cases)
    result.values["cohort.n_cases_unmatched"] = len(found.unmatched_cases)
    result.tables["cohort.volume_warnings"] = [
        {"warning": w, "n_cases": len(c), "examples": c[:3]} for w, c in sorted(warnings.items())
    ]
    member = models.members[0] if models.members else None
    result.provenance.update(
        {
            "model_file": "none (precomputed probability maps)"
            if member is None
            else member.path_name,
            "model_sha256": None if member is None else member.sha256,
            "model_kind": "precomputed" if member is None else member.kind,
            "data_manifest_sha256": found.manifest_sha256,
            "preprocess": {
                "pipeline": [] if pipeline is None else pipeline.describe(),
                "model output": spec["model.output"],
                "mode": spec["model.mode"],
                "patch_size": spec["model.patch_size"],
                "overlap": spec["model.overlap"],
                "MC-dropout samples": spec["model.mc_samples"],
            },
            **run_provenance(spec, argv, device),
        }
    )
    verdicts, outputs = judge_and_write(
        folder, spec, result, log=log, checklist=checklist, junit_xml=junit_xml,
        extra=lambda out: (out / "segmentation_cases.csv").write_text(
            _cases_csv(result.tables["segmentation.cases"]), encoding="utf-8"
        ),
        integrity=guard,
    )  # fmt: skip
    return RunOutcome(
        result, folder.given, folder.final(outputs.report), folder.final(outputs.result_json),
        verdicts, None, cohort,
    )  # fmt: skip


def _cases_csv(rows: list[dict[str, Any]]) -> str:
    buf = _stdio.StringIO()
    if rows:
        w = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    return buf.getvalue()
