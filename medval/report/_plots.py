"""Inline SVG figures drawn with matplotlib, byte-reproducible.

Labels, titles and tick labels carry group and split names from the data,
so every figure is drawn with mathtext and TeX off (:func:`_plain_text`):
``"Aster $^$ Medical"`` is shown as written, never parsed.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Callable, Sequence
from typing import Any, ParamSpec

__all__ = [
    "PALETTE",
    "box_svg",
    "forest_svg",
    "froc_svg",
    "pr_svg",
    "referral_svg",
    "reliability_svg",
    "roc_svg",
]

# Okabe-Ito: distinguishable with the common colour-vision deficiencies.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")


_P = ParamSpec("_P")


def _plain_text(draw: Callable[_P, str]) -> Callable[_P, str]:
    """Draw with ``text.parse_math`` and ``text.usetex`` off: text from data is text."""

    @functools.wraps(draw)
    def plain(*args: _P.args, **kwargs: _P.kwargs) -> str:
        import matplotlib

        with matplotlib.rc_context({"text.parse_math": False, "text.usetex": False}):
            return draw(*args, **kwargs)

    return plain


def _svg(fig: Any) -> str:
    import matplotlib

    buf = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": "medval", "svg.fonttype": "none"}):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    text = buf.getvalue()
    return text[text.index("<svg") :]


@_plain_text
def roc_svg(curves: Sequence[tuple[str, Sequence[dict[str, float]]]], *, title: str) -> str:
    """ROC curves, one line per (label, points) pair, as an inline SVG string."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.6, 4.2), dpi=100)
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], color="#999999", lw=1, ls=":", label="chance")
    styles = ("-", "--", "-.", ":")
    for i, (label, points) in enumerate(curves):
        colour = PALETTE[i % len(PALETTE)]
        if all("low" in p for p in points):
            ax.fill_between(
                [p["fpr"] for p in points],
                [p["low"] for p in points],
                [p["high"] for p in points],
                color=colour,
                alpha=0.15,
                lw=0,
            )
        ax.plot(
            [p["fpr"] for p in points],
            [p["tpr"] for p in points],
            color=colour,
            ls=styles[i % len(styles)],
            lw=2,
            label=label,
        )
    ax.set_xlabel("1 − specificity (false-positive rate)")
    ax.set_ylabel("sensitivity (true-positive rate)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_aspect("equal")
    ax.set_title(title, fontsize=10)
    ax.legend(loc="lower right", fontsize=8, frameon=False)
    fig.tight_layout()
    return _svg(fig)


def _figure(title: str) -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.6, 4.2), dpi=100)
    ax = fig.add_subplot()
    ax.set_title(title, fontsize=10)
    return fig, ax


@_plain_text
def reliability_svg(
    curves: Sequence[tuple[str, Sequence[dict[str, Any]]]], *, title: str, event: str
) -> str:
    """Reliability diagram: observed frequency against mean predicted probability.

    ``event`` names what is predicted ("malignant", "the top label is right").
    """
    fig, ax = _figure(title)
    ax.plot([0, 1], [0, 1], color="#999999", lw=1, ls=":", label="perfect calibration")
    markers = ("o", "s", "^", "D")
    for i, (label, bins) in enumerate(curves):
        pts = [(b["confidence"], b["observed"]) for b in bins if b["observed"] is not None]
        ax.plot(
            [p[0] for p in pts],
            [p[1] for p in pts],
            color=PALETTE[i % len(PALETTE)],
            marker=markers[i % len(markers)],
            ms=4,
            lw=1.5,
            label=label,
        )
    ax.set_xlabel(f"mean predicted probability: {event} (per bin)")
    ax.set_ylabel(f"observed frequency: {event}")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_aspect("equal")
    ax.legend(loc="upper left", fontsize=8, frameon=False)
    fig.tight_layout()
    return _svg(fig)


@_plain_text
def referral_svg(
    curves: Sequence[tuple[str, Sequence[tuple[float, float]]]], *, title: str, ylabel: str
) -> str:
    """Performance of the retained cases as the most uncertain are referred."""
    fig, ax = _figure(title)
    styles = ("-", "--", "-.", ":")
    for i, (label, points) in enumerate(curves):
        ax.plot(
            [100 * p[0] for p in points],
            [p[1] for p in points],
            color=PALETTE[i % len(PALETTE)],
            ls=styles[i % len(styles)],
            lw=2,
            marker=".",
            label=label,
        )
    ax.set_xlabel("cases referred to a radiologist (%)")
    ax.set_ylabel(ylabel)
    ax.legend(loc="lower right", fontsize=8, frameon=False)
    fig.tight_layout()
    return _svg(fig)


