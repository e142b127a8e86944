"""The checklist data types: items, checklists, answers and filled statuses."""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

__all__ = [
    "CLASSES",
    "STATUSES",
    "Answer",
    "Checklist",
    "Evidence",
    "Item",
    "ItemStatus",
    "Status",
]

Status = Literal["reported", "partial", "missing", "not_applicable"]
#: Every status an item can have; ``not_applicable`` needs a reason.
STATUSES: tuple[Status, ...] = ("reported", "partial", "missing", "not_applicable")
#: A = from computed evidence; S = evidence plus a person's sentence; H = a person only.
CLASSES = ("A", "S", "H")


@dataclasses.dataclass(frozen=True)
class Item:
    """One checklist item as shipped in ``checklists/*.yaml``.

    ``number`` is a string (``"13"``, ``"12e"``); ``klass`` is ``"A"``,
    ``"S"`` or ``"H"``; ``rule``/``keys``/``anchor`` describe the auto-fill.
    """

    number: str
    section: str
    topic: str
    description: str
    link: str
    klass: str
    rule: str | None = None
    keys: tuple[str, ...] = ()
    anchor: str | None = None
    note: str | None = None


@dataclasses.dataclass(frozen=True)
class Checklist:
    """A reporting checklist: its citation and its items in order."""

    id: str
    title: str
    citation: str
    url: str
    items: tuple[Item, ...]
    statuses: tuple[str, ...] = STATUSES

    def item(self, number: str | int) -> Item:
        """The item with this number (``13`` or ``"13"``; ``"12e"``)."""
        key = str(number)
        for it in self.items:
            if it.number == key:
                return it
        raise KeyError(f"{self.id} has no item {key!r}.")

    @property
    def numbers(self) -> tuple[str, ...]:
        """Item numbers in checklist order."""
        return tuple(it.number for it in self.items)

    @property
    def short_title(self) -> str:
        """The title up to its first colon: ``"CLAIM 2024"``, ``"TRIPOD+AI"``."""
        return self.title.split(":", 1)[0].strip()


@dataclasses.dataclass(frozen=True)
class Answer:
    """A person's answer to one item, read from an answers file.

    ``text`` is the sentence (or where the manuscript reports it); ``reason``
    explains a ``not_applicable``.
    """

    number: str
    status: Status
    text: str | None = None
    reason: str | None = None


@dataclasses.dataclass(frozen=True)
class Evidence:
    """What an auto-fill rule found: short PHI-free text, and whether it answers the item."""

    text: str
    complete: bool = True


@dataclasses.dataclass(frozen=True)
class ItemStatus:
    """The filled state of one item.

    Attributes
    ----------
    number, section, topic, klass : str
        From the checklist item.
    status : {"reported", "partial", "missing", "not_applicable"}
    evidence : str or None
        Computed evidence (numbers from the result), for A and S items.
    anchor : str or None
        Report section holding the evidence, e.g. ``"#cohort"``.
    answer : str or None
        A person's sentence from the answers file.
    reason : str or None
        Why the item is not applicable.
    suggestion : str or None
        Text medval proposes for a person to check (H items such as the
        limitations); it never changes the status.
    source : {"auto", "answer", "auto+answer", "none"}
        Where the status came from.
    link : str
        The official text of the item.
    """

    number: str
    section: str
    topic: str
    klass: str
    status: Status
    evidence: str | None = None
    anchor: str | None = None
    answer: str | None = None
    reason: str | None = None
    suggestion: str | None = None
    source: str = "none"
    link: str = ""

    def to_dict(self) -> dict[str, Any]:
        """A plain dict (JSON-native) for templates and ``result.json``."""
        return dataclasses.asdict(self)
