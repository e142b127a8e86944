"""Honest gating over time, in a run: the registration, the ledger, the reusable holdout.

:func:`prepare_integrity` runs once the cohort is read and before the model:
it compares the run with the registration beside the data (strict mode
refuses a deviating run here, before any heavy work) and checks that the
test set's ledger is intact. :meth:`GateIntegrity.finish` runs once the
criteria are judged: it answers them through Thresholdout when the spec asks,
adds the registration and usage verdicts, appends the run to the ledger and
records all of it in the result (no case id, no path: digests, counts and
file names).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Literal

from medval import integrity
from medval._errors import DataError, SpecError
from medval._result import ValidationResult
from medval.gate import Spec, Verdict, gate_status, spec_criteria
from medval.run._log import Log
from medval.run._register import RegistrationCheck, check_registration, spec_manifests

__all__ = ["GateIntegrity", "gate_integrity", "prepare_integrity", "with_reference_split"]

REGISTRATION_VERDICT = "medval.registration"
USAGE_VERDICT = "medval.test-set-usage"


def _refusal(check: RegistrationCheck) -> str:
    if not check.found:
        return (
            f"strict registration (gate.strict_registration) needs a registration at "
            f"{check.shown}, and there is none: register the protocol before the test set is "
            "opened (medval register SPEC), or turn strict mode off."
        )
    texts = "; ".join(d.text for d in check.deviations)
    return (
        f"strict registration: this run deviates from the registration at {check.shown} "
        f"({texts}). The gate refuses to judge it: restore the registered protocol, or "
        "register the new one (medval register SPEC --supersede), which the ledger and every "
        "later report will show."
    )


@dataclasses.dataclass(frozen=True)
class GateIntegrity:
    """What a run knows about its registration and test-set ledger before it judges.

    Attributes
    ----------
    spec : Spec
    check : RegistrationCheck
    splits : dict of str to SplitManifest
        The run's split manifests (digests and counts).
    ledger : Path or None
        The test set's ledger (registered test sets only).
    signing_key : bytes or None
    """

    spec: Spec
    check: RegistrationCheck
    splits: dict[str, Any]
    ledger: Path | None
    signing_key: bytes | None

    @property
    def thresholdout(self) -> bool:
        return bool(self.spec["gate.holdout"] == "thresholdout")

    def budget(self) -> int:
        given = self.spec["gate.usage_budget"]
        if given is not None:
            return int(given)
        reg = self.check.registration
        return int(reg.usage_budget) if reg is not None else integrity.DEFAULT_USAGE_BUDGET

    def registration_record(self) -> dict[str, Any]:
        """``result.provenance["registration"]``: JSON-native, file name only."""
        reg = self.check.registration
        out: dict[str, Any] = {
            "status": "registered" if reg is not None else "not registered",
            "file": self.check.shown,
            "strict": self.check.strict,
            "splits_now": {k: m.to_dict() for k, m in sorted(self.splits.items())},
        }
        if reg is not None:
            out.update(
                registered_after_uses=self.uses_before_registration(),
                supersedes=[dict(x) for x in reg.supersedes],
                registered_at=reg.registered_at,
                protocol_sha256=reg.protocol_sha256,
                n_criteria=len(reg.protocol.get("criteria") or ()),
                signed=self.signing_key is not None,
                deviations=[d.to_dict() for d in self.check.deviations],
            )
        return out

    def uses_before_registration(self) -> int:
        """Evaluations the ledger records before this registration (a re-registration)."""
        reg = self.check.registration
        if reg is None or self.ledger is None:
            return 0
        entries = integrity.read_ledger(self.ledger, signing_key=self.signing_key).entries
        last = max((e.seq for e in entries if e.kind == "reregistered"), default=0)
        return sum(e.kind in integrity.EVALUATION_KINDS and e.seq < last for e in entries)

    def finish(
        self,
        result: ValidationResult,
        verdicts: tuple[Verdict, ...],
        *,
        kind: str = "evaluated",
    ) -> tuple[Verdict, ...]:
        """Thresholdout, the registration and usage verdicts, the ledger entry.

        ``kind`` is the ledger entry's ("evaluated", "judged", "rejudged").
        The registration, usage, holdout and ledger head go into
        ``result.provenance`` (``medval gate`` prints them and writes them to
        the JUnit properties; it does not write the result back).
        """
        prov: dict[str, Any] = {"registration": self.registration_record()}
        state = None
        revealed: tuple[str, ...] = ("report", *(c.key for c in spec_criteria(self.spec)))
        if self.thresholdout and self.ledger is not None:
            outcome = integrity.answer_criteria(
                result, spec_criteria(self.spec), verdicts, settings=self.spec.sections["gate"],
                reference_split=_reference_split(self.spec), state=_holdout_state(self.ledger,
                self.signing_key), model_sha256=result.provenance.get("model_sha256"),
            )  # fmt: skip
            verdicts, state = outcome.verdicts, outcome.state
            prov["holdout"] = outcome.provenance
            revealed = ("thresholdout answers", *outcome.revealed)
        verdicts = (*verdicts, *self._registration_verdicts())
        if self.ledger is not None:
            entry = integrity.append_entry(
                self.ledger, kind=kind, protocol_sha256=integrity.protocol_sha256(self.spec),
                model_sha256=result.provenance.get("model_sha256"),
                verdict=_status_word(verdicts), revealed=revealed,
                splits=sorted(self.splits), holdout=None if state is None else {"state": state},
                signing_key=self.signing_key,
            )  # fmt: skip
            used = integrity.usage(
                integrity.read_ledger(self.ledger, signing_key=self.signing_key),
                budget=self.budget(),
            )
            prov[integrity.LEDGER_PROVENANCE_KEY] = integrity.ledger_anchor(entry)
            prov["test_set_usage"] = {
                "n_evaluations": used.n_evaluations,
                "n_models": used.n_models,
                "n_protocols": used.n_protocols,
                "budget": used.budget,
                "over_budget": used.over_budget,
                "first_time": used.first_time,
                "text": used.text,
            }
            if used.over_budget:
                verdicts = (*verdicts, _usage_verdict(used.text))
        result.provenance.update(prov)
        return verdicts

    def _registration_verdicts(self) -> tuple[Verdict, ...]:
        check = self.check
        if not check.found or check.registration is None:
            return ()
        when = check.registration.registered_at
        before = self.uses_before_registration()
        if not check.deviations:
            reason = f"the run follows the protocol registered {when} ({check.shown})"
            if before:  # a protocol fixed after looking is not a pre-registration
                reason += (
                    f", which was registered after the test set had been evaluated {before} "
                    "time(s) under an earlier registration"
                )
                return (_registration_verdict("warn", reason),)
            return (_registration_verdict("pass", reason),)
        texts = "; ".join(d.text for d in check.deviations)
        reason = f"{len(check.deviations)} deviation(s) from the registration of {when}: {texts}"
        return (_registration_verdict("error" if check.strict else "warn", reason),)


def _registration_verdict(status: Literal["pass", "warn", "error"], reason: str) -> Verdict:
    return Verdict(
        name=REGISTRATION_VERDICT, status=status, key="registration", op="==",
        threshold="registered protocol", severity="warn", reason=reason,
    )  # fmt: skip


def _usage_verdict(text: str) -> Verdict:
    return Verdict(
        name=USAGE_VERDICT, status="warn", key="test_set_usage", op="<=",
        threshold="usage budget", severity="warn", reason=text,
    )  # fmt: skip


def _status_word(verdicts: tuple[Verdict, ...]) -> str:
    status = gate_status(verdicts)
    return {"passed": "pass", "passed with warnings": "warn", "failed": "fail"}.get(
        status, "none" if status == "not gated" else "error"
    )


def _reference_split(spec: Spec) -> str:
    return str(spec["gate.holdout_reference_split"])


def _check_reference_split(spec: Spec) -> None:
    ref = spec["gate.holdout_reference_split"]
    calibration = spec["analysis.calibration_split"]
    tests = spec["analysis.test_splits"] or ()
    if ref is None or ref == calibration or ref in tests or ref == "train":
        raise SpecError(
            f"{spec.path.name}: gate.holdout = 'thresholdout' compares each criterion with "
            "the same metric on data the team owns and tunes on: set "
            "gate.holdout_reference_split to that split of the cohort (e.g. 'development'), "
            f"not the calibration split ({calibration!r}), a test split or 'train' "
            f"(got {ref!r})."
        )


def _holdout_state(ledger: Path, key: bytes | None) -> dict[str, Any] | None:
    """The mechanism's state after the newest entry that kept one (None: a fresh one)."""
    for entry in reversed(integrity.read_ledger(ledger, signing_key=key).entries):
        if entry.holdout and isinstance(entry.holdout.get("state"), dict):
            return dict(entry.holdout["state"])
    return None


