"""The gate's reusable-holdout mode: criteria answered through Thresholdout.

With ``gate.holdout = "thresholdout"`` a criterion on an Estimate of the test
split is not judged on the test split's number: :class:`medval.stats.Thresholdout`
compares it with the same metric on the reference split (data the team owns,
by default the calibration split) and answers with the reference value unless
the two differ by more than a noisy threshold. The criterion is then judged on
that answer (its point value: a CI of the test split would reveal the test set).
The mechanism's state (budget left, the noisy threshold, the answers given, so
that a repeated query gets its first answer) lives in the test-set ledger.

Criteria the mechanism cannot answer (tables, values outside [0, 1], no
reference estimate) are judged on the exact numbers as before, and named:
their numbers count as revealed.
"""

from __future__ import annotations

import dataclasses
import re
import secrets
from collections.abc import Sequence
from typing import Any

import numpy as np

from medval._errors import BudgetExhaustedError
from medval._result import ValidationResult
from medval._types import Estimate
from medval.gate import Criterion, Verdict, judge

__all__ = ["HoldoutOutcome", "answer_criteria", "reference_key"]


@dataclasses.dataclass(frozen=True)
class HoldoutOutcome:
    """The verdicts under Thresholdout and what to keep and record.

    Attributes
    ----------
    verdicts : tuple of Verdict
        One per criterion, in order.
    state : dict
        The mechanism's state after this run (:meth:`Thresholdout.to_dict`), for
        the ledger; it holds the noisy threshold, so it must not reach the team.
    provenance : dict
        For ``result.provenance["holdout"]``: settings, budget left, queries,
        the proven bound, the criteria answered and those outside, and one
        sentence (``text``). No test-set number.
    revealed : tuple of str
        The keys whose exact test-set numbers the verdicts show (the criteria
        outside the mechanism).
    """

    verdicts: tuple[Verdict, ...]
    state: dict[str, Any]
    provenance: dict[str, Any]
    revealed: tuple[str, ...]


def reference_key(key: str, split: str) -> str:
    """The key of the same estimate on ``split`` (``split.<name>.`` prefix replaced or added)."""
    rest = key.split(".", 2)[2] if key.startswith("split.") and key.count(".") >= 2 else key
    return f"split.{split}.{rest}"


def _keys(result: ValidationResult, c: Criterion) -> list[str]:
    """The estimate keys a criterion compares (one per group of a pattern)."""
    if c.column or c.field:
        return []
    if "{group}" not in c.key:
        return [c.key] if c.key in result.estimates else []
    pattern = re.compile(re.escape(c.key).replace(re.escape("{group}"), ".+"))
    return sorted(k for k in result.estimates if pattern.fullmatch(k))


def _unit(e: Estimate | None) -> float | None:
    v = None if e is None else e.value
    return float(v) if isinstance(v, float) and 0.0 <= v <= 1.0 else None


def _answerable(result: ValidationResult, c: Criterion, split: str) -> list[str] | None:
    keys = _keys(result, c)
    if not keys or c.op == "==":
        return None
    for k in keys:
        if _unit(result.estimates[k]) is None:
            return None
        if _unit(result.estimates.get(reference_key(k, split))) is None:
            return None
    return keys


