"""Quickstart wall time with one torch thread vs torch's default (one per core), and what
``grokspec run`` picks by itself (grokspec.training.threads).

Each setting runs ``grokspec run specs/quickstart.yaml`` in its own process (a fresh SQLite
store in a temporary folder, no progress bar), alternating settings ``--repeats`` times;
the table shows the median wall time and CPU time (user + system). Wall time is what the
choice is about; on a machine shared with other jobs both are noisy: run it twice.

Usage: python bench/threads.py [--repeats 2] [--steps 1500]
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_once(threads: str, steps: int) -> tuple[float, float, str]:
    """(wall s, CPU s, the threads line grokspec printed) of one quickstart run."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "grokspec.cli.main", "run",
               str(ROOT / "specs" / "quickstart.yaml"), "--no-progress", "--device", "cpu",
               "--set", f"train.steps={steps}",
               "--set", f"tracking.uri=sqlite:///{Path(tmp) / 'mlflow.db'}"]
        if threads != "auto":
            cmd += ["--threads", threads]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        proc = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True)
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        sys.exit(proc.stderr[-2000:])
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    line = next((ln for ln in proc.stderr.splitlines() if ln.startswith("threads:")), "")
    return wall, cpu, line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--steps", type=int, default=1500)
    args = parser.parse_args()
    n_cores = len(os.sched_getaffinity(0))
    settings = {"1": "1 thread", str(n_cores): f"{n_cores} threads (torch's default)",
                "auto": "grokspec's choice"}
    results: dict[str, list[tuple[float, float, str]]] = {k: [] for k in settings}
    for _ in range(args.repeats):
        for key in settings:
            results[key].append(run_once(key, args.steps))
            wall, cpu, _line = results[key][-1]
            print(f"  {settings[key]}: wall {wall:.1f} s, CPU {cpu:.1f} s", flush=True)
    base = statistics.median(w for w, _, _ in results["1"])
    print(f"quickstart, {args.steps} steps, {n_cores} cores, median of {args.repeats}\n")
    print("| threads | wall s | CPU s | wall vs 1 thread |")
    print("|---|---|---|---|")
    for key, label in settings.items():
        wall = statistics.median(w for w, _, _ in results[key])
        cpu = statistics.median(c for _, c, _ in results[key])
        print(f"| {label} | {wall:.1f} | {cpu:.1f} | {wall / base:.2f}x |")
    chosen = re.sub(r"\s+", " ", results["auto"][0][2])
    print(f"\ngrokspec printed: {chosen or '(no threads line)'}")


if __name__ == "__main__":
    main()
