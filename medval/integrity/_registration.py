"""The registration file: a spec's protocol and its test data, recorded before they are used.

``medval-registration.json`` lies beside the cohort definition (the labels
CSV, metadata table or cases CSV). It holds the protocol (the canonical spec
sections and criteria, :mod:`medval.integrity._protocol`), each split's
manifest digest and size (never a case id), the time and whether deviations
refuse the gate. Its integrity block is the one ``result.json`` carries
(:func:`medval._result.integrity`): a content digest always, an HMAC with
``MEDVAL_SIGNING_KEY``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from medval._errors import DataError, InputError
from medval._result import (
    INTEGRITY_KEY,
    SIGNING_KEY_ENV,
    canonical_json,
    integrity,
    integrity_problem,
)
from medval.gate import Spec

__all__ = [
    "REGISTRATION_FILE",
    "REGISTRATION_FORMAT",
    "Registration",
    "check_unregistered",
    "read_registration",
    "registration_path",
    "write_registration",
]

REGISTRATION_FORMAT = "medval-registration/1"
REGISTRATION_FILE = "medval-registration.json"
#: Spec keys naming the cohort definition, in the order looked up.
_DEFINITION_KEYS = ("data.labels", "data.table", "data.cases")


@dataclasses.dataclass(frozen=True)
class Registration:
    """A spec's protocol and its splits, fixed before the test data are opened.

    Attributes
    ----------
    registered_at : str
        ISO-8601 UTC time (``2026-01-31T12:00:00Z``).
    medval_version : str
    protocol_sha256 : str
        :func:`medval.integrity.protocol_sha256` of ``protocol``.
    protocol : dict
        :func:`medval.integrity.protocol` of the registered spec.
    splits : dict of str to dict
        Split name -> ``{"manifest_sha256": str, "n_cases": int}``.
    strict : bool
        Deviations refuse the gate (``medval register --strict``).
    usage_budget : int
        Evaluations of the test set before the report warns.
    supersedes : tuple of dict
        The registrations this one replaced, oldest first:
        ``{"content_sha256": ..., "registered_at": ...}``.
    format : str
        :data:`REGISTRATION_FORMAT`.
    """

    registered_at: str
    medval_version: str
    protocol_sha256: str
    protocol: dict[str, Any]
    splits: dict[str, dict[str, Any]]
    strict: bool = False
    usage_budget: int = 20
    supersedes: tuple[dict[str, str], ...] = ()
    format: str = REGISTRATION_FORMAT

    def to_dict(self) -> dict[str, Any]:
        """The JSON-native form (without the integrity block)."""
        out = dataclasses.asdict(self)
        out["supersedes"] = [dict(s) for s in self.supersedes]
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Registration:
        """Inverse of :meth:`to_dict` (an integrity block, if any, is ignored).

        Raises
        ------
        DataError
            Another format, or a missing or mistyped field.
        """
        if data.get("format") != REGISTRATION_FORMAT:
            raise DataError(
                f"not a medval registration: format {data.get('format')!r}, expected "
                f"{REGISTRATION_FORMAT!r}."
            )
        fields = {f.name for f in dataclasses.fields(cls)}
        missing = sorted(fields - {"strict", "usage_budget", "supersedes"} - set(data))
        if missing:
            raise DataError(f"medval registration lacks {missing}.")
        kept = {k: v for k, v in data.items() if k in fields}
        kept["supersedes"] = tuple(dict(s) for s in data.get("supersedes", ()))
        reg = cls(**kept)
        if not isinstance(reg.protocol, dict) or not isinstance(reg.splits, dict):
            raise DataError("medval registration: protocol and splits must be objects.")
        return reg


def registration_path(spec: Spec) -> Path:
    """The registration file of ``spec``: beside its cohort definition.

    The folder of ``data.labels``, ``data.table`` or ``data.cases`` (the
    first given), joined with :data:`REGISTRATION_FILE`.
    """
    for key in _DEFINITION_KEYS:
        if spec[key] is not None:
            return spec.resolve(key).parent / REGISTRATION_FILE
    raise InputError(
        f"{spec.path.name} names no cohort definition (data.labels, data.table or data.cases); "
        "a registration is kept beside it."
    )


def check_unregistered(path: str | Path) -> None:
    """Refuse to register where a registration exists (``--supersede`` replaces it).

    Raises
    ------
    InputError
        ``path`` exists.
    """
    p = Path(path)
    if p.exists():
        raise InputError(
            f"{p.name} already exists: a test set is registered once, before its data "
            "are used. To change the protocol, register again with --supersede (the new "
            "registration records the old one; deviations from it stay visible in git)."
        )


def _write_atomic(path: Path, text: str, *, replace: bool) -> None:
    """Write through a temporary file in the same folder; never over a file unless ``replace``."""
    fd, tmp = tempfile.mkstemp(prefix=".medval-registration-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        if replace:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)  # fails if the file appeared meanwhile
    finally:
        Path(tmp).unlink(missing_ok=True)


def write_registration(
    reg: Registration, path: str | Path, *, signing_key: bytes | None, supersede: bool = False
) -> Registration:
    """Write ``reg`` to ``path`` with its integrity block (signed with ``signing_key``).

    Parameters
    ----------
    reg : Registration
    path : str or Path
        Usually :func:`registration_path`.
    signing_key : bytes or None
        Adds an HMAC-SHA256 of the content (:func:`medval._result.signing_key`).
    supersede : bool, default False
        Replace an existing registration; the new one records the old one's
        content digest and time (after those it superseded itself). The old
        file must still be intact.

    Returns
    -------
    Registration
        What was written (with ``supersedes`` filled when superseding).

    Raises
    ------
    InputError
        A registration exists and ``supersede`` is False, or its folder is
        missing or not writable.
    DataError
        Superseding a registration that was edited or is unreadable.
    """
    p = Path(path)
    if not supersede:
        check_unregistered(p)
    elif p.exists():
        old = read_registration(p, signing_key=signing_key)
        previous = json.loads(p.read_text(encoding="utf-8"))[INTEGRITY_KEY]["content_sha256"]
        entry = {"content_sha256": previous, "registered_at": old.registered_at}
        reg = dataclasses.replace(reg, supersedes=(*old.supersedes, entry))
    data = reg.to_dict()
    text = canonical_json({**data, INTEGRITY_KEY: integrity(data, signing_key=signing_key)})
    try:
        _write_atomic(p, text, replace=supersede)
    except FileExistsError as exc:
        raise InputError(
            f"{p.name} appeared while registering; run medval register again with --supersede "
            "if it should be replaced."
        ) from exc
    except OSError as exc:
        raise InputError(
            f"cannot write the registration {p.name} beside the cohort definition "
            f"({exc.strerror or exc}); make its folder writable."
        ) from exc
    return reg


def read_registration(path: str | Path, *, signing_key: bytes | None) -> Registration:
    """Read and check a registration file.

    Parameters
    ----------
    path : str or Path
    signing_key : bytes or None
        When given, the file must carry a matching HMAC.

    Raises
    ------
    DataError
        Missing, unreadable or malformed file; content that does not match
        its digest (edited after registration); with a key, a missing or
        wrong signature. Messages name the file and the fix.
    """
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise DataError(
            f"{p.name} does not exist; register the spec first: medval register spec.toml."
        ) from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(
            f"{p.name} is not a readable medval registration ({exc}); restore it from version "
            "control."
        ) from exc
    if not isinstance(data, dict):
        raise DataError(f"{p.name} is not a medval registration (a JSON object).")
    _check(data, p.name, signing_key)
    return Registration.from_dict(data)


def _check(data: dict[str, Any], name: str, signing_key: bytes | None) -> None:
    problem = integrity_problem(data, signing_key=signing_key)
    if problem in ("missing", "malformed"):
        raise DataError(
            f"{name} carries no content digest ('{INTEGRITY_KEY}'): it was edited or not "
            "written by medval register. Restore it from version control."
        )
    if problem == "changed":
        raise DataError(
            f"{name} was changed after registration: its content does not match its recorded "
            f"SHA-256 ({data[INTEGRITY_KEY]['content_sha256'][:16]}...). Restore it from version "
            "control; a changed protocol is registered anew with medval register --supersede."
        )
    if problem == "unsigned":
        raise DataError(
            f"{name} is not signed, but {SIGNING_KEY_ENV} is set: register with that key set, "
            f"or unset {SIGNING_KEY_ENV} to accept an unsigned registration."
        )
    if problem == "forged":
        raise DataError(
            f"{name}: its signature does not match {SIGNING_KEY_ENV}: it was signed with "
            "another key, or written or edited by someone without the key."
        )
