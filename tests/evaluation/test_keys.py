"""Every key the report, the gate and the checklists read is one that evaluate produces.

The readers are run on the demo's result with every store replaced by a dict
that records each key looked up. A key read but produced by no evaluation
(the demo's, a multiclass one, one with a baseline) is a reader that drifted
from the key scheme: it would silently show "n/a" or skip a checklist item.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from medval import Predictions, ValidationResult, evaluate, gate
from medval.checklist import fill, suggest_limitations
from medval.report import render_html
from medval.run import spec_template, summary_table
from tests.evaluation._recording import recording

# Keys read that evaluate does not write, each for a stated reason.
_NOT_FROM_EVALUATE = {
    "analysis.errors": "written by gate.record when an analysis could not be run",
    "reference.agreement": "reader agreement a user adds to the result; medval has no reader "
    "study input (the checklist item stays a human item without it)",
    "uncertainty.epistemic_higher_p": "defined for secondary splits only (tested against the "
    "primary); the report's per-split row asks for the primary's too and shows n/a",
}


def _normal(key: str, splits: list[str]) -> str:
    """The key with its split prefix and subgroup value made generic."""
    for name in splits:
        key = key.replace(f"split.{name}.", "split.*.")
    return re.sub(r"^subgroup\.([^.=]+)=[^.]*\.", r"subgroup.\1=*.", key)


def _synthetic(rng: np.random.Generator, k: int) -> tuple[Predictions, pd.DataFrame]:
    n = 600
    ids = np.array([f"c{i}" for i in range(n)])
    labels = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k)) + 2.0 * np.eye(k)[labels]
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    mc = np.clip(p[None] + rng.normal(scale=0.02, size=(5, n, k)), 1e-6, None)
    mc /= mc.sum(axis=2, keepdims=True)
    cohort = pd.DataFrame(
        {
            "split": np.repeat(rng.choice(["calibration", "internal", "external"], n // 2), 2),
            "label": labels,
            "patient_key": [f"p{i // 2}" for i in range(n)],
            "manufacturer": rng.choice(["A", "B"], n),
            "sex": rng.choice(["F", "M"], n),
        },
        index=pd.Index(ids, name="case_id"),
    )
    names = tuple(f"class {i}" for i in range(k))
    return Predictions(ids, mc.mean(axis=0), mc_probabilities=mc, class_names=names), cohort


@pytest.fixture(scope="module")
def produced(demo_run: Path) -> tuple[ValidationResult, set[str]]:
    """The demo result, and every key (made generic) that some evaluation produces."""
    demo = ValidationResult.read_json(demo_run / "result.json")
    rng = np.random.default_rng(3)
    preds, cohort = _synthetic(rng, 3)
    multiclass = evaluate(preds, cohort, n_resamples=200, small_cell=5)
    preds2, cohort2 = _synthetic(rng, 2)
    reference = np.clip(preds2.probabilities[:, 1] + rng.normal(scale=0.1, size=600), 0, 1)
    baseline = evaluate(
        preds2, cohort2, n_resamples=200, small_cell=5, reference=reference,
        reference_margin=0.05,
    )  # fmt: skip
    keys: set[str] = set()
    for r in (demo, multiclass, baseline):
        splits = [str(s) for s in r.values["evaluation.splits"]]
        for store in (r.estimates, r.values, r.tables):
            keys.update(_normal(k, splits) for k in store)
    return demo, keys


def test_every_key_the_readers_read_is_produced(
    produced: tuple[ValidationResult, set[str]],
) -> None:
    demo, keys = produced
    recorded, seen = recording(demo)
    render_html(recorded, result_sha256="0" * 64)
    render_html(recorded, result_sha256="0" * 64, checklist_name="tripod-ai-2024")
    for name in ("claim-2024", "tripod-ai-2024"):
        fill(recorded, checklist=name)
    suggest_limitations(recorded)
    summary_table(recorded)
    spec_file = demo_run_spec(demo)
    gate.judge(recorded, gate.spec_criteria(spec_file))
    splits = [str(s) for s in demo.values["evaluation.splits"]]
    read = {_normal(k, splits) for k in seen}
    assert len(read) > 50  # the recorder saw the readers at work
    orphans = sorted(k for k in read if k not in keys and k not in _NOT_FROM_EVALUATE)
    assert not orphans, f"keys read by report/gate/checklist that no evaluation produces: {orphans}"


def demo_run_spec(demo: ValidationResult) -> Any:
    """The demo's spec with its criteria (seed from the result)."""
    import tempfile

    text = spec_template().format(name="m", center=40, width=400, size="64, 64", seed=0)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "medval.toml"
        path.write_text(text, encoding="utf-8")
        return gate.read_spec(path)