@_plain_text
def forest_svg(
    rows: Sequence[dict[str, Any]],
    *,
    title: str,
    reference: float | None,
    xlabel: str = "AUROC with its confidence interval (square: worst subgroup)",
) -> str:
    """Forest plot: one estimate with its interval per subgroup (top to bottom)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    shown = [r for r in rows if r["low"] is not None and r["high"] is not None]
    fig = Figure(figsize=(6.4, 0.8 + 0.28 * max(len(shown), 1)), dpi=100)
    ax = fig.add_subplot()
    y = list(range(len(shown), 0, -1))
    for yi, r in zip(y, shown, strict=True):
        colour = PALETTE[1] if r.get("worst") else PALETTE[0]
        ax.plot([r["low"], r["high"]], [yi, yi], color=colour, lw=2)
        ax.plot([r["value"]], [yi], marker="s" if r.get("worst") else "o", color=colour, ms=5)
    if reference is not None:
        ax.axvline(reference, color="#555555", ls="--", lw=1, label="all evaluated cases")
        ax.legend(loc="lower left", fontsize=8, frameon=False)
    ax.set_yticks(y)
    ax.set_yticklabels([r["label"] for r in shown], fontsize=8)
    ax.set_ylim(0.4, len(shown) + 0.6)
    ax.set_xlabel(xlabel)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return _svg(fig)


@_plain_text
def pr_svg(curves: Sequence[tuple[str, Sequence[dict[str, float]], float]], *, title: str) -> str:
    """Precision-recall curves with each split's prevalence (a chance model) dotted."""
    fig, ax = _figure(title)
    styles = ("-", "--", "-.", ":")
    for i, (label, points, prevalence) in enumerate(curves):
        colour = PALETTE[i % len(PALETTE)]
        ax.plot(
            [p["recall"] for p in points],
            [p["precision"] for p in points],
            color=colour,
            ls=styles[i % len(styles)],
            lw=2,
            label=label,
        )
        ax.axhline(prevalence, color=colour, ls=":", lw=1)
    ax.set_xlabel("sensitivity (recall)")
    ax.set_ylabel("positive predictive value (precision)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.legend(loc="lower left", fontsize=8, frameon=False)
    fig.tight_layout()
    return _svg(fig)


@_plain_text
def froc_svg(curves: Sequence[tuple[str, Sequence[dict[str, float]]]], *, title: str) -> str:
    """FROC curves: lesion sensitivity against false positives per scan (log axis)."""
    import matplotlib.ticker

    fig, ax = _figure(title)
    for i, (label, points) in enumerate(curves):
        pts = [(p["fp_per_scan"], p["sensitivity"]) for p in points if p["fp_per_scan"] > 0]
        ax.step([p[0] for p in pts], [p[1] for p in pts], where="post",
                color=PALETTE[i % len(PALETTE)], lw=1.5, label=label)  # fmt: skip
    for rate in (0.125, 0.25, 0.5, 1, 2, 4, 8):
        ax.axvline(rate, color="#dddddd", lw=0.6, zorder=0)
    ax.set_xscale("log", base=2)
    ax.set_xlim(1 / 16, 16)
    # Plain tick labels: log axes label with mathtext, which this module keeps off.
    ax.set_xticks([0.125, 0.25, 0.5, 1, 2, 4, 8], ["1/8", "1/4", "1/2", "1", "2", "4", "8"])
    ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    ax.set_ylim(0, 1.01)
    ax.set_xlabel("false-positive lesions per scan")
    ax.set_ylabel("lesion sensitivity")
    ax.legend(loc="lower right", fontsize=8, frameon=False)
    fig.tight_layout()
    return _svg(fig)


@_plain_text
def box_svg(groups: Sequence[dict[str, Any]], *, title: str, ylabel: str) -> str:
    """One box per group from its quantiles (min, q1, median, q3, max): the distributions."""
    fig, ax = _figure(title)
    stats = [
        {
            "label": f"{g['group']} (n={g['n']})",
            "whislo": g["min"],
            "q1": g["q1"],
            "med": g["median"],
            "q3": g["q3"],
            "whishi": g["max"],
            "fliers": [],
        }
        for g in groups
    ]
    ax.bxp(stats, showfliers=False, vert=False)
    ax.set_xlabel(ylabel)
    ax.tick_params(axis="y", labelsize=8)
    fig.tight_layout()
    return _svg(fig)
