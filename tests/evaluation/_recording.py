"""A ValidationResult whose stores remember every key a reader asks for."""

from __future__ import annotations

from typing import Any

from medval import ValidationResult


class Recorder(dict[str, Any]):
    """A dict that remembers every key asked for."""

    def __init__(self, data: dict[str, Any], seen: set[str]) -> None:
        super().__init__(data)
        self.seen = seen

    def get(self, key: Any, default: Any = None) -> Any:
        self.seen.add(str(key))
        return super().get(key, default)

    def __getitem__(self, key: Any) -> Any:
        self.seen.add(str(key))
        return super().__getitem__(key)

    def __contains__(self, key: object) -> bool:
        self.seen.add(str(key))
        return super().__contains__(key)


def recording(result: ValidationResult) -> tuple[ValidationResult, set[str]]:
    """A copy of ``result`` whose estimates, values and tables record the keys read."""
    seen: set[str] = set()
    copy = ValidationResult(
        Recorder(result.estimates, seen),
        Recorder(result.values, seen),
        Recorder(result.tables, seen),
        dict(result.provenance),
    )
    return copy, seen
