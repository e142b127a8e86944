"""How a spec run feeds its model: batch size, decoding workers, mixed precision and its check.

:func:`plan_loader` turns ``model.batch_size`` (an integer, or ``"auto"``:
measured from free GPU memory, :func:`medval.inference.auto_batch_size`'s
probe) and ``model.loader_workers`` into the run's DataLoader
(:func:`medval.inference.make_loader`: pinned on CUDA). After the run,
:func:`finish_inference` checks ``model.precision`` (when not float32): a
seeded sample of up to ``model.precision_check_cases`` cases runs again in
float32 and the run's own outputs for them must not move by more than
``model.precision_tolerance``; else the run stops, naming both figures.
Everything chosen goes into the result's provenance.

Both chains (classification, regression) pass a ``score(batches, **options)``
closure: their predict call with the spec's settings, options overriding
``precision``, ``batch_limit``, ``progress`` and ``mc_samples``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from medval._errors import InputError, SpecError
from medval.gate import Spec

__all__ = ["LoaderPlan", "finish_inference", "plan_loader"]

Score = Callable[..., Any]
_PROBE_CASES = 4  # cases the batch-size probe runs (at 2, then 4)


@dataclasses.dataclass(frozen=True)
class LoaderPlan:
    """The run's DataLoader and how its settings were chosen."""

    loader: Any  # torch DataLoader
    batch_size: int
    batch_rule: str  # "spec", "auto: measured ...", "auto: ... off CUDA"
    workers: int
    pin_memory: bool
    limit: Any  # inference.BatchLimit: the out-of-memory halvings of the main run
    device: Any  # torch.device


def plan_loader(spec: Spec, dataset: Any, device: Any, score: Score, *, log: Any) -> LoaderPlan:
    """The run's loader from ``model.batch_size`` and ``model.loader_workers`` (logged).

    Raises
    ------
    SpecError
        ``model.precision`` cannot run on the device (float16 on a CPU).
    """
    import torch

    from medval import inference

    try:  # float16 on a CPU, bfloat16 on an old GPU: refused before any pass
        inference.check_precision(spec["model.precision"], device)
    except InputError as exc:
        raise SpecError(f"{spec.path.name}: model.precision: {exc}") from exc
    size = spec["model.batch_size"]
    if size != "auto":
        batch, rule = int(size), "spec"
    elif device.type != "cuda":
        batch, rule = inference.CPU_BATCH_SIZE, f"auto: {inference.CPU_BATCH_SIZE} off CUDA"
    else:
        sample = torch.stack([dataset[i]["image"] for i in range(min(_PROBE_CASES, len(dataset)))])
        batch = inference.measure_batch_size(
            lambda x: score([x], precision=spec["model.precision"]), sample, device=device
        )
        rule = "auto: measured from free GPU memory"
    workers = inference.loader_workers(spec["model.loader_workers"], device)
    loader = inference.make_loader(dataset, batch_size=batch, device=device, workers=workers)
    pinned = device.type == "cuda"
    log(f"batches of {batch} cases ({rule}), {workers} decoding workers"
        + (", pinned memory" if pinned else ""))  # fmt: skip
    return LoaderPlan(loader, batch, rule, workers, pinned, inference.BatchLimit(), device)


def finish_inference(
    spec: Spec, plan: LoaderPlan, dataset: Any, score: Score, preds: Any, data: Any, *, log: Any
) -> dict[str, Any]:
    """Provenance of the model step's settings; the precision check first (may stop the run).

    Raises
    ------
    SpecError
        ``model.precision`` moved an output by more than ``model.precision_tolerance``.
    """
    limit = plan.limit
    if limit.halvings:
        s = limit.summary()
        log(f"WARNING: out of memory: batches halved {s['out_of_memory_halvings']} times, "
            f"from {s['batch_size_before_halving']} to {s['batch_size_after_halving']} cases "
            "(the outputs do not depend on it)")  # fmt: skip
    out: dict[str, Any] = {
        "precision": spec["model.precision"],
        "inference": {
            "batch_size": plan.batch_size,
            "batch_size_rule": plan.batch_rule,
            "loader_workers": plan.workers,
            "pin_memory": plan.pin_memory,
            **limit.summary(),
        },
    }
    if spec["model.precision"] != "float32":
        out["precision_check"] = _precision_check(spec, plan, dataset, score, preds, data, log)
    return out


