"""Text from data is data: control characters never survive, printable Unicode does."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from medval._text import one_line, printable_text, short_repr

HOSTILE = (
    "GE\x1b[2K\x1b[1A\rgate: passed\x07",  # erase the line, move up, overwrite
    "Aster\x9b31mC1\x85next\u2028line",  # C1 CSI, NEL, line separator
    "right\u202eto-left\u2066isolate\u2069",  # bidirectional override and isolate
    "nul\x00del\x7fsurrogate\ud800nonchar\ufffe\uffff",
)


@pytest.mark.parametrize("text", HOSTILE)
def test_one_line_keeps_no_control_character(text: str) -> None:
    out = one_line(text)
    assert out.isprintable(), repr(out)
    assert "\n" not in out and "\r" not in out


def test_one_line_keeps_printable_unicode_and_spaces_line_breaks() -> None:
    assert one_line("Aster $^$ Medical") == "Aster $^$ Medical"
    assert one_line("Médica 東芝 <b>&") == "Médica 東芝 <b>&"
    assert one_line("a\tb\nc\r\nd") == "a b c  d"
    assert one_line("GE\x1b[2K") == "GE[2K"  # the escape goes, the rest is shown as text
    assert one_line("x\u202ey") == "xy"


def test_printable_text_keeps_lines_and_is_legal_xml() -> None:
    text = "reason: " + "\n".join(HOSTILE) + "\r\nend"
    out = printable_text(text)
    assert out.count("\n") >= len(HOSTILE)
    assert all(line.isprintable() for line in out.split("\n")), repr(out)
    node = ET.fromstring(ET.tostring(ET.Element("a", {"m": out}), encoding="unicode"))
    assert node.get("m") is not None


def test_short_repr_cuts_long_values_and_says_how_long() -> None:
    assert short_repr("abc") == "'abc'"
    long = short_repr("x" * 1000)
    assert len(long) < 90 and long.endswith("... (1000 characters)")
    assert short_repr(list(range(100)), 20).endswith("...")
