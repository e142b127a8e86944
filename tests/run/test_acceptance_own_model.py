"""Issue 14's acceptance: a team's own model on its own DICOM, through one spec.

The cohort (tests/run/_own_cohort.py) is built here without medval: three MR
vendors on three intensity scales, one MONOCHROME1 with a rescale slope and
intercept, one RLE Lossless; labels keyed by case id only, no split column.
The models are small CNNs trained here on their own preprocessing. A spec that
declares only that preprocessing must give the per-vendor AUROC of the team's
hand-written pipeline; a wrong normalisation must lead the report with
collapsed outputs that name preprocessing; an ImageNet-style model (3
channels) and an ONNX export run through the same spec with only
``[preprocess]`` and ``[model]`` changed.
"""

from __future__ import annotations

import html
import importlib.util
import tomllib
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from medval.run import RunOutcome, run_spec

from ._own_cohort import (
    MODEL_DEF,
    VENDORS,
    Case,
    imagenet_input,
    load_model_def,
    per_vendor_auroc,
    reference_probabilities,
    train,
    training_set,
    write_cohort,
    zscore_input,
)

pytestmark = pytest.mark.slow

# Labels keyed by case id only: medval finds the file named <case_id>.dcm.
LABEL_COLUMNS = ("case_id", "label")
TOLERANCE = 0.005

SPEC = """
[task]
class_names = ["no lesion", "lesion"]
positive_class = "lesion"

[data]
dicom_dir = "cohort/dicom"
labels = "cohort/labels.csv"

[preprocess]
{preprocess}

[model]
{model}

[analysis]
n_resamples = 200

[shift]
subgroup_columns = ["manufacturer"]
"""

ZSCORE = """steps = [
  { op = "normalize", method = "zscore" },
  { op = "resize", size = [32, 32] },
]"""
# torchvision's Normalize copied without the scaling onto [0, 1] before it: ImageNet's
# first-channel mean and std on raw MR values, which run from about 100 to thousands.
WRONG = """steps = [
  { op = "normalize", method = "fixed", mean = 0.485, std = 0.229 },
  { op = "resize", size = [32, 32] },
]"""
IMAGENET = """steps = [
  { op = "normalize", method = "minmax" },
  { op = "resize", size = [32, 32] },
  { op = "channels", n = 3 },
  { op = "normalize", method = "imagenet" },
]"""
TORCH = 'factory = "model_def.py:build"\nfile = "zscore.pt"'
RGB = 'factory = "model_def.py:build_rgb"\nfile = "imagenet.pt"'
ONNX = 'file = "zscore.onnx"'


def _has_onnx() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ("onnx", "onnxruntime"))


class Team:
    """The folder a team hands over, and what its own pipeline scores (case id -> p)."""

    def __init__(self, root: Path, cases: list[Case]) -> None:
        self.root = root
        self.cases = cases
        self.references: dict[str, dict[str, float]] = {}

    def run(self, name: str, preprocess: str, model: str) -> RunOutcome:
        spec = self.root / f"{name}.toml"
        spec.write_text(SPEC.format(preprocess=preprocess, model=model), encoding="utf-8")
        return run_spec(spec, out_dir=self.root / name, quiet=True)

    def spec(self, name: str) -> dict[str, Any]:
        return tomllib.loads((self.root / f"{name}.toml").read_text(encoding="utf-8"))

    def score(self, name: str, prepare: Callable[..., Any], forward: Callable[..., Any]) -> None:
        paths = [self.root / "cohort" / "dicom" / c.file for c in self.cases]
        p = reference_probabilities(paths, prepare, forward)
        self.references[name] = dict(zip((c.case_id for c in self.cases), p.tolist(), strict=True))


@pytest.fixture(scope="module")
def team(tmp_path_factory: pytest.TempPathFactory) -> Team:
    """80 cases per vendor; two models trained on 160 fresh images per vendor; an ONNX export."""
    import torch

    root = tmp_path_factory.mktemp("own-model")
    cases = write_cohort(root / "cohort", n_per_vendor=80, seed=0, label_columns=LABEL_COLUMNS)
    (root / "model_def.py").write_text(MODEL_DEF, encoding="utf-8")
    model_def = load_model_def(root / "model_def.py")
    team = Team(root, cases)

    net = train(model_def.build, *training_set(160, 1, zscore_input), seed=1)
    torch.save(net.state_dict(), root / "zscore.pt")
    team.score("zscore", zscore_input, net)
    rgb = train(model_def.build_rgb, *training_set(160, 2, imagenet_input), seed=2)
    torch.save(rgb.state_dict(), root / "imagenet.pt")
    team.score("imagenet", imagenet_input, rgb)

    if _has_onnx():
        import onnxruntime

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                net, (torch.zeros(2, 1, 32, 32),), str(root / "zscore.onnx"),
                input_names=["image"], output_names=["logit"],
                dynamic_axes={"image": {0: "batch"}}, dynamo=False,
            )  # fmt: skip
        session = onnxruntime.InferenceSession(
            str(root / "zscore.onnx"), providers=["CPUExecutionProvider"]
        )
        team.score("onnx", zscore_input, lambda x: session.run(None, {"image": x.numpy()})[0])
    return team