def _precision_check(
    spec: Spec, plan: LoaderPlan, dataset: Any, score: Score, preds: Any, data: Any, log: Any
) -> dict[str, Any]:
    """A seeded sample in float32 against the run's outputs for the same cases."""
    import numpy as np
    from torch.utils.data import Subset

    from medval import inference

    precision, tolerance = spec["model.precision"], spec["model.precision_tolerance"]
    n = len(dataset)
    rng = np.random.default_rng(spec["analysis.seed"])
    rows = sorted(int(i) for i in rng.choice(n, size=min(n, spec["model.precision_check_cases"]),
                                             replace=False))  # fmt: skip
    loader = inference.make_loader(
        Subset(dataset, rows), batch_size=plan.batch_size, device=plan.device, workers=0
    )
    # Starts at the size the run settled on (float32 takes more memory: it may halve again).
    start = inference.BatchLimit(size=plan.limit.size)
    ref = score(loader, precision="float32", mc_samples=0, batch_limit=start)
    order = {c: i for i, c in enumerate(preds.case_ids.tolist())}
    at = [order[c] for c in ref.case_ids.tolist()]
    if spec["task.type"] == "regression":
        lo_hi = spec["task.range"]
        width = float(lo_hi[1] - lo_hi[0]) if lo_hi else float(np.ptp(ref.values))
        check = inference.compare_precision(
            ref.values, preds.values[at], precision=precision, tolerance=tolerance,
            scale=width if width > 0 else 1.0,
        )  # fmt: skip
        what = "value (as a share of " + ("task.range)" if lo_hi else "the values' range)")
    else:
        threshold, pos = _operating_threshold(spec, preds, data)
        check = inference.compare_precision(
            ref.probabilities, preds.probabilities[at], precision=precision,
            tolerance=tolerance, threshold=threshold, positive_class=pos,
        )  # fmt: skip
        what = "probability"
    t = check.threshold
    at_t = "the most probable class" if t is None else f"threshold {t:.4g}"
    flips = (
        "" if check.decisions_changed is None
        else f"; {check.decisions_changed} of {check.cases} decisions at {at_t} change"
    )  # fmt: skip
    figures = (
        f"the largest change of a {what} is {check.max_abs_difference:.3g} on {check.cases} "
        f"sampled cases run again in float32{flips}"
    )
    log(f"precision {precision}: {figures} (tolerance {tolerance:g})")
    if not check.passed:
        raise SpecError(
            f"model.precision = {precision!r} moves the results beyond model.precision_tolerance "
            f'= {tolerance:g}: {figures}. Use model.precision = "float32", or raise '
            "model.precision_tolerance if a change of this size is acceptable."
        )
    return check.as_dict()


def _operating_threshold(spec: Spec, preds: Any, data: Any) -> tuple[float | None, int]:
    """The decision rule the evaluation will apply, on the run's (image) probabilities.

    ``analysis.threshold`` when fixed; else ``analysis.threshold_rule`` on the
    calibration split's cases (:func:`medval.stats.choose_threshold`), 0.5
    without one; the most probable class (None) with more than two classes.
    """
    import numpy as np

    from medval import stats

    names = list(spec["task.class_names"])
    pos = 1 if spec["task.positive_class"] is None else names.index(spec["task.positive_class"])
    if len(names) > 2:
        return None, pos
    if spec["analysis.threshold"] is not None:
        return float(spec["analysis.threshold"]), pos
    cohort = data.cohort.reindex(preds.case_ids.tolist())
    on = (cohort["split"] == spec["analysis.calibration_split"]).to_numpy()
    if not on.any():
        return 0.5, pos
    try:
        t = stats.choose_threshold(
            np.asarray(cohort["label"], dtype=np.int64)[on], preds.probabilities[on, pos],
            rule=spec["analysis.threshold_rule"], target=spec["analysis.threshold_target"],
        )  # fmt: skip
    except ValueError:  # the evaluation refuses these labels itself, with its own message
        return 0.5, pos
    return float(t), pos
