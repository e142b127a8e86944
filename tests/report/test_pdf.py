from __future__ import annotations

import sys
from pathlib import Path

import pytest

from medval import MissingDependencyError
from medval.report import write_pdf


def test_missing_weasyprint_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    report = tmp_path / "report.html"
    report.write_text("<html></html>", encoding="utf-8")
    # None in sys.modules makes `import weasyprint` raise ImportError.
    monkeypatch.setitem(sys.modules, "weasyprint", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'medval\[pdf\]'") as info:
        write_pdf(report)
    assert isinstance(info.value, ImportError)
    assert not (tmp_path / "report.pdf").exists()
