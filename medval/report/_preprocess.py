"""Report context for the preprocessing: the recorded pipeline, input intensities, findings."""

from __future__ import annotations

import json
from typing import Any

from medval._result import ValidationResult

__all__ = ["preprocess_context", "preprocess_findings"]

_NOT_PARAMETERS = ("op", "implicit", "note")


def _parameters(step: dict[str, Any]) -> str:
    return ", ".join(f"{k} = {json.dumps(v)}" for k, v in step.items() if k not in _NOT_PARAMETERS)


def preprocess_context(result: ValidationResult) -> dict[str, Any]:
    """The pipeline step by step, the run's preprocessing warnings, the intensity table."""
    pre = result.provenance.get("preprocess")
    pre = pre if isinstance(pre, dict) else {}
    steps = [
        {
            "number": i,
            "op": str(step.get("op", "?")),
            "parameters": _parameters(step),
            "implicit": bool(step.get("implicit")),
            "note": step.get("note", ""),
        }
        for i, step in enumerate(pre.get("pipeline") or [], start=1)
    ]
    return {
        "steps": steps,
        "warnings": list(pre.get("warnings") or []),
        "intensities": result.tables.get("input.by_group", []),
        "expected": result.values.get("input.expected"),
    }


def _fmt(value: Any) -> str:
    """A number, or one per channel."""
    if isinstance(value, list):
        return "[" + ", ".join(f"{float(v):g}" for v in value) + "]"
    return f"{float(value):g}"


def preprocess_findings(result: ValidationResult) -> list[str]:
    """The input mismatch (first of all findings) and an undeclared normalisation."""
    v = result.values
    out = []
    expected = v.get("input.expected")
    if v.get("input.mismatch") and isinstance(expected, dict):
        flagged = [r for r in result.tables.get("input.by_group", []) if r.get("mismatch")]
        shown = "; ".join(
            f"{r['by']} '{r['group']}': mean {r['mean']:.3g}, sd {r['sd']:.3g}" for r in flagged[:4]
        )
        out.append(
            "Preprocessing mismatch: the preprocessed inputs are unlike those the model was "
            f"trained on (mean {_fmt(expected['mean'])}, sd {_fmt(expected['std'])}, from "
            "[preprocess] "
            f"expect); measured before the model ran: {shown}. The model was tested on inputs "
            "it was not built for, so no number below is a fair measure of it. Fix the "
            "preprocessing ([preprocess] steps: window, normalize, channels) first."
        )
    pre = result.provenance.get("preprocess")
    warnings = pre.get("warnings") if isinstance(pre, dict) else None
    return out + [f"Preprocessing: {w}" for w in warnings or []]
