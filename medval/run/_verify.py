"""What ``medval gate`` checks before it judges a ``result.json``.

That the file is what medval wrote (its content digest, and its HMAC when
``MEDVAL_SIGNING_KEY`` is set), and that it is the run of the spec and model
given: the spec's SHA-256 and the declared model files' (or predictions
file's) SHA-256 must be the ones the run recorded. ``--rejudge`` judges a
result against another spec's criteria on purpose; the differences are then
said, never hidden.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from medval._errors import SpecError
from medval._provenance import file_sha256
from medval._result import ValidationResult
from medval.gate import Spec
from medval.run._model import ensemble_sha256, model_files

__all__ = ["Checked", "read_checked"]


@dataclasses.dataclass(frozen=True)
class Checked:
    """A result read for judging, and what differs from the spec and model given.

    Attributes
    ----------
    result : ValidationResult
    differences : tuple of str
        How the run's spec or model differ from those given (only with
        ``rejudge``; otherwise a difference is refused).
    rejudged : bool
        ``rejudge`` was asked for.
    signed : bool
        The result's HMAC was checked against the key.
    """

    result: ValidationResult
    differences: tuple[str, ...] = ()
    rejudged: bool = False
    signed: bool = False

    def note(self) -> str:
        """One line for the terminal and the JUnit properties."""
        what = "content digest" + (" and signature" if self.signed else "")
        if not self.rejudged:
            return f"result verified ({what}; spec and model are the run's)"
        if not self.differences:
            return f"re-judged (--rejudge); {what} verified; spec and model are the run's"
        return f"re-judged (--rejudge); {what} verified; " + "; ".join(self.differences)


def _short(digest: object) -> str:
    return f"{str(digest)[:16]}..." if digest else "none"


def _model_digest(spec: Spec) -> tuple[str | None, str]:
    """The SHA-256 of the model the spec declares now (None when missing), and its name."""
    files = model_files(spec)
    if not files:
        path = spec.resolve("model.predictions")
        return (file_sha256(path) if path.is_file() else None), f"model.predictions {path.name}"
    missing = [f.name for f in files if not f.is_file()]
    name = "model.file " + ", ".join(f.name for f in files)
    if missing:
        return None, name
    digests = [file_sha256(f) for f in files]
    return (digests[0] if len(files) == 1 else ensemble_sha256(digests)), name


def differences(result: ValidationResult, spec: Spec) -> list[str]:
    """How the run that wrote ``result`` differs from ``spec`` and its declared model."""
    prov = result.provenance
    out = []
    spec_now = file_sha256(spec.path)
    if prov.get("spec_sha256") != spec_now:
        out.append(
            f"the run read a spec with SHA-256 {_short(prov.get('spec_sha256'))}, "
            f"{spec.path.name} has {_short(spec_now)}"
        )
    model_now, name = _model_digest(spec)
    if model_now is None:
        out.append(f"{name} (declared by {spec.path.name}) does not exist here to be checked")
    elif prov.get("model_sha256") != model_now:
        out.append(
            f"the run's model has SHA-256 {_short(prov.get('model_sha256'))}, "
            f"{name} has {_short(model_now)} now"
        )
    return out


def read_checked(
    path: str | Path,
    spec: Spec,
    *,
    rejudge: bool = False,
    signing_key: bytes | None = None,
) -> Checked:
    """Read a ``result.json`` (or a run folder's) for ``medval gate``, checking what it is.

    Parameters
    ----------
    path : path
        ``result.json`` or the folder holding it.
    spec : Spec
        The spec whose criteria will judge it.
    rejudge : bool, default False
        Judge a result of another spec or model on purpose: the differences
        are returned (to be said) instead of refused.
    signing_key : bytes, optional
        Refuse a result without a matching HMAC.

    Raises
    ------
    DataError
        The file is missing, malformed, carries no content digest, was
        changed after medval wrote it, or (with a key) is not signed with it.
    SpecError
        Without ``rejudge``: the run read another spec, or ran another model
        than the spec declares (or the model file is not there to check).
    """
    p = Path(path)
    if p.is_dir():
        p = p / "result.json"
    result = ValidationResult.read_json(p, signing_key=signing_key, require_integrity=True)
    found = differences(result, spec)
    if found and not rejudge:
        raise SpecError(
            f"{p.name} is not the run of {spec.path.name} and its model: {'; '.join(found)}. "
            "Judge a result with the spec and model that produced it, or pass --rejudge to "
            "judge it against this spec's criteria on purpose (the output and the JUnit "
            "file then say so)."
        )
    return Checked(result, tuple(found), rejudge, signing_key is not None)
