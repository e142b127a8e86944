"""One entry of the test-set usage ledger: a value type that checks itself.

An entry holds hashes, key names and a verdict, never a path or a patient
value: a hash must be 64 lowercase hex digits, and a key name (a result key,
a split, a string in the holdout state) may not contain a path separator, a
control character or a leading ``~``. So a ledger can travel with the data and
be shown to anyone who may see the test set's size.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import hmac
import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from medval._errors import InputError
from medval._result import integrity

__all__ = [
    "ENTRY_KINDS",
    "EVALUATION_KINDS",
    "GENESIS_PREV_SHA256",
    "LEDGER_FORMAT",
    "LEDGER_VERDICTS",
    "LedgerEntry",
    "utc_stamp",
]

#: The ledger's format; its SHA-256 is the ``prev_sha256`` of the genesis entry.
LEDGER_FORMAT = "medval.ledger/1"
#: ``prev_sha256`` of entry 0: a fixed value, so a ledger starts only one way.
GENESIS_PREV_SHA256 = hashlib.sha256(LEDGER_FORMAT.encode("ascii")).hexdigest()
#: ``registered``: the genesis (``medval register``); ``evaluated``: a
#: ``medval validate`` run; ``judged``: ``medval gate``; ``rejudged``:
#: ``medval gate --rejudge``.
ENTRY_KINDS = ("registered", "evaluated", "judged", "rejudged", "reregistered")
#: The kinds that count as a use of the test set.
EVALUATION_KINDS = ("evaluated", "judged", "rejudged")
#: Gate statuses an entry may record; ``none`` for the genesis or an ungated run.
LEDGER_VERDICTS = ("pass", "fail", "warn", "error", "none")

_HEX64 = re.compile(r"[0-9a-f]{64}")
_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")
_NOT_NAME = re.compile(r"[/\\\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_NAME_LIMIT = 200
# The fields the entry's SHA-256 covers, in the order the file shows them.
_CONTENT = (
    "seq", "time", "kind", "protocol_sha256", "registration_sha256", "model_sha256",
    "verdict", "revealed", "splits", "holdout", "prev_sha256",
)  # fmt: skip
_FIELDS = (*_CONTENT, "entry_sha256", "hmac_sha256")


def utc_stamp(now: dt.datetime | None = None) -> str:
    """``now`` (default: the clock) as ISO-8601 UTC to the second, e.g. ``2026-11-02T10:15:30Z``.

    Raises
    ------
    InputError
        A naive ``now`` (no time zone): its UTC time is unknown.
    """
    if now is None:
        now = dt.datetime.now(dt.UTC)
    if now.tzinfo is None or now.utcoffset() is None:
        raise InputError(
            f"a ledger time needs a time zone; got the naive {now.isoformat()}. "
            "Pass datetime.now(datetime.UTC)."
        )
    return now.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _hash(value: object, field: str, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    if not isinstance(value, str) or not _HEX64.fullmatch(value):
        raise InputError(
            f"ledger field {field} must be a SHA-256 (64 lowercase hex digits"
            f"{', or None' if optional else ''}); got {_show(value)}. The ledger stores "
            "hashes only, never a file name or a value from the data."
        )


def _name(value: object, field: str) -> None:
    if (
        not isinstance(value, str)
        or not value
        or len(value) > _NAME_LIMIT
        or value.startswith("~")
        or _NOT_NAME.search(value)
    ):
        raise InputError(
            f"ledger field {field} takes key names (1 to {_NAME_LIMIT} printable characters, "
            f"no '/', '\\', control character or leading '~'); got {_show(value)}. "
            "Pass the result key or split name, never a path."
        )


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _names(value: object, field: str) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise InputError(f"ledger field {field} must be a list of key names; got {_show(value)}.")
    for item in value:
        _name(item, field)
    return tuple(value)


def _holdout(value: object, where: str = "holdout") -> Any:
    """A JSON-native copy of the holdout state; every string a key name."""
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            _name(k, f"{where} key")
            out[k] = _holdout(v, f"{where}.{k}")
        return out
    if isinstance(value, (list, tuple)):
        return [_holdout(v, where) for v in value]
    if isinstance(value, str):
        _name(value, where)
        return value
    if isinstance(value, float) and not math.isfinite(value):
        raise InputError(f"ledger field {where} must be finite; got {value}.")
    if value is None or isinstance(value, (bool, int, float)):
        return value
    raise InputError(
        f"ledger field {where} must be JSON-native (dict, list, str, int, float, bool, None); "
        f"got {type(value).__name__}."
    )


@dataclasses.dataclass(frozen=True)
class LedgerEntry:
    """One line of ``medval-ledger.jsonl``.

    Attributes
    ----------
    seq : int
        0 for the genesis, then 1, 2, ... in file order.
    time : str
        ISO-8601 UTC to the second (:func:`utc_stamp`).
    kind : str
        One of :data:`ENTRY_KINDS`.
    protocol_sha256 : str
        The registered protocol's hash (given by the caller).
    registration_sha256 : str or None
        The registration's hash; the genesis entry only.
    model_sha256 : str or None
        The evaluated model's hash; None for the genesis or a run without one.
    verdict : str
        The gate status, one of :data:`LEDGER_VERDICTS`.
    revealed : tuple of str
        What the run showed: result keys whose numbers were revealed, or
        e.g. ``"thresholdout answers"``.
    splits : tuple of str
        The evaluated splits.
    holdout : dict or None
        The reusable-holdout state its caller keeps (JSON-native).
    prev_sha256 : str
        ``entry_sha256`` of entry ``seq - 1``; :data:`GENESIS_PREV_SHA256` for seq 0.
    entry_sha256 : str
        SHA-256 of the canonical JSON (:func:`medval._result.canonical_json`)
        of every field above.
    hmac_sha256 : str or None
        HMAC-SHA256 (RFC 2104) of the same bytes with the signing key, when
        one was set: only a holder of the key can re-chain edited entries.

    Raises
    ------
    InputError
        A field of the wrong type, a hash that is not 64 hex digits, a name
        with a path separator, an ``entry_sha256`` that does not match.
    """

    seq: int
    time: str
    kind: str
    protocol_sha256: str
    registration_sha256: str | None
    model_sha256: str | None
    verdict: str
    revealed: tuple[str, ...]
    splits: tuple[str, ...]
    holdout: dict[str, Any] | None
    prev_sha256: str
    entry_sha256: str
    hmac_sha256: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.seq, bool) or not isinstance(self.seq, int) or self.seq < 0:
            raise InputError(f"ledger field seq must be an int >= 0; got {_show(self.seq)}.")
        if not isinstance(self.time, str) or not _TIME.fullmatch(self.time):
            raise InputError(
                f"ledger field time must read YYYY-MM-DDTHH:MM:SSZ; got {_show(self.time)}."
            )
        if self.kind not in ENTRY_KINDS:
            raise InputError(f"ledger field kind must be one of {ENTRY_KINDS}; got {self.kind!r}.")
        if self.verdict not in LEDGER_VERDICTS:
            raise InputError(
                f"ledger field verdict must be one of {LEDGER_VERDICTS}; got {self.verdict!r}."
            )
        _hash(self.protocol_sha256, "protocol_sha256")
        _hash(self.registration_sha256, "registration_sha256", optional=True)
        _hash(self.model_sha256, "model_sha256", optional=True)
        _hash(self.prev_sha256, "prev_sha256")
        _hash(self.entry_sha256, "entry_sha256")
        _hash(self.hmac_sha256, "hmac_sha256", optional=True)
        object.__setattr__(self, "revealed", _names(self.revealed, "revealed"))
        object.__setattr__(self, "splits", _names(self.splits, "splits"))
        if self.holdout is not None:
            if not isinstance(self.holdout, Mapping):
                raise InputError(
                    f"ledger field holdout must be a dict or None; got {_show(self.holdout)}."
                )
            object.__setattr__(self, "holdout", _holdout(self.holdout))

    def content(self) -> dict[str, Any]:
        """The fields ``entry_sha256`` covers, JSON-native."""
        data = {f: getattr(self, f) for f in _CONTENT}
        return {**data, "revealed": list(self.revealed), "splits": list(self.splits)}

    def content_matches(self) -> bool:
        """Whether ``entry_sha256`` is the SHA-256 of :meth:`content`."""
        return hmac.compare_digest(self.entry_sha256, integrity(self.content())["content_sha256"])

    def signature_matches(self, signing_key: bytes) -> bool:
        """Whether ``hmac_sha256`` is present and is the HMAC of :meth:`content` with the key."""
        if self.hmac_sha256 is None:
            return False
        expected = integrity(self.content(), signing_key=signing_key)["hmac_sha256"]
        return hmac.compare_digest(self.hmac_sha256, expected)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of the entry's line (``hmac_sha256`` left out when unsigned)."""
        data = {**self.content(), "entry_sha256": self.entry_sha256}
        if self.hmac_sha256 is not None:
            data["hmac_sha256"] = self.hmac_sha256
        return data

    def to_line(self) -> bytes:
        """One line of the ledger: compact ASCII JSON, fields in file order, ``\\n``-ended."""
        return (json.dumps(self.to_dict(), ensure_ascii=True, allow_nan=False) + "\n").encode()

    @classmethod
    def sealed(cls, *, signing_key: bytes | None, **content: Any) -> LedgerEntry:
        """A new entry from its content fields, with its SHA-256 (and HMAC with a key)."""
        draft = cls(**content, entry_sha256="0" * 64)  # checks the content first
        block = integrity(draft.content(), signing_key=signing_key)
        return dataclasses.replace(
            draft, entry_sha256=block["content_sha256"], hmac_sha256=block.get("hmac_sha256")
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LedgerEntry:
        """Inverse of :meth:`to_dict`; refuses a missing or unknown field.

        Raises
        ------
        InputError
            A missing, unknown or malformed field.
        """
        missing = [f for f in _FIELDS[:-1] if f not in data]
        unknown = sorted(set(data) - set(_FIELDS))
        if missing or unknown:
            raise InputError(f"missing fields {missing}, unknown fields {unknown}")
        fields: dict[str, Any] = {f: data.get(f) for f in _FIELDS}
        return cls(**fields)
