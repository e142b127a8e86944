"""Benchmark: what the test-set ledger costs a gate (verify before the run, append after).

A ledger of N entries (each like a validate run's: 20 revealed keys, three
splits) is written once; then timed, best of ``--repeat``:

- ``verify_ledger`` (every entry's canonical digest and chain link), and
  ``append_entry`` (lock, verify the whole chain, write one line, fsync);
- the anchor: reading the file and ``json.loads`` + ``hashlib.sha256`` of
  every line, the floor any verification of a JSON-lines chain pays.

    python benchmarks/bench_ledger.py            # N = 1,000 and 10,000
    python benchmarks/bench_ledger.py --quick    # N = 1,000
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from medval.integrity import append_entry, start_ledger, verify_ledger

_HEX = "ab" * 32


def _best(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def build(path: Path, n: int) -> None:
    start_ledger(path, protocol_sha256=_HEX, registration_sha256=_HEX, signing_key=None)
    revealed = ["report", *(f"subgroup.manufacturer=V{i}.auroc" for i in range(19))]
    # Build the chain through the public API once, then replay the lines (fast to write).
    for i in range(min(n, 50)):
        append_entry(
            path, kind="evaluated", protocol_sha256=_HEX, model_sha256=f"{i:064x}",
            verdict="pass", revealed=revealed, splits=["calibration", "external", "internal"],
            signing_key=None,
        )  # fmt: skip
    if n > 50:
        from medval.integrity import read_ledger

        last = read_ledger(path, signing_key=None).entries[-1]
        entries = []
        for i in range(51, n + 1):
            content = {**last.content(), "seq": i, "prev_sha256": last.entry_sha256,
                       "model_sha256": f"{i:064x}"}  # fmt: skip
            last = type(last).sealed(signing_key=None, **content)
            entries.append(last)
        with path.open("ab") as f:
            f.write(b"".join(e.to_line() for e in entries))


def floor(path: Path) -> None:
    for line in path.read_text(encoding="utf-8").splitlines():
        json.loads(line)
        hashlib.sha256(line.encode()).hexdigest()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    sizes = [1000] if args.quick else [1000, 10000]
    print("| entries | verify_ledger | append_entry | floor (read, json.loads, sha256) | ratio |")
    print("|---|---|---|---|---|")
    for n in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "medval-ledger.jsonl"
            build(path, n)
            check = verify_ledger(path, signing_key=None)
            assert check.ok and check.n_entries == n + 1, check.problems
            t_verify = _best(lambda p=path: verify_ledger(p, signing_key=None), args.repeat)  # type: ignore[misc]
            t_floor = _best(lambda p=path: floor(p), args.repeat)  # type: ignore[misc]
            t_append = _best(
                lambda p=path: append_entry(
                    p, kind="judged", protocol_sha256=_HEX, model_sha256=_HEX, verdict="pass",
                    revealed=["report"], splits=["internal"], signing_key=None,
                ),
                args.repeat,
            )  # fmt: skip
            print(
                f"| {n:,} | {t_verify * 1e3:.0f} ms | {t_append * 1e3:.0f} ms | "
                f"{t_floor * 1e3:.0f} ms | {t_verify / t_floor:.1f}× the floor |"
            )


if __name__ == "__main__":
    main()
