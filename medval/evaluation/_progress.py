"""A step bar over the sections of an evaluation (tqdm, on stderr), or nothing."""

from __future__ import annotations

import importlib
import sys
from types import TracebackType
from typing import Any

__all__ = ["Steps"]


class Steps:
    """``start(step)`` counts the running step done and shows the next one;
    leaving the ``with`` counts the last one and closes the bar.
    """

    def __init__(self, total: int, *, enabled: bool) -> None:
        self._bar: Any = None
        self._running = False
        if enabled:
            # importlib keeps mypy independent of the tqdm stubs.
            tqdm = importlib.import_module("tqdm.auto").tqdm
            self._bar = tqdm(
                total=total, desc="evaluate", unit="section", file=sys.stderr, leave=False
            )

    def start(self, step: str) -> None:
        if self._bar is None:
            return
        if self._running:
            self._bar.update(1)
        self._running = True
        self._bar.set_description(f"evaluate: {step}")

    def __enter__(self) -> Steps:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._bar is None:
            return
        if self._running and exc_type is None:
            self._bar.update(1)
        self._bar.close()
