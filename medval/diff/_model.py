"""What :func:`medval.diff.diff_results` returns, and its plain-text table."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, Literal, get_args

__all__ = [
    "DECISIVE_HASHES",
    "INFORMATIONAL_HASHES",
    "Difference",
    "HashCheck",
    "Informational",
    "ResultDiff",
]

Kind = Literal["hash differs", "verdict changed", "only in A", "only in B", "changed", "moved"]

#: Provenance digests that must be equal: otherwise the runs are not of the
#: same model on the same data.
DECISIVE_HASHES = ("model_sha256", "baseline_model_sha256", "data_manifest_sha256")
#: Digests shown but never a difference: a spec may differ only in paths.
INFORMATIONAL_HASHES = ("spec_sha256",)

# Order of the table: what invalidates the comparison first, then size.
_RANK = {k: i for i, k in enumerate(get_args(Kind))}


@dataclasses.dataclass(frozen=True)
class Difference:
    """One entry that differs between run A and run B.

    Attributes
    ----------
    key : str
        Result key (``"discrimination.auroc"``) or ``"provenance.<hash>"``.
    field : str
        Where inside the entry: ``"low"``, ``"[3].sensitivity"``,
        ``"[auroc].status"`` (gate rows by criterion name); ``""`` for the
        whole entry.
    a, b : JSON-native value
        The two values (None where absent).
    abs_diff : float or None
        ``|a - b|`` when both are numbers.
    kind : {"moved", "changed", "only in A", "only in B", "verdict changed", "hash differs"}
        ``moved``: a number beyond tolerance; ``changed``: a string, flag,
        setting, length or presence of a value.
    """

    key: str
    field: str
    a: Any
    b: Any
    abs_diff: float | None
    kind: str


@dataclasses.dataclass(frozen=True)
class HashCheck:
    """A provenance digest in both runs; ``decisive`` ones must be equal."""

    name: str
    a: str | None
    b: str | None
    decisive: bool

    @property
    def equal(self) -> bool:
        """Whether both runs carry the same digest."""
        return self.a == self.b


@dataclasses.dataclass(frozen=True)
class Informational:
    """A provenance fact (command, version, platform, digest): shown, never a difference."""

    name: str
    a: Any
    b: Any

    @property
    def equal(self) -> bool:
        """Whether both runs recorded the same."""
        return bool(self.a == self.b)


@dataclasses.dataclass(frozen=True)
class ResultDiff:
    """The comparison of two validation results (see :func:`diff_results`).

    Attributes
    ----------
    tolerance : float
    keys : tuple of str or None
        Glob patterns that restricted the comparison.
    sources : (str, str)
        Where A and B came from: paths, or "(ValidationResult object)".
    differences : tuple of Difference
        Everything beyond tolerance; empty when the runs agree.
    hashes : tuple of HashCheck
    informational : tuple of Informational
        The result digests, then every other provenance field, flattened.
    compared : dict of str to int
        Keys present in both runs, per store (estimates, values, tables).
    largest : (float, str, str) or None
        Largest numeric ``|a - b|`` seen (within tolerance or not), its key
        and field: how far the runs are apart even when they agree. None when
        every compared number is identical.
    """

    tolerance: float
    keys: tuple[str, ...] | None
    sources: tuple[str, str]
    differences: tuple[Difference, ...]
    hashes: tuple[HashCheck, ...]
    informational: tuple[Informational, ...]
    compared: dict[str, int]
    largest: tuple[float, str, str] | None

    @property
    def agree(self) -> bool:
        """True when no entry differs beyond tolerance and no decisive hash differs."""
        return not self.differences

    def __bool__(self) -> bool:  # `if diff:` reads as "if they differ"? Refuse the guess.
        raise TypeError("use ResultDiff.agree (True when the runs agree)")

    def sorted_differences(self) -> list[Difference]:
        """Differences, hashes and verdicts first, then numbers largest first."""
        return sorted(
            self.differences,
            key=lambda d: (_RANK.get(d.kind, 9), -(d.abs_diff or 0.0), d.key, d.field),
        )

    def header(self) -> str:
        """One line: "runs agree within tolerance 0.0001" or "runs differ ..."."""
        t = f"{self.tolerance:g}"
        if self.agree:
            return f"runs agree within tolerance {t}"
        n = len(self.differences)
        kinds = [d.kind for d in self.sorted_differences()]
        by_kind = ", ".join(f"{kinds.count(k)} {k}" for k in dict.fromkeys(kinds))
        return f"runs differ beyond tolerance {t}: {n} difference{'s' * (n != 1)} ({by_kind})"

    def table(self, *, max_rows: int | None = None) -> str:
        """A readable plain-text report: header, hashes, what moved, largest first."""
        lines = [self.header()]
        digests = self.informational[0] if self.informational else Informational("", None, None)
        for label, src, digest in zip("AB", self.sources, (digests.a, digests.b), strict=True):
            lines.append(f"  {label}: {src}  (sha256 {_short(digest)})")
        c = self.compared
        only = {k: sum(d.kind == k and not d.field for d in self.differences)
                for k in ("only in A", "only in B")}  # fmt: skip
        lines.append(
            f"  compared {c['estimates']} estimates, {c['values']} values, {c['tables']} tables"
            f"; keys only in A: {only['only in A']}, only in B: {only['only in B']}"
            + (f"; keys {', '.join(self.keys)}" if self.keys else "")
        )
        if self.largest is not None:
            gap, key, field = self.largest
            lines.append(f"  largest numeric movement: {gap:.3g} ({_where(key, field)})")
        else:
            lines.append("  largest numeric movement: none (every compared number is identical)")
        if self.hashes:
            lines += ["", "hashes:"]
            for h in self.hashes:
                state = "equal" if h.equal else ("DIFFERS" if h.decisive else "differs")
                note = "" if h.decisive else " (informational)"
                shown = _short(h.a) if h.equal else f"{_short(h.a)} -> {_short(h.b)}"
                lines.append(f"  {h.name:<22} {state:<8} {shown}{note}")
        if self.differences:
            rows: list[tuple[str, ...]] = [("kind", "key", "A", "B", "|A-B|")]
            diffs = self.sorted_differences()
            shown_diffs = diffs if max_rows is None else diffs[:max_rows]
            rows += [
                (
                    d.kind,
                    _where(d.key, d.field),
                    _short(d.a) if d.kind == "hash differs" else _cell(d.a),
                    _short(d.b) if d.kind == "hash differs" else _cell(d.b),
                    "" if d.abs_diff is None else f"{d.abs_diff:.3g}",
                )
                for d in shown_diffs
            ]
            lines += ["", "differences (largest first):", *_columns(rows)]
            if len(diffs) > len(shown_diffs):
                lines.append(f"... {len(diffs) - len(shown_diffs)} more")
        changed = [i for i in self.informational[1:] if not i.equal]
        if changed:
            lines += ["", "informational (never a difference):"]
            info = [("field", "A", "B"), *((i.name, _cell(i.a), _cell(i.b)) for i in changed)]
            lines += _columns(info)
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-native form (``medval diff --json``)."""
        return {
            "agree": self.agree,
            "tolerance": self.tolerance,
            "keys": None if self.keys is None else list(self.keys),
            "a": self.sources[0],
            "b": self.sources[1],
            "compared": dict(self.compared),
            "largest": None
            if self.largest is None
            else dict(zip(("abs_diff", "key", "field"), self.largest, strict=True)),
            "differences": [dataclasses.asdict(d) for d in self.sorted_differences()],
            "hashes": [{**dataclasses.asdict(h), "equal": h.equal} for h in self.hashes],
            "informational": [
                {**dataclasses.asdict(i), "equal": i.equal} for i in self.informational
            ],
        }


def _short(x: Any) -> str:
    return "-" if x is None else str(x)[:12]


def _where(key: str, field: str) -> str:
    if not field:
        return key
    return f"{key}{field}" if field.startswith("[") else f"{key} {field}"


def _cell(x: Any, width: int = 40) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        text = f"{x:.10g}"
    elif isinstance(x, str):
        text = x
    else:
        import json

        text = json.dumps(x, sort_keys=True)
    return text if len(text) <= width else text[: width - 3] + "..."


def _columns(rows: Sequence[tuple[str, ...]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    out = ["  " + "  ".join(f"{c:<{w}}" for c, w in zip(r, widths, strict=True)).rstrip()
           for r in rows]  # fmt: skip
    out.insert(1, "  " + "  ".join("-" * w for w in widths))
    return out
