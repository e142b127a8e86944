"""The medval pytest plugin (entry point ``pytest11``).

Reserved: spec criteria as pytest items and the ``medval_result`` fixtures
arrive with the release gate (issue 7). pytest loads this module at start-up,
so it must stay cheap: it imports nothing heavy and registers no hooks yet.
"""

from __future__ import annotations

__all__: list[str] = []
