"""export_deployment: a run as data, checked against what the run recorded."""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

import pytest

from medval import DataError, SpecError, UnsafeModelError, ValidationResult
from medval.deploy import export_deployment, read_manifest

from .conftest import Validated


def _strings(node: object) -> list[str]:
    if isinstance(node, dict):
        return [s for k, v in node.items() for s in (str(k), *_strings(v))]
    if isinstance(node, list):
        return [s for v in node for s in _strings(v)]
    return [node] if isinstance(node, str) else []


def _planted_phi(dicom_dir: Path) -> set[str]:
    """Names, ids, institutions and dates the demo writes into its DICOM headers."""
    import pydicom

    keywords = ("PatientName", "PatientID", "InstitutionName", "AccessionNumber", "StudyDate")
    values = set()
    for path in sorted(dicom_dir.rglob("*.dcm"))[:40]:
        ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
        values.update(str(ds.get(k)) for k in keywords if ds.get(k) not in (None, ""))
    return values


def test_the_bundle_is_data_without_paths_or_phi(validated: Validated) -> None:
    from safetensors import safe_open

    bundle = validated.bundle
    assert sorted(p.name for p in bundle.iterdir()) == ["code", "deployment.json",
                                                        "weights.safetensors"]  # fmt: skip
    text = (bundle / "deployment.json").read_text()
    manifest = read_manifest(bundle)
    for s in _strings(manifest):
        assert not s.startswith(("/", "~")) and not re.match(r"^[A-Za-z]:\\", s), s
    assert str(validated.root) not in text and str(Path.home()) not in text
    planted = _planted_phi(validated.root / "cohort" / "dicom")
    assert len(planted) > 10
    assert not [v for v in planted if v in text]
    v = manifest["validation"]
    assert (
        v["result_sha256"]
        == hashlib.sha256((validated.out / "result.json").read_bytes()).hexdigest()
    )
    assert v["gate_status"] == "passed" and v["primary_split"] == "internal"
    model = manifest["model"]
    assert model["factory"] == "code/model_def.py:build"
    assert (bundle / "code" / "model_def.py").read_bytes() == (
        validated.root / "model_def.py"
    ).read_bytes()
    assert model["factory_sha256"] == validated.outcome.result.provenance["factory_sha256"]
    assert (model["mc_samples"], model["seed"], model["batch_size"]) == (4, 0, 16)
    rules = manifest["rules"]
    r = validated.outcome.result.values
    assert rules["conformal"]["thresholds"] == r["conformal.thresholds"]
    assert rules["conformal"]["mondrian"] == "manufacturer"
    assert rules["conformal"]["temperature"] == r["conformal.temperature"]
    assert rules["operating_point"]["threshold"] == 0.6
    assert rules["calibration"]["temperature"] == r["calibration.temperature"]
    assert (
        rules["referral"]["uncertainty"]["cutoff"]
        == (r["uncertainty.referral_for_sensitivity"]["uncertainty_cutoff"])
    )
    steps = [s["op"] for s in manifest["preprocess"]["steps"] if not s.get("implicit")]
    assert steps == ["window", "resize"]
    # Weights as safetensors: the model's tensors, no pickle.
    import torch

    from medval.demo import make_model

    expected = torch.load(validated.root / "model.pt", weights_only=True)
    with safe_open(str(bundle / "weights.safetensors"), framework="pt") as f:
        assert sorted(f.keys()) == sorted(make_model().state_dict())
        for key in f.keys():  # noqa: SIM118 (safe_open has no __iter__)
            assert torch.equal(f.get_tensor(key), expected[key])


def test_export_is_deterministic(validated: Validated, tmp_path: Path) -> None:
    again = export_deployment(validated.out / "result.json", validated.spec, tmp_path / "b")
    for name in ("deployment.json", "weights.safetensors", "code/model_def.py"):
        assert (again.parent / name).read_bytes() == (validated.bundle / name).read_bytes()
    with pytest.raises(DataError, match="exists; choose another folder or pass overwrite"):
        export_deployment(validated.out, validated.spec, tmp_path / "b")
    export_deployment(validated.out, validated.spec, tmp_path / "b", overwrite=True)


