"""The CLAIM 2024 <-> TRIPOD+AI crosswalk, item by item, from ``checklists/crosswalk.yaml``."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from medval._errors import SpecError
from medval.checklist._load import load_checklist, load_crosswalk
from medval.checklist._model import Checklist

__all__ = ["Counterpart", "Crosswalk", "crosswalk"]

#: checklist id -> (the crosswalk column holding its item numbers, the other checklist).
_COLUMNS = {
    "claim-2024": ("claim_2024", "tripod-ai-2024"),
    "tripod-ai-2024": ("tripod_ai", "claim-2024"),
}
_RELATIONS = ("same", "part")


@dataclasses.dataclass(frozen=True)
class Counterpart:
    """An item of the other checklist that asks for the same thing (or part of it).

    ``relation`` is ``"same"`` or ``"part"`` (one item covers part of the other).
    """

    number: str
    topic: str
    relation: str


@dataclasses.dataclass(frozen=True)
class Crosswalk:
    """For each item of ``checklist``, its counterparts in ``other`` (in item order).

    An item without an entry has no confirmed counterpart; the crosswalk is
    medval's, made from the items' topics, not an official mapping.
    """

    checklist: Checklist
    other: Checklist
    items: Mapping[str, tuple[Counterpart, ...]]

    def of(self, number: str | int) -> tuple[Counterpart, ...]:
        """The counterparts of item ``number`` (empty when none is confirmed)."""
        return self.items.get(str(number), ())


def _numbers(value: Any, column: str, row: Mapping[str, Any]) -> list[str]:
    if value is None:
        return []
    if column == "tripod_ai":
        if not isinstance(value, list):
            raise SpecError(f"crosswalk.yaml: 'tripod_ai' must be a list; row {dict(row)}.")
        return [str(v) for v in value]
    return [str(value)]


def crosswalk(checklist: str | Checklist) -> Crosswalk | None:
    """The crosswalk from ``checklist`` to the other of CLAIM 2024 and TRIPOD+AI.

    Returns None for a checklist the crosswalk does not cover.

    Raises
    ------
    SpecError
        On an unknown checklist name, or a crosswalk row naming an item that
        is not in its checklist or an unknown relation.
    """
    cl = load_checklist(checklist)
    if cl.id not in _COLUMNS:
        return None
    own_column, other_id = _COLUMNS[cl.id]
    other = load_checklist(other_id)
    other_column = _COLUMNS[other_id][0]
    found: dict[str, list[Counterpart]] = {}
    for row in load_crosswalk()["rows"]:
        if not isinstance(row, Mapping):
            raise SpecError(f"crosswalk.yaml: a row must be a mapping; got {row!r}.")
        own = _numbers(row.get(own_column), own_column, row)
        theirs = _numbers(row.get(other_column), other_column, row)
        if not own or not theirs:
            continue
        relation = row.get("relation_tripod")
        if relation not in _RELATIONS:
            raise SpecError(
                f"crosswalk.yaml: relation_tripod must be one of {list(_RELATIONS)}; "
                f"row {dict(row)}."
            )
        for mine in own:
            if mine not in cl.numbers:
                raise SpecError(f"crosswalk.yaml: {cl.id} has no item {mine!r}.")
            for number in theirs:
                if number not in other.numbers:
                    raise SpecError(f"crosswalk.yaml: {other.id} has no item {number!r}.")
                entry = Counterpart(number, other.item(number).topic, str(relation))
                if entry not in found.setdefault(mine, []):
                    found[mine].append(entry)
    order = {n: i for i, n in enumerate(other.numbers)}
    items = {
        n: tuple(sorted(found[n], key=lambda c: order[c.number])) for n in cl.numbers if n in found
    }
    return Crosswalk(checklist=cl, other=other, items=items)