def test_the_allowed_exceptions_are_still_read_and_still_not_produced(
    produced: tuple[ValidationResult, set[str]],
) -> None:
    """The allow-list above cannot go stale: each entry is read and not produced."""
    demo, keys = produced
    recorded, seen = recording(demo)
    render_html(recorded, result_sha256="0" * 64)
    fill(recorded, checklist="claim-2024")
    gate.judge(recorded, gate.spec_criteria(demo_run_spec(demo)))
    for key in _NOT_FROM_EVALUATE:
        assert key in seen and key not in keys, key


def _regression_runs() -> list[ValidationResult]:
    from medval import RegressionPredictions

    rng = np.random.default_rng(5)
    n = 600
    ids = np.array([f"c{i}" for i in range(n)])
    y = rng.uniform(10, 200, n)
    pred = y + rng.normal(0, 8, n)
    cohort = pd.DataFrame(
        {"split": np.repeat(rng.choice(["calibration", "internal", "external"], n // 2), 2),
         "label": y, "patient_key": [f"p{i // 2}" for i in range(n)],
         "manufacturer": rng.choice(["A", "B"], n), "sex": rng.choice(["F", "M"], n)},
        index=pd.Index(ids, name="case_id"),
    )  # fmt: skip
    mc = pred + rng.normal(0, 2, (5, n))
    full = RegressionPredictions(ids, pred, variances=np.full(n, 64.0), mc_values=mc,
                                 mc_variances=np.full((5, n), 64.0), unit="months")  # fmt: skip
    bare = RegressionPredictions(ids, pred, unit="months")
    return [
        evaluate(full, cohort, n_resamples=200, small_cell=5, interval_mondrian="manufacturer"),
        evaluate(bare, cohort, n_resamples=200, small_cell=5),
    ]


def test_every_key_the_regression_readers_read_is_produced(
    produced: tuple[ValidationResult, set[str]],
) -> None:
    """Shared readers (cohort, flow, checklist) may ask for other tasks' keys; none is unknown."""
    runs = _regression_runs()
    keys = set(produced[1])
    for r in runs:
        splits = [str(s) for s in r.values["evaluation.splits"]]
        for store in (r.estimates, r.values, r.tables):
            keys.update(_normal(k, splits) for k in store)
    keys.add("gate.status")  # written by gate.record
    for r in runs:
        recorded, seen = recording(r)
        render_html(recorded, result_sha256="0" * 64)
        for name in ("claim-2024", "tripod-ai-2024"):
            fill(recorded, checklist=name)
        suggest_limitations(recorded)
        summary_table(recorded)
        splits = [str(s) for s in r.values["evaluation.splits"]]
        read = {_normal(k, splits) for k in seen}
        assert len(read) > 30
        allowed = {*keys, *_NOT_FROM_EVALUATE, "task.name", "task.range",
                   "regression.collapsed", "split.*.regression.collapsed"}  # fmt: skip
        orphans = sorted(k for k in read if k not in allowed)
        assert not orphans, f"regression readers read keys no evaluation produces: {orphans}"
