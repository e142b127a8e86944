"""Numbers of a regression result as text: in the target's unit, at the target's scale.

The report, its key findings and the terminal summary format a regression
result's numbers through :class:`UnitFormat`, so the same number reads the
same everywhere: ``8.3 months``, ``8.3 [7.9, 8.8]``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

from medval._result import ValidationResult
from medval._types import Estimate

__all__ = ["UnitFormat", "estimate_dict", "percent_cell", "plain_cell"]

_DEFAULT_DIGITS = 2


def estimate_dict(e: Estimate | Mapping[str, Any] | None) -> dict[str, Any] | None:
    """An Estimate (or its dict form) as a dict with every field; None stays None."""
    if e is None:
        return None
    if isinstance(e, Estimate):
        return dataclasses.asdict(e)
    return {"value": None, "low": None, "high": None, "method": "", "reason": None, **e}


def _fixed(x: float, digits: int) -> str:
    text = f"{x:.{digits}f}"
    return text[1:] if text.startswith("-") and float(text) == 0.0 else text


def _number(x: Any, digits: int) -> str:
    if x is None:
        return "—"
    x = float(x)
    if math.isinf(x):
        return "∞" if x > 0 else "−∞"
    return _fixed(x, digits)


def _range(low: str, high: str) -> str:
    """``7.4`` to ``8.9`` joined by an en dash; ``-6.1 to -2.3`` where one reads as a minus."""
    return f"{low} to {high}" if low.startswith("-") or high.startswith("-") else f"{low}–{high}"


def _cell(e: Estimate | Mapping[str, Any] | None, show: Any) -> dict[str, Any]:
    d = estimate_dict(e)
    if d is None:
        return {"text": "—", "ci": "", "note": "not computed", "value": None}
    if d["value"] is None:
        return {"text": "n/a", "ci": "", "note": d.get("reason") or "", "value": None}
    ci = "" if d["low"] is None or d["high"] is None else _range(show(d["low"]), show(d["high"]))
    note = d.get("method") or ""
    if not ci and d.get("reason"):
        note = f"{note}; interval not estimable: {d['reason']}".lstrip("; ")
    return {
        "text": show(d["value"]),
        "ci": ci,
        "note": note,
        "value": d["value"],
        "low": d["low"],
        "high": d["high"],
    }


def plain_cell(e: Estimate | Mapping[str, Any] | None, digits: int = 3) -> dict[str, Any]:
    """A unitless estimate (a slope, a rank correlation) for a table cell."""
    return _cell(e, lambda x: _number(x, digits))


def percent_cell(e: Estimate | Mapping[str, Any] | None) -> dict[str, Any]:
    """A proportion (a coverage) as a percentage for a table cell."""
    return _cell(e, lambda x: f"{100 * float(x):.1f}%")


@dataclasses.dataclass(frozen=True)
class UnitFormat:
    """How a regression result writes its numbers.

    Attributes
    ----------
    unit : str
        The target's unit (``task.unit``), ``""`` when none was declared.
    digits : int
        Decimals of a number in that unit: those that show the SD of the
        primary split's true values to three significant digits (an SD of 41
        months gives one decimal, 4.2 two, 0.05 four; at least one, at most
        six); two when the SD is unknown.
    """

    unit: str
    digits: int

    @classmethod
    def of(cls, result: ValidationResult) -> UnitFormat:
        """The format of ``result``: its unit and the scale of its primary split."""
        unit = result.values.get("task.unit") or ""
        target = result.values.get("regression.target") or {}
        sd = target.get("sd") if isinstance(target, Mapping) else None
        digits = _DEFAULT_DIGITS
        if isinstance(sd, (int, float)) and math.isfinite(sd) and sd > 0:
            digits = min(6, max(1, 2 - math.floor(math.log10(sd))))
        return cls(unit=str(unit), digits=digits)

    @property
    def suffix(self) -> str:
        """``" (months)"`` for a column header; ``""`` without a unit."""
        return f" ({self.unit})" if self.unit else ""

    def num(self, x: Any) -> str:
        """A number in the unit, without the unit: ``8.3``; ``—`` for None."""
        return _number(x, self.digits)

    def qty(self, x: Any) -> str:
        """A number with its unit: ``8.3 months``."""
        text = self.num(x)
        return f"{text} {self.unit}" if self.unit and text != "—" else text

    def cell(self, e: Estimate | Mapping[str, Any] | None) -> dict[str, Any]:
        """An estimate in the unit for a table cell: text, ci, hover note."""
        return _cell(e, self.num)

    def sentence(self, e: Estimate | Mapping[str, Any] | None) -> str:
        """``8.3 months (CI 7.9`` en dash ``8.8)`` for a sentence; ``n/a`` when undefined."""
        c = self.cell(e)
        if c["value"] is None:
            return "n/a"
        text = self.qty(c["value"])
        return f"{text} (CI {c['ci']})" if c["ci"] else text

    def bracket(self, e: Estimate | Mapping[str, Any] | None) -> str:
        """``8.3 [7.9, 8.8]`` for the terminal; ``n/a`` when undefined."""
        d = estimate_dict(e)
        if d is None or d["value"] is None:
            return "n/a"
        if d["low"] is None or d["high"] is None:
            return self.num(d["value"])
        return f"{self.num(d['value'])} [{self.num(d['low'])}, {self.num(d['high'])}]"
