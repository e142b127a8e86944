"""End-to-end jobs: a spec on the user's data, and the embedded demo.

Orchestrates io → inference → evaluate → report; holds no statistics.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from medval._provenance import (
    command_line,
    environment_fingerprint,
    file_sha256,
    git_commit,
    package_versions,
    platform_summary,
)
from medval._result import ValidationResult
from medval.gate import Spec, Verdict, read_spec

__all__ = ["RunOutcome", "run_demo", "run_spec", "summary_table"]


@dataclasses.dataclass(frozen=True)
class RunOutcome:
    """What a run produced."""

    result: ValidationResult
    out_dir: Path
    report: Path
    result_json: Path
    verdicts: tuple[Verdict, ...] = ()
    predictions: Any = None  # Predictions of the evaluated cases
    cohort: Any = None  # the Cohort (pandas DataFrame)


class _Log:
    """Step messages to stderr and to ``run.log`` (no PHI is ever passed here)."""

    def __init__(self, quiet: bool) -> None:
        self.lines: list[str] = []
        self.quiet = quiet

    def __call__(self, message: str) -> None:
        self.lines.append(message)
        if not self.quiet:
            print(f"medval: {message}", file=sys.stderr, flush=True)


def _cohort_tables(result: ValidationResult, data: Any, used: Sequence[str]) -> None:
    cohort = data.cohort
    excl = [{"file": e.file, "reason": e.reason} for e in data.exclusions]
    reasons: dict[str, int] = {}
    for e in data.exclusions:
        head = e.reason.split(":")[0]
        reasons[head] = reasons.get(head, 0) + 1
    result.values["cohort.n_files"] = int(data.n_files)
    result.values["cohort.n_included"] = len(cohort)
    result.values["cohort.n_excluded"] = len(excl)
    result.tables["cohort.exclusions"] = excl
    result.tables["cohort.exclusion_reasons"] = [
        {"reason": k, "count": v} for k, v in sorted(reasons.items())
    ]
    flow = [
        {"step": "files found in the data folder", "count": int(data.n_files)},
        {"step": "files excluded (unreadable, unlabelled, ...)", "count": len(excl)},
        {"step": "cases included", "count": len(cohort)},
    ]
    for split, n in cohort["split"].value_counts().sort_index().items():
        role = "evaluated" if split in used else "not evaluated"
        flow.append({"step": f"  split '{split}' ({role})", "count": int(n)})
    result.tables["cohort.flow"] = flow
    cols = [c for c in ("manufacturer", "model_name") if c in cohort.columns]
    if cols:
        frame = cohort.assign(**{c: cohort[c].fillna("unknown") for c in cols})
        groups = frame.groupby(["split", *cols], sort=True)
        names = list(result.values.get("task.class_names") or ())
        positive = result.values.get("task.positive_class")
        pos = names.index(positive) if positive in names else 1
        rows: list[dict[str, Any]] = []
        for key, g in groups:
            row = {
                "split": key[0],
                "manufacturer": key[1],
                "model_name": key[2] if len(key) > 2 else "",
                "n_cases": len(g),
                "n_positive": int((g["label"] == pos).sum()),
            }
            if "patient_key" in g.columns:  # optional in a metadata table
                row["n_patients"] = int(g["patient_key"].nunique())
            rows.append(row)
        result.tables["cohort.by_split_site"] = rows
    result.provenance["data_manifest_sha256"] = data.manifest_sha256


def run_spec(
    spec: Spec | str | Path,
    *,
    out_dir: str | Path | None = None,
    trust_pickle: bool = False,
    progress: bool = False,
    quiet: bool = False,
    argv: Sequence[str] | None = None,
    baseline: str | Path | None = None,
    reproduce: str | Path | None = None,
    tolerance: float | None = None,
) -> RunOutcome:
    """Run a validation spec: read the cohort, predict, evaluate, judge, write outputs.

    Parameters
    ----------
    spec : Spec or path to ``medval.toml``
    out_dir : path, optional
        Default: the spec's ``output.dir`` relative to the spec file.
    trust_pickle : bool, default False
        Load a model file that is a full pickle (it can execute code).
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
    """
    import numpy as np
    from torch.utils.data import DataLoader

    from medval import gate, io
    from medval._evaluate import evaluate
    from medval._types import Predictions
    from medval.inference import predict, resolve_device
    from medval.report import write_outputs

    if not isinstance(spec, Spec):
        spec = read_spec(spec)
    earlier = None if reproduce is None else _read_earlier(reproduce, tolerance)
    if baseline is not None and not spec.has("baseline"):
        from medval._errors import SpecError

        raise SpecError(
            "--baseline needs a [baseline] section in the spec with a pre-declared margin."
        )
    log = _Log(quiet)
    out = Path(out_dir) if out_dir is not None else spec.resolve("output.dir")
    class_names = list(spec["task.class_names"])
    salt = os.environ.get(spec["data.salt_env"])

    data = read_data(spec, salt=salt, progress=progress, log=log)
    cohort = data.cohort
    used = cohort.index[cohort["split"] != "train"]
    if len(used) == 0:
        from medval._errors import DataError

        raise DataError("every labelled case is in split 'train'; nothing to evaluate.")
    # Every split and column the spec names, checked before the model loads or a pixel is read.
    gate.check_spec_against_cohort(spec, cohort.loc[used])
    loader: Any = None
    device: Any = None
    model: Any = None
    if spec["model.predictions"] is not None:
        path = spec.resolve("model.predictions")
        log(f"reading the model's predictions from {path.name}")
        pos_name = spec["task.positive_class"] or class_names[1]
        score = gate.read_baseline_scores(path, [str(c) for c in used], what="model predictions")
        columns = [1.0 - score, score] if class_names.index(pos_name) == 1 else [score, 1 - score]
        preds = Predictions(
            np.asarray(used, dtype=str), np.column_stack(columns), class_names=tuple(class_names)
        )
        model_provenance = {"model_file": path.name, "model_sha256": file_sha256(path),
                            "model_kind": "precomputed predictions"}  # fmt: skip
    else:
        model = io.load_model(
            spec.resolve("model.file"),
            factory=spec["model.factory"],
            trust_pickle=trust_pickle or bool(spec["model.trust_pickle"]),
        )
        window = spec["preprocess.window"]
        size = spec["preprocess.size"]
        dataset = io.DicomDataset(
            [data.paths[c] for c in used],
            list(used),
            window=None if window is None else (float(window[0]), float(window[1])),
            size=None if size is None else (size if isinstance(size, int) else tuple(size)),
        )
        loader = DataLoader(dataset, batch_size=spec["model.batch_size"], shuffle=False)
        device = resolve_device(None if spec["model.device"] == "auto" else spec["model.device"])
        mc = spec["model.mc_samples"]
        log(f"running the model on {len(used)} cases ({device}, {mc} MC-dropout samples)")
        preds = predict(
            model.module,
            loader,
            output=spec["model.output"],
            device=device,
            class_names=class_names,
            progress=progress,
            mc_samples=spec["model.mc_samples"],
            seed=spec["analysis.seed"],
            embeddings=spec["model.embeddings"],
        )
        model_provenance = {"model_file": model.path_name, "model_sha256": model.sha256,
                            "model_kind": model.kind}  # fmt: skip
    preds = preds.with_labels(
        np.asarray(cohort["label"].reindex(list(preds.case_ids)), dtype=np.int64)
    )
    pos = spec["task.positive_class"]
    seed = spec["analysis.seed"]
    log("computing metrics and confidence intervals")
    result = evaluate(
        preds,
        cohort,
        positive_class=1 if pos is None else class_names.index(pos),
        calibration_split=spec["analysis.calibration_split"],
        test_splits=spec["analysis.test_splits"],
        threshold=spec["analysis.threshold"],
        threshold_rule=spec["analysis.threshold_rule"],
        threshold_target=spec["analysis.threshold_target"],
        confidence_level=spec["analysis.confidence_level"],
        n_resamples=spec["analysis.n_resamples"],
        random_state=seed,
        conformal_method=spec["conformal.method"] if spec["conformal.enabled"] else None,
        conformal_level=spec["conformal.confidence_level"],
        conformal_mondrian=spec["conformal.mondrian"],
        triage_max_fnr=spec["conformal.triage_max_fnr"],
        conformal_temperature=spec["conformal.temperature"],
        group_columns=[str(c) for c in spec["conformal.group_columns"]],
        shift=spec["shift.enabled"],
        subgroup_columns=[str(c) for c in spec["shift.subgroup_columns"]],
        subgroup_intersections=[[str(c) for c in pair] for pair in spec["shift.intersections"]],
        subgroup_min_events=spec["shift.min_events"],
        subgroup_min_non_events=spec["shift.min_non_events"],
        small_cell=spec["shift.small_cell"],
        subgroup_adjust=spec["shift.adjust"],
        drift_confidence_level=spec["shift.drift_confidence_level"],
        drift_reference=spec["shift.reference_split"],
        progress=progress,
    )
    _cohort_tables(result, data, result.values["evaluation.splits"])
    result.tables["cohort.deidentification"] = [
        {"attribute": attribute, **counts} for attribute, counts in data.deid_summary.items()
    ]
    if spec["shift.enabled"] and spec["shift.pixel_duplicates"] and data.paths:
        _pixel_duplicates(result, data, log)
    if spec.has("baseline"):
        _baseline(spec, baseline, result, preds, cohort, loader, device, log, trust_pickle)
    result.provenance.update(
        {
            **model_provenance,
            "preprocess": {
                "window (center, width)": spec["preprocess.window"],
                "resize to": spec["preprocess.size"],
                "model output": spec["model.output"],
                "MC-dropout samples": spec["model.mc_samples"],
            },
            "spec_sha256": file_sha256(spec.path),
            "git_commit": git_commit(spec.path.parent),
            "versions": package_versions(),
            "platform": platform_summary(),
            "device": "none (precomputed predictions)" if device is None else str(device.type),
            "environment": environment_fingerprint(device),
            "command": command_line(argv),
        }
    )
    verdicts = tuple(gate.judge(result, gate.spec_criteria(spec)))
    gate.record(result, verdicts)
    if earlier is not None:
        _record_reproduction(result, earlier, tolerance, log)
    outputs = write_outputs(result, out)
    pos_index = 1 if pos is None else class_names.index(pos)
    if len(class_names) == 2:  # the baseline format: one positive-class probability
        gate.write_predictions_csv(
            out / "predictions.csv",
            [str(c) for c in preds.case_ids],
            [str(x) for x in cohort["split"].reindex(list(preds.case_ids))],
            [] if preds.labels is None else [int(x) for x in preds.labels],
            [float(x) for x in preds.probabilities[:, pos_index]],
        )
    log(f"wrote {outputs.report} and {outputs.result_json.name}")
    (out / "run.log").write_text("\n".join(log.lines) + "\n", encoding="utf-8")
    return RunOutcome(result, out, outputs.report, outputs.result_json, verdicts, preds, cohort)


def _read_earlier(path: str | Path, tolerance: float | None) -> tuple[ValidationResult, str]:
    """The run to reproduce, read (and the tolerance checked) before any heavy work."""
    from medval._errors import SpecError
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
    log: _Log,
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


def read_data(spec: Spec, *, salt: str | None, progress: bool, log: Any = None) -> Any:
    """The spec's cohort: DICOM folder + labels CSV, or a metadata table."""
    from medval import io

    class_names = list(spec["task.class_names"])
    if spec["data.table"] is not None:
        path = spec.resolve("data.table")
        if log is not None:
            log(f"reading the metadata table {path.name}")
        data = io.read_cohort_table(path, class_names=class_names, salt=salt)
    else:
        if log is not None:
            log("reading DICOM headers and labels")
        data = io.load_cohort(
            spec.resolve("data.dicom_dir"),
            spec.resolve("data.labels"),
            class_names=class_names,
            salt=salt,
            progress=progress,
        )
    if log is not None:
        log(f"{len(data.cohort)} cases included, {len(data.exclusions)} files excluded")
    return data


