"""Honest gating over time: pre-registration, the test-set usage ledger, the reusable holdout.

Import-light (stdlib, numpy and medval's gate): the CLI reads registrations and
ledgers without torch or pandas.
"""

__all__: list[str] = []
