"""A spec run records its inference settings: precision, the float32 check, batch size, workers.

The demo net on the small demo cohort, once in float32 and once in bfloat16
(every evaluated case is in the check's sample, so the check's figure is the
largest difference between the two runs' probabilities).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from medval import SpecError
from medval.run import RunOutcome, run_spec

from .conftest import DEMO_MODEL, spec_folder, write_spec

_BF16 = DEMO_MODEL + '\nprecision = "bfloat16"\nbatch_size = "auto"\nloader_workers = 0\n'


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory, small_cohort: Path) -> Path:
    return spec_folder(tmp_path_factory.mktemp("precision"), small_cohort)


@pytest.fixture(scope="module")
def runs(folder: Path) -> dict[str, RunOutcome]:
    return {
        name: run_spec(write_spec(folder, name, model), out_dir=folder / name, quiet=True)
        for name, model in (("float32", DEMO_MODEL), ("bfloat16", _BF16))
    }


def test_a_float32_run_records_its_batches_and_no_check(runs: dict[str, RunOutcome]) -> None:
    prov = runs["float32"].result.provenance
    assert prov["precision"] == "float32" and "precision_check" not in prov
    assert prov["inference"] == {
        "batch_size": 64, "batch_size_rule": "spec", "loader_workers": 0, "pin_memory": False,
        "out_of_memory_halvings": 0,
    }  # fmt: skip


def test_a_bfloat16_run_records_the_check_against_float32(
    runs: dict[str, RunOutcome], folder: Path
) -> None:
    low, full = runs["bfloat16"], runs["float32"]
    ids = list(full.predictions.case_ids)
    assert list(low.predictions.case_ids) == ids and len(ids) <= 64  # all in the sample
    diff = np.abs(low.predictions.probabilities - full.predictions.probabilities).max()
    check = low.result.provenance["precision_check"]
    assert check["cases"] == len(ids)
    assert check["max_abs_difference"] == pytest.approx(diff, abs=1e-9)
    assert 0 < check["max_abs_difference"] <= check["tolerance"] == 0.01 and check["passed"]
    threshold = check["threshold"]  # Youden's threshold on the calibration split's images
    p32, p16 = full.predictions.probabilities[:, 1], low.predictions.probabilities[:, 1]
    assert check["decisions_changed"] == int(np.sum((p32 >= threshold) != (p16 >= threshold)))
    assert threshold == low.result["operating_point.threshold"]  # the evaluation's own
    prov = low.result.provenance
    assert prov["precision"] == "bfloat16"
    assert prov["inference"]["batch_size"] == 64
    assert prov["inference"]["batch_size_rule"] == "auto: 64 off CUDA"
    stored = json.loads((folder / "bfloat16" / "result.json").read_text(encoding="utf-8"))
    assert stored["provenance"]["precision_check"]["cases"] == len(ids)
    log = (folder / "bfloat16" / "run.log").read_text(encoding="utf-8")
    assert "precision bfloat16: the largest change of a probability is" in log
    assert "batches of 64 cases (auto: 64 off CUDA), 0 decoding workers" in log


def test_an_auto_batch_is_exported_as_the_size_the_run_used(
    runs: dict[str, RunOutcome], folder: Path
) -> None:
    from medval.deploy import export_deployment, read_manifest

    bundle = export_deployment(
        folder / "bfloat16" / "result.json", folder / "bfloat16.toml", folder / "bundle",
        allow_failed_gate=True,
    )  # fmt: skip
    assert read_manifest(bundle.parent)["model"]["batch_size"] == 64


def test_a_change_beyond_the_tolerance_stops_the_run(folder: Path) -> None:
    spec = write_spec(folder, "strict", _BF16 + "precision_tolerance = 1e-9\n")
    match = (
        r"model\.precision = 'bfloat16' moves the results beyond model\.precision_tolerance = "
        r"1e-09: the largest change of a probability is \S+ on \d+ sampled cases run again in "
        r'float32; \d+ of \d+ decisions at threshold \S+ change\. Use model\.precision = "float32"'
    )
    with pytest.raises(SpecError, match=match):
        run_spec(spec, out_dir=folder / "strict", quiet=True)
    assert not (folder / "strict" / "result.json").exists()


_REGRESSOR = '''
from torch import nn


def build():
    """Months from a 32 x 32 image: one linear layer (autocast computes it in bfloat16)."""
    return nn.Sequential(nn.Flatten(), nn.Linear(32 * 32, 1))
'''
_REGRESSION_SPEC = """
[task]
type = "regression"
unit = "months"
range = [0, 240]
[data]
dicom_dir = "hospital/dicom"
labels = "hospital/labels.csv"
[preprocess]
steps = [{{ op = "resize", size = [32, 32] }}, {{ op = "normalize", method = "minmax" }}]
[model]
file = "r.pt"
factory = "model_def.py:build"
precision = "bfloat16"
{extra}
[analysis]
n_resamples = 100
"""


@pytest.fixture(scope="module")
def regression_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch

    from medval import demo

    root = tmp_path_factory.mktemp("regression-precision")
    demo.write_regression_cohort(root / "hospital", seed=3, n_patients=(12, 12, 6))
    (root / "model_def.py").write_text(_REGRESSOR, encoding="utf-8")
    weights = {"1.weight": torch.full((1, 32 * 32), 200.0 / (32 * 32)), "1.bias": torch.ones(1)}
    torch.save(weights, root / "r.pt")
    return root


def test_a_regression_run_checks_its_values_as_a_share_of_the_range(
    regression_folder: Path,
) -> None:
    spec = regression_folder / "ok.toml"
    spec.write_text(_REGRESSION_SPEC.format(extra=""), encoding="utf-8")
    outcome = run_spec(spec, out_dir=regression_folder / "ok", quiet=True)
    check = outcome.result.provenance["precision_check"]
    assert check["passed"] and check["decisions_changed"] is None and check["threshold"] is None
    assert 0 < check["max_abs_difference"] <= 0.01  # bfloat16 moved the values, a little
    strict = regression_folder / "strict.toml"
    strict.write_text(_REGRESSION_SPEC.format(extra="precision_tolerance = 1e-9"), "utf-8")
    match = r"the largest change of a value \(as a share of task\.range\) is \S+ on \d+ sampled"
    with pytest.raises(SpecError, match=match):
        run_spec(strict, out_dir=regression_folder / "strict", quiet=True)
