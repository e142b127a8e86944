"""Killing ``medval validate`` at any moment leaves the previous complete run or the new one.

Issue 15's acceptance test: SIGKILL or SIGINT at 20 points spread evenly over
a run always leaves either the previous complete run (the same manifest, every
file as listed) or a new complete run (its manifest verifies, its result.json
is intact and is the spec just run), never a mixture.

Each run is ``medval.cli.main(["validate", ...])`` in a process forked from a
helper that has imported medval, torch, pandas, pydicom and matplotlib once,
so that a kill point costs the run itself rather than the imports (~8 s here).
The runs see a slow disk (each ``fsync`` takes 150 ms), which stretches the
moments between the first output written and the folder swapped in (a few
milliseconds otherwise) to about a fifth of the run, so that kill points land
there too.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from medval import ValidationResult
from medval.run import read_manifest, verify_manifest

from .conftest import DEMO_MODEL, spec_folder, write_spec

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not hasattr(os, "fork"), reason="forks the runs (POSIX)"),
]

# Reads {"argv": [...], "delay": s or null, "signal": n} per line; forks a run, kills it
# after the delay unless it ended, and answers {"status": exit code or -signal, "t": s}.
_HELPER = r"""
import json, os, signal, sys, time
import matplotlib
matplotlib.use("Agg")
import matplotlib.figure, matplotlib.pyplot, jinja2, pandas, pydicom, torch
import medval.cli, medval.demo, medval.diff, medval.evaluation, medval.inference, medval.io
import medval.report, medval.run
from medval.checklist import load_checklist
load_checklist("claim-2024")
out = sys.stdout
print("ready", file=out, flush=True)
for line in sys.stdin:
    job = json.loads(line)
    t0 = time.monotonic()
    pid = os.fork()
    if pid == 0:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 1)
        os.dup2(null, 2)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        fsync = os.fsync
        def slow_fsync(fd):
            time.sleep(0.15)
            fsync(fd)
        os.fsync = slow_fsync
        os._exit(medval.cli.main(job["argv"]))
    done = None
    while done is None:
        if job["delay"] is not None and time.monotonic() - t0 >= job["delay"]:
            os.kill(pid, job["signal"])
            job["delay"] = None
        p, status = os.waitpid(pid, os.WNOHANG)
        if p:
            done = status
        else:
            time.sleep(0.002)
    code = -os.WTERMSIG(done) if os.WIFSIGNALED(done) else os.WEXITSTATUS(done)
    print(json.dumps({"status": code, "t": time.monotonic() - t0}), file=out, flush=True)
"""


class _Helper:
    def __init__(self) -> None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _HELPER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert self.proc.stdout is not None and self.proc.stdout.readline().strip() == "ready"

    def run(self, argv: list[str], delay: float | None = None, sig: int = 0) -> dict[str, float]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps({"argv": argv, "delay": delay, "signal": sig}) + "\n")
        self.proc.stdin.flush()
        answer: dict[str, float] = json.loads(self.proc.stdout.readline())
        return answer

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def _state(out: Path) -> tuple[str, str]:
    """(manifest bytes, spec digest the run recorded) of a complete run; fails on a mixture."""
    assert out.is_dir(), "the output folder is gone"
    assert verify_manifest(out) == [], verify_manifest(out)
    assert set(read_manifest(out)) == {"predictions.csv", "report.html", "result.json", "run.log"}
    result = ValidationResult.read_json(out / "result.json", require_integrity=True)
    return (out / "manifest.json").read_text(), str(result.provenance["spec_sha256"])


def test_a_killed_run_leaves_the_previous_run_or_the_new_one(
    tmp_path: Path, small_cohort: Path
) -> None:
    import hashlib

    folder = spec_folder(tmp_path, small_cohort)
    specs = []
    for seed in (1, 2):  # two specs, so that the previous and the new run differ
        spec = write_spec(folder, f"seed{seed}", DEMO_MODEL)
        text = spec.read_text().replace("n_resamples = 100", f"n_resamples = 100\nseed = {seed}")
        spec.write_text(text)
        specs.append((spec, hashlib.sha256(text.encode()).hexdigest()))
    out = folder / "out"
    argv = [["validate", str(s), "--out", str(out), "--quiet"] for s, _ in specs]
    helper = _Helper()
    try:
        # Two complete runs: the previous run, and the length of one (the slower; the
        # points reach a little past it, since a shared machine's pace varies).
        times = [helper.run(args) for args in argv]
        assert [t["status"] for t in times] == [0, 0]
        full = max(t["t"] for t in times)
        delays = [full * (0.05 + 1.05 * k / 19) for k in range(20)]
        outcomes = []
        for i, delay in enumerate(delays):
            before = _state(out)
            which = 1 if before[1] == specs[0][1] else 0  # run the other spec
            sig = signal.SIGINT if i % 4 == 3 else signal.SIGKILL
            answer = helper.run(argv[which], delay, sig)
            assert answer["status"] in (0, -signal.SIGKILL, 4), answer  # 4: "interrupted"
            after = _state(out)
            if after != before:
                assert after[1] == specs[which][1], "a complete run of neither spec"
            # An interrupted run removes its staging folder; a SIGKILLed one cannot, and
            # the next run removes it (so there is never more than the last one's).
            left = [p for p in folder.iterdir() if p.name.startswith(".out.")]
            assert len(left) <= (answer["status"] == -signal.SIGKILL), left
            staged = "+" + ",".join(sorted(f.name for f in left[0].iterdir())) if left else ""
            word = "new" if after != before else "previous"
            outcomes.append(f"{delay:.2f}s {signal.Signals(sig).name} {word}{staged}")
        # Early kill points left the previous run; the last ones reach past the run's end.
        assert any(o.endswith("previous") or "previous+" in o for o in outcomes), outcomes
    finally:
        helper.close()
    print(f"full run {full:.2f} s;", "; ".join(outcomes))