def _pixel_duplicates(result: ValidationResult, data: Any, log: _Log) -> None:
    """Cases whose pixel data are byte-identical (a copy across splits is a leak)."""
    from medval.shift import pixel_duplicates

    log("hashing pixel data for duplicates")
    groups = pixel_duplicates(data.paths)
    split = data.cohort["split"]
    across = [g for g in groups if len({str(split[c]) for c in g}) > 1]
    result.values["leakage.pixel_duplicate_groups"] = len(groups)
    result.values["leakage.pixel_duplicates_across_splits"] = len(across)
    result.tables["leakage.pixel_duplicates"] = [
        {"cases": list(g), "splits": sorted({str(split[c]) for c in g})} for g in groups[:20]
    ]
    if across:
        result.values["leakage.leak"] = True


def _baseline(
    spec: Spec,
    override: str | Path | None,
    result: ValidationResult,
    preds: Any,
    cohort: Any,
    loader: Any,
    device: Any,
    log: _Log,
    trust_pickle: bool,
) -> None:
    """The baseline's scores on the candidate's cases, and the paired comparison."""
    import numpy as np

    from medval import gate, io
    from medval._errors import SpecError
    from medval.stats import get_metric

    b = spec.sections["baseline"]
    pos = spec["task.positive_class"]
    pos_index = 1 if pos is None else list(spec["task.class_names"]).index(pos)
    ids = [str(c) for c in preds.case_ids]
    if override is not None or b["predictions"] is not None:
        path = Path(override) if override is not None else spec.resolve("baseline.predictions")
        log(f"reading baseline predictions {path.name}")
        base = gate.read_baseline_scores(path, ids)
        name = path.name
    elif b["model"] is not None:
        from medval.inference import predict

        if loader is None:
            raise SpecError(
                "baseline.model needs the images: with model.predictions, give the "
                "baseline's predictions too (baseline.predictions)."
            )
        model = io.load_model(
            spec.resolve("baseline.model"),
            factory=b["factory"],
            trust_pickle=trust_pickle or bool(b["trust_pickle"]),
        )
        log(f"running the baseline model {model.path_name}")
        bp = predict(
            model.module,
            loader,
            output=b["output"],
            device=device,
            class_names=list(spec["task.class_names"]),
        )
        base = bp.probabilities[:, pos_index].astype(np.float64)
        name = model.path_name
        result.provenance["baseline_model_sha256"] = model.sha256
    else:
        raise SpecError(
            "[baseline] needs baseline.predictions or baseline.model (or --baseline FILE)."
        )
    split = b["split"] or result.values["evaluation.primary_split"]
    mask = cohort["split"].reindex(ids).to_numpy() == split
    if not mask.any():
        raise SpecError(f"baseline.split {split!r} has no evaluated cases.")
    y = (np.asarray(preds.labels) == pos_index).astype(np.int64)
    clusters = cohort["patient_key"].reindex(ids).to_numpy() if "patient_key" in cohort else None
    kind = get_metric(b["metric"]).kind
    log(f"comparing with the baseline on split '{split}' (margin {b['margin']})")
    gate.noninferiority_section(
        result,
        y[mask],
        preds.probabilities[mask, pos_index].astype(np.float64),
        base[mask],
        margin=b["margin"],
        metric=b["metric"],
        clusters=None if clusters is None else clusters[mask],
        # Label metrics compare at the chosen operating point; score metrics take none.
        threshold=result.values["operating_point.threshold"] if kind == "label" else None,
        confidence_level=spec["analysis.confidence_level"],
        n_resamples=spec["analysis.n_resamples"],
        random_state=spec["analysis.seed"],
        baseline_name=name,
        split=split,
    )


