"""The Python API and the CLI are one path: the same inputs give the same result.json.

`medval validate` on the demo (with a released baseline to compare against) and
the same steps written by hand in Python (read the cohort, run the model,
`medval.evaluate`, judge, write) must agree on every estimate, value and
table, bit for bit, and on every provenance entry but the command line.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from medval import EvaluationConfig, evaluate, gate, io, predict
from medval._result import ValidationResult
from medval.cli import main
from medval.report import write_outputs

SALT = "one-path-test-salt"


@pytest.fixture(scope="module")
def both(demo_run: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(CLI result.json, Python result.json) on a copy of the demo with a baseline."""
    mp = pytest.MonkeyPatch()
    mp.setenv("MEDVAL_SALT", SALT)
    try:
        root = tmp_path_factory.mktemp("one-path")
        for part in ("cohort", "model.pt", "medval.toml"):
            src = demo_run / part
            (shutil.copytree if src.is_dir() else shutil.copyfile)(src, root / part)
        # A "released" model: the demo's own scores, slightly perturbed, as a CSV.
        rows = (demo_run / "predictions.csv").read_text(encoding="utf-8").splitlines()
        head, body = rows[0].split(","), [r.split(",") for r in rows[1:]]
        col = head.index("probability")
        rng = np.random.default_rng(5)
        for r in body:
            r[col] = repr(float(np.clip(float(r[col]) + rng.normal(scale=0.05), 0.0, 1.0)))
        (root / "released.csv").write_text(
            "\n".join([",".join(head), *(",".join(r) for r in body)]) + "\n", encoding="utf-8"
        )
        spec_path = root / "medval.toml"
        spec_path.write_text(
            spec_path.read_text(encoding="utf-8")
            + '\n[baseline]\npredictions = "released.csv"\nmargin = 0.05\n',
            encoding="utf-8",
        )
        cli_out = root / "cli"
        assert main(["validate", str(spec_path), "--out", str(cli_out), "--quiet"]) in (0, 1)

        spec = gate.read_spec(spec_path)
        data = io.load_cohort(
            spec.resolve("data.dicom_dir"), spec.resolve("data.labels"),
            class_names=list(spec["task.class_names"]), salt=SALT,
        )  # fmt: skip
        used = [str(c) for c in data.cohort.index[data.cohort["split"] != "train"]]
        model = io.load_model(spec.resolve("model.file"), factory=spec["model.factory"])
        from torch.utils.data import DataLoader

        window = spec["preprocess.window"]
        dataset = io.DicomDataset(
            [data.paths[c] for c in used], used, window=(float(window[0]), float(window[1])),
            size=tuple(spec["preprocess.size"]),
        )  # fmt: skip
        preds = predict(
            model.module, DataLoader(dataset, batch_size=spec["model.batch_size"]),
            class_names=list(spec["task.class_names"]), mc_samples=spec["model.mc_samples"],
            seed=spec["analysis.seed"], embeddings=spec["model.embeddings"],
        )  # fmt: skip
        preds = preds.with_labels(
            np.asarray(data.cohort["label"].reindex(list(preds.case_ids)), dtype=np.int64)
        )
        # What the model will see, summarised before it runs (the spec declares no expect).
        intensities = io.input_statistics(dataset, data, seed=spec["analysis.seed"])
        released = gate.read_baseline_scores(root / "released.csv", used)
        config = EvaluationConfig.from_sections(spec.sections)
        assert config.reference_margin == 0.05
        result = evaluate(
            preds, data, config=config, reference=released, reference_name="released.csv",
            input_statistics=intensities,
        )  # fmt: skip
        gate.record(result, gate.judge_spec(result, spec))
        cli = ValidationResult.read_json(cli_out / "result.json")
        # What a run adds around evaluate that is not a computation: copy it over.
        result.provenance.update(
            {k: v for k, v in cli.provenance.items() if k not in result.provenance}
        )
        py_out = root / "python"
        write_outputs(result, py_out)
        return cli_out / "result.json", py_out / "result.json"
    finally:
        mp.undo()


def _stores(path: Path) -> dict[str, object]:
    return json.loads(path.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def test_python_and_cli_give_the_same_result(both: tuple[Path, Path]) -> None:
    cli, py = (_stores(p) for p in both)
    for store in ("estimates", "values", "tables"):
        assert cli[store] == py[store], store
    assert {k: v for k, v in cli["provenance"].items() if k != "command"} == {
        k: v for k, v in py["provenance"].items() if k != "command"
    }


def test_the_shared_path_runs_what_only_the_cli_ran_before(both: tuple[Path, Path]) -> None:
    """Cohort flow, pixel duplicates and the baseline comparison come from evaluate."""
    _, py = both
    r = ValidationResult.read_json(py)
    assert r.values["cohort.n_files"] >= r.values["cohort.n_included"] > 0
    assert r.tables["cohort.flow"][0]["step"] == "files found in the data folder"
    assert r.values["leakage.pixel_duplicate_groups"] >= 0
    diff = r.estimates["noninferiority.auroc.difference"]
    assert diff.low is not None and diff.low < diff.value < diff.high
    assert r.values["noninferiority.auroc.baseline"] == "released.csv"
    assert "reference" in r.values["evaluation.sections"]
    assert r.tables["evaluation.skipped"] == []
    rows = r.tables["input.by_group"]
    by_split = sum(row["n_cases"] for row in rows if row["by"] == "split")
    assert rows[0]["by"] == "all" and rows[0]["n_cases"] == by_split > 0
