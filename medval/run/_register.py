"""``medval register``: record a spec's protocol and test data before they are used.

Reads the cohort with the run's own reader (headers, labels and file digests:
no model, no inference, nothing shown of the labels), digests the splits the
spec evaluates plus its calibration split and writes the registration beside
the cohort definition; :func:`check_registration` later compares a run with it.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import os
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from medval import __version__, integrity
from medval._errors import DataError
from medval.gate import DEFAULT_CALIBRATION_SPLIT, Spec, evaluated_splits

__all__ = ["RegistrationCheck", "check_registration", "register_spec", "spec_manifests"]

#: ``usage_budget`` when neither the command line nor gate.usage_budget gives one.
DEFAULT_USAGE_BUDGET = 20


def _used_splits(spec: Spec, present: list[str]) -> list[str]:
    """The evaluated splits, then the calibration split when present."""
    calibration = spec["analysis.calibration_split"] or DEFAULT_CALIBRATION_SPLIT
    tests = spec["analysis.test_splits"]
    out = evaluated_splits(present, calibration_split=calibration, test_splits=tests)
    return [*out, calibration] if calibration in present and calibration not in out else out


def _segmentation_manifests(spec: Spec) -> dict[str, integrity.SplitManifest]:
    """Cases of data.cases: each series' file digests and its reference mask's bytes."""
    from medval import io
    from medval._provenance import file_sha256

    cases = io.read_cases(spec.resolve("data.cases"))
    scan = io.read_dicom_cohort(
        spec.resolve("data.dicom_dir"), salt=os.environ.get(spec["data.salt_env"]),
        workers=spec["data.workers"], max_pixel_bytes=spec["data.max_pixel_bytes"],
    )  # fmt: skip
    found = io.series_cohort(scan, cases)
    masks = spec.resolve("data.masks")
    rows = []
    for case, files in found.files.items():
        lines = "".join(f"{scan.file_sha256.get(f, '')}\n" for f in files)
        mask = io.find_mask(masks, case)
        label = "" if mask is None else file_sha256(mask)
        rows.append((cases[case], case, label, hashlib.sha256(lines.encode()).hexdigest()))
    return integrity.digest_cases(rows)


def spec_manifests(spec: Spec, data: Any = None) -> dict[str, integrity.SplitManifest]:
    """The manifests of the splits ``spec`` evaluates and calibrates on.

    ``data`` is the cohort :func:`medval.run.read_data` returned (read here
    when None); a segmentation spec reads its cases, series and masks.
    """
    if spec["task.type"] == "segmentation":
        every = _segmentation_manifests(spec)
    else:
        if data is None:
            from medval.run._spec import read_data

            data = read_data(spec, salt=os.environ.get(spec["data.salt_env"]), progress=False)
        every = integrity.split_manifests(data)
    present = [s for s in every if s != "train"]
    return {s: every[s] for s in _used_splits(spec, present) if s in every}


def _now(now: datetime.datetime | None) -> str:
    moment = now or datetime.datetime.now(datetime.UTC)
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def register_spec(
    spec: Spec,
    *,
    strict: bool = False,
    usage_budget: int | None = None,
    supersede: bool = False,
    signing_key: bytes | None = None,
    now: datetime.datetime | None = None,
) -> tuple[integrity.Registration, Path]:
    """Register ``spec``: its protocol and its splits' manifests, beside its data.

    Parameters
    ----------
    spec : medval.gate.Spec
    strict : bool, default False
        Deviations from this registration refuse the gate.
    usage_budget : int, optional
        Evaluations before the report warns; default gate.usage_budget, else 20.
    supersede : bool, default False
        Replace an existing registration (recording it).
    signing_key : bytes, optional
        Sign the file (:func:`medval._result.signing_key`).
    now : datetime, optional
        The registration time (default: now, UTC).

    Returns
    -------
    (Registration, Path)
        What was written and where.

    Raises
    ------
    InputError
        A registration exists (without ``supersede``), or a bad usage budget.
    DataError
        The cohort cannot be read, or has none of the splits the spec evaluates.
    """
    from medval._errors import InputError

    budget = usage_budget if usage_budget is not None else spec["gate.usage_budget"]
    budget = DEFAULT_USAGE_BUDGET if budget is None else budget
    if budget < 1:
        raise InputError(f"--usage-budget must be an integer >= 1; got {budget}.")
    path = integrity.registration_path(spec)
    if not supersede:
        integrity.check_unregistered(path)  # before a long scan
    splits = spec_manifests(spec)
    if not splits:
        raise DataError(
            f"{spec.path.name}: the cohort holds none of the splits the spec evaluates; "
            "check analysis.test_splits and the labels' split column."
        )
    proto = integrity.protocol(spec)
    reg = integrity.Registration(
        registered_at=_now(now),
        medval_version=__version__,
        protocol_sha256=integrity.protocol_sha256(proto),
        protocol=proto,
        splits={name: m.to_dict() for name, m in splits.items()},
        strict=strict,
        usage_budget=int(budget),
    )
    reg = integrity.write_registration(reg, path, signing_key=signing_key, supersede=supersede)
    ledger = path.parent / integrity.LEDGER_FILE
    if not ledger.exists():  # its genesis ties the ledger to this registration
        integrity.start_ledger(
            ledger, protocol_sha256=reg.protocol_sha256,
            registration_sha256=_content_sha256(path), signing_key=signing_key, now=now,
        )  # fmt: skip
    else:  # a new protocol for a test set already in use: every later report says so
        integrity.append_entry(
            ledger, kind="reregistered", protocol_sha256=reg.protocol_sha256,
            model_sha256=None, verdict="none", revealed=(), splits=sorted(reg.splits),
            signing_key=signing_key, now=now, registration_sha256=_content_sha256(path),
        )  # fmt: skip
    return reg, path


def _content_sha256(path: Path) -> str:
    import json

    from medval._result import INTEGRITY_KEY

    return str(json.loads(path.read_text(encoding="utf-8"))[INTEGRITY_KEY]["content_sha256"])


@dataclasses.dataclass(frozen=True)
class RegistrationCheck:
    """A run compared with its registration.

    Attributes
    ----------
    found : bool
        A registration lies beside the cohort definition.
    path : Path
        Where it is (or would be). Never show it whole: folder names can
        identify people; show :attr:`shown`.
    shown : str
        The registration's path relative to the spec, as the spec writes its
        data path (``cohort/medval-registration.json``).
    registration : Registration or None
    deviations : tuple of Deviation
    strict : bool
        The registration is strict, or the spec sets gate.strict_registration.
    """

    found: bool
    path: Path
    shown: str
    registration: integrity.Registration | None
    deviations: tuple[integrity.Deviation, ...]
    strict: bool

    @property
    def loosened(self) -> tuple[integrity.Deviation, ...]:
        """The deviations that made the gate easier to pass."""
        return tuple(d for d in self.deviations if d.loosened)

    @property
    def refuses(self) -> bool:
        """Strict, and the run deviates or has no registration: the gate must not pass."""
        return self.strict and (not self.found or bool(self.deviations))


def _shown(spec: Spec) -> str:
    for key in ("data.labels", "data.table", "data.cases"):
        if spec[key] is not None:
            folder = PurePosixPath(str(spec[key]).replace("\\", "/")).parent
            return str(folder / integrity.REGISTRATION_FILE)
    return integrity.REGISTRATION_FILE


def check_registration(
    spec: Spec,
    data: Any = None,
    *,
    signing_key: bytes | None = None,
    splits: Mapping[str, integrity.SplitManifest] | None = None,
) -> RegistrationCheck:
    """Compare a run (``spec`` and its cohort ``data``) with the spec's registration.

    Parameters
    ----------
    spec : medval.gate.Spec
    data : medval.io.CohortData, optional
        The cohort the run read (:func:`medval.run.read_data`); read here when
        None and no ``splits`` are given.
    signing_key : bytes, optional
        Require a registration signed with it.
    splits : mapping of str to SplitManifest, optional
        The run's split manifests, when already computed (:func:`spec_manifests`).

    Raises
    ------
    DataError
        The registration was edited, or (with a key) is unsigned or signed
        with another key.
    """
    path = integrity.registration_path(spec)
    shown = _shown(spec)
    if not path.exists():
        strict = bool(spec["gate.strict_registration"])
        return RegistrationCheck(False, path, shown, None, (), strict)
    reg = integrity.read_registration(path, signing_key=signing_key)
    now = dict(splits) if splits is not None else spec_manifests(spec, data)
    found = integrity.deviations(reg, spec, now)
    strict = reg.strict or bool(spec["gate.strict_registration"])
    return RegistrationCheck(True, path, shown, reg, found, strict)
