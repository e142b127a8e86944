"""The registered protocol of a spec: what defines the evaluation, in canonical JSON.

A registration fixes how a model will be judged before the test data are
opened: the task, the data definition, every analysis setting and the
criteria. What changes with each candidate ([model], [preprocess]), where the
outputs go ([output]) and where a baseline's files lie are left out. Values are
the checked sections, defaults filled, so writing a default explicitly changes
nothing; paths stay exactly as written in the spec (relative to it), never
resolved: folder names can identify people (an absolute path keeps only its
name, as ``<absolute>/labels.csv``).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import PurePosixPath, PureWindowsPath
from typing import Any

from medval.gate import Spec, spec_criteria

__all__ = ["PROTOCOL_SECTIONS", "canonical_text", "protocol", "protocol_sha256"]

#: Spec sections registered whole (``baseline`` contributes only its judgement keys).
PROTOCOL_SECTIONS: tuple[str, ...] = (
    "task", "data", "analysis", "conformal", "uncertainty", "shift", "segmentation",
    "regression", "splits", "gate",
)  # fmt: skip
#: ``[baseline]`` keys that define the non-inferiority test (not which files hold the baseline).
BASELINE_KEYS: tuple[str, ...] = ("margin", "metric", "split", "severity")
# Keys that change how fast a run goes, never what it computes.
_IGNORED = frozenset({"data.workers"})
#: [data] keys holding paths (relative to the spec, as written).
_PATH_KEYS = ("dicom_dir", "labels", "table", "masks", "cases")


def _as_written(value: Any) -> Any:
    """A path as the spec writes it; an absolute one as ``<absolute>/<its name>``."""
    if not isinstance(value, str):
        return value
    pure = PureWindowsPath(value) if "\\" in value or ":" in value[:3] else PurePosixPath(value)
    return f"<absolute>/{pure.name}" if pure.is_absolute() or value.startswith("~") else value


def _native(value: Any) -> Any:
    """Tuples as lists, mapping keys as strings: what JSON keeps."""
    if isinstance(value, dict):
        return {str(k): _native(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_native(v) for v in value]
    return value


def protocol(spec: Spec) -> dict[str, Any]:
    """The registered protocol of ``spec``: its defining sections and its criteria.

    Parameters
    ----------
    spec : medval.gate.Spec
        A checked spec (:func:`medval.gate.read_spec`).

    Returns
    -------
    dict
        ``{"sections": {section: {key: value}}, "criteria": [Criterion.to_dict()]}``,
        JSON-native. ``sections`` holds :data:`PROTOCOL_SECTIONS` (absent
        optional sections as ``{}``) and, when a baseline is given,
        ``baseline`` with :data:`BASELINE_KEYS` only; ``criteria`` lists every
        criterion the gate judges (the baseline's built-in one last).
    """
    sections: dict[str, Any] = {}
    for name in PROTOCOL_SECTIONS:
        table = spec.sections.get(name) or {}
        sections[name] = {k: v for k, v in table.items() if f"{name}.{k}" not in _IGNORED}
    sections["data"] = {
        k: _as_written(v) if k in _PATH_KEYS else v for k, v in sections["data"].items()
    }
    if spec.has("baseline"):
        sections["baseline"] = {k: spec.sections["baseline"][k] for k in BASELINE_KEYS}
    criteria = [c.to_dict() for c in spec_criteria(spec)]
    return {"sections": _native(sections), "criteria": _native(criteria)}


def canonical_text(data: Any) -> str:
    """Sorted keys, compact separators, no NaN: the bytes a digest covers."""
    return json.dumps(
        data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def protocol_sha256(spec: Spec | dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON of :func:`protocol` (or of a protocol dict)."""
    data = protocol(spec) if isinstance(spec, Spec) else spec
    return hashlib.sha256(canonical_text(data).encode("utf-8")).hexdigest()
