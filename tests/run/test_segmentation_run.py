"""medval validate on a segmentation spec laid out unlike the demo.

Case folders nested three deep, masks as .npz label maps with the structure
at value 2, precomputed probability maps, a series whose SliceThickness is not
its spacing, a case whose mask is on another grid (excluded with its reason)
and fake identifiers in every header (never in an output).
"""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest

from medval.run import run_spec

from ..io._series import write_series

N, SHAPE = 14, (8, 16, 16)
FAKE_NAME = "Zzyzx^Quentin"


def _cohort(root: pathlib.Path) -> list[str]:
    rng = np.random.default_rng(5)
    cases = []
    for i in range(N):
        case = f"scanner{'AB'[i % 2]}/patient{i // 2:02d}/series{i % 3}"
        tags = {"Manufacturer": f"Vendor{'AB'[i % 2]}", "PatientID": f"MRN{i // 2:04d}",
                "PatientName": FAKE_NAME, "PatientSex": "MF"[i % 2]}  # fmt: skip
        write_series(root / "dicom" / case, n=SHAPE[0], rows=SHAPE[1], cols=SHAPE[2],
                     thickness="3.0", seed=i,
                     per_slice={k: tags for k in range(SHAPE[0])})  # fmt: skip
        truth = np.zeros(SHAPE, dtype=np.uint8)
        if i % 4:
            c = rng.integers(3, 12, size=2)
            truth[2:6, c[0] - 2 : c[0] + 2, c[1] - 2 : c[1] + 2] = 2
        (root / "masks" / case).parent.mkdir(parents=True, exist_ok=True)
        mask = truth if i != 5 else truth[:, :8]  # case 5: a mask on another grid
        np.savez(root / "masks" / f"{case}.npz", mask=mask)
        p = np.clip(0.85 * (truth == 2) + rng.uniform(0, 0.3, SHAPE), 0, 1).astype(np.float32)
        (root / "maps" / case).parent.mkdir(parents=True, exist_ok=True)
        np.save(root / "maps" / f"{case}.npy", p)
        cases.append(case)
    return cases


SPEC = """
[task]
type = "segmentation"
structures = { tumour = 2 }

[data]
dicom_dir = "data/dicom"
masks = "data/masks"
cases = "data/cases.csv"

[model]
predictions = "data/maps"

[analysis]
seed = 1
n_resamples = 200
calibration_split = "cal"
test_splits = ["test"]

[shift]
subgroup_columns = ["manufacturer"]

[conformal]
group_columns = ["manufacturer"]

[[criteria]]
name = "dice"
key = "segmentation.tumour.dice"
bound = "value"
op = ">="
threshold = 0.3
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[pathlib.Path, object]:
    tmp = tmp_path_factory.mktemp("segrun")
    cases = _cohort(tmp / "data")
    lines = ["case_id,split"] + [f"{c},{'cal' if i < 6 else 'test'}" for i, c in enumerate(cases)]
    (tmp / "data" / "cases.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (tmp / "medval.toml").write_text(SPEC, encoding="utf-8")
    outcome = run_spec(tmp / "medval.toml", out_dir=tmp / "out", quiet=True)
    return tmp, outcome


def test_the_run_scores_every_usable_case_and_excludes_the_bad_one(run) -> None:
    tmp, outcome = run
    result = json.loads((tmp / "out" / "result.json").read_text(encoding="utf-8"))
    excluded = result["tables"]["cohort.excluded_cases"]
    assert [e["case_id"] for e in excluded] == ["scannerB/patient02/series2"]
    assert "shape" in excluded[0]["reason"]
    assert result["values"]["task.kind"] == "segmentation"
    assert result["values"]["segmentation.tumour.n_cases"] == N - 6 - 0
    flow = {r["step"]: r["count"] for r in result["tables"]["cohort.flow"]}
    assert flow["cases scored and analysed"] == N - 1
    assert outcome.verdicts[0].status in ("pass", "fail")


def test_spacing_comes_from_the_positions_not_the_slice_thickness(run) -> None:
    tmp, _ = run
    result = json.loads((tmp / "out" / "result.json").read_text(encoding="utf-8"))
    warnings = [w["warning"] for w in result["tables"]["cohort.volume_warnings"]]
    assert any("SliceThickness 3" in w and "2.5" in w for w in warnings), warnings
    # Volumes in ml use 2.5 mm slices: a 4 x 4 x 4 block of 0.7 x 0.8 mm pixels.
    rows = [r for r in result["tables"]["segmentation.cases"] if r["volume_reference_ml"]]
    assert rows[0]["volume_reference_ml"] == pytest.approx(64 * 2.5 * 0.7 * 0.8 / 1000)


def test_outputs_hold_no_identifier_and_no_absolute_path(run) -> None:
    tmp, _ = run
    for f in (tmp / "out").iterdir():
        text = f.read_text(encoding="utf-8", errors="replace")
        assert FAKE_NAME not in text and "Zzyzx" not in text, f.name
        assert "MRN0" not in text, f.name
        assert str(tmp) not in text, f.name
    assert (tmp / "out" / "segmentation_cases.csv").read_text().startswith("case_id,")
    html = (tmp / "out" / "report.html").read_text(encoding="utf-8")
    assert "Conformal guarantees for masks" in html and "Excluded cases" in html


MODEL_DEF = """
import torch
from torch import nn


class Tiny3d(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Conv3d(1, 4, 3, padding=1)
        self.drop = nn.Dropout3d(0.3)
        self.b = nn.Conv3d(4, 3, 1)

    def forward(self, x):
        return self.b(self.drop(torch.relu(self.a(x))))


def build():
    torch.manual_seed(0)
    return Tiny3d()
"""

SPEC_3D = SPEC.replace(
    'predictions = "data/maps"',
    """file = "tiny.pt"
factory = "model_def.py:build"
mode = "3d"
patch_size = [4, 8, 8]
overlap = 0.5
mc_samples = 3""",
).replace(
    "[[criteria]]",
    """[preprocess]
steps = [{ op = "window", center = 2000, width = 4000 }]

[[criteria]]""",
)


def test_a_3d_model_runs_in_patches_with_mc_dropout(run, tmp_path: pathlib.Path) -> None:
    import shutil

    import torch

    tmp, _ = run
    shutil.copytree(tmp / "data", tmp_path / "data")
    (tmp_path / "model_def.py").write_text(MODEL_DEF, encoding="utf-8")
    (tmp_path / "medval.toml").write_text(SPEC_3D, encoding="utf-8")
    import importlib.util

    spec = importlib.util.spec_from_file_location("model_def_test", tmp_path / "model_def.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    torch.save(module.build().state_dict(), tmp_path / "tiny.pt")
    outcome = run_spec(tmp_path / "medval.toml", out_dir=tmp_path / "out", quiet=True)
    result = outcome.result
    assert result.provenance["preprocess"]["mode"] == "3d"
    assert "voxel_uncertainty" in result.values["evaluation.sections"]
    assert "segmentation.tumour.uncertainty.failure_detection" in result.values
    assert result.provenance["model_sha256"]


def test_a_step_that_moves_pixels_is_refused_before_any_work(tmp_path: pathlib.Path) -> None:
    from medval._errors import SpecError

    text = SPEC.replace(
        "[[criteria]]",
        """[preprocess]
steps = [{ op = "resize", size = [8, 8] }]

[[criteria]]""",
    )
    (tmp_path / "medval.toml").write_text(text, encoding="utf-8")
    with pytest.raises(SpecError, match="not available for segmentation"):
        run_spec(tmp_path / "medval.toml", out_dir=tmp_path / "out", quiet=True)
