"""Per-split manifest digests of a cohort: which cases, their labels and their bytes.

A split's digest is the SHA-256 of its sorted lines ``case_id\\tlabel\\tcontent``
(``content``: the image file's SHA-256, or for a metadata table the digest of
the case's row), so it changes when a case is added, removed or relabelled or
an image's bytes change, and not with row order. Only the digest and the count
are kept: never a case id.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from medval.integrity._protocol import canonical_text

if TYPE_CHECKING:
    from medval.io import CohortData

__all__ = ["SplitManifest", "digest_cases", "split_manifests"]


@dataclasses.dataclass(frozen=True)
class SplitManifest:
    """One split's digest and size.

    Attributes
    ----------
    manifest_sha256 : str
        SHA-256 over the split's sorted ``case_id\\tlabel\\tcontent`` lines.
    n_cases : int
        Cases (cohort rows) in the split.
    """

    manifest_sha256: str
    n_cases: int

    def to_dict(self) -> dict[str, Any]:
        """``{"manifest_sha256": ..., "n_cases": ...}``."""
        return {"manifest_sha256": self.manifest_sha256, "n_cases": self.n_cases}


def digest_cases(cases: Iterable[tuple[str, str, str, str]]) -> dict[str, SplitManifest]:
    """Split -> its manifest, from ``(split, case_id, label, content)`` rows in any order."""
    lines: dict[str, list[str]] = {}
    for split, case_id, label, content in cases:
        lines.setdefault(split, []).append(f"{case_id}\t{label}\t{content}\n")
    out: dict[str, SplitManifest] = {}
    for split in sorted(lines):
        h = hashlib.sha256()
        for line in sorted(lines[split]):
            h.update(line.encode("utf-8"))
        out[split] = SplitManifest(h.hexdigest(), len(lines[split]))
    return out


def _scalar(value: Any) -> Any:
    """A cohort cell as a JSON value (numpy scalars unwrapped, NaN as None)."""
    value = value.item() if hasattr(value, "item") else value
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value if value is None or isinstance(value, (str, int, float, bool)) else str(value)


def _row_digest(row: Mapping[Any, Any]) -> str:
    # Salted pseudonyms (*_key) differ between runs without MEDVAL_SALT: not content.
    kept = {str(k): _scalar(v) for k, v in row.items()
            if k not in ("label", "split") and not k.endswith("_key")}  # fmt: skip
    return hashlib.sha256(canonical_text(kept).encode("utf-8")).hexdigest()


def split_manifests(data: CohortData) -> dict[str, SplitManifest]:
    """Split name -> :class:`SplitManifest` of an io cohort.

    Parameters
    ----------
    data : medval.io.CohortData
        From :func:`medval.run.read_data`. Cases with an image are digested
        by its bytes (``data.file_sha256``); cases of a metadata table (no
        images) by their row: the table's columns but the salted
        pseudonyms (``*_key``, which differ between runs unless
        ``MEDVAL_SALT`` is set; the case id and label are digested anyway).

    Returns
    -------
    dict of str to SplitManifest
        Sorted by split name.
    """
    frame = data.cohort
    labels = [_scalar(v) for v in frame["label"]]
    rows: list[tuple[str, str, str, str]] = []
    records = frame.to_dict(orient="records") if not data.file_sha256 else None
    for i, (case_id, split) in enumerate(zip(frame.index, frame["split"], strict=True)):
        cid = str(case_id)
        content = data.file_sha256.get(cid) if records is None else _row_digest(records[i])
        rows.append((str(split), cid, canonical_text(labels[i]), content or ""))
    return digest_cases(rows)
