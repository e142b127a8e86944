"""A spec run records its preprocessing and checks the inputs against what the model expects.

A model trained on per-image z-scored input (mean 0, sd 1) fed min-max
input is flagged before it runs: logged, recorded as ``input.mismatch`` and
the report's first finding; the same model fed z-scored input is not.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from medval.checklist import fill
from medval.run import RunOutcome, run_spec

from .conftest import write_spec

EXPECT = "expect = { mean = 0.0, std = 1.0 }  # trained on per-image z-scores\n"


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory, small_cohort: Path) -> Path:
    import torch

    from medval.demo import make_model

    root = tmp_path_factory.mktemp("preprocess-run")
    (root / "cohort").symlink_to(small_cohort, target_is_directory=True)
    torch.save(make_model().state_dict(), root / "model.pt")
    return root


def _run(folder: Path, name: str, preprocess: str) -> RunOutcome:
    model = 'file = "model.pt"\nfactory = "medval.demo:make_model"'
    path = write_spec(folder, name, model, preprocess=preprocess)
    return run_spec(path, out_dir=folder / name, quiet=True)


def _log(run: RunOutcome) -> list[str]:
    return (run.out_dir / "run.log").read_text(encoding="utf-8").splitlines()


def test_a_zscore_model_fed_minmax_input_is_flagged_before_it_runs(folder: Path) -> None:
    steps = 'steps = [{ op = "normalize", method = "minmax" }]\n'
    run = _run(folder, "minmax", steps + EXPECT)
    v = run.result.values
    assert v["input.mismatch"] is True
    assert v["input.expected"] == {"mean": 0.0, "std": 1.0}
    overall = run.result.tables["input.by_group"][0]
    assert overall["by"] == "all" and overall["mismatch"] is True
    assert overall["p1"] >= 0.0 and overall["p99"] <= 1.0 and overall["sd"] < 0.5
    assert "split=internal" in v["input.mismatch_groups"]
    log = _log(run)
    flagged = next(i for i, line in enumerate(log) if "PREPROCESSING MISMATCH" in line)
    ran = next(i for i, line in enumerate(log) if line.startswith("running the model"))
    assert flagged < ran
    page = run.report.read_text(encoding="utf-8")
    findings = page[page.index("Key findings") :]
    first = findings[findings.index("<li>") + 4 : findings.index("</li>")]
    assert first.startswith("Preprocessing mismatch") and "[preprocess]" in first
    pipeline = run.result.provenance["preprocess"]["pipeline"]
    assert pipeline[3] == {"op": "normalize", "method": "minmax", "mean": None, "std": None}
    assert 'id="preprocessing"' in page and 'id="input-intensities"' in page


def test_matching_input_is_not_flagged_and_the_checklist_states_the_pipeline(
    folder: Path,
) -> None:
    steps = (
        'steps = [{ op = "window", preset = "abdomen" }, { op = "normalize", method = "zscore" }]\n'
    )
    run = _run(folder, "zscore", steps + EXPECT)
    assert run.result.values["input.mismatch"] is False
    assert run.result.values["input.mismatch_groups"] == []
    assert not any("MISMATCH" in line for line in _log(run))
    assert run.result.provenance["preprocess"]["warnings"] == []
    text = next(s.evidence for s in fill(run.result) if s.evidence and "in order" in s.evidence)
    assert "window (center=40.0, width=400.0, preset=abdomen, voi_lut=False)" in text
    assert "normalize (method=zscore)" in text and "window None" not in text
    assert "matched the declared training input" in text


def test_no_declared_normalisation_is_recorded_and_warned(folder: Path) -> None:
    run = _run(folder, "undeclared", "size = [32, 32]\n")
    pre = run.result.provenance["preprocess"]
    assert pre["pipeline"][3]["method"] == "minmax" and pre["pipeline"][3]["implicit"] is True
    assert pre["warnings"] and "no normalisation was declared" in pre["warnings"][0]
    assert any(line.startswith("WARNING: no normalisation was declared") for line in _log(run))
    assert run.result.values["input.mismatch"] is None  # nothing declared to compare with
    page = run.report.read_text(encoding="utf-8")
    assert "Preprocessing: no normalisation was declared" in page
    text = next(s.evidence for s in fill(run.result) if s.evidence and "in order" in s.evidence)
    assert "Warning: no normalisation was declared" in text