@pytest.fixture(scope="module")
def zscore_run(team: Team) -> RunOutcome:
    return team.run("zscore", ZSCORE, TORCH)


def _medval_auroc(run: RunOutcome) -> dict[str, float]:
    est = run.result.estimates
    return {v.manufacturer: est[f"subgroup.manufacturer={v.manufacturer}.auroc"].value
            for v in VENDORS}  # fmt: skip


def _assert_matches_reference(run: RunOutcome, team: Team, name: str) -> None:
    """Per-vendor AUROC over the cases the subgroups pool (every evaluated split)."""
    splits = {split for split, _ in run.result.split_prefixes()}
    evaluated = [str(c) for c in run.cohort.index[run.cohort["split"].isin(splits)]]
    reference = per_vendor_auroc(team.cases, team.references[name], evaluated)
    medval = _medval_auroc(run)
    for vendor, auroc in reference.items():
        assert 0.6 < auroc < 0.98, (vendor, auroc)  # neither chance nor perfect: a real test
        assert medval[vendor] == pytest.approx(auroc, abs=TOLERANCE), (vendor, medval, reference)
    ids = [str(c) for c in run.predictions.case_ids]
    np.testing.assert_allclose(
        run.predictions.probabilities[:, 1], [team.references[name][c] for c in ids], atol=1e-4
    )


def _assert_only_changed(team: Team, name: str, sections: set[str]) -> None:
    base, other = team.spec("zscore"), team.spec(name)
    assert set(base) == set(other)
    assert {s for s in base if base[s] != other[s]} == sections


def test_the_declared_preprocessing_gives_the_reference_auroc_per_vendor(
    team: Team, zscore_run: RunOutcome
) -> None:
    run = zscore_run
    v = run.result.values
    assert v["cohort.n_excluded"] == 0  # the RLE and MONOCHROME1 files were read
    assert len(run.cohort) == len(team.cases)
    assert v["cohort.split_rule"].startswith("automatic")
    assert set(run.cohort["split"]) == {"calibration", "internal"}
    assert sorted(run.cohort["manufacturer"].unique()) == ["VendorA", "VendorB", "VendorC"]
    assert v["sanity.collapsed"] is False and v["sanity.spread_ratio"] > 0.3
    _assert_matches_reference(run, team, "zscore")


def test_a_wrong_normalisation_leads_the_report_with_collapsed_outputs(
    team: Team, zscore_run: RunOutcome
) -> None:
    run = team.run("wrong", WRONG, TORCH)
    _assert_only_changed(team, "wrong", {"preprocess"})
    v = run.result.values
    assert v["sanity.collapsed"] is True
    assert v["sanity.spread_ratio"] < 0.01  # saturated, far from the 0.1 threshold
    page = run.report.read_text(encoding="utf-8")
    findings = page[page.index("Key findings") :]
    first = html.unescape(findings[findings.index("<li>") + 4 : findings.index("</li>")])
    assert first.startswith("The model's outputs have collapsed on 'internal'"), first
    assert "First suspect: the preprocessing" in first and "[preprocess]" in first


def test_an_imagenet_model_with_three_channels_runs_through_the_same_spec(
    team: Team, zscore_run: RunOutcome
) -> None:
    run = team.run("imagenet", IMAGENET, RGB)
    _assert_only_changed(team, "imagenet", {"preprocess", "model"})
    assert run.result.provenance["preprocess"]["pipeline"][-2]["method"] == "imagenet"
    _assert_matches_reference(run, team, "imagenet")


def test_an_onnx_export_runs_through_the_same_spec(team: Team, zscore_run: RunOutcome) -> None:
    if not _has_onnx():
        pytest.skip("onnx and onnxruntime are not installed (pip install 'medval[onnx]')")
    run = team.run("onnx", ZSCORE, ONNX)
    _assert_only_changed(team, "onnx", {"model"})
    assert run.result.provenance["model_kind"] == "onnx"
    _assert_matches_reference(run, team, "onnx")
    assert _medval_auroc(run) == pytest.approx(_medval_auroc(zscore_run), abs=TOLERANCE)
