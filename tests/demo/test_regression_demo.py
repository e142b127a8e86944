"""`medval demo --task regression` from the command line: the acceptance run.

The report shows Bland-Altman, the coverage per scanner and the variance
decomposition; no planted identifier reaches an output; the copied spec is a
template a user can run with `medval validate`, and the same steps written in
Python give the same result.json (one path).
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest

from medval import EvaluationConfig, demo, evaluate, gate, io
from medval._result import ValidationResult

SALT = "regression-demo-test"


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    folder = tmp_path_factory.mktemp("regdemo") / "run"
    env = {**os.environ, "MEDVAL_SALT": SALT}
    done = subprocess.run(
        [sys.executable, "-m", "medval", "demo", "--task", "regression", "--out", str(folder),
         "--quiet"],
        capture_output=True, text=True, env=env, timeout=900, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return folder


def test_the_demo_writes_a_complete_run(out: pathlib.Path) -> None:
    for name in ("report.html", "result.json", "medval.toml", "regressor.pt", "run.log",
                 "manifest.json", "predictions.csv"):  # fmt: skip
        assert (out / name).is_file(), name
    head = (out / "predictions.csv").read_text(encoding="utf-8").splitlines()[0]
    assert head == "case_id,split,label,prediction,sigma"


def test_the_report_shows_agreement_coverage_per_scanner_and_the_decomposition(
    out: pathlib.Path,
) -> None:
    html = (out / "report.html").read_text(encoding="utf-8")
    result = json.loads((out / "result.json").read_text(encoding="utf-8"))
    values, estimates, tables = result["values"], result["estimates"], result["tables"]
    for text in ("Bland–Altman", "limits of agreement", "Conformal prediction intervals",
                 "Cygnet Radiologic", "epistemic", "aleatoric", "<svg"):  # fmt: skip
        assert text in html, text
    assert "<script" not in html.lower()
    scanners = {r["group"] for r in tables["regression.interval.by_group"]
                if r["column"] == "manufacturer"}  # fmt: skip
    assert len(scanners) == 2  # the internal split's two scanners
    external = tables["split.external.regression.interval.by_group"]
    assert {r["group"] for r in external if r["column"] == "manufacturer"} == {"Cygnet Radiologic"}
    for p in ("", "split.external."):
        d = values[f"{p}regression.uncertainty.decomposition"]
        assert d["total"] == pytest.approx(d["epistemic"] + d["aleatoric"], rel=1e-12)
        assert d["n_samples"] == 10 and d["epistemic"] > 0
    # The shipped model's recorded MAE, read back from DICOM through the spec's pipeline.
    recipe = demo.load_regression_recipe()
    assert estimates["regression.mae"]["value"] == pytest.approx(
        recipe["expected"]["values"]["mae.internal"], abs=1e-4
    )
    # Far from every threshold: internal MAE 6.9 vs 12, external 24.9 vs 12.
    verdicts = {r["name"]: r["status"] for r in tables["gate.verdicts"]}
    assert verdicts["internal-mae"] == "pass" and verdicts["external-mae"] == "warn"


def test_no_planted_identifier_reaches_an_output(out: pathlib.Path) -> None:
    info = demo.write_regression_cohort(out.parent / "again", seed=0)
    planted = [v for v in info.phi_values if len(v) >= 4]
    assert planted
    for f in out.iterdir():
        if f.is_file() and f.suffix in (".html", ".json", ".log", ".csv", ".xml", ".toml"):
            text = f.read_text(encoding="utf-8", errors="replace")
            # Whole tokens: a planted date's digits may occur inside a float (15.2021020194).
            hits = [v for v in planted if v in text]
            leaked = [v for v in hits if re.search(rf"(?<![\w.]){re.escape(v)}(?![\w])", text)]
            assert not leaked, (f.name, leaked[:3])


def test_python_and_the_command_line_are_one_path(
    out: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from torch.utils.data import DataLoader

    from medval.inference import predict_regression

    monkeypatch.setenv("MEDVAL_SALT", SALT)
    spec = gate.read_spec(out / "medval.toml")
    data = io.load_cohort(spec.resolve("data.dicom_dir"), spec.resolve("data.labels"),
                          class_names=None, value_range=(0, 240), salt=SALT)  # fmt: skip
    ids = [str(c) for c in data.cohort.index]
    steps = gate.preprocess_steps(spec.sections["preprocess"], source="m")
    dataset = io.DicomDataset([data.paths[c] for c in ids], ids,
                              pipeline=io.Pipeline.from_steps(steps))  # fmt: skip
    model = io.load_model(out / "regressor.pt", factory=io.Factory("medval.demo:make_regressor"))
    preds = predict_regression(
        model.module, DataLoader(dataset, batch_size=64), output="mean_log_variance",
        mc_samples=10, seed=0, unit="months",
    )  # fmt: skip
    mine = evaluate(preds, data, config=EvaluationConfig.from_sections(spec.sections))
    cli = ValidationResult.read_json(out / "result.json")
    for store in ("estimates", "tables"):
        a, b = getattr(mine, store), getattr(cli, store)
        # The CLI also measured the input intensities (input.*), which this run skips.
        keys = {k for k in a if not k.startswith(("gate.", "input.", "evaluation.skipped"))}
        assert keys <= set(b), sorted(keys - set(b))[:5]
        for k in keys:
            x = a[k].to_dict() if store == "estimates" else a[k]
            y = b[k].to_dict() if store == "estimates" else b[k]
            assert json.dumps(x, sort_keys=True, default=str) == json.dumps(
                y, sort_keys=True, default=str
            ), k
    assert np.isclose(mine["regression.mae"].value, cli["regression.mae"].value, rtol=0)
