"""Honest gating over time: pre-registration, the test-set usage ledger, the reusable holdout.

Import-light (stdlib, numpy and medval's gate): the CLI reads registrations and
ledgers without torch or pandas.
"""

from medval.integrity._deviations import Deviation, deviations
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

__all__: list[str] = [
    "PROTOCOL_SECTIONS",
    "REGISTRATION_FILE",
    "REGISTRATION_FORMAT",
    "Deviation",
    "Registration",
    "SplitManifest",
    "canonical_text",
    "check_unregistered",
    "deviations",
    "digest_cases",
    "protocol",
    "protocol_sha256",
    "read_registration",
    "registration_path",
    "split_manifests",
    "write_registration",
]
