"""A validation run as a deployment bundle: ``deployment.json``, the weights, the code files.

:func:`export_deployment` reads a run's ``result.json`` and the spec it ran,
checks that the spec, the model files and the factory are still those the
run recorded, and writes a folder that :func:`medval.deploy.load_deployment`
turns back into the validated pipeline. Nothing in it is a pickle: the
weights are safetensors (an ONNX model is copied as is), the rest is JSON
and the ``.py`` files the spec named.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import Any

from medval._errors import DataError, SpecError, UnsafeModelError
from medval._provenance import file_sha256, package_versions
from medval._result import ValidationResult, canonical_json
from medval.deploy._manifest import (
    MANIFEST,
    SCHEMA,
    factory_file,
    run_rules,
)
from medval.gate import Spec, read_spec

__all__ = ["callable_source_sha256", "export_deployment"]

_FAILED = ("failed", "error")


def callable_source_sha256(factory: Any) -> str | None:
    """SHA-256 of the file defining an import-path factory's callable (imported, not called).

    None when the callable has no Python source file (a compiled extension).
    """
    from medval import io

    sha: str | None = io.defining_file_sha256(factory.resolved[0])
    return sha


def _read_result(result: str | Path | ValidationResult) -> tuple[ValidationResult, str]:
    if isinstance(result, ValidationResult):
        return result, hashlib.sha256(result.to_json().encode("utf-8")).hexdigest()
    path = Path(result)
    if path.is_dir():
        path = path / "result.json"
    return ValidationResult.read_json(path), file_sha256(path)


def _check_run(result: ValidationResult, spec: Spec, allow_failed_gate: bool) -> None:
    """The spec is the one the run read; the run ran a model; its gate did not fail."""
    prov = result.provenance
    recorded = prov.get("spec_sha256")
    now = file_sha256(spec.path)
    if recorded != now:
        raise SpecError(
            f"spec {spec.path.name} has SHA-256 {now[:16]}..., but the run recorded "
            f"{str(recorded)[:16]}...: the spec changed since the validation. Export with "
            "the spec the run used, or validate again with this one."
        )
    if spec["model.file"] is None:
        raise SpecError(
            "the run scored precomputed predictions (model.predictions): there is no model to "
            "deploy. Validate the model file itself (model.file, model.factory)."
        )
    status = result.values.get("gate.status")
    if status in _FAILED and not allow_failed_gate:
        raise SpecError(
            f"the run's release gate {status} ({result.values.get('gate.counts')}); a failed "
            "validation is not exported. Fix the model or, knowingly, pass "
            "allow_failed_gate=True (medval export --allow-failed-gate)."
        )


def _model_files(spec: Spec) -> list[Path]:
    files = spec["model.file"]
    names = files if isinstance(files, list) else [files]
    return [(spec.path.parent / str(f)).resolve() for f in names]


def _load_members(spec: Spec, result: ValidationResult) -> list[Any]:
    """Every ``model.file``, loaded as the run loaded it; digests checked against the run."""
    from medval import io

    text = spec["model.factory"]
    factory = None if text is None else io.Factory(str(text), base_dir=spec.path.parent)
    members = []
    for path in _model_files(spec):
        try:
            members.append(
                io.load_model(path, factory=factory, output_key=spec["model.output_key"],
                              output_index=spec["model.output_index"])
            )  # fmt: skip
        except UnsafeModelError as exc:
            raise UnsafeModelError(
                f"{exc} A deployment bundle holds weights as data only: save "
                "model.state_dict() with a factory (or export to ONNX) and validate that."
            ) from exc
    prov = result.provenance
    shas = [m.sha256 for m in members]
    recorded = prov.get("ensemble_sha256") if len(members) > 1 else [prov.get("model_sha256")]
    for m, sha, want in zip(members, shas, recorded or [None] * len(members), strict=True):
        if sha != want:
            raise DataError(
                f"model file {m.path_name} has SHA-256 {sha[:16]}..., not the validated "
                f"{str(want)[:16]}...; export with the weights the run validated."
            )
    if prov.get("factory_sha256") not in (None, members[0].factory_sha256):
        raise DataError(
            f"model.factory {text!r} changed since the run (SHA-256 "
            f"{members[0].factory_sha256}, recorded {prov['factory_sha256']}); restore it or "
            "validate again."
        )
    return members


def _write_weights(members: list[Any], spec: Spec, out: Path) -> list[dict[str, str]]:
    """One safetensors file per member (ONNX files copied); their names and digests."""
    files = []
    several = len(members) > 1
    for i, (m, path) in enumerate(zip(members, _model_files(spec), strict=True)):
        if m.kind == "onnx":
            name = f"model-{i}.onnx" if several else "model.onnx"
            shutil.copyfile(path, out / name)
        else:
            name = f"weights-{i}.safetensors" if several else "weights.safetensors"
            _save_safetensors(m.module, out / name, spec)
        files.append({"file": name, "sha256": file_sha256(out / name)})
    return files


def _save_safetensors(module: Any, path: Path, spec: Spec) -> None:
    from safetensors.torch import save_file

    if spec["model.output_key"] is not None or spec["model.output_index"] is not None:
        module = module.wrapped  # io's SelectOutput: the factory's module is inside
    # Copies: safetensors refuses tensors that share memory (tied weights).
    state = {k: v.detach().cpu().contiguous().clone() for k, v in module.state_dict().items()}
    save_file(state, str(path), metadata={"format": "pt"})


def _copy_code(text: str, base: Path, out: Path, key: str) -> tuple[str, str | None]:
    """A ``file.py:name`` reference copied into ``code/``; import paths stay as they are.

    Returns the reference as the bundle writes it and the source's SHA-256 (an
    import path: of the file defining the callable).
    """
    from medval import io

    source = factory_file(text)
    if source is None:
        return text, callable_source_sha256(io.Factory(text, key=key))
    path = source if source.is_absolute() else base / source
    if not path.is_file():
        raise DataError(f"{key} = {text!r}: {path.name} does not exist beside the spec.")
    (out / "code").mkdir(exist_ok=True)
    shutil.copyfile(path, out / "code" / path.name)
    return f"code/{path.name}:{text.rpartition(':')[2]}", file_sha256(path)


def _steps(result: ValidationResult, spec: Spec, out: Path) -> list[dict[str, Any]]:
    """The pipeline the run recorded; a transform's ``.py`` file copied into ``code/``."""
    steps = [dict(s) for s in result.provenance.get("preprocess", {}).get("pipeline", [])]
    if not steps:
        raise DataError("the result records no preprocessing pipeline; validate again.")
    for i, step in enumerate(steps):
        if step.get("op") == "transform" and factory_file(str(step["callable"])) is not None:
            step["callable"], _ = _copy_code(
                str(step["callable"]), spec.path.parent, out, f"preprocess.steps[{i}]"
            )
    return steps


