"""How often a test set has been used, and whether its numbers still mean what they say.

Every look at a test set's numbers can steer the next model toward that
test set; after enough adaptive looks its estimates overstate performance on
new data (Dwork et al. 2015; Blum & Hardt 2015). The usage summary counts
the looks the ledger recorded and warns past a budget.

References
----------
Dwork, C., Feldman, V., Hardt, M., Pitassi, T., Reingold, O., Roth, A.
(2015). The reusable holdout: preserving validity in adaptive data
analysis. Science 349(6248), 636-638.
Blum, A., Hardt, M. (2015). The Ladder: a reliable leaderboard for machine
learning competitions. ICML, PMLR 37, 1006-1014.
"""

from __future__ import annotations

import dataclasses
from collections import Counter

from medval._errors import InputError
from medval.integrity._entry import EVALUATION_KINDS
from medval.integrity._ledger import Ledger

__all__ = ["DEFAULT_USAGE_BUDGET", "USAGE_DOC", "Usage", "ledger_table", "usage"]

#: Uses of a test set before the report warns, when neither the spec's
#: ``gate.usage_budget`` nor the registration sets one.
DEFAULT_USAGE_BUDGET = 20

#: Where the documentation explains the budget (cited by :attr:`Usage.text`).
USAGE_DOC = "docs/gate-integrity.md"


@dataclasses.dataclass(frozen=True)
class Usage:
    """The usage of one test set, from its ledger.

    Attributes
    ----------
    n_evaluations : int
        Entries of kind ``evaluated``, ``judged`` or ``rejudged`` (not the genesis).
    n_models : int
        Distinct model hashes among them (runs without one not counted).
    n_protocols : int
        Distinct protocol hashes among them.
    first_time, last_time : str or None
        The first and the last use (ISO-8601 UTC); None before any.
    budget : int
        Uses before the report warns.
    over_budget : bool
        ``n_evaluations > budget``.
    by_kind : dict of str to int
        Uses per kind, every kind of :data:`EVALUATION_KINDS` present.
    registered_time : str
        The genesis entry's time.
    text : str
        One sentence for the report.
    """

    n_evaluations: int
    n_models: int
    n_protocols: int
    first_time: str | None
    last_time: str | None
    budget: int
    over_budget: bool
    by_kind: dict[str, int]
    registered_time: str
    text: str


def _times(n: int) -> str:
    return {1: "once", 2: "twice"}.get(n, f"{n} times")


def _models(n: int) -> str:
    return "" if n == 0 else " by one model" if n == 1 else f" by {n} distinct models"


def usage(ledger: Ledger, *, budget: int) -> Usage:
    """Count the uses a verified ledger records (:func:`medval.integrity.read_ledger`).

    Parameters
    ----------
    ledger : Ledger
        A ledger read (and so verified) by ``read_ledger``.
    budget : int
        Uses of the test set before the report warns (``gate.usage_budget``), >= 1.

    Returns
    -------
    Usage
        The counts and one sentence, e.g. "this test set has been evaluated
        23 times by 7 distinct models since 2026-11-02; past the budget of 20:
        ...".

    Raises
    ------
    InputError
        A budget that is not an integer >= 1.
    """
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
        raise InputError(
            f"the usage budget must be an integer >= 1 (uses of the test set before the "
            f"report warns); got {budget!r}."
        )
    uses = ledger.evaluations
    n = len(uses)
    n_models = len({e.model_sha256 for e in uses if e.model_sha256 is not None})
    counts = Counter(e.kind for e in uses)
    first = uses[0].time if uses else None
    registered = ledger.entries[0].time
    if n == 0:
        text = (
            f"this test set has not been evaluated since its registration on "
            f"{registered[:10]} (budget: {budget} evaluations)"
        )
    else:
        said = (
            f"this test set has been evaluated {_times(n)}{_models(n_models)} since "
            f"{str(first)[:10]}"
        )
        if n > budget:
            text = (
                f"{said}; past the budget of {budget}: its numbers may now overstate "
                "performance on new data, since what was learned from them shaped the models "
                f"evaluated after ({USAGE_DOC})"
            )
        else:
            text = f"{said} ({budget - n} of the budget of {budget} left)"
    return Usage(
        n_evaluations=n,
        n_models=n_models,
        n_protocols=len({e.protocol_sha256 for e in uses}),
        first_time=first,
        last_time=uses[-1].time if uses else None,
        budget=budget,
        over_budget=n > budget,
        by_kind={k: counts.get(k, 0) for k in EVALUATION_KINDS},
        registered_time=registered,
        text=text,
    )


def ledger_table(ledger: Ledger) -> str:
    """The entries as a plain-text table: hashes shortened, key names counted, no paths."""
    rows = [("seq", "time", "kind", "verdict", "model", "protocol", "splits", "revealed")]
    for e in ledger.entries:
        rows.append((
            str(e.seq), e.time, e.kind, e.verdict,
            "-" if e.model_sha256 is None else e.model_sha256[:12],
            e.protocol_sha256[:12], ",".join(e.splits) or "-", str(len(e.revealed)),
        ))  # fmt: skip
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
