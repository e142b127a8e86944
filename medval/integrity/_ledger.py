"""The test-set usage ledger: an append-only, hash-chained record of every look at a test set.

``medval-ledger.jsonl`` lives beside the registration, with the data. Each
line is one :class:`LedgerEntry`; entry ``n`` carries the SHA-256 of entry
``n - 1``, so an entry edited, removed from the middle or moved breaks the
chain, and :func:`verify_ledger` names it.

What a hash chain cannot see, said plainly:

* Removing the newest entries leaves a shorter, valid chain. Only an anchor
  kept elsewhere detects it: every ``result.json`` records the head of the
  ledger after its own entry (``provenance["ledger"]``,
  :func:`medval.integrity.ledger_anchor`), and ``expected_head`` checks it.
* Anyone can recompute the SHA-256 of every entry and re-chain an edited
  ledger. The HMAC (``MEDVAL_SIGNING_KEY``) stops that only while the key is
  secret from whoever can write the file.

References
----------
Haber, S., Stornetta, W. S. (1991). How to time-stamp a digital document.
Journal of Cryptology 3(2), 99-111 (linked hash chains).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from medval._errors import InputError
from medval.integrity._entry import (
    EVALUATION_KINDS,
    GENESIS_PREV_SHA256,
    LedgerEntry,
    utc_stamp,
)
from medval.integrity._verify import chain_problems, parse_lines

__all__ = [
    "LEDGER_FILE",
    "Ledger",
    "LedgerCheck",
    "append_entry",
    "ledger_path",
    "read_ledger",
    "start_ledger",
    "verify_ledger",
]

#: The ledger's file name, beside the registration.
LEDGER_FILE = "medval-ledger.jsonl"
_FIX = (
    "`medval ledger verify {path}` lists every problem. A ledger is append-only: restore it "
    "from a backup, or register a new test set; never edit it by hand"
)


@dataclasses.dataclass(frozen=True)
class LedgerCheck:
    """The outcome of :func:`verify_ledger`.

    Attributes
    ----------
    ok : bool
        No problem found.
    problems : tuple of str
        One sentence per problem: the line, the entry and what it means.
    n_entries : int
        Entries read (the genesis included).
    head_seq, head_sha256 : int or None, str or None
        The last line's entry (None for an empty or unreadable ledger).
    """

    ok: bool
    problems: tuple[str, ...]
    n_entries: int
    head_seq: int | None
    head_sha256: str | None


@dataclasses.dataclass(frozen=True)
class Ledger:
    """A ledger read and verified by :func:`read_ledger`.

    Attributes
    ----------
    path : Path
        The file (kept in memory only; never written into an entry).
    entries : tuple of LedgerEntry
        In file order, the genesis first.
    """

    path: Path
    entries: tuple[LedgerEntry, ...]

    @property
    def head(self) -> LedgerEntry:
        """The newest entry."""
        return self.entries[-1]

    @property
    def evaluations(self) -> tuple[LedgerEntry, ...]:
        """The entries that used the test set (every kind but the genesis)."""
        return tuple(e for e in self.entries if e.kind in EVALUATION_KINDS)


def ledger_path(path: str | Path) -> Path:
    """The ledger file: ``path`` itself, or :data:`LEDGER_FILE` inside a folder."""
    p = Path(path).expanduser()
    return p / LEDGER_FILE if p.is_dir() else p


def _check(
    data: bytes, signing_key: bytes | None, expected_head: tuple[int, str] | None
) -> tuple[LedgerCheck, list[LedgerEntry]]:
    entries, problems = parse_lines(data)
    problems += chain_problems(entries, signing_key=signing_key, expected_head=expected_head)
    last = entries[-1][1] if entries else None
    check = LedgerCheck(
        ok=not problems,
        problems=tuple(problems),
        n_entries=len(entries),
        head_seq=None if last is None else last.seq,
        head_sha256=None if last is None else last.entry_sha256,
    )
    return check, [e for _, e in entries]


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise InputError(
            f"no test-set ledger at {path}: `medval register` starts one beside the registration."
        ) from exc
    except OSError as exc:
        raise InputError(f"the ledger {path} cannot be read ({exc.strerror}).") from exc


def verify_ledger(
    path: str | Path,
    *,
    signing_key: bytes | None,
    expected_head: tuple[int, str] | None = None,
) -> LedgerCheck:
    """Check a ledger's chain, and its head against a result's anchor.

    Detects an edited entry (its SHA-256), an entry removed from the middle
    (a gap in ``seq``), reordered or duplicated entries, a malformed or
    partly written line, a missing genesis, a missing or wrong HMAC when
    ``signing_key`` is given (and a mix of signed and unsigned entries without
    it). Removing the newest entries is detected only against
    ``expected_head``, the ``(head_seq, head_sha256)`` a ``result.json``
    recorded (:func:`medval.integrity.anchor_from_provenance`): a hash chain alone cannot.

    Parameters
    ----------
    path : str or Path
        The ledger file or its folder.
    signing_key : bytes or None
        The key the ledger was signed with (``medval._result.signing_key()``).
    expected_head : (int, str), optional
        An entry the ledger must still hold, unchanged.

    Raises
    ------
    InputError
        No ledger at ``path``, or one that cannot be read.
    """
    p = ledger_path(path)
    return _check(_read_bytes(p), signing_key, expected_head)[0]


def _refuse(path: Path, check: LedgerCheck, what: str) -> InputError:
    more = f" (and {len(check.problems) - 1} more)" if len(check.problems) > 1 else ""
    return InputError(
        f"the test-set ledger {path} is not intact, so {what}: {check.problems[0]}{more}. "
        + _FIX.format(path=path)
        + "."
    )


def read_ledger(path: str | Path, *, signing_key: bytes | None) -> Ledger:
    """Read and verify a ledger (:func:`verify_ledger`); refuse a broken one.

    Raises
    ------
    InputError
        No ledger, or one whose chain is broken (the message names the first
        problem and the fix).
    """
    p = ledger_path(path)
    check, entries = _check(_read_bytes(p), signing_key, None)
    if not check.ok:
        raise _refuse(p, check, "its usage cannot be trusted")
    return Ledger(path=p, entries=tuple(entries))


@contextlib.contextmanager
def _locked(path: Path, flags: int) -> Iterator[int]:
    """``path`` opened with ``flags`` under an exclusive ``flock`` (released on close)."""
    if sys.platform == "win32":  # pragma: no cover
        raise InputError("the test-set ledger needs POSIX file locks (Linux, macOS).")
    import fcntl

    fd = os.open(path, flags, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield fd
    finally:
        os.close(fd)  # releases the lock


def _write_line(fd: int, entry: LedgerEntry) -> None:
    line = entry.to_line()
    if os.write(fd, line) != len(line):  # pragma: no cover - a full disk
        raise InputError("the ledger line was written only in part (disk full?).")
    os.fsync(fd)


def start_ledger(
    path: str | Path,
    *,
    protocol_sha256: str,
    registration_sha256: str,
    signing_key: bytes | None,
    now: dt.datetime | None = None,
) -> LedgerEntry:
    """Start a ledger with its genesis entry (``kind="registered"``, seq 0).

    Parameters
    ----------
    path : str or Path
        The ledger file, or the registration's folder (:data:`LEDGER_FILE` inside).
    protocol_sha256, registration_sha256 : str
        SHA-256 hex digests of the registered protocol and the registration.
    signing_key : bytes or None
        Sign every entry (HMAC-SHA256); later appends must use the same key.
    now : datetime, optional
        The time to record (aware); default the clock.

    Raises
    ------
    InputError
        The file exists already (a test set is registered once), or a hash
        is not 64 hex digits.
    """
    p = ledger_path(path)
    entry = LedgerEntry.sealed(
        signing_key=signing_key, seq=0, time=utc_stamp(now), kind="registered",
        protocol_sha256=protocol_sha256, registration_sha256=registration_sha256,
        model_sha256=None, verdict="none", revealed=(), splits=(), holdout=None,
        prev_sha256=GENESIS_PREV_SHA256,
    )  # fmt: skip
    try:
        with _locked(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND) as fd:
            _write_line(fd, entry)
    except FileExistsError as exc:
        raise InputError(
            f"a test-set ledger already exists at {p}: a test set is registered once and its "
            "ledger is never restarted (that would erase its usage). Keep appending to it, or "
            "register a new test set in another folder."
        ) from exc
    return entry


def append_entry(
    path: str | Path,
    *,
    kind: str,
    protocol_sha256: str,
    model_sha256: str | None,
    verdict: str,
    revealed: Sequence[str],
    splits: Sequence[str],
    holdout: Mapping[str, Any] | None = None,
    signing_key: bytes | None,
    now: dt.datetime | None = None,
    registration_sha256: str | None = None,
) -> LedgerEntry:
    """Append one use of the test set, under an exclusive lock; fail closed on a broken chain.

    The whole ledger is read and verified under the lock first; the line is
    written with ``O_APPEND`` and ``fsync``-ed before the lock is released,
    so concurrent runs each get their own ``seq``.

    Parameters
    ----------
    path : str or Path
        The ledger file or its folder.
    kind : {"evaluated", "judged", "rejudged"}
        ``medval validate``, ``medval gate``, ``medval gate --rejudge``.
    protocol_sha256 : str
        The registered protocol's SHA-256.
    model_sha256 : str or None
        The model's SHA-256.
    verdict : {"pass", "fail", "warn", "error", "none"}
        The gate status.
    revealed : sequence of str
        Result keys whose numbers were shown (key names, no paths).
    splits : sequence of str
        The evaluated splits.
    holdout : mapping, optional
        Reusable-holdout state to keep (JSON-native; strings are key names).
    signing_key : bytes or None
        The ledger's key; required when its entries are signed.
    now : datetime, optional
        The time to record (aware); default the clock.
    registration_sha256 : str, optional
        With ``kind="reregistered"`` only: the new registration's content
        digest (``medval register --supersede``).

    Returns
    -------
    LedgerEntry
        The entry written: record :func:`medval.integrity.ledger_anchor` of it in the result.

    Raises
    ------
    InputError
        No ledger, a broken chain (nothing is written), a signed ledger and
        no key, or a field that is not a hash or a key name.
    """
    if kind not in (*EVALUATION_KINDS, "reregistered"):
        raise InputError(
            f"append_entry records a use of the test set, kind one of {EVALUATION_KINDS}, "
            f"or 'reregistered' (medval register --supersede); got {kind!r} (the genesis "
            "entry is written by start_ledger)."
        )
    if (kind == "reregistered") != (registration_sha256 is not None):
        raise InputError("registration_sha256 is given with kind 'reregistered', and only then.")
    p = ledger_path(path)
    fields: dict[str, Any] = {
        "time": utc_stamp(now), "kind": kind, "protocol_sha256": protocol_sha256,
        "registration_sha256": registration_sha256, "model_sha256": model_sha256,
        "verdict": verdict,
        "revealed": revealed, "splits": splits,
        "holdout": None if holdout is None else dict(holdout),
    }  # fmt: skip
    LedgerEntry.sealed(signing_key=None, seq=0, prev_sha256="0" * 64, **fields)  # checks first
    try:
        with _locked(p, os.O_RDWR | os.O_APPEND) as fd:
            return _append_locked(p, fd, fields, signing_key)
    except FileNotFoundError as exc:
        raise InputError(
            f"no test-set ledger at {p}: `medval register` starts one beside the registration."
        ) from exc


def _append_locked(
    path: Path, fd: int, fields: dict[str, Any], signing_key: bytes | None
) -> LedgerEntry:
    check, entries = _check(_read_fd(fd), signing_key, None)
    if not check.ok:
        raise _refuse(path, check, "nothing was appended")
    head = entries[-1]
    if signing_key is None and head.hmac_sha256 is not None:
        raise InputError(
            f"the test-set ledger {path} is signed, but no signing key is set: set "
            "MEDVAL_SIGNING_KEY to the key it was started with; nothing was appended."
        )
    entry = LedgerEntry.sealed(
        signing_key=signing_key, seq=head.seq + 1, prev_sha256=head.entry_sha256, **fields
    )
    _write_line(fd, entry)
    return entry


def _read_fd(fd: int) -> bytes:
    chunks = []
    offset = 0
    while chunk := os.pread(fd, 1 << 20, offset):
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks)
