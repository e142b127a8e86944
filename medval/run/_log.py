"""What a run returns, and its step log."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

from medval._result import ValidationResult
from medval._text import one_line
from medval.gate import Verdict

__all__ = ["Log", "RunOutcome"]


@dataclasses.dataclass(frozen=True)
class RunOutcome:
    """What a run produced."""

    result: ValidationResult
    out_dir: Path
    report: Path
    result_json: Path
    verdicts: tuple[Verdict, ...] = ()
    predictions: Any = None  # Predictions of the evaluated cases
    cohort: Any = None  # the Cohort (pandas DataFrame)


class Log:
    """Step messages to stderr and to ``run.log`` (no PHI is ever passed here)."""

    def __init__(self, quiet: bool) -> None:
        self.lines: list[str] = []
        self.quiet = quiet

    def __call__(self, message: str) -> None:
        message = one_line(message)  # a file or group name is never a terminal command
        self.lines.append(message)
        if not self.quiet:
            print(f"medval: {message}", file=sys.stderr, flush=True)