def _beside(validated: Validated, tmp_path: Path) -> Path:
    """The spec, model and factory copied into another folder (same spec bytes)."""
    for name in ("medval.toml", "model.pt", "model_def.py"):
        shutil.copyfile(validated.root / name, tmp_path / name)
    return tmp_path / "medval.toml"


def test_a_changed_spec_model_or_factory_is_refused(validated: Validated, tmp_path: Path) -> None:
    import torch

    from .conftest import MODEL_DEF

    spec = _beside(validated, tmp_path)
    spec.write_text(spec.read_text() + "\n# edited\n")
    with pytest.raises(SpecError, match="the spec changed since the validation"):
        export_deployment(validated.out, spec, tmp_path / "b")
    spec = _beside(validated, tmp_path)
    state = torch.load(tmp_path / "model.pt", weights_only=True)
    state = {k: v + 1 if v.is_floating_point() else v for k, v in state.items()}
    torch.save(state, tmp_path / "model.pt")
    with pytest.raises(DataError, match=r"model file model\.pt has SHA-256 .*not the validated"):
        export_deployment(validated.out, spec, tmp_path / "b")
    spec = _beside(validated, tmp_path)
    (tmp_path / "model_def.py").write_text(MODEL_DEF + "\n# edited\n")
    with pytest.raises(DataError, match=r"model\.factory .* changed since the run"):
        export_deployment(validated.out, spec, tmp_path / "b")
    assert not (tmp_path / "b").exists()


def test_a_failed_gate_or_an_old_result_is_refused(validated: Validated, tmp_path: Path) -> None:
    result = ValidationResult.read_json(validated.out / "result.json")
    result.values["gate.status"] = "failed"
    with pytest.raises(SpecError, match="release gate failed"):
        export_deployment(result, validated.spec, tmp_path / "a")
    export_deployment(result, validated.spec, tmp_path / "a", allow_failed_gate=True)
    del result.values["conformal.set_seed"]
    with pytest.raises(DataError, match=r"no conformal\.set_seed; validate again"):
        export_deployment(result, validated.spec, tmp_path / "b", allow_failed_gate=True)


def _spec_with(tmp_path: Path, model: str) -> tuple[Path, ValidationResult]:
    text = (
        "[task]\nclass_names = ['a', 'b']\n[data]\ndicom_dir = 'd'\nlabels = 'l.csv'\n"
        f"[model]\n{model}\n"
    )
    spec = tmp_path / "medval.toml"
    spec.write_text(text)
    sha = hashlib.sha256(spec.read_bytes()).hexdigest()
    return spec, ValidationResult(provenance={"spec_sha256": sha})


def test_no_model_or_a_pickle_is_refused(tmp_path: Path) -> None:
    import torch

    spec, result = _spec_with(tmp_path, "predictions = 'p.csv'")
    with pytest.raises(SpecError, match="no model to deploy"):
        export_deployment(result, spec, tmp_path / "b")
    torch.save(torch.nn.Linear(2, 2), tmp_path / "whole.pt")
    spec, result = _spec_with(tmp_path, "file = 'whole.pt'")
    with pytest.raises(UnsafeModelError, match="holds weights as data only"):
        export_deployment(result, spec, tmp_path / "b")


def test_the_cli_exports(
    validated: Validated, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from medval.cli import main

    out = tmp_path / "bundle"
    assert main(["export", str(validated.out), str(validated.spec), "--out", str(out)]) == 0
    assert "deployment bundle:" in capsys.readouterr().out
    assert (out / "deployment.json").read_bytes() == (
        validated.bundle / "deployment.json"
    ).read_bytes()
    assert main(["export", str(validated.out), str(validated.spec), "--out", str(out)]) == 3
    assert "exists" in capsys.readouterr().err
    edited = _beside(validated, tmp_path)
    edited.write_text(edited.read_text() + "\n# edited\n")
    assert main(["export", str(validated.out), str(edited), "--out", str(tmp_path / "c")]) == 2
