"""Whole-process start-up times of the nnctl commands people run in pipelines, as medians.

Usage: python benchmarks/startup.py [--runs N]   (or `make startup`). Exits 1 when a goal is missed.
Each timing is a fresh `python -m nnctl ...` process, from exec to exit, so imports count in full.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ONE_ROW = "sepal_length,sepal_width,petal_length,petal_width\n7.0,3.2,4.7,1.4\n"


def timed(args: list[str], stdin: str | None, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        result = subprocess.run([sys.executable, "-m", "nnctl", *args], input=stdin, capture_output=True,
                                text=True, cwd=ROOT)
        times.append(time.perf_counter() - started)
        if result.returncode != 0:
            sys.exit(f"nnctl {' '.join(args)} failed: {result.stderr.strip()}")
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="processes per command (default 15)")
    runs = parser.parse_args().runs
    with tempfile.TemporaryDirectory() as folder:
        model = str(Path(folder) / "iris.npz")
        subprocess.run([sys.executable, "-m", "nnctl", "train", "configs/iris.yaml", "-o", model, "-q"],
                       cwd=ROOT, check=True)
        cases = [  # (what, args, stdin, goal in seconds or None)
            ("nnctl --help", ["--help"], None, 0.25),
            ("nnctl --version", ["--version"], None, None),
            ("predict one row from stdin", ["predict", model], ONE_ROW, 0.40),
            ("predict 150 rows, --proba", ["predict", model, "datasets/iris.csv", "--proba"], None, None),
            ("check configs/iris.yaml", ["check", "configs/iris.yaml"], None, None),
            ("train iris, 150 epochs", ["train", "configs/iris.yaml", "-o", model, "-q"], None, None),
        ]
        timed(["--version"], None, 2)  # warm the file cache; not counted
        missed = 0
        print(f"{'command':<32} {'median':>8} {'min':>8} {'goal':>8}   ({runs} processes each, {sys.executable})")
        for what, args, stdin, goal in cases:
            times = timed(args, stdin, runs)
            median = statistics.median(times)
            verdict = "" if goal is None else ("  ok" if median <= goal else "  MISSED")
            missed += goal is not None and median > goal
            goal_text = f"{goal:.2f} s" if goal else "-"
            print(f"{what:<32} {median:>6.3f} s {min(times):>6.3f} s {goal_text:>8}{verdict}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
