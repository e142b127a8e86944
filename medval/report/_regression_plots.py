"""Inline SVG figures of a regression result: Bland-Altman, error by value, coverage.

Drawn like :mod:`medval.report._plots` (matplotlib, plain text, byte-reproducible
SVG); the numbers come from the result, never recomputed here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from medval.report._plots import PALETTE, _figure, _plain_text, _svg

__all__ = ["bland_altman_svg", "coverage_svg", "error_by_value_svg"]

Band = tuple[float, float]


def _axis(name: str, unit: str) -> str:
    return f"{name} ({unit})" if unit else name


def _bounds(e: Mapping[str, Any] | None) -> Band | None:
    """An Estimate dict's interval, None when it has none."""
    if not e or e.get("low") is None or e.get("high") is None:
        return None
    return float(e["low"]), float(e["high"])


@_plain_text
def bland_altman_svg(
    means: Sequence[float],
    differences: Sequence[float],
    *,
    lines: Mapping[str, Mapping[str, Any] | None],
    title: str,
    unit: str,
) -> str:
    """Bland-Altman plot: difference (prediction - truth) against the pair mean.

    ``lines`` maps ``"bias"``, ``"loa_low"`` and ``"loa_high"`` to Estimate
    dicts; each is drawn as a horizontal line at its value with its
    confidence interval shaded (Bland & Altman 1986, Lancet 327:307-310;
    the intervals of the limits from Bland & Altman 1999, sec. 2-3).
    """
    fig, ax = _figure(title)
    ax.axhline(0.0, color="#999999", lw=1, ls=":", label="no difference")
    ax.scatter(means, differences, s=9, color=PALETTE[0], alpha=0.45, lw=0, label="cases")
    styles = {
        "bias": ("-", PALETTE[1], "bias"),
        "loa_low": ("--", PALETTE[2], "limits of agreement"),
        "loa_high": ("--", PALETTE[2], None),
    }
    for key, (ls, colour, label) in styles.items():
        e = lines.get(key)
        if not e or e.get("value") is None:
            continue
        band = _bounds(e)
        if band is not None:
            ax.axhspan(band[0], band[1], color=colour, alpha=0.12, lw=0)
        ax.axhline(float(e["value"]), color=colour, ls=ls, lw=1.6, label=label)
    ax.set_xlabel(_axis("mean of prediction and reference", unit))
    ax.set_ylabel(_axis("prediction − reference", unit))
    ax.legend(loc="best", fontsize=7, frameon=False)
    fig.tight_layout()
    return _svg(fig)


@_plain_text
def error_by_value_svg(
    curves: Sequence[tuple[str, Sequence[Mapping[str, Any]]]], *, title: str, unit: str
) -> str:
    """MAE (solid) and bias (dashed) per bin of the true value, with their intervals.

    ``curves``: (split label, rows of ``regression.by_value``); a bin is drawn
    at its centre, ``(low + high) / 2``.
    """
    fig, ax = _figure(title)
    ax.axhline(0.0, color="#999999", lw=1, ls=":")
    for i, (label, rows) in enumerate(curves):
        colour = PALETTE[i % len(PALETTE)]
        for metric, ls, marker in (("mae", "-", "o"), ("bias", "--", "s")):
            pts = [
                ((r["low"] + r["high"]) / 2, r[metric])
                for r in rows
                if r.get(metric) and r[metric].get("value") is not None
            ]
            if not pts:
                continue
            x = [p[0] for p in pts]
            y = [float(p[1]["value"]) for p in pts]
            err = [
                [0.0, 0.0] if (b := _bounds(p[1])) is None else [v - b[0], b[1] - v]
                for p, v in zip(pts, y, strict=True)
            ]
            ax.errorbar(
                x,
                y,
                yerr=[[e[0] for e in err], [e[1] for e in err]],
                color=colour,
                ls=ls,
                marker=marker,
                ms=4,
                lw=1.5,
                capsize=2,
                label=f"{label}: {metric.upper() if metric == 'mae' else metric}",
            )
    ax.set_xlabel(_axis("true value, bin centre", unit))
    ax.set_ylabel(_axis("error (MAE; bias = prediction − truth)", unit))
    ax.legend(loc="best", fontsize=7, frameon=False)
    fig.tight_layout()
    return _svg(fig)


@_plain_text
def coverage_svg(curves: Sequence[tuple[str, Sequence[Mapping[str, Any]]]], *, title: str) -> str:
    """Observed against nominal coverage of ``mean ± z sigma``, with exact intervals.

    ``curves``: (split label, rows ``{"nominal", "coverage": Estimate dict}``);
    points on the diagonal are calibrated, below it over-confident (Kuleshov,
    Fenner & Ermon 2018, ICML, the calibration plot of regression).
    """
    fig, ax = _figure(title)
    ax.plot([0, 1], [0, 1], color="#999999", lw=1, ls=":", label="calibrated")
    markers = ("o", "s", "^", "D")
    for i, (label, rows) in enumerate(curves):
        pts = [
            (float(r["nominal"]), r["coverage"])
            for r in rows
            if r.get("coverage") and r["coverage"].get("value") is not None
        ]
        if not pts:
            continue
        y = [float(p[1]["value"]) for p in pts]
        err = [
            [0.0, 0.0] if (b := _bounds(p[1])) is None else [v - b[0], b[1] - v]
            for p, v in zip(pts, y, strict=True)
        ]
        ax.errorbar(
            [p[0] for p in pts],
            y,
            yerr=[[e[0] for e in err], [e[1] for e in err]],
            color=PALETTE[i % len(PALETTE)],
            marker=markers[i % len(markers)],
            ms=4,
            lw=1.5,
            capsize=2,
            label=label,
        )
    ax.set_xlabel("nominal coverage of mean ± z·sigma")
    ax.set_ylabel("observed coverage")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_aspect("equal")
    ax.legend(loc="upper left", fontsize=8, frameon=False)
    fig.tight_layout()
    return _svg(fig)
