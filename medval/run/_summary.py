"""The terminal summary of a run."""

from __future__ import annotations

from medval._result import ValidationResult
from medval._text import one_line

__all__ = ["summary_table"]


def summary_table(result: ValidationResult) -> str:
    """A plain-text table of the key numbers, for the terminal."""
    from medval.report import SUMMARY_METRICS as _METRICS

    head = ["split", "cases", *[label for _, label in _METRICS]]
    rows = []
    for name, prefix in result.split_prefixes():
        # Split names come from the labels table: one printable line each.
        cells = [one_line(name), str(result.values.get(f"{prefix}cohort.n_cases", ""))]
        for key, _ in _METRICS:
            e = result.estimates.get(prefix + key)
            if e is None or e.value is None:
                cells.append("n/a")
            elif e.low is None or e.high is None:
                cells.append(f"{e.value:.3f}")
            else:
                cells.append(f"{e.value:.3f} [{e.low:.3f}, {e.high:.3f}]")
        rows.append(cells)
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in [head, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
