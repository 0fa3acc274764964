"""Benchmark: wall time of `mlkit run` on the real data, median of several runs.

Usage: .venv/bin/python bench/bench_mlkit_run.py [--data PATH] [--runs 3]

Prints each run's total and per-step seconds (from report.json) and the medians. The machines are
shared and noisy, so only the median over runs is worth quoting.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "ai4i2020.csv")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    walls: list[float] = []
    steps: dict[str, list[float]] = {}
    for run in range(1, args.runs + 1):
        with tempfile.TemporaryDirectory() as workdir:
            started = time.perf_counter()
            completed = subprocess.run(
                [str(Path(sys.executable).parent / "mlkit"), "run", "--data", str(args.data), "--workdir", workdir],
                capture_output=True,
                text=True,
                check=False,
            )
            wall = time.perf_counter() - started
            if completed.returncode != 0:
                print(completed.stdout[-2000:], completed.stderr[-2000:], sep="\n")
                return 1
            report = json.loads((Path(workdir) / "report.json").read_text())
        walls.append(wall)
        for name, seconds in report["seconds"].items():
            steps.setdefault(name, []).append(seconds)
        print(f"run {run}: {wall:.1f} s wall, F1 {report['metrics']['f1']:.4f}", flush=True)
    print(f"\nmedian wall time over {args.runs} runs: {statistics.median(walls):.1f} s (min {min(walls):.1f})")
    for name, values in steps.items():
        print(f"  {statistics.median(values):7.1f} s  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
