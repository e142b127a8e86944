"""Key-by-key comparison of two validation results.

Walks the JSON-native form of two :class:`~medval.ValidationResult` objects
and lists every entry that moved beyond a tolerance. Import-light: stdlib
and medval's result type only.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from medval._errors import DataError, InputError
from medval.diff._model import (
    DECISIVE_HASHES,
    INFORMATIONAL_HASHES,
    Difference,
    HashCheck,
    Informational,
    ResultDiff,
)

__all__ = ["DEFAULT_TOLERANCE", "diff_results", "within"]

#: Default tolerance of :func:`diff_results` (see there for the rule).
#:
#: Set by measurement, not by taste: the same run on another machine moves
#: predicted probabilities by about 1e-7 (floating-point summation order
#: differs between CPU kernels and thread counts), estimates built from ranks
#: (AUROC, sensitivity at a fixed threshold) do not move at all, and reports
#: print 3 decimals. 1e-4 sits three orders above the noise and well below
#: anything a report shows. The final value follows cross-machine runs.
DEFAULT_TOLERANCE: float = 1e-4

# Estimate fields that are numbers with noise; the other fields are settings.
_NUMERIC_FIELDS = ("value", "low", "high")
_SETTING_FIELDS = ("method", "n", "confidence_level", "seed", "n_resamples", "higher_is_better")
# Gate entries: exact, whatever the tolerance. Keyed rows: (table, key fields).
_GATE_VALUES = frozenset({"gate.status", "gate.counts"})
_GATE_TABLES = {"gate.verdicts": ("name",), "gate.groups": ("criterion", "group")}
_STORES = ("estimates", "values", "tables")

Source = str | os.PathLike[str] | Any  # a path, or a ValidationResult


def within(a: float, b: float, tolerance: float) -> bool:
    """Whether ``|a - b| <= tolerance * max(1, |a|, |b|)``.

    Absolute for numbers up to 1 in size (probabilities, AUROC, rates),
    relative above (counts, costs, calibration slopes far from 1).
    """
    return abs(a - b) <= tolerance * max(1.0, abs(a), abs(b))


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


class _Walk:
    """Collects differences and the largest numeric movement."""

    def __init__(self, tolerance: float) -> None:
        self.tolerance = tolerance
        self.found: list[Difference] = []
        self.largest: tuple[float, str, str] | None = None

    def add(self, key: str, field: str, a: Any, b: Any, kind: str) -> None:
        gap = abs(a - b) if _is_number(a) and _is_number(b) else None
        self.found.append(Difference(key, field, a, b, None if gap is None else float(gap), kind))

    def number(self, key: str, field: str, a: float, b: float, exact: bool) -> None:
        gap = float(abs(a - b))
        if gap > 0 and (self.largest is None or gap > self.largest[0]):
            self.largest = (gap, key, field)
        if exact or (isinstance(a, int) and isinstance(b, int)):
            # Counts and gate tallies do not move with floating-point noise.
            if a != b:
                self.add(key, field, a, b, "moved")
        elif not within(float(a), float(b), self.tolerance):
            self.add(key, field, a, b, "moved")

    def value(self, key: str, field: str, a: Any, b: Any, *, exact: bool = False) -> None:
        """Compare two JSON-native values: numbers within tolerance, the rest exactly."""
        if _is_number(a) and _is_number(b):
            self.number(key, field, a, b, exact)
        elif isinstance(a, Mapping) and isinstance(b, Mapping):
            for k in sorted({*a, *b}, key=str):
                sub = f"{field}.{k}" if field else str(k)
                if k not in b:
                    self.add(key, sub, a[k], None, "only in A")
                elif k not in a:
                    self.add(key, sub, None, b[k], "only in B")
                else:
                    self.value(key, sub, a[k], b[k], exact=exact)
        elif isinstance(a, list) and isinstance(b, list):
            if len(a) != len(b):
                self.add(key, f"{field}(length)" if field else "(length)", len(a), len(b),
                         "changed")  # fmt: skip
                return
            for i, (x, y) in enumerate(zip(a, b, strict=True)):
                self.value(key, f"{field}[{i}]", x, y, exact=exact)
        elif type(a) is not type(b) or a != b:
            self.add(key, field, a, b, "changed")

    def estimate(self, key: str, a: Mapping[str, Any], b: Mapping[str, Any]) -> None:
        for f in _NUMERIC_FIELDS:
            x, y = a.get(f), b.get(f)
            if isinstance(x, (int, float)) and isinstance(y, (int, float)):
                self.number(key, f, x, y, exact=False)
            elif x != y:
                self.add(key, f, x, y, "changed")  # estimable in one run only
        for f in _SETTING_FIELDS:
            if a.get(f) != b.get(f):
                self.add(key, f, a.get(f), b.get(f), "changed")

    def gate_rows(self, key: str, a: list[Any], b: list[Any], id_fields: Sequence[str]) -> None:
        def ident(row: Any) -> str:
            return ",".join(str(row.get(f)) for f in id_fields) if isinstance(row, dict) else "?"

        rows_a, rows_b = {ident(r): r for r in a}, {ident(r): r for r in b}
        for name in sorted({*rows_a, *rows_b}):
            ra, rb = rows_a.get(name), rows_b.get(name)
            if rb is None:
                self.add(key, f"[{name}]", ra, None, "only in A")
            elif ra is None:
                self.add(key, f"[{name}]", None, rb, "only in B")
            else:
                for f in sorted({*ra, *rb} - {"reason"}):  # reason: text of the numbers
                    x, y = ra.get(f), rb.get(f)
                    if f == "status":
                        if x != y:
                            self.add(key, f"[{name}].status", x, y, "verdict changed")
                    else:
                        self.value(key, f"[{name}].{f}", x, y)


def _read(source: Source, label: str) -> tuple[dict[str, Any], str, str]:
    """The JSON-native result, where it came from, and the SHA-256 of its bytes."""
    from medval._result import ValidationResult

    if isinstance(source, ValidationResult):
        text = source.to_json()
        return (
            source.to_dict(),
            "(ValidationResult object)",
            hashlib.sha256(text.encode("utf-8")).hexdigest(),
        )
    if not isinstance(source, (str, os.PathLike)):
        raise InputError(
            f"run {label} must be a path to result.json or a ValidationResult; "
            f"got {type(source).__name__}."
        )
    path = Path(source)
    if path.is_dir():
        path = path / "result.json"
    fix = "pass the result.json written by `medval validate` or `medval demo`"
    try:
        raw = path.read_bytes()
    except FileNotFoundError as exc:
        raise DataError(f"run {label}: {path} does not exist; {fix}.") from exc
    except OSError as exc:
        raise DataError(f"run {label}: cannot read {path} ({exc.strerror}); {fix}.") from exc
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"run {label}: {path} is not JSON ({exc}); {fix}.") from exc
    if not isinstance(data, dict) or "estimates" not in data:
        raise DataError(
            f"run {label}: {path} is JSON but not a medval result (no schema/estimates); {fix}."
        )
    try:
        result = ValidationResult.from_dict(data)
    except (InputError, KeyError, TypeError, AttributeError, ValueError) as exc:
        raise DataError(
            f"run {label}: {path} is not a valid medval result ({exc}); {fix}."
        ) from exc
    return result.to_dict(), str(path), hashlib.sha256(raw).hexdigest()


def _patterns(keys: str | Iterable[str] | None) -> tuple[str, ...] | None:
    if keys is None:
        return None
    pats = (keys,) if isinstance(keys, str) else tuple(keys)
    if not pats or not all(isinstance(p, str) and p for p in pats):
        raise InputError(f"keys must be glob patterns such as 'discrimination.*'; got {keys!r}.")
    return pats


def _check_tolerance(tolerance: float) -> float:
    try:
        t = float(tolerance)
    except (TypeError, ValueError):
        t = math.nan
    if not math.isfinite(t) or t < 0:
        raise InputError(
            f"tolerance must be a finite number >= 0; got {tolerance!r}. "
            f"The default is {DEFAULT_TOLERANCE:g}."
        )
    return t


def _flat(prefix: str, value: Any) -> dict[str, Any]:
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flat(f"{prefix}.{k}", v))
        return out
    return {prefix: value}


def _provenance(
    pa: Mapping[str, Any], pb: Mapping[str, Any], digests: tuple[str, str], walk: _Walk
) -> tuple[list[HashCheck], list[Informational]]:
    hashes = []
    for name in (*DECISIVE_HASHES, *INFORMATIONAL_HASHES):
        x, y = pa.get(name), pb.get(name)
        if x is None and y is None:
            continue
        decisive = name in DECISIVE_HASHES
        hashes.append(HashCheck(name, x, y, decisive))
        if decisive and x != y:
            walk.add(f"provenance.{name}", "", x, y, "hash differs")
    info = [Informational("result_sha256", *digests)]
    skip = {*DECISIVE_HASHES, *INFORMATIONAL_HASHES}
    fa = {k: v for n, x in pa.items() if n not in skip for k, v in _flat(n, x).items()}
    fb = {k: v for n, x in pb.items() if n not in skip for k, v in _flat(n, x).items()}
    info += [Informational(k, fa.get(k), fb.get(k)) for k in sorted({*fa, *fb})]
    return hashes, info


def diff_results(
    a: Source,
    b: Source,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    keys: str | Iterable[str] | None = None,
) -> ResultDiff:
    """Compare two validation results key by key.

    Parameters
    ----------
    a, b : path or ValidationResult
        ``result.json`` files (or the folders holding them) or results.
    tolerance : float, default :data:`DEFAULT_TOLERANCE` (1e-4)
        Two numbers agree when ``|a - b| <= tolerance * max(1, |a|, |b|)``:
        an absolute tolerance for numbers up to 1 in size (probabilities,
        AUROC, rates) and a relative one above. Integers (counts) must be
        equal. The default is measured: across machines, floating-point
        summation order moves probabilities by about 1e-7, rank-based
        estimates do not move, and reports print 3 decimals.
    keys : str or sequence of str, optional
        ``fnmatch`` glob patterns (``"discrimination.*"``); only result keys
        matching one of them are compared. Model and data hashes are always
        compared; gate keys only when they match.

    Returns
    -------
    ResultDiff
        ``.agree`` is True when nothing differs. What counts as a difference:
        an estimate's ``value``/``low``/``high`` beyond tolerance, or a change
        of its ``method``, ``n``, ``confidence_level``, ``seed``,
        ``n_resamples`` or ``higher_is_better``; a value or table cell beyond
        tolerance (numbers) or not equal (strings, booleans, None, lengths,
        row counts); any change of a gate verdict (``gate.status``,
        ``gate.counts``, a criterion's status; no tolerance); a key in one run
        only; a differing model, baseline model or data manifest hash. The
        spec hash, command line, versions, platform, git commit and the
        result's own digest are shown but never a difference.

    Raises
    ------
    DataError
        If a file is missing, not JSON or not a medval result.
    InputError
        If ``tolerance`` is negative or not finite, or ``keys`` matches no
        key of either run.
    """
    t = _check_tolerance(tolerance)
    pats = _patterns(keys)
    da, src_a, sha_a = _read(a, "A")
    db, src_b, sha_b = _read(b, "B")
    walk = _Walk(t)
    hashes, info = _provenance(da["provenance"], db["provenance"], (sha_a, sha_b), walk)

    where_a = {k: s for s in _STORES for k in da[s]}
    where_b = {k: s for s in _STORES for k in db[s]}
    names = sorted({*where_a, *where_b})
    if pats is not None:
        names = [k for k in names if any(fnmatch.fnmatchcase(k, p) for p in pats)]
        if not names:
            heads = sorted({k.split(".")[0] for k in {*where_a, *where_b}})
            raise InputError(
                f"keys {list(pats)} match no key of either run; keys start with {heads}."
            )
    compared = dict.fromkeys(_STORES, 0)
    for k in names:
        sa, sb = where_a.get(k), where_b.get(k)
        if sb is None:
            walk.add(k, "", _brief(str(sa), da[str(sa)][k]), None, "only in A")
        elif sa is None:
            walk.add(k, "", None, _brief(sb, db[sb][k]), "only in B")
        elif sa != sb:
            walk.add(k, "(stored in)", sa, sb, "changed")
        else:
            compared[sa] += 1
            x, y = da[sa][k], db[sb][k]
            if sa == "estimates":
                walk.estimate(k, x, y)
            elif k in _GATE_VALUES:
                if x != y:
                    walk.add(k, "", x, y, "verdict changed")
            elif k in _GATE_TABLES and isinstance(x, list) and isinstance(y, list):
                walk.gate_rows(k, x, y, _GATE_TABLES[k])
            elif sa == "tables" and len(x) != len(y):
                walk.add(k, "(rows)", len(x), len(y), "changed")
            else:
                walk.value(k, "", x, y)
    return ResultDiff(
        tolerance=t,
        keys=pats,
        sources=(src_a, src_b),
        differences=tuple(walk.found),
        hashes=tuple(hashes),
        informational=tuple(info),
        compared=compared,
        largest=walk.largest,
    )


def _brief(store: str, x: Any) -> Any:
    """A short stand-in for a whole entry (an estimate's value, a table's size)."""
    if store == "estimates":
        return x.get("value", "not estimable")
    if isinstance(x, list):
        return f"{len(x)} rows"
    if isinstance(x, dict):
        return f"{len(x)} entries"
    return x