def export_deployment(
    result: str | Path | ValidationResult,
    spec: str | Path | Spec,
    out_dir: str | Path,
    *,
    allow_failed_gate: bool = False,
    overwrite: bool = False,
) -> Path:
    """Write a validation run as a deployment bundle.

    Parameters
    ----------
    result : path or ValidationResult
        The run's ``result.json`` (or its folder).
    spec : path or Spec
        The spec the run read (its SHA-256 must equal the recorded one).
    out_dir : path
        The bundle folder: ``deployment.json``, ``weights.safetensors``
        (``weights-<i>.safetensors`` per ensemble member; ``model.onnx`` for
        ONNX) and ``code/`` with the ``.py`` factory or transform files.
    allow_failed_gate : bool, default False
        Export a run whose release gate failed or errored.
    overwrite : bool, default False
        Replace an existing bundle in ``out_dir``.

    Returns
    -------
    Path
        ``out_dir / "deployment.json"``.

    Raises
    ------
    SpecError
        The spec changed since the run, the run scored precomputed
        predictions, or its gate failed.
    DataError
        A model file or the factory differs from the validated one, or the
        bundle exists.
    UnsafeModelError
        The model is a pickle or TorchScript archive (not data).
    """
    res, result_sha = _read_result(result)
    spec = spec if isinstance(spec, Spec) else read_spec(spec)
    _check_run(res, spec, allow_failed_gate)
    out = Path(out_dir)
    if (out / MANIFEST).exists() and not overwrite:
        raise DataError(
            f"{out.name}/{MANIFEST} exists; choose another folder or pass overwrite=True "
            "(medval export --overwrite)."
        )
    members = _load_members(spec, res)
    out.mkdir(parents=True, exist_ok=True)
    if overwrite and (out / "code").is_dir():
        shutil.rmtree(out / "code")
    factory, factory_sha = (None, None)
    if spec["model.factory"] is not None and members[0].kind != "onnx":
        factory, factory_sha = _copy_code(
            str(spec["model.factory"]), spec.path.parent, out, "model.factory"
        )
    prov = res.provenance
    manifest = {
        "schema": SCHEMA,
        "medval_version": package_versions()["medval"],
        "validation": {
            "result_sha256": result_sha,
            "spec_sha256": prov.get("spec_sha256"),
            "model_sha256": prov.get("model_sha256"),
            "data_manifest_sha256": prov.get("data_manifest_sha256"),
            "gate_status": res.values.get("gate.status"),
            "primary_split": res.values.get("evaluation.primary_split"),
            "medval_version": (prov.get("versions") or {}).get("medval"),
        },
        "preprocess": {"steps": _steps(res, spec, out)},
        "model": {
            "files": _write_weights(members, spec, out),
            "factory": factory,
            "factory_sha256": factory_sha,
            "output": spec["model.output"],
            "output_key": spec["model.output_key"],
            "output_index": spec["model.output_index"],
            "mc_samples": spec["model.mc_samples"],
            "seed": spec["analysis.seed"],
            "tta": spec["model.tta"],
            # "auto": the size the run measured (the runtime halves it on out-of-memory).
            "batch_size": (prov.get("inference") or {}).get("batch_size", 64)
            if spec["model.batch_size"] == "auto"
            else spec["model.batch_size"],
        },
        "rules": run_rules(res, spec),
    }
    path = out / MANIFEST
    path.write_text(canonical_json(manifest), encoding="utf-8")
    return path
