"""Text from data is data: shown as written, never read as a command or markup.

DICOM headers, labels and metadata tables are written by people and
devices medval does not control. A terminal obeys escape sequences, an XML
parser refuses control characters and a bidirectional override reorders
what follows it; so every header string is cleaned as it is read (one line,
printable), and what reaches the console or a JUnit file is cleaned again.
This module imports the standard library only.
"""

from __future__ import annotations

import re

__all__ = ["one_line", "printable_text", "short_repr"]

# Line breaks and tabs (C0, NEL, the Unicode line and paragraph separators).
_BREAKS = re.compile("[\t\n\x0b\x0c\r\x1c-\x1e\x85\u2028\u2029]")
# C0 and C1 controls and DEL, the bidirectional embeddings, overrides and
# isolates, lone surrogates (bytes smuggled in by a lenient decoder) and the
# noncharacters U+FFFE and U+FFFF (illegal in XML).
_CONTROL = re.compile(
    "[\x00-\x08\x0e-\x1b\x1f\x7f-\x84\x86-\x9f"
    "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
    "\ud800-\udfff\ufffe\uffff]"
)
_REPR_LIMIT = 60


def one_line(text: str) -> str:
    """``text`` as one printable line.

    Tabs and line breaks become a space; other control characters, the
    bidirectional controls, lone surrogates and U+FFFE/U+FFFF are removed.
    Every other character (accents, CJK, symbols such as ``$^$``) is kept.

    Parameters
    ----------
    text : str

    Returns
    -------
    str
        ``text`` itself when it holds nothing to remove (the common case).

    Examples
    --------
    >>> one_line("GE\\x1b[2K\\tMedical")
    'GE[2K Medical'
    """
    if text.isascii() and text.isprintable():
        return text
    return _CONTROL.sub("", _BREAKS.sub(" ", text))


def printable_text(text: str) -> str:
    """``text`` with its lines and tabs kept and every other control character removed.

    For multi-line text (an error message, a JUnit ``system-out``): the
    result holds only characters XML 1.0 allows and no terminal escape.
    ``\\r\\n`` and ``\\r`` become ``\\n``; U+0085, U+2028 and U+2029 too.
    """
    if text.isascii() and text.isprintable():
        return text
    text = text.replace("\r\n", "\n").translate(_LINES)
    return _CONTROL.sub("", text)


_LINES = {ord(c): "\n" for c in "\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"}


def short_repr(value: object, limit: int = _REPR_LIMIT) -> str:
    """``repr(value)``, cut to about ``limit`` characters (``'xxx...'`` plus the length)."""
    text = repr(value)
    if len(text) <= limit:
        return text
    size = f" ({len(str(value))} characters)" if isinstance(value, str) else ""
    return text[: limit - 3] + "..." + size
