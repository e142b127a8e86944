"""HTML audit reports (Jinja2 templates from ``reports/``) and their figures."""

from medval.report._pdf import write_pdf
from medval.report._regression_format import UnitFormat
from medval.report._render import (
    SUMMARY_METRICS,
    Outputs,
    render_html,
    template_dir,
    write_outputs,
)

__all__ = [
    "SUMMARY_METRICS",
    "Outputs",
    "UnitFormat",
    "render_html",
    "template_dir",
    "write_outputs",
    "write_pdf",
]
