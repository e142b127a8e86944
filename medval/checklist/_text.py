"""Small readers and formatters shared by the evidence rules (no PHI, numbers only)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from medval._result import ValidationResult
    from medval._types import Estimate

__all__ = [
    "ci",
    "est",
    "join",
    "num",
    "split_prefixes",
    "split_sizes",
    "subgroup_rows",
]

_LIST_MAX = 5  # names listed before "and k more"


def est(r: ValidationResult, key: str) -> Estimate | None:
    """The Estimate at ``key``, or None."""
    return r.estimates.get(key)


def ci(e: Estimate | Mapping[str, Any] | None, digits: int = 3) -> str:
    """``0.932 [0.866, 0.965]``; ``n/a`` for a missing or undefined estimate."""
    if e is None:
        return "n/a"
    if isinstance(e, Mapping):
        value, low, high = e.get("value"), e.get("low"), e.get("high")
    else:
        value, low, high = e.value, e.low, e.high
    if value is None:
        return "not estimable"
    if low is None or high is None:
        return f"{value:.{digits}f}"
    return f"{value:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def num(x: Any, digits: int = 3) -> str:
    """A number with at most ``digits`` significant decimals, ``n/a`` for None."""
    if x is None:
        return "n/a"
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return str(x)
    if isinstance(x, int):
        return str(x)
    if x != 0 and abs(x) < 0.001:
        return f"{x:.1e}"
    return f"{x:.{digits}f}"


def join(names: Iterable[Any], limit: int = _LIST_MAX) -> str:
    """``a, b, c`` with ``and k more`` past ``limit``."""
    items = [str(n) for n in names]
    if len(items) > limit:
        return ", ".join(items[:limit]) + f" and {len(items) - limit} more"
    return ", ".join(items)


def split_prefixes(r: ValidationResult) -> list[tuple[str, str]]:
    """``(split name, key prefix)`` of every evaluated split, primary first."""
    return r.split_prefixes()


def split_sizes(r: ValidationResult) -> dict[str, dict[str, Any]]:
    """Cases, patients and positives per split, from the richest table present.

    ``cohort.by_split_site`` (written by a run, includes the training split)
    is summed; else ``cohort.table1``; else the evaluated splits' values.
    """
    out: dict[str, dict[str, Any]] = {}
    rows = r.tables.get("cohort.by_split_site")
    if rows:
        for row in rows:
            d = out.setdefault(str(row["split"]), {"n_cases": 0, "n_positive": 0})
            d["n_cases"] += int(row.get("n_cases", 0))
            d["n_positive"] += int(row.get("n_positive", 0))
    for row in r.tables.get("cohort.table1") or []:
        d = out.setdefault(str(row["split"]), {})
        for k in ("n_cases", "n_patients", "n_positive"):
            if row.get(k) is not None:
                d[k] = row[k]
    for name, prefix in split_prefixes(r):
        d = out.setdefault(name, {})
        for k in ("n_cases", "n_patients", "n_positive"):
            v = r.values.get(f"{prefix}cohort.{k}")
            if v is not None:
                d.setdefault(k, v)
    return out


def subgroup_rows(r: ValidationResult) -> list[dict[str, Any]]:
    """Every row of every ``subgroup.<column>`` table."""
    rows: list[dict[str, Any]] = []
    for column in r.values.get("subgroup.columns") or []:
        rows.extend(r.tables.get(f"subgroup.{column}") or [])
    return rows
