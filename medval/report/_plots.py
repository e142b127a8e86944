"""Inline SVG figures drawn with matplotlib, byte-reproducible."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

__all__ = ["PALETTE", "roc_svg"]

# Okabe-Ito: distinguishable with the common colour-vision deficiencies.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")


def _svg(fig: Any) -> str:
    import matplotlib

    buf = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": "medval", "svg.fonttype": "none"}):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    text = buf.getvalue()
    return text[text.index("<svg") :]


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
        ax.plot(
            [p["fpr"] for p in points],
            [p["tpr"] for p in points],
            color=PALETTE[i % len(PALETTE)],
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
