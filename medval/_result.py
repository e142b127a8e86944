"""`ValidationResult`: every number of a validation, addressed by flat keys."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from medval._errors import DataError, InputError
from medval._types import Estimate

__all__ = ["RESULT_SCHEMA", "ValidationResult", "canonical_json", "split_prefix", "subgroup_key"]

RESULT_SCHEMA = "medval.result/1"

Table = list[dict[str, Any]]


# The key scheme, in one place: the primary test split's keys carry no prefix,
# every other evaluated split's keys start with "split.<name>.", and subgroup
# keys are "subgroup.<column>=<value>.<metric>".
def split_prefix(split: str, splits: Sequence[str]) -> str:
    """The key prefix of ``split`` among the evaluated ``splits`` (primary first).

    ``""`` for the primary split, ``"split.<name>."`` for the others.
    """
    return "" if not splits or split == splits[0] else f"split.{split}."


def subgroup_key(column: str, value: str, metric: str) -> str:
    """``subgroup.<column>=<value>.<metric>``: one subgroup's metric."""
    return f"subgroup.{column}={value}.{metric}"


def _plain(value: Any) -> Any:
    """Convert numpy scalars/arrays and tuples to JSON-native values."""
    if isinstance(value, Estimate):
        return _plain(value.to_dict())
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        return _plain(value.item())
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InputError(f"result values must be finite; got {value}. Use None and a reason.")
        return value
    if value is None or isinstance(value, (str, int, bool)):
        return value
    raise InputError(f"cannot store {type(value).__name__} in a ValidationResult.")


def canonical_json(data: Any) -> str:
    """Sorted keys, two-space indent, UTF-8, no NaN: the bytes are reproducible."""
    return (
        json.dumps(_plain(data), sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False)
        + "\n"
    )


@dataclasses.dataclass
class ValidationResult:
    """The outcome of :func:`medval.evaluate`.

    Attributes
    ----------
    estimates : dict of str to Estimate
        Numbers with uncertainty, e.g. ``"discrimination.auroc"``. Keys with
        no split prefix belong to the primary test split; other evaluated
        splits use ``"split.<name>."`` prefixes.
    values : dict of str to scalar
        Exact numbers and settings (``"operating_point.threshold"``, counts).
    tables : dict of str to list of dict
        Row tables (cohort flow, exclusions, curves).
    provenance : dict
        Seeds, versions, digests, command line. No time stamp, so equal
        inputs give equal bytes.
    """

    estimates: dict[str, Estimate] = dataclasses.field(default_factory=dict)
    values: dict[str, Any] = dataclasses.field(default_factory=dict)
    tables: dict[str, Table] = dataclasses.field(default_factory=dict)
    provenance: dict[str, Any] = dataclasses.field(default_factory=dict)

    def split_prefixes(self) -> list[tuple[str, str]]:
        """(split, key prefix) of every evaluated split, the primary one first."""
        splits = [str(s) for s in self.values.get("evaluation.splits") or ()]
        return [(s, split_prefix(s, splits)) for s in splits]

    def __getitem__(self, key: str) -> Any:
        for store in (self.estimates, self.values, self.tables):
            if key in store:
                return store[key]
        raise KeyError(f"{key!r} is not in this result; known keys start with: {self._heads()}")

    def __contains__(self, key: object) -> bool:
        return key in self.estimates or key in self.values or key in self.tables

    def keys(self) -> list[str]:
        """All keys, sorted."""
        return sorted([*self.estimates, *self.values, *self.tables])

    def _heads(self) -> list[str]:
        return sorted({k.split(".")[0] for k in self.keys()})

    def to_dict(self) -> dict[str, Any]:
        """The JSON-native form written to ``result.json``."""
        return {
            "schema": RESULT_SCHEMA,
            "estimates": {k: v.to_dict() for k, v in self.estimates.items()},
            "values": _plain(self.values),
            "tables": _plain(self.tables),
            "provenance": _plain(self.provenance),
        }

    def to_json(self) -> str:
        """Canonical JSON text (sorted keys; reproducible bytes)."""
        return canonical_json(self.to_dict())

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ValidationResult:
        """Inverse of :meth:`to_dict`."""
        if data.get("schema") != RESULT_SCHEMA:
            raise DataError(
                f"not a medval result: schema {data.get('schema')!r}, expected {RESULT_SCHEMA!r}."
            )
        return cls(
            estimates={k: Estimate.from_dict(dict(v)) for k, v in data["estimates"].items()},
            values=dict(data["values"]),
            tables={k: list(v) for k, v in data["tables"].items()},
            provenance=dict(data["provenance"]),
        )

    @classmethod
    def read_json(cls, path: str | Path) -> ValidationResult:
        """Read a ``result.json`` written by :meth:`write_json`."""
        p = Path(path)
        try:
            return cls.from_dict(json.loads(p.read_text(encoding="utf-8")))
        except FileNotFoundError as exc:
            raise DataError(f"result file {p} does not exist.") from exc
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise DataError(f"{p} is not a valid medval result.json ({exc}).") from exc

    def write_json(self, path: str | Path) -> str:
        """Write canonical JSON; return its SHA-256."""
        text = self.to_json().encode("utf-8")
        Path(path).write_bytes(text)
        return hashlib.sha256(text).hexdigest()

    def write_report(
        self, out_dir: str | Path, *, checklist: str = "claim-2024", answers: Any = None
    ) -> Path:
        """Write ``result.json`` and a self-contained ``report.html`` into ``out_dir``.

        ``checklist`` is the checklist the report fills (``"claim-2024"`` or
        ``"tripod-ai-2024"``); ``answers`` its human items
        (:func:`medval.checklist.read_answers`).
        """
        from medval.report import write_outputs

        return write_outputs(self, Path(out_dir), checklist=checklist, answers=answers).report
