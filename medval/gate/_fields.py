"""Checking one TOML table against its fields: types, defaults, unknown keys.

Shared by the spec sections and the ``[[criteria]]`` tables, so both give the
same messages.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from medval._errors import SpecError

__all__ = ["Field", "check_table", "check_value"]

# (accepted types, default); default ... = required, None = optional
Field = tuple[tuple[type, ...], Any]

_NAMES = {int: "integer", float: "number", str: "string", bool: "true/false", list: "array",
          dict: "table"}  # fmt: skip


def check_value(where: str, value: Any, types: tuple[type, ...]) -> Any:
    """``value`` if it has one of ``types`` (an int passes as a float), else SpecError."""
    if float in types and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    ok = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
    if not ok:
        expected = " or ".join(_NAMES[t] for t in types)
        raise SpecError(f"{where}: expected {expected}, got {value!r}.")
    return value


def check_table(
    given: Mapping[str, Any], fields: Mapping[str, Field], *, where: str, name: str, shown: str
) -> dict[str, Any]:
    """The table's values with defaults filled in.

    ``name`` prefixes keys in messages (``criteria``, ``model``); ``shown`` is
    how the table is written in TOML (``[[criteria]]``, ``[model]``).
    """
    bad = sorted(set(given) - set(fields))
    if bad:
        raise SpecError(
            f"{where}: unknown key {name}.{bad[0]}; allowed keys in {shown}: {sorted(fields)}."
        )
    values: dict[str, Any] = {}
    for key, (types, default) in fields.items():
        if key in given:
            values[key] = check_value(f"{where}: {name}.{key}", given[key], types)
        elif default is ...:
            raise SpecError(f"{where}: missing required key {name}.{key}.")
        else:
            values[key] = default
    return values
