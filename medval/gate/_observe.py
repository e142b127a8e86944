"""Observations: the numbers a criterion's key names in a :class:`ValidationResult`.

A key may name an estimate, a plain value, an entry of a mapping, the rows
of a table, or (with ``{group}``) one estimate per group. Each becomes one
:class:`Obs` per group; a key that cannot be read raises :class:`JudgeError`,
which the judge turns into the verdict ``error``.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from medval._types import Estimate
from medval.gate._criteria import Criterion

if TYPE_CHECKING:
    from medval._result import ValidationResult

__all__ = ["JudgeError", "Obs", "observations"]


@dataclasses.dataclass(frozen=True)
class Obs:
    """One group's number: point value, CI (when there is one) and case count."""

    group: str | None
    n: int | None
    value: Any
    low: float | None
    high: float | None
    has_ci: bool
    reason: str | None = None  # why the CI is missing
    # The CI's two-sided level and method, where the number states them (Estimates do;
    # plain table rows do not): the multiplicity adjustment needs both.
    confidence_level: float | None = None
    method: str | None = None


class JudgeError(Exception):
    """A criterion cannot be judged; the message becomes the verdict's reason."""


def _from_estimate(e: Estimate, group: str | None) -> Obs:
    return Obs(group, e.n, e.value, e.low, e.high, True, e.reason, e.confidence_level, e.method)


def _from_mapping(d: dict[str, Any], field: str, group: str | None, n: Any) -> Obs:
    v = d.get(field)
    if isinstance(v, dict) and "value" in v:  # an Estimate stored as a dict
        level, method = v.get("confidence_level", 0.95), v.get("method")  # Estimate default
        return Obs(group, v.get("n", n), v["value"], v.get("low"), v.get("high"), True,
                   v.get("reason"), level, method)  # fmt: skip
    low = d.get(f"{field}_low", d.get("low"))
    high = d.get(f"{field}_high", d.get("high"))
    has_ci = f"{field}_low" in d or "low" in d
    return Obs(group, n if isinstance(n, int) else None, v, low, high, has_ci)


def _label(key: str) -> str:
    parts = key.split(".")
    if len(parts) > 2 and parts[0] == "split":
        return f"{parts[-1]} ({parts[1]})"
    return parts[-1]


def _pattern_obs(result: ValidationResult, c: Criterion) -> tuple[str, list[Obs]]:
    head, tail = c.key.split("{group}")
    rx = re.compile(re.escape(head) + "(?P<g>.+)" + re.escape(tail) + r"\Z")
    seg_head = head.rsplit(".", 1)[-1]
    seg_tail = tail.split(".", 1)[0]
    label = tail.rsplit(".", 1)[-1] if "." in tail else "value"
    obs = []
    for k in sorted({*result.estimates, *result.values}):
        m = rx.match(k)
        if m is None:
            continue
        group = f"{seg_head}{m['g']}{seg_tail}"
        if k in result.estimates:
            obs.append(_from_estimate(result.estimates[k], group))
        else:
            obs.append(Obs(group, None, result.values[k], None, None, False))
    if not obs:
        raise JudgeError(f"no result key matches {c.key!r}; known keys start with {_heads(result)}")
    return label, obs


def _heads(result: ValidationResult) -> list[str]:
    keys: list[str] = result.keys()
    return sorted({k.split(".")[0] for k in keys})


def _table_obs(rows: Sequence[dict[str, Any]], c: Criterion) -> tuple[str, list[Obs]]:
    if not rows:
        raise JudgeError(f"table {c.key} has no rows")
    if c.column is not None:
        present = sorted({str(r.get("column")) for r in rows})
        rows = [r for r in rows if r.get("column") == c.column]
        if not rows:
            raise JudgeError(f"table {c.key} has no rows with column={c.column!r}; has {present}")
    field = c.field
    if field is None:
        if "value" not in rows[0]:
            raise JudgeError(
                f"table {c.key} needs criteria.field (the value column); row fields: "
                f"{sorted(rows[0])}"
            )
        field = "value"
    obs = []
    for r in rows:
        if field not in r:
            raise JudgeError(f"table {c.key} rows have no field {field!r}; have {sorted(r)}")
        g = r.get("group")
        group = None if g is None else (f"{r['column']}={g}" if "column" in r else str(g))
        obs.append(_from_mapping(r, field, group, r.get("n")))
    return field, obs


def observations(result: ValidationResult, c: Criterion) -> tuple[str, list[Obs]]:
    """The label to print and one :class:`Obs` per group for ``c.key``.

    Raises
    ------
    JudgeError
        If the key is absent, names the wrong kind of value, or needs
        ``criteria.column``/``criteria.field`` that is missing or does not fit.
    """
    if "{group}" in c.key:
        return _pattern_obs(result, c)
    if c.key in result.estimates:
        if c.column or c.field:
            raise JudgeError(f"{c.key} is an estimate; criteria.column/field apply to tables")
        return _label(c.key), [_from_estimate(result.estimates[c.key], None)]
    if c.key in result.values:
        v = result.values[c.key]
        if isinstance(v, dict):
            if c.field is None:
                raise JudgeError(f"{c.key} is a mapping; name its entry with criteria.field")
            return c.field, [_from_mapping(v, c.field, None, v.get("n"))]
        if isinstance(v, list):
            raise JudgeError(f"{c.key} is a list, not a number")
        return _label(c.key), [Obs(None, None, v, None, None, False)]
    if c.key in result.tables:
        return _table_obs(result.tables[c.key], c)
    raise JudgeError(
        f"key {c.key!r} is not in the result (analysis not run, or a typo); "
        f"known keys start with {_heads(result)}"
    )
