"""Reading ledger lines and checking their chain: each problem one sentence."""

from __future__ import annotations

import json
from collections.abc import Sequence

from medval._errors import InputError
from medval.integrity._entry import GENESIS_PREV_SHA256, LedgerEntry

__all__ = ["chain_problems", "parse_lines"]

Numbered = list[tuple[int, LedgerEntry]]


def parse_lines(data: bytes) -> tuple[Numbered, list[str]]:
    """The entries of a ledger file's bytes, numbered by line (from 1), and its malformed lines."""
    entries: Numbered = []
    problems: list[str] = []
    if not data:
        return entries, ["the ledger is empty: its genesis entry (seq 0) is missing"]
    lines = data.split(b"\n")
    if lines[-1]:
        problems.append(
            f"line {len(lines)} has no line end: a write was cut off or the file was edited"
        )
    else:
        lines.pop()
    for number, raw in enumerate(lines, start=1):
        try:
            data_ = json.loads(raw.decode("utf-8"))
            if not isinstance(data_, dict):
                raise InputError(f"a JSON {type(data_).__name__}, not an object")
            entries.append((number, LedgerEntry.from_dict(data_)))
        except (UnicodeDecodeError, json.JSONDecodeError, InputError, TypeError) as exc:
            reason = str(exc).splitlines()[0][:160]
            problems.append(f"line {number} is not a ledger entry ({reason})")
    return entries, problems


def _seq_ranges(seqs: Sequence[int]) -> str:
    """``[3, 4, 5, 9]`` as ``"3-5, 9"``."""
    parts: list[str] = []
    start = prev = seqs[0]
    for s in [*seqs[1:], None]:
        if s is not None and s == prev + 1:
            prev = s
            continue
        parts.append(str(start) if start == prev else f"{start}-{prev}")
        if s is not None:
            start = prev = s
    return ", ".join(parts)


def _order_problems(entries: Numbered) -> list[str]:
    problems = []
    seen: dict[int, int] = {}
    for i, (line, e) in enumerate(entries):
        if e.seq in seen:
            problems.append(
                f"line {line} repeats seq {e.seq} (first on line {seen[e.seq]}): an entry "
                "was duplicated or forged"
            )
            continue
        seen[e.seq] = line
        if i and e.seq < entries[i - 1][1].seq:
            problems.append(
                f"line {line} holds seq {e.seq} after seq {entries[i - 1][1].seq}: entries "
                "were reordered"
            )
    missing = sorted(set(range(max(seen, default=-1) + 1)) - set(seen))
    if 0 in missing:
        problems.append(
            "the genesis entry (seq 0, written by medval register) is missing: entries were "
            "removed from the start"
        )
        missing.remove(0)
    if missing:
        problems.append(
            f"seq {_seq_ranges(missing)} missing: {len(missing)} "
            f"entr{'y was' if len(missing) == 1 else 'ies were'} removed from the ledger"
        )
    return problems


def _entry_problems(line: int, e: LedgerEntry, prev: LedgerEntry | None) -> list[str]:
    problems = []
    where = f"line {line} (seq {e.seq})"
    if not e.content_matches():
        problems.append(
            f"{where} was edited: its content does not match its entry_sha256 "
            f"({e.entry_sha256[:16]}...)"
        )
    if (e.seq == 0) != (e.kind == "registered"):
        problems.append(f"{where} is of kind {e.kind!r}: only seq 0, the genesis, is 'registered'")
    if e.seq == 0 and e.prev_sha256 != GENESIS_PREV_SHA256:
        problems.append(f"{where}: the genesis entry does not carry the genesis prev_sha256")
    elif prev is not None and e.prev_sha256 != prev.entry_sha256:
        problems.append(
            f"{where} does not link to seq {prev.seq} (prev_sha256 "
            f"{e.prev_sha256[:16]}... != {prev.entry_sha256[:16]}...): the ledger was "
            "rewritten from there"
        )
    return problems


def _signature_problems(entries: Numbered, signing_key: bytes | None) -> list[str]:
    if signing_key is None:
        signed = [line for line, e in entries if e.hmac_sha256 is not None]
        unsigned = [line for line, e in entries if e.hmac_sha256 is None]
        if signed and unsigned:
            return [
                f"lines {_seq_ranges(unsigned)} carry no HMAC while lines "
                f"{_seq_ranges(signed)} do: a signature was stripped or an entry was "
                "written without the key (set MEDVAL_SIGNING_KEY to check them)"
            ]
        return []
    problems = []
    for line, e in entries:
        if e.hmac_sha256 is None:
            problems.append(
                f"line {line} (seq {e.seq}) carries no HMAC, but a signing key is set: it was "
                "written without the key, or its signature was stripped"
            )
        elif not e.signature_matches(signing_key):
            problems.append(
                f"line {line} (seq {e.seq}): its HMAC does not match the signing key: it was "
                "signed with another key, or written by someone without the key"
            )
    return problems


def _anchor_problems(entries: Numbered, head: tuple[int, str]) -> list[str]:
    seq, sha = head
    by_seq = {e.seq: e for _, e in entries}
    if seq in by_seq:
        if by_seq[seq].entry_sha256 != sha:
            return [
                f"the result's anchor names seq {seq} with SHA-256 {sha[:16]}..., but the "
                f"ledger's seq {seq} is {by_seq[seq].entry_sha256[:16]}...: the ledger was "
                "rewritten since that run"
            ]
        return []
    last = max(by_seq, default=None)
    if last is None or seq > last:
        return [
            f"the result's anchor names seq {seq}, but the ledger ends at seq {last}: its "
            "newest entries were removed (truncated) since that run"
        ]
    return []  # a gap in the middle, reported by the chain check


def chain_problems(
    entries: Numbered,
    *,
    signing_key: bytes | None,
    expected_head: tuple[int, str] | None,
) -> list[str]:
    """Every problem of a parsed ledger's chain, signatures and anchor.

    Links are checked by ``seq`` (entry ``n`` against entry ``n - 1``), so a
    reordering is reported once, as a reordering, not as a cascade of links.
    """
    problems = _order_problems(entries) if entries else []
    by_seq: dict[int, LedgerEntry] = {}
    for _, e in entries:
        by_seq.setdefault(e.seq, e)
    for line, e in entries:
        problems += _entry_problems(line, e, by_seq.get(e.seq - 1))
    problems += _signature_problems(entries, signing_key)
    if expected_head is not None:
        problems += _anchor_problems(entries, expected_head)
    return problems
