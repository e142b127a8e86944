"""One validation run on a small demo cohort, exported once, shared by the deploy tests."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import Any

import pytest

SPEC = """
[task]
class_names = ["no lesion", "lesion"]
positive_class = "lesion"
[data]
dicom_dir = "cohort/dicom"
labels = "cohort/labels.csv"
[preprocess]
steps = [
  { op = "window", center = 40, width = 400 },
  { op = "resize", size = [48, 48] },
]
[model]
file = "model.pt"
factory = "model_def.py:build"
mc_samples = 4
batch_size = 16
[analysis]
n_resamples = 100
test_splits = ["internal"]
threshold = 0.6
[conformal]
confidence_level = 0.8
mondrian = "manufacturer"
[uncertainty]
referral_sensitivity = 0.9
[shift]
enabled = false
[[criteria]]
name = "auroc"
key = "discrimination.auroc"
op = ">="
threshold = 0.5
"""

MODEL_DEF = '''"""The demo network, from a file beside the spec."""

from medval.demo import make_model


def build():
    return make_model()
'''


@dataclasses.dataclass(frozen=True)
class Validated:
    root: Path
    spec: Path
    out: Path
    bundle: Path
    outcome: Any  # medval.run.RunOutcome
    paths: list[Path]  # the DICOM file of each predicted case, in the run's order


@pytest.fixture(scope="session")
def validated(tmp_path_factory: pytest.TempPathFactory) -> Validated:
    """Mondrian sets per manufacturer, a temperature, MC dropout with a referral cutoff."""
    import medval.demo
    from medval.demo import write_cohort
    from medval.deploy import export_deployment
    from medval.run import run_spec

    root = tmp_path_factory.mktemp("deploy")
    write_cohort(root / "cohort", seed=0, n_patients=(50, 50, 1))
    # The external scanner is not in the calibration split, so Mondrian sets per
    # manufacturer cannot cover it: its one patient is set aside (split "train").
    labels = root / "cohort" / "labels.csv"
    labels.write_text(labels.read_text().replace(",external\n", ",train\n"), encoding="utf-8")
    shutil.copyfile(Path(medval.demo.__file__).parent / "weights" / "classifier.pt",
                    root / "model.pt")  # fmt: skip
    (root / "model_def.py").write_text(MODEL_DEF, encoding="utf-8")
    spec = root / "medval.toml"
    spec.write_text(SPEC, encoding="utf-8")
    outcome = run_spec(spec, out_dir=root / "validation", quiet=True)
    bundle = root / "bundle"
    export_deployment(root / "validation", spec, bundle)
    import pandas as pd

    labels = pd.read_csv(root / "cohort" / "labels.csv", index_col="case_id")
    dicom = root / "cohort" / "dicom"
    paths = [dicom / str(labels.loc[c, "file"]) for c in outcome.predictions.case_ids]
    return Validated(root, spec, root / "validation", bundle, outcome, paths)
