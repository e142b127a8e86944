"""Honest gating over time: pre-registration, the test-set usage ledger, the reusable holdout.

Import-light (stdlib, numpy and medval's gate): the CLI reads registrations and
ledgers without torch or pandas.
"""

from medval.integrity._anchor import (
    LEDGER_PROVENANCE_KEY,
    anchor_from_provenance,
    ledger_anchor,
)
from medval.integrity._deviations import Deviation, deviations
from medval.integrity._entry import EVALUATION_KINDS, LedgerEntry
from medval.integrity._holdout import HoldoutOutcome, answer_criteria, reference_key
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
from medval.integrity._protocol import PROTOCOL_SECTIONS, canonical_text, protocol, protocol_sha256
from medval.integrity._registration import (
    REGISTRATION_FILE,
    REGISTRATION_FORMAT,
    Registration,
    check_unregistered,
    read_registration,
    registration_path,
    write_registration,
)
from medval.integrity._splits import SplitManifest, digest_cases, split_manifests
from medval.integrity._usage import DEFAULT_USAGE_BUDGET, Usage, ledger_table, usage

__all__ = [
    "DEFAULT_USAGE_BUDGET",
    "EVALUATION_KINDS",
    "LEDGER_FILE",
    "LEDGER_PROVENANCE_KEY",
    "PROTOCOL_SECTIONS",
    "REGISTRATION_FILE",
    "REGISTRATION_FORMAT",
    "Deviation",
    "HoldoutOutcome",
    "Ledger",
    "LedgerCheck",
    "LedgerEntry",
    "Registration",
    "SplitManifest",
    "Usage",
    "anchor_from_provenance",
    "answer_criteria",
    "append_entry",
    "canonical_text",
    "check_unregistered",
    "deviations",
    "digest_cases",
    "ledger_anchor",
    "ledger_path",
    "ledger_table",
    "protocol",
    "protocol_sha256",
    "read_ledger",
    "read_registration",
    "reference_key",
    "registration_path",
    "split_manifests",
    "start_ledger",
    "usage",
    "verify_ledger",
    "write_registration",
]
