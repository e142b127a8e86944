"""An optional PDF of the report, through WeasyPrint when it is installed."""

from __future__ import annotations

from pathlib import Path

from medval._errors import MissingDependencyError

__all__ = ["write_pdf"]


def write_pdf(report: Path) -> Path:
    """Write ``report.pdf`` next to ``report.html``; the print stylesheet applies.

    Raises
    ------
    MissingDependencyError
        WeasyPrint is not installed (``pip install 'medval[pdf]'``); a
        browser's "print to PDF" of ``report.html`` gives the same pages.
    """
    try:
        import weasyprint  # type: ignore[import-not-found,unused-ignore]
    except ImportError as exc:
        raise MissingDependencyError(
            "a PDF needs WeasyPrint, which is not installed: pip install 'medval[pdf]' "
            "(or print report.html to PDF from a browser; the report has a print stylesheet)."
        ) from exc
    out = report.with_suffix(".pdf")
    weasyprint.HTML(filename=str(report)).write_pdf(str(out))
    return out
