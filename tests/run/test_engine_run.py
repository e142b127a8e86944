"""Issue 18's acceptance for the engines, on the small demo cohort plus every crafted bad file.

- ``--engine local`` and ``--engine ray`` give the in-process run's result (``medval diff``
  agrees: same verdicts, estimates within tolerance) and the same exclusions, each crafted
  file with its reason; the job does not fail on them.
- A Ray run killed midway resumes: the rerun processes only the shards not committed,
  leaves the committed parts untouched, and ends with the uninterrupted run's result.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from medval import ExitCode, diff_results
from medval.cli import main
from medval.engine import read_manifest

from ..io._crafted import CRAFTED
from .conftest import PHI_FOLDER, write_spec

_MODEL = 'factory = "medval.demo:make_model"\nfile = "model.pt"'
# The demo net, slowly: a Ray run takes long enough to be killed midway.
_SLOW = """import time

from medval.demo import make_model


def make():
    net = make_model()
    forward = net.forward

    def slow(x):
        time.sleep(0.25 * x.shape[0])
        return forward(x)

    net.forward = slow
    return net
"""


def _exclusions(out: Path) -> dict[str, str]:
    result = json.loads((out / "result.json").read_text(encoding="utf-8"))
    return {row["file"]: row["reason"] for row in result["tables"]["cohort.exclusions"]}


@pytest.fixture(scope="module")
def in_process(hostile: Path) -> Path:
    spec = write_spec(hostile, "engine", _MODEL)
    out = hostile.parent / "engine-in-process"
    assert main(["validate", str(spec), "--out", str(out), "--quiet"]) in (0, 1)
    return out


def _no_phi(out: Path) -> None:
    for name in ("result.json", "report.html", "run.log"):
        assert PHI_FOLDER not in (out / name).read_text(encoding="utf-8"), name


def test_the_local_engine_gives_the_in_process_result(hostile: Path, in_process: Path) -> None:
    spec = hostile / "engine.toml"
    out = hostile.parent / "engine-local"
    code = main(["validate", str(spec), "--out", str(out), "--quiet", "--engine", "local",
                 "--shard-size", "8"])  # fmt: skip
    assert code in (0, 1)
    d = diff_results(in_process / "result.json", out / "result.json")
    assert d.agree, d.differences[:3]
    assert _exclusions(out) == _exclusions(in_process)
    for name in CRAFTED:
        assert f"crafted/{name}" in _exclusions(out)
    assert not out.with_name(out.name + ".work").exists()  # removed after a complete run
    _no_phi(out)
    provenance = json.loads((out / "result.json").read_text(encoding="utf-8"))["provenance"]
    assert provenance["engine"]["engine"] == "local" and provenance["engine"]["shard_size"] == 8


def test_engine_options_need_an_engine_and_a_classifier(
    hostile: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = write_spec(hostile, "engine-refused", _MODEL)
    out = hostile.parent / "engine-refused"
    assert main(["validate", str(spec), "--out", str(out), "--shard-size", "8"]) == 2
    inside = ["--engine", "local", "--work-dir", str(out / "work")]
    assert main(["validate", str(spec), "--out", str(out), *inside]) == ExitCode.USAGE_ERROR
    assert "--work-dir must lie outside the output folder" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stop:
        main(["validate", str(spec), "--out", str(out), "--engine", "spark"])
    assert stop.value.code == ExitCode.USAGE_ERROR


def _parts(work: Path) -> dict[str, int]:
    parts = work / "parts"
    if not parts.is_dir():
        return {}
    return {p.name: p.stat().st_mtime_ns for p in parts.glob("shard-*.parquet")}


def test_a_killed_ray_run_resumes_with_only_the_missing_shards(
    hostile: Path, in_process: Path
) -> None:
    pytest.importorskip("ray")
    (hostile / "slow.py").write_text(_SLOW, encoding="utf-8")
    model = 'factory = "slow.py:make"\nfile = "model.pt"\nbatch_size = 4'
    spec = write_spec(hostile, "slow", model)
    out, work = hostile.parent / "engine-ray", hostile.parent / "engine-ray-work"
    args = ["validate", str(spec), "--out", str(out), "--engine", "ray", "--ray-cpus", "2",
            "--shard-size", "8", "--work-dir", str(work), "--keep-parts"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "medval", *args], start_new_session=True, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    deadline = time.monotonic() + 240
    while not _parts(work) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    _, err = proc.communicate()
    # Ray's workers outlive the driver for a moment and may commit one more shard.
    before, stable = _parts(work), time.monotonic()
    while time.monotonic() - stable < 6:
        time.sleep(0.5)
        if _parts(work) != before:
            before, stable = _parts(work), time.monotonic()
    n_shards = int(read_manifest(work / "manifest.parquet")["shard"].max()) + 1
    assert 0 < len(before) < n_shards, (len(before), n_shards, err[-2000:])
    assert not out.exists()  # a killed run leaves no output folder

    assert main([*args, "--quiet"]) in (ExitCode.OK, ExitCode.GATE_FAILED)
    log = (out / "run.log").read_text(encoding="utf-8")
    assert (
        f"resuming: {len(before)} of {n_shards} shards" in log
        and f"running the other {n_shards - len(before)}" in log
    ), log
    after = _parts(work)
    assert {k: after[k] for k in before} == before  # committed parts were not redone
    assert len(after) == n_shards
    d = diff_results(in_process / "result.json", out / "result.json")
    assert d.agree, d.differences[:3]
    assert _exclusions(out) == _exclusions(in_process)
    _no_phi(out)


def test_mc_samples_and_embeddings_do_not_depend_on_the_sharding(hostile: Path) -> None:
    """The in-process predictions, whatever the shard size (masks keyed by case id)."""
    import numpy as np

    from medval.gate import read_spec
    from medval.run import EngineRun, read_data
    from medval.run._model import load_models, model_predictions

    model = f"{_MODEL}\nmc_samples = 3\nembeddings = true\nbatch_size = 5"
    spec = read_spec(write_spec(hostile, "engine-mc", model))
    data = read_data(spec, salt="s", progress=False)
    used = [str(c) for c in data.cohort.index]
    models = load_models(spec, trust_pickle=False, log=lambda *_: None)
    ref = model_predictions(spec, data, used, models=models, progress=False, log=print)
    for size in (4, 13):
        got = model_predictions(
            spec, data, used, models=models, progress=False, log=print,
            engine=EngineRun("local", str(hostile.parent / f"mc-work-{size}"), size),
            out_dir=hostile.parent / "mc-out",
        )  # fmt: skip
        a, b = ref.predictions, got.predictions
        assert list(a.case_ids) == list(b.case_ids)
        assert set(ref.data.cohort.index) == set(got.data.cohort.index)
        np.testing.assert_allclose(b.probabilities, a.probabilities, rtol=0, atol=1e-6)
        np.testing.assert_allclose(b.mc_probabilities, a.mc_probabilities, rtol=0, atol=1e-6)
        np.testing.assert_allclose(b.embeddings, a.embeddings, rtol=0, atol=1e-5)
        assert b.mc_probabilities.shape[0] == 3