def with_reference_split(spec: Spec, config: Any, present: list[str]) -> Any:
    """The evaluation config, with Thresholdout's reference split evaluated too."""
    if spec["gate.holdout"] != "thresholdout":
        return config
    from medval.gate import evaluated_splits

    ref = _reference_split(spec)
    if ref not in present:
        raise SpecError(
            f"{spec.path.name}: gate.holdout = 'thresholdout' compares each criterion with "
            f"split {ref!r} (gate.holdout_reference_split), and the cohort has no such split; "
            f"it has {sorted(present)}."
        )
    splits = evaluated_splits(
        present, calibration_split=config.calibration_split, test_splits=config.test_splits
    )
    return dataclasses.replace(config, test_splits=(*[s for s in splits if s != ref], ref))


def prepare_integrity(
    spec: Spec,
    data: Any = None,
    *,
    log: Log,
    signing_key: bytes | None,
    splits: dict[str, Any] | None = None,
) -> GateIntegrity:
    """Compare the run with its registration and check the ledger, before any heavy work.

    Raises
    ------
    SpecError
        Strict registration and the run deviates (or nothing is registered);
        the reusable holdout without a registration (its state lives in the
        ledger) or for a task other than classification.
    DataError
        The registered test set's ledger is missing or was tampered with
        (fail closed: usage could not be counted honestly).
    """
    if splits is None:
        registered = integrity.registration_path(spec).exists()
        # Digests cost a read of every file where the cohort does not carry them
        # (segmentation): skipped when there is no registration to compare with.
        cheap = data is not None and spec["task.type"] != "segmentation"
        splits = spec_manifests(spec, data) if registered or cheap else {}
    check = check_registration(spec, signing_key=signing_key, splits=splits)
    if check.refuses:
        raise SpecError(_refusal(check))
    if spec["gate.holdout"] == "thresholdout":
        if not check.found:
            raise SpecError(
                f"{spec.path.name}: gate.holdout = 'thresholdout' keeps its budget and answers "
                "in the test set's ledger, which starts with a registration: run "
                "medval register SPEC first."
            )
        _check_reference_split(spec)
        if spec["task.type"] != "classification":
            raise SpecError(
                "gate.holdout = 'thresholdout' is built for classification specs; "
                f"this one is {spec['task.type']}."
            )
    ledger = None
    if check.found:
        ledger = check.path.parent / integrity.LEDGER_FILE
        shown = str(Path(check.shown).parent / integrity.LEDGER_FILE)
        if not ledger.is_file():
            raise DataError(
                f"the registered test set has no ledger ({shown}): it was removed. Restore it "
                "from its backup or version control; without it the test set's usage cannot be "
                "counted, so the gate fails closed."
            )
        verified = integrity.verify_ledger(ledger, signing_key=signing_key)
        if not verified.ok:
            raise DataError(
                f"the test set's ledger {shown} is not intact: {'; '.join(verified.problems)}. "
                "Restore it from its backup; the gate fails closed on a tampered ledger."
            )
        log(
            f"registered protocol ({check.shown}): "
            + (f"{len(check.deviations)} deviation(s)" if check.deviations else "no deviation")
            + f"; test-set ledger intact ({verified.n_entries} entries)"
        )
    return GateIntegrity(spec, check, dict(splits), ledger, signing_key)


def gate_integrity(spec: Spec, result: ValidationResult, *, log: Log) -> GateIntegrity:
    """:func:`prepare_integrity` for ``medval gate``: the run's recorded split manifests.

    A result that recorded none (written before the registration, or by an
    older medval) is compared with the cohort read again now.
    """
    recorded = (result.provenance.get("registration") or {}).get("splits_now")
    splits = None
    if isinstance(recorded, dict) and recorded:
        splits = {k: integrity.SplitManifest(**v) for k, v in recorded.items()}
    elif integrity.registration_path(spec).exists():
        splits = spec_manifests(spec)
    return prepare_integrity(spec, log=log, signing_key=_key(), splits=splits or {})


def _key() -> bytes | None:
    from medval._result import signing_key

    return signing_key()
