"""Acceptance criteria: the ``[[criteria]]`` tables of a spec, checked on load.

A criterion compares one number of a :class:`~medval.ValidationResult` with a
threshold. The number is an Estimate (its CI bound or point value), a plain
value, every Estimate whose key matches a ``{group}`` pattern, or every row of
a table (e.g. ``conformal.by_group`` filtered to ``column = "manufacturer"``).
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, Literal

from medval._errors import SpecError
from medval.gate._fields import check_table

__all__ = ["CRITERION_FIELDS", "OPS", "Criterion", "check_criteria"]

Op = Literal[">=", "<=", ">", "<", "=="]
Bound = Literal["auto", "low", "value", "high"]
Severity = Literal["fail", "warn"]
SmallGroups = Literal["fail", "warn", "skip"]

OPS: tuple[str, ...] = (">=", "<=", ">", "<", "==")
BOUNDS: tuple[str, ...] = ("auto", "low", "value", "high")
SEVERITIES: tuple[str, ...] = ("fail", "warn")
SMALL_GROUPS: tuple[str, ...] = ("fail", "warn", "skip")
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*")

# key -> (accepted types, default; ... = required, None = optional)
CRITERION_FIELDS: dict[str, tuple[tuple[type, ...], Any]] = {
    "name": ((str,), ...),
    "key": ((str,), ...),
    "op": ((str,), ...),
    "threshold": ((float, bool, str), ...),
    "bound": ((str,), "auto"),
    "severity": ((str,), "fail"),
    "column": ((str,), None),
    "field": ((str,), None),
    "min_n": ((int,), 0),
    "small_groups": ((str,), "warn"),
    "description": ((str,), None),
}
_CHOICES: dict[str, tuple[str, ...]] = {
    "op": OPS,
    "bound": BOUNDS,
    "severity": SEVERITIES,
    "small_groups": SMALL_GROUPS,
}


@dataclasses.dataclass(frozen=True)
class Criterion:
    """One acceptance criterion.

    Attributes
    ----------
    name : str
        Unique id (letters, digits, ``_ . -``); the pytest item and JUnit
        testcase name.
    key : str
        Result key: an Estimate, a value, a table, or an Estimate pattern
        with one ``{group}`` placeholder
        (``"subgroup.manufacturer={group}.auroc"``).
    op : {">=", "<=", ">", "<", "=="}
    threshold : float, bool or str
    bound : {"auto", "low", "value", "high"}, default "auto"
        Which number of an Estimate (or table row) is compared. ``"auto"``
        takes the conservative CI bound (``low`` for ``>=``/``>``, ``high``
        for ``<=``/``<``) when there is one, else the value.
    severity : {"fail", "warn"}, default "fail"
        What a violated criterion counts as.
    column : str, optional
        Table criteria: only rows whose ``column`` field equals this.
    field : str, optional
        Table criteria: the row field holding the value (``"coverage"``).
    min_n : int, default 0
        Groups (pattern matches or rows) with fewer cases are "small".
    small_groups : {"fail", "warn", "skip"}, default "warn"
        How a small group counts.
    description : str, optional
    """

    name: str
    key: str
    op: Op
    threshold: float | bool | str
    bound: Bound = "auto"
    severity: Severity = "fail"
    column: str | None = None
    field: str | None = None
    min_n: int = 0
    small_groups: SmallGroups = "warn"
    description: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The criterion as a JSON-native mapping (None fields left out)."""
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


def _check_one(raw: Any, where: str) -> Criterion:
    if not isinstance(raw, dict):
        raise SpecError(f"{where} must be a table ([[criteria]]); got {raw!r}.")
    values = check_table(raw, CRITERION_FIELDS, where=where, name="criteria", shown="[[criteria]]")
    for key, allowed in _CHOICES.items():
        if values[key] not in allowed:
            raise SpecError(
                f"{where}: criteria.{key} = {values[key]!r} is not allowed; "
                f"allowed values: {', '.join(repr(a) for a in allowed)}."
            )
    if not _NAME.fullmatch(values["name"]):
        raise SpecError(
            f"{where}: criteria.name {values['name']!r} may hold only letters, digits, "
            "'_', '.' and '-' (it names a pytest item)."
        )
    key = values["key"]
    if not key or key.count("{group}") > 1 or re.search(r"\{(?!group\})", key):
        raise SpecError(
            f"{where}: criteria.key {key!r} must be a result key, optionally with one "
            "'{group}' placeholder."
        )
    if values["min_n"] < 0:
        raise SpecError(f"{where}: criteria.min_n must be >= 0; got {values['min_n']}.")
    thr = values["threshold"]
    if values["op"] != "==" and not isinstance(thr, float):
        raise SpecError(
            f"{where}: criteria.threshold must be a number with op {values['op']!r}; got {thr!r}."
        )
    if "{group}" in key and (values["column"] or values["field"]):
        raise SpecError(
            f"{where}: criteria.column/field apply to table keys, not to a '{{group}}' pattern."
        )
    return Criterion(**values)


def check_criteria(raw: Any, *, source: str) -> tuple[Criterion, ...]:
    """Check the ``[[criteria]]`` array of a parsed spec.

    Raises
    ------
    SpecError
        Not an array of tables, unknown or missing key, wrong type, a value
        outside its choices, a duplicate name; the message names the
        criterion, the key, the bad value and the allowed ones.
    """
    if not isinstance(raw, list):
        raise SpecError(f"{source}: 'criteria' must be an array of tables ([[criteria]]).")
    out: list[Criterion] = []
    seen: set[str] = set()
    for i, item in enumerate(raw):
        label = item.get("name") if isinstance(item, dict) else None
        where = f"{source}: criteria[{i}]" + (f" ({label!r})" if isinstance(label, str) else "")
        crit = _check_one(item, where)
        if crit.name in seen:
            raise SpecError(
                f"{where}: duplicate criteria.name {crit.name!r}; names must be unique."
            )
        seen.add(crit.name)
        out.append(crit)
    return tuple(out)
