"""Honest gating over time: pre-registration, the test-set usage ledger, the reusable holdout.

Import-light (stdlib, numpy and medval's gate): the CLI reads registrations and
ledgers without torch or pandas.
"""

from medval.integrity._anchor import (
    LEDGER_PROVENANCE_KEY,
    anchor_from_provenance,
    ledger_anchor,
)
from medval.integrity._entry import EVALUATION_KINDS, LedgerEntry
from medval.integrity._ledger import (
    LEDGER_FILE,
    Ledger,
    LedgerCheck,
    append_entry,
    ledger_path,
    read_ledger,
    start_ledger,
    verify_ledger,
)
from medval.integrity._usage import DEFAULT_USAGE_BUDGET, Usage, ledger_table, usage

__all__: list[str] = [
    "DEFAULT_USAGE_BUDGET",
    "EVALUATION_KINDS",
    "LEDGER_FILE",
    "LEDGER_PROVENANCE_KEY",
    "Ledger",
    "LedgerCheck",
    "LedgerEntry",
    "Usage",
    "anchor_from_provenance",
    "append_entry",
    "ledger_anchor",
    "ledger_path",
    "ledger_table",
    "read_ledger",
    "start_ledger",
    "usage",
    "verify_ledger",
]
