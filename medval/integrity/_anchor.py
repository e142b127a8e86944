"""The ledger head a ``result.json`` records: the anchor that detects a truncated ledger.

A hash chain cannot show that its newest entries were removed. So each run
records, in ``result.provenance["ledger"]``, the ledger's head right after its
own entry::

    {"file": "medval-ledger.jsonl", "head_seq": 7, "head_sha256": "<64 hex digits>"}

``medval ledger verify LEDGER --result result.json`` then checks that the
ledger still holds that entry, unchanged. The result's own digest (and HMAC)
protects the anchor.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from medval._errors import InputError
from medval.integrity._entry import LedgerEntry
from medval.integrity._ledger import LEDGER_FILE

__all__ = ["LEDGER_PROVENANCE_KEY", "anchor_from_provenance", "ledger_anchor"]

#: ``result.provenance[LEDGER_PROVENANCE_KEY]`` holds :func:`ledger_anchor` of
#: the run's own entry.
LEDGER_PROVENANCE_KEY = "ledger"


def ledger_anchor(entry: LedgerEntry) -> dict[str, Any]:
    """The head a ``result.json`` records (``provenance["ledger"]``) after its own entry."""
    return {"file": LEDGER_FILE, "head_seq": entry.seq, "head_sha256": entry.entry_sha256}


def anchor_from_provenance(provenance: Mapping[str, Any], *, source: str) -> tuple[int, str]:
    """``(head_seq, head_sha256)`` recorded by a result (see :data:`LEDGER_PROVENANCE_KEY`).

    Raises
    ------
    InputError
        The result records no ledger head, or a malformed one.
    """
    block = provenance.get(LEDGER_PROVENANCE_KEY)
    if block is None:
        raise InputError(
            f"{source} records no ledger head (provenance.{LEDGER_PROVENANCE_KEY}): it was not "
            "evaluated on a registered test set, or by a medval without the ledger. Verify "
            "the ledger without --result."
        )
    seq = block.get("head_seq") if isinstance(block, Mapping) else None
    sha = block.get("head_sha256") if isinstance(block, Mapping) else None
    if isinstance(seq, bool) or not isinstance(seq, int) or not isinstance(sha, str):
        raise InputError(
            f"{source}: provenance.{LEDGER_PROVENANCE_KEY} must hold head_seq (int) and "
            f"head_sha256 (str); got {block!r}. Run medval validate again."
        )
    return seq, sha
