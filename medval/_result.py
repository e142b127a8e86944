"""`ValidationResult`: every number of a validation, addressed by flat keys."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from medval._errors import DataError, InputError
from medval._types import Estimate

__all__ = [
    "INTEGRITY_KEY",
    "RESULT_SCHEMA",
    "SIGNING_KEY_ENV",
    "ValidationResult",
    "canonical_json",
    "check_integrity",
    "integrity",
    "signing_key",
    "split_prefix",
    "subgroup_key",
]

RESULT_SCHEMA = "medval.result/1"
#: ``result.json``'s top-level key holding the digest of the rest of the file
#: (``content_sha256``) and, when a key was set, its HMAC (``hmac_sha256``).
INTEGRITY_KEY = "integrity"
#: The environment variable holding the key that signs ``result.json``
#: (HMAC-SHA256); the key itself is never written anywhere.
SIGNING_KEY_ENV = "MEDVAL_SIGNING_KEY"

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


def signing_key(environ: Mapping[str, str] | None = None) -> bytes | None:
    """The key of :data:`SIGNING_KEY_ENV` (UTF-8 bytes); None when unset or empty."""
    value = (os.environ if environ is None else environ).get(SIGNING_KEY_ENV)
    return value.encode("utf-8") if value else None


def _content(data: Mapping[str, Any]) -> bytes:
    """The canonical bytes the digest covers: the whole result but its integrity block."""
    try:
        return canonical_json({k: v for k, v in data.items() if k != INTEGRITY_KEY}).encode()
    except InputError as exc:  # a hand-written NaN or an unknown type
        raise DataError(f"not a canonical medval result ({exc}).") from exc


def integrity(data: Mapping[str, Any], *, signing_key: bytes | None = None) -> dict[str, str]:
    """The integrity block of a result's JSON-native form.

    ``content_sha256``: SHA-256 of the canonical JSON of everything but the
    block itself; it detects an edit or a damaged file, not a forger (anyone
    can recompute it). ``hmac_sha256`` (with ``signing_key``): HMAC-SHA256 of
    the same bytes (RFC 2104), which only a holder of the key can produce.
    """
    content = _content(data)
    out = {"content_sha256": hashlib.sha256(content).hexdigest()}
    if signing_key:
        out["hmac_sha256"] = hmac.new(signing_key, content, hashlib.sha256).hexdigest()
    return out


def check_integrity(
    data: Mapping[str, Any],
    *,
    source: str,
    signing_key: bytes | None = None,
    required: bool = False,
) -> None:
    """Check a parsed ``result.json`` against its integrity block.

    Parameters
    ----------
    data : mapping
        The parsed JSON.
    source : str
        The file, for messages.
    signing_key : bytes, optional
        Also check the HMAC (a result without one is refused).
    required : bool, default False
        Refuse a result without an integrity block (written by medval before
        it had one, or stripped).

    Raises
    ------
    DataError
        A block that is missing (when required), malformed or does not match.
    """
    problem = integrity_problem(data, signing_key=signing_key)
    if problem == "missing":
        if required or signing_key:
            raise DataError(
                f"{source} carries no content digest ('{INTEGRITY_KEY}'): it was written by an "
                "older medval or edited, so what it says cannot be checked. Run medval validate "
                "again."
            )
        return
    if problem == "malformed":
        raise DataError(f"{source}: '{INTEGRITY_KEY}' is malformed; run medval validate again.")
    if problem == "changed":
        raise DataError(
            f"{source} was changed after medval wrote it: its content does not match its "
            f"recorded SHA-256 ({data[INTEGRITY_KEY]['content_sha256'][:16]}...). A gate judges "
            "only what medval computed; run medval validate again instead of editing the file."
        )
    if problem == "unsigned":
        raise DataError(
            f"{source} is not signed, but {SIGNING_KEY_ENV} is set: only a result written by "
            f"medval validate with that key set is accepted."
        )
    if problem == "forged":
        raise DataError(
            f"{source}: its signature does not match {SIGNING_KEY_ENV}: it was signed with "
            "another key, or written or edited by someone without the key."
        )


def integrity_problem(
    data: Mapping[str, Any], *, signing_key: bytes | None = None
) -> Literal["missing", "malformed", "changed", "unsigned", "forged"] | None:
    """What is wrong with a parsed file's integrity block (None: nothing).

    ``missing``: no block; ``malformed``: no content digest; ``changed``: the
    content does not match its digest; with a key, ``unsigned``: no HMAC, and
    ``forged``: an HMAC of another key. Callers phrase the message and the fix.
    """
    block = data.get(INTEGRITY_KEY)
    if block is None:
        return "missing"
    if not isinstance(block, Mapping) or not isinstance(block.get("content_sha256"), str):
        return "malformed"
    expected = integrity(data, signing_key=signing_key)
    if not hmac.compare_digest(block["content_sha256"], expected["content_sha256"]):
        return "changed"
    if signing_key is None:
        return None
    signature = block.get("hmac_sha256")
    if not isinstance(signature, str):
        return "unsigned"
    if not hmac.compare_digest(signature, expected["hmac_sha256"]):
        return "forged"
    return None


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

    def to_json(self, *, signing_key: bytes | None = None) -> str:
        """Canonical JSON text (sorted keys; reproducible bytes) with its integrity block.

        ``signing_key`` adds an HMAC of the content (:func:`integrity`); the
        key is not written.
        """
        data = self.to_dict()
        return canonical_json({**data, INTEGRITY_KEY: integrity(data, signing_key=signing_key)})

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
    def read_json(
        cls,
        path: str | Path,
        *,
        signing_key: bytes | None = None,
        require_integrity: bool = False,
    ) -> ValidationResult:
        """Read a ``result.json`` written by :meth:`write_json`.

        Its integrity block is checked when present (:func:`check_integrity`);
        ``require_integrity`` refuses a file without one, ``signing_key`` one
        without a matching HMAC.

        Raises
        ------
        DataError
            Missing or malformed file, or one changed since medval wrote it.
        """
        p = Path(path)
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise TypeError(f"a JSON {type(data).__name__}, not an object")
            check_integrity(
                data, source=p.name, signing_key=signing_key, required=require_integrity
            )
            return cls.from_dict(data)
        except FileNotFoundError as exc:
            raise DataError(f"result file {p} does not exist.") from exc
        except IsADirectoryError as exc:
            raise DataError(
                f"result file {p} is a folder; pass the result.json inside it."
            ) from exc
        except OSError as exc:
            raise DataError(
                f"result file {p} cannot be read ({type(exc).__name__}, errno {exc.errno})."
            ) from exc
        except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError) as exc:
            raise DataError(f"{p} is not a valid medval result.json ({exc}).") from exc

    def write_json(self, path: str | Path, *, signing_key: bytes | None = None) -> str:
        """Write canonical JSON (signed with ``signing_key``); return its SHA-256."""
        text = self.to_json(signing_key=signing_key).encode("utf-8")
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