_DEMO_SPEC = """\
# medval validation spec written by `medval demo`. Copy it and point it at your data.
# Paths are relative to this file. Run:  medval validate {name}

[task]
class_names = ["no lesion", "lesion"]
positive_class = "lesion"

[data]
dicom_dir = "cohort/dicom"        # every file below is read (headers first)
labels = "cohort/labels.csv"      # columns: case_id, file, label, split

[preprocess]
window = [{center}, {width}]      # VOI window (HU): centre, width -> [0, 1]
size = [{size}]

[model]
file = "model.pt"                 # a state_dict (weights only) or TorchScript
factory = "medval.demo:make_model"
output = "logits"
mc_samples = 20                   # MC-dropout passes (0 = one deterministic pass)
embeddings = true                 # penultimate features, for the embedding (MMD) drift test

[analysis]
seed = {seed}
n_resamples = 2000
confidence_level = 0.95
calibration_split = "calibration" # threshold chosen here (Youden)
test_splits = ["internal", "external"]

[conformal]
method = "aps"                    # prediction sets calibrated on the calibration split
confidence_level = 0.9            # target coverage, checked per scanner, sex and age band
# mondrian = "class"              # or a cohort column: one quantile per group
triage_max_fnr = 0.05             # triage threshold by conformal risk control

[shift]
subgroup_columns = ["manufacturer", "model_name", "sex", "age_band"]
intersections = [["manufacturer", "sex"]]
min_events = 100                  # fewer events (or non-events): flagged underpowered
small_cell = 11                   # fewer cases: suppressed in every table
drift_confidence_level = 0.95     # family-wise false-alarm rate 5% per compared split

[output]
dir = "validation"

# Acceptance criteria: `medval validate` exits 1 when a "fail" criterion is
# violated; "warn" ones are reported only. bound = "low" compares the lower
# end of the 95% CI (the performance goal must hold with confidence).
[[criteria]]
name = "internal-auroc"
key = "discrimination.auroc"
bound = "low"
op = ">="
threshold = 0.80

[[criteria]]
name = "internal-sensitivity"
key = "operating_point.sensitivity"
bound = "low"
op = ">="
threshold = 0.60

[[criteria]]
name = "external-auroc"          # the unseen scanner: an honest warning
key = "split.external.discrimination.auroc"
bound = "low"
op = ">="
threshold = 0.80
severity = "warn"

[[criteria]]
name = "coverage-by-scanner"     # conformal coverage not clearly below target
key = "conformal.by_group"
column = "manufacturer"
field = "coverage"
bound = "high"
op = ">="
threshold = 0.85
min_n = 30
small_groups = "warn"
severity = "warn"

[[criteria]]
name = "internal-ece"
key = "calibration.ece"
bound = "value"
op = "<="
threshold = 0.25
severity = "warn"

# Release gate against the released model (paired, same cases):
# [baseline]
# predictions = "released/predictions.csv"   # written by `medval validate`
# margin = 0.02                               # AUROC units, declared up front
"""