def answer_criteria(
    result: ValidationResult,
    criteria: Sequence[Criterion],
    verdicts: Sequence[Verdict],
    *,
    settings: dict[str, Any],
    reference_split: str,
    state: dict[str, Any] | None,
    model_sha256: str | None,
    confidence_level: float = 0.95,
    random_state: int | np.random.Generator | None = None,
) -> HoldoutOutcome:
    """Answer each criterion through Thresholdout (the gate's reusable-holdout mode).

    Parameters
    ----------
    result : ValidationResult
        Evaluated on the test split(s) and on ``reference_split``.
    criteria, verdicts : sequences of the same length
        The spec's criteria and their plain verdicts (kept for the criteria
        the mechanism cannot answer).
    settings : dict
        The spec's ``[gate]`` section (thresholdout_threshold, _sigma, _budget).
    reference_split : str
        The split whose estimates are the reference values.
    state : dict or None
        The mechanism's state from the ledger; None starts a new one.
    model_sha256 : str or None
        Names the queries: the same model and criterion get the first answer.
    random_state : optional
        For tests only; production (None) draws unpredictable noise.

    Returns
    -------
    HoldoutOutcome
        A criterion whose budget ran out is an ``error`` verdict: the gate
        fails closed and says to gate on a fresh test set.

    References
    ----------
    Dwork et al., Science 349:636 (2015); NIPS 2015 (arXiv:1506.02629).
    """
    from medval.stats import Thresholdout, thresholdout_bound

    rng = np.random.default_rng(secrets.randbits(128)) if random_state is None else random_state
    if state is None:
        mech = Thresholdout(
            settings["thresholdout_threshold"], settings["thresholdout_sigma"],
            settings["thresholdout_budget"], random_state=rng,
        )  # fmt: skip
    else:
        mech = Thresholdout.from_dict(state, random_state=rng)
    out: list[Verdict] = []
    answered, outside, revealed, sizes = [], [], [], []
    view = dataclasses.replace(result, estimates=dict(result.estimates))
    for c, plain in zip(criteria, verdicts, strict=True):
        keys = _answerable(result, c, reference_split)
        if keys is None:
            out.append(plain)
            outside.append(c.name)
            revealed.append(c.key)
            continue
        try:
            for k in keys:
                e = result.estimates[k]
                ref = result.estimates[reference_key(k, reference_split)]
                a = mech.answer(
                    float(e.value),  # type: ignore[arg-type]
                    float(ref.value),  # type: ignore[arg-type]
                    key=f"{model_sha256 or 'unknown'}:{c.name}:{k}",
                )
                view.estimates[k] = Estimate(
                    value=float(a.value), n=e.n, method="thresholdout",
                    confidence_level=e.confidence_level, higher_is_better=e.higher_is_better,
                    reason="a Thresholdout answer has no interval (it would reveal the test set)",
                )  # fmt: skip
                sizes.append(e.n)
        except BudgetExhaustedError:
            reason = (
                f"the reusable holdout has spent its budget of {mech.budget} overfitting "
                f"detections after {mech.n_queries_} queries and refuses further answers: gate "
                "on a fresh test set"
            )
            out.append(dataclasses.replace(plain, status="error", reason=reason, groups=()))
            continue
        (v,) = judge(view, [dataclasses.replace(c, bound="value")])
        out.append(dataclasses.replace(v, reason=f"Thresholdout answer: {v.reason}"))
        answered.append(c.name)
    after = mech.to_dict()
    n = min((s for s in sizes if s), default=0)
    bound = None
    if n:
        bound = thresholdout_bound(
            n, budget=mech.budget, n_queries=max(1, mech.n_queries_),
            confidence_level=confidence_level, threshold=mech.threshold,
            noise_scale=mech.noise_scale,
        )  # fmt: skip
    provenance = {
        "mode": "thresholdout",
        "reference_split": reference_split,
        "threshold": mech.threshold,
        "noise_scale": mech.noise_scale,
        "budget": mech.budget,
        "budget_left": mech.budget_left_,
        "n_queries": mech.n_queries_,
        "bound": bound,
        "confidence_level": confidence_level,
        "answered": answered,
        "outside": outside,
        "text": _text(mech, reference_split, answered, outside, bound, confidence_level),
    }
    return HoldoutOutcome(tuple(out), after, provenance, tuple(revealed))


def _text(
    mech: Any,
    split: str,
    answered: list[str],
    outside: list[str],
    bound: float | None,
    confidence_level: float,
) -> str:
    n = len(answered)
    parts = [
        f"{n} {'criterion' if n == 1 else 'criteria'} answered through Thresholdout against "
        f"split {split!r} (T = {mech.threshold:g}, sigma = {mech.noise_scale:g}); "
        f"{mech.budget_left_} of {mech.budget} overfitting detections left after "
        f"{mech.n_queries_} {'query' if mech.n_queries_ == 1 else 'queries'} on this test set."
    ]
    if bound is not None:
        if bound < 1:
            said = f"every answer lies within {bound:.3f} of the true value"
        else:
            said = f"a bound of {bound:.3g}, vacuous at this test-set size"
        parts.append(
            f"Proven accuracy with probability {confidence_level:g}: {said} (Dwork et al. "
            "2015; at clinical sizes the evidence is the simulation in docs/holdout.md)."
        )
    if outside:
        parts.append(
            f"Judged on exact test-set numbers (outside the mechanism; their numbers count "
            f"as revealed): {', '.join(outside)}."
        )
    return " ".join(parts)
