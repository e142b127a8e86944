"""A loaded bundle gives the validation run's answers on the validation cases."""

from __future__ import annotations

import hashlib
import inspect
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from medval import InputError, UnsafeModelError
from medval.demo import make_model
from medval.deploy import Deployment, DeploymentOutput, load_deployment

from .conftest import Validated


@pytest.fixture(scope="module")
def deployment(validated: Validated) -> Deployment:
    return load_deployment(validated.bundle, device="cpu")


@pytest.fixture(scope="module")
def answers(validated: Validated, deployment: Deployment) -> DeploymentOutput:
    """The bundle on the run's DICOM files, with the run's case ids and manufacturers."""
    preds = validated.outcome.predictions
    cohort = validated.outcome.cohort.reindex(list(preds.case_ids))
    return deployment(
        validated.paths, case_ids=list(preds.case_ids), groups=cohort["manufacturer"].tolist()
    )


def _run_sets(validated: Validated) -> tuple[np.ndarray, np.ndarray]:
    """The run's own sets on its primary split, recomputed the way medval.evaluate makes them."""
    from medval.conformal import ConformalClassifier
    from medval.evaluation._conformal import temperature_for_conformal

    preds = validated.outcome.predictions
    cohort = validated.outcome.cohort.reindex(list(preds.case_ids))
    split = cohort["split"].to_numpy()
    scaled = temperature_for_conformal(
        preds.probabilities, preds.labels, split, cohort["patient_key"].to_numpy(),
        calibration_split="calibration", seed=0,
    )  # fmt: skip
    assert scaled is not None
    p, new_split, _ = scaled
    groups = cohort["manufacturer"].to_numpy()
    cal, internal = new_split == "calibration", split == "internal"
    cp = ConformalClassifier("aps", confidence_level=0.8, min_group_size_policy="marginal",
                             random_state=0)  # fmt: skip
    cp.calibrate(p[cal], preds.labels[cal], groups[cal])
    sets = cp.predict_sets(p[internal], groups[internal], case_ids=preds.case_ids[internal])
    return sets, internal


def test_probabilities_and_uncertainty_are_the_runs(
    validated: Validated, answers: DeploymentOutput
) -> None:
    from medval.uncertainty import decompose

    preds = validated.outcome.predictions
    np.testing.assert_array_equal(answers.case_ids, preds.case_ids)
    np.testing.assert_array_equal(answers.probabilities, preds.probabilities)
    # predictions.csv: the run's positive-class probability per case, as written.
    rows = (validated.out / "predictions.csv").read_text().splitlines()[1:]
    written = {r.split(",")[0]: float(r.split(",")[-1]) for r in rows}
    p1 = answers.probabilities[:, 1]
    assert [written[c] for c in preds.case_ids] == p1.tolist()
    total = decompose(preds.mc_probabilities).total
    np.testing.assert_array_equal(answers.uncertainty, total)


def test_sets_decisions_and_referral_are_the_runs(
    validated: Validated, answers: DeploymentOutput
) -> None:
    from medval.calibration import brier

    r = validated.outcome.result
    out = answers
    sets, internal = _run_sets(validated)
    np.testing.assert_array_equal(out.sets[internal], sets)
    y = validated.outcome.predictions.labels[internal]
    s = out.sets[internal]
    assert s[np.arange(y.size), y].mean() == r["conformal.coverage"].value
    assert s.sum(axis=1).mean() == pytest.approx(r["conformal.mean_set_size"], abs=1e-12)
    refer_set = out.refer_set[internal]
    assert refer_set.mean() == pytest.approx(r["conformal.referral_rate"], abs=1e-12)
    # The operating point: the run's confusion counts from the bundle's decisions.
    decided = out.decision[internal] == 1
    pos = y == 1
    counts = {"tp": int((decided & pos).sum()), "fp": int((decided & ~pos).sum()),
              "fn": int((~decided & pos).sum()), "tn": int((~decided & ~pos).sum())}  # fmt: skip
    assert counts == r["operating_point.confusion"]
    # The MC-dropout referral at the cutoff chosen on the calibration split.
    rec = r["uncertainty.referral_for_sensitivity"]
    assert rec["uncertainty_cutoff"] is not None
    refer_u = out.refer_uncertainty[internal]
    assert 0 < refer_u.mean() == pytest.approx(rec["fraction"], abs=1e-12)
    assert (out.refer == (out.refer_set | out.refer_uncertainty)).all()
    triage = out.triage[internal]
    assert triage.mean() == pytest.approx(r["triage.flagged_rate"], abs=1e-12)
    # Calibrated probabilities: the run's after-temperature Brier score.
    calibrated = out.calibrated[internal]
    assert brier(calibrated, y) == pytest.approx(r["calibration.after.brier"], rel=1e-12)