def run_demo(
    out_dir: str | Path,
    *,
    seed: int = 0,
    train: bool = False,
    progress: bool = False,
    quiet: bool = False,
    argv: Sequence[str] | None = None,
    trainer: Callable[..., Any] | None = None,
    reproduce: str | Path | None = None,
    tolerance: float | None = None,
) -> RunOutcome:
    """The embedded main job: synthetic multi-site DICOM cohort → CNN → report.

    Writes the cohort to ``out_dir/cohort/``, the model's weights to
    ``out_dir/model.pt``, a copyable spec to ``out_dir/medval.toml`` and the
    validation outputs (``report.html``, ``result.json``, ``run.log``) to
    ``out_dir``.

    Parameters
    ----------
    seed : int, default 0
        Seed of the synthetic cohort and of every statistic.
    train : bool, default False
        Retrain the CNN on this cohort's development sites with the shipped
        recipe (:func:`medval.demo.load_recipe`, its training seed included)
        instead of using the shipped weights. The trained model
        depends on the machine (CPU kernels, threads); the shipped one does
        not.
    trainer : callable, optional
        Replaces :func:`medval.demo.train` when ``train=True`` (tests).
    reproduce, tolerance
        As in :func:`run_spec`.
    """
    import shutil

    import numpy as np
    import torch

    from medval import demo, io

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    log = _Log(quiet)
    log(f"writing a synthetic multi-site DICOM cohort to {out.name}/cohort (seed {seed})")
    info = demo.write_cohort(out / "cohort", seed=seed)
    recipe = demo.load_recipe()
    if train:
        data = io.load_cohort(
            out / "cohort" / "dicom",
            out / "cohort" / "labels.csv",
            class_names=list(info.class_names),
            progress=progress,
        )
        train_ids = list(data.cohort.index[data.cohort["split"] == "train"])
        dataset = io.DicomDataset(
            [data.paths[c] for c in train_ids], train_ids, window=info.window, size=info.image_size
        )
        labels = data.cohort.loc[train_ids, "label"].to_numpy(dtype=np.int64)
        log(
            f"training the demo CNN on {len(train_ids)} images from the development sites "
            "(the trained model depends on this machine's CPU kernels and threads)"
        )
        model = demo.make_model()
        settings = {k: recipe[k] for k in ("epochs", "batch_size", "lr", "augment")}
        (trainer or demo.train)(
            model, dataset, labels, seed=int(recipe["train_seed"]), progress=progress, **settings
        )
        torch.save(model.state_dict(), out / "model.pt")
    else:
        log(
            f"using the shipped demo weights (trained once on cohort seed "
            f"{recipe['cohort_seed']}; --train retrains on this machine)"
        )
        shutil.copyfile(demo.shipped_weights(), out / "model.pt")
    spec_path = out / "medval.toml"
    center, width = info.window
    spec_path.write_text(
        _DEMO_SPEC.format(
            name=spec_path.name,
            center=center,
            width=width,
            size=", ".join(map(str, info.image_size)),
            seed=seed,
        ),
        encoding="utf-8",
    )
    return run_spec(
        spec_path,
        out_dir=out,
        progress=progress,
        quiet=quiet,
        argv=argv,
        reproduce=reproduce,
        tolerance=tolerance,
    )


def summary_table(result: ValidationResult) -> str:
    """A plain-text table of the key numbers, for the terminal."""
    from medval.report import SUMMARY_METRICS as _METRICS

    splits = result.values.get("evaluation.splits", [])
    head = ["split", "cases", *[label for _, label in _METRICS]]
    rows = []
    for i, name in enumerate(splits):
        prefix = "" if i == 0 else f"split.{name}."
        cells = [name, str(result.values.get(f"{prefix}cohort.n_cases", ""))]
        for key, _ in _METRICS:
            e = result.estimates.get(prefix + key)
            if e is None or e.value is None:
                cells.append("n/a")
            elif e.low is None or e.high is None:
                cells.append(f"{e.value:.3f}")
            else:
                cells.append(f"{e.value:.3f} [{e.low:.3f}, {e.high:.3f}]")
        rows.append(cells)
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in [head, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
