"""The end of every run: judge the criteria, then write the outputs as one folder."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from medval._errors import DataError
from medval._result import ValidationResult, signing_key
from medval.gate import Spec
from medval.run._integrity import GateIntegrity
from medval.run._log import Log
from medval.run._outdir import OutputFolder, output_error, write_text_atomic

__all__ = ["judge_and_write", "run_provenance"]


def run_provenance(spec: Spec, argv: Any, device: Any) -> dict[str, Any]:
    """What every run records beside its model's: spec digest, code, versions, machine, command."""
    from medval._provenance import (
        command_line,
        environment_fingerprint,
        file_sha256,
        git_commit,
        package_versions,
        platform_summary,
    )

    return {
        "spec_sha256": file_sha256(spec.path),
        "git_commit": git_commit(spec.path.parent),
        "versions": package_versions(),
        "platform": platform_summary(),
        "device": "none (precomputed predictions)" if device is None else str(device.type),
        "environment": environment_fingerprint(device),
        "command": command_line(argv),
    }


def judge_and_write(
    folder: OutputFolder,
    spec: Spec,
    result: ValidationResult,
    *,
    log: Log,
    checklist: str,
    junit_xml: str | Path | None,
    extra: Callable[[Path], object] | None = None,
    judged: Callable[[], object] | None = None,
    integrity: GateIntegrity | None = None,
) -> tuple[tuple[Any, ...], Any]:
    """Judge ``result`` against the spec's criteria, write it into ``folder`` and commit.

    ``extra(out)`` writes the run's own files (predictions.csv,
    segmentation_cases.csv) into the staging folder. ``--junit-xml`` inside
    the output folder is one of its files; elsewhere it is written atomically
    once the folder is in place. ``judged()`` runs once the verdicts are in the
    result, before anything is written (the ``--reproduce`` comparison).
    ``integrity`` (:func:`prepare_integrity`) adds the reusable holdout, the
    registration and usage verdicts and the ledger entry.
    Returns (verdicts, report.Outputs).
    """
    from medval import gate
    from medval.report import write_outputs

    verdicts = gate.judge_spec(result, spec)
    if integrity is not None:
        verdicts = integrity.finish(result, verdicts)
    gate.record(result, verdicts)
    if judged is not None:
        judged()
    junit = None if junit_xml is None else gate.junit_xml(
        verdicts, properties=gate.suite_properties(result)
    )  # fmt: skip
    staged_junit = None if junit_xml is None else folder.staged(junit_xml)
    out = folder.path
    try:
        outputs = write_outputs(result, out, checklist=checklist, signing_key=signing_key())
        if extra is not None:
            extra(out)
        if staged_junit is not None and junit is not None:
            staged_junit.parent.mkdir(parents=True, exist_ok=True)
            staged_junit.write_text(junit, encoding="utf-8")
        log(f"wrote {outputs.report.name} and {outputs.result_json.name} to {folder.target.name}")
        (out / "run.log").write_text("\n".join(log.lines) + "\n", encoding="utf-8")
        folder.commit()
    except OSError as exc:
        raise output_error(exc, folder) from exc
    if junit_xml is not None and staged_junit is None and junit is not None:
        try:
            write_text_atomic(junit_xml, junit)
        except OSError as exc:
            raise DataError(
                f"the run is complete in {folder.target.name}, but --junit-xml "
                f"{Path(junit_xml).name} could not be written ({exc.strerror or exc})."
            ) from exc
    return verdicts, outputs