def test_decide_on_predictions_and_default_ids(
    validated: Validated, deployment: Deployment, answers: DeploymentOutput
) -> None:
    preds = validated.outcome.predictions
    groups = validated.outcome.cohort.reindex(list(preds.case_ids))["manufacturer"].tolist()
    again = deployment.decide(preds, groups=groups)
    np.testing.assert_array_equal(again.sets, answers.sets)
    np.testing.assert_array_equal(again.refer, answers.refer)
    # Without ids each image is named by a digest: same answer whatever the batch.
    idx = [5, 3, 40, 11]
    one = deployment([validated.paths[i] for i in idx], groups=[groups[i] for i in idx])
    two = deployment([validated.paths[i] for i in idx[::-1]], groups=[groups[i] for i in idx[::-1]])
    assert one.case_ids.tolist() == two.case_ids.tolist()[::-1]
    assert all(len(c) == 16 for c in one.case_ids)
    np.testing.assert_array_equal(one.uncertainty, two.uncertainty[::-1])
    np.testing.assert_array_equal(one.sets, two.sets[::-1])
    assert one.labels()[0] == tuple(np.array(deployment.class_names)[one.sets[0]])
    assert one.decisions()[0] in deployment.class_names


def test_decoded_arrays_and_tensors_go_through_the_same_pipeline(
    validated: Validated, deployment: Deployment
) -> None:
    from medval.io import read_image

    frames = [read_image(p) for p in validated.paths[:3]]
    from_files = deployment.preprocess(validated.paths[:3])
    np.testing.assert_array_equal(deployment.preprocess(frames).numpy(), from_files.numpy())
    assert deployment.preprocess(from_files) is from_files
    with pytest.raises(InputError, match=r"preprocessed images \(n, C, H, W\)"):
        deployment.preprocess(from_files[0])
    with pytest.raises(InputError, match="no images"):
        deployment.preprocess([])
    with pytest.raises(InputError, match="2 case_ids for 3 images"):
        deployment(from_files, case_ids=["a", "b"], groups=["x"] * 3)


def test_mondrian_groups_are_required_and_must_be_known(
    validated: Validated, deployment: Deployment
) -> None:
    x = deployment.preprocess(validated.paths[:2])
    with pytest.raises(InputError, match="one conformal threshold per 'manufacturer'"):
        deployment(x)
    with pytest.raises(InputError, match="not seen at calibration"):
        deployment(x, groups=["Cygnus Systems", "Cygnus Systems"])


def _copy(validated: Validated, tmp_path: Path) -> Path:
    bundle = tmp_path / "bundle"
    shutil.copytree(validated.bundle, bundle)
    return bundle


def test_tampered_weights_are_refused(validated: Validated, tmp_path: Path) -> None:
    bundle = _copy(validated, tmp_path)
    weights = bundle / "weights.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    changed = r"weights file bundle/weights\.safetensors .*changed"
    with pytest.raises(UnsafeModelError, match=changed):
        load_deployment(bundle)
    weights.unlink()
    with pytest.raises(InputError, match="missing from the bundle"):
        load_deployment(bundle)


def test_a_changed_factory_is_refused(validated: Validated, tmp_path: Path) -> None:
    bundle = _copy(validated, tmp_path)
    code = bundle / "code" / "model_def.py"
    code.write_text(code.read_text() + "\nprint('changed')\n")
    with pytest.raises(UnsafeModelError, match=r"model factory bundle/code/model_def.py .*changed"):
        load_deployment(bundle)
    # An import-path factory: the installed module's source is checked.
    bundle = _copy(validated, tmp_path / "b")
    manifest = json.loads((bundle / "deployment.json").read_text())
    manifest["model"]["factory"] = "medval.demo:make_model"
    defined_in = Path(inspect.getsourcefile(make_model) or "")
    manifest["model"]["factory_sha256"] = hashlib.sha256(defined_in.read_bytes()).hexdigest()
    (bundle / "deployment.json").write_text(json.dumps(manifest))
    assert isinstance(load_deployment(bundle), Deployment)
    manifest["model"]["factory_sha256"] = "0" * 64
    (bundle / "deployment.json").write_text(json.dumps(manifest))
    changed = r"'medval\.demo:make_model': the file defining it has SHA-256 .*changed"
    with pytest.raises(UnsafeModelError, match=changed):
        load_deployment(bundle)


def test_not_a_bundle(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"deployment\.json does not exist"):
        load_deployment(tmp_path)
    (tmp_path / "deployment.json").write_text('{"schema": "medval.result/1"}')
    with pytest.raises(InputError, match=r"not 'medval\.deployment/1'"):
        load_deployment(tmp_path / "deployment.json")
