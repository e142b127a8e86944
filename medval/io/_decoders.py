"""Whether pydicom can decode a transfer syntax here, and what to install if not."""

from __future__ import annotations

from typing import Any

__all__ = ["decoder_problem"]


def _install_hint(missing: list[str]) -> str:
    """``['pylibjpeg - requires pylibjpeg>=2.0 and pylibjpeg-libjpeg>=2.1', ...]`` -> pip args."""
    preferred = [m for m in missing if m.startswith("pylibjpeg")] or missing
    if not preferred:
        return "a pydicom pixel data plugin"
    _, _, requires = preferred[0].partition("requires ")
    names = []
    for part in requires.split(" and "):
        name = part.strip().split(">")[0].split("=")[0].split("<")[0].strip()
        if name and name != "numpy":
            names.append(name)
    return " ".join(names) or preferred[0]


def decoder_problem(transfer_syntax: Any) -> str | None:
    """Why pixel data in ``transfer_syntax`` cannot be decoded here, or None."""
    if transfer_syntax is None or not getattr(transfer_syntax, "is_compressed", False):
        return None
    from pydicom.pixels.decoders.base import get_decoder

    name = getattr(transfer_syntax, "name", str(transfer_syntax))
    try:
        decoder = get_decoder(transfer_syntax)
    except NotImplementedError:
        return f"unsupported transfer syntax {name}: no pydicom decoder exists"
    if decoder.is_available:
        return None
    hint = _install_hint(list(decoder.missing_dependencies))
    return f"compressed transfer syntax {name} needs a decoder: pip install {hint}"
