"""A JSON Schema of ``medval.toml`` for editors (Even Better TOML, Taplo, VS Code).

Generated from :data:`SCHEMA`, the choices the reader checks
(:func:`medval.gate._spec.choices`) and the criteria fields, so it cannot drift
from the checks; ``medval schema`` prints it and the package ships it as
``medval/gate/medval.schema.json``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from medval.gate._criteria import _CHOICES, CRITERION_FIELDS
from medval.gate._inference import AUTO_KEYS, auto_property
from medval.gate._preprocess import STEPS
from medval.gate._spec import _PRESENCE_SECTIONS, _REQUIRED_SECTIONS, SCHEMA, choices

__all__ = ["json_schema", "json_schema_text"]

_JSON_TYPES = {str: "string", int: "integer", float: "number", bool: "boolean", list: "array",
               dict: "object"}  # fmt: skip


def _prop(types: tuple[type, ...], default: Any, enum: tuple[str, ...] | None) -> dict[str, Any]:
    names = [_JSON_TYPES[t] for t in types]
    out: dict[str, Any] = {"type": names[0] if len(names) == 1 else names}
    if enum:
        out["enum"] = list(enum)
    if default is not ... and default is not None:
        out["default"] = default
    return out


def _table(fields: dict[str, Any], enums: Mapping[str, tuple[str, ...]]) -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": [k for k, (_, d) in fields.items() if d is ...],
        "properties": {k: _prop(t, d, enums.get(k)) for k, (t, d) in fields.items()},
    }


def _steps() -> dict[str, Any]:
    """``preprocess.steps``: tables with an ``op`` from :data:`STEPS`, each op's own keys."""
    cases = []
    for op, kind in STEPS.items():
        then = _table(kind.fields, kind.choices)
        then["properties"] = {"op": {"const": op}, **then["properties"]}
        then["description"] = kind.doc
        cases.append({"if": {"properties": {"op": {"const": op}}, "required": ["op"]},
                      "then": then})  # fmt: skip
    return {
        "type": "array",
        "description": "Preprocessing steps, in order, after the modality LUT and MONOCHROME1 "
        "inversion.",
        "items": {
            "type": "object",
            "required": ["op"],
            "properties": {"op": {"enum": list(STEPS)}},
            "allOf": cases,
        },
    }


def json_schema() -> dict[str, Any]:
    """The spec's JSON Schema (draft 2020-12) as a dict."""
    enums = choices()
    props = {
        s: _table(f, {k: v for (section, k), v in enums.items() if section == s})
        for s, f in SCHEMA.items()
    }
    model = props["model"]["properties"]
    for key in AUTO_KEYS:  # an integer or "auto"
        model[key] = auto_property(key, SCHEMA["model"][key][1])
    pre = props["preprocess"]["properties"]
    pre["steps"] = _steps()
    pre["expect"] = {
        "type": "object",
        "description": "Mean and standard deviation of the preprocessed pixels the model was "
        "trained on; inputs far from them are flagged before the model runs.",
        "additionalProperties": False,
        "required": ["mean", "std"],
        "properties": {"mean": {"type": "number"}, "std": {"type": "number"}},
    }
    props["criteria"] = {"type": "array", "items": _table(CRITERION_FIELDS, _CHOICES)}
    for s in _PRESENCE_SECTIONS:
        props[s]["description"] = "Optional; its required keys apply when the table is given."
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://medval.dev/schema/medval.toml.json",
        "title": "medval validation spec (medval.toml)",
        "type": "object",
        "additionalProperties": False,
        "required": list(_REQUIRED_SECTIONS),
        "properties": props,
    }


def json_schema_text() -> str:
    """:func:`json_schema` as indented JSON text (the shipped file's bytes)."""
    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"
