"""Whole-process start-up of the nnctl commands people run in pipelines, next to a bare `python -c "import numpy"`.

Usage: python benchmarks/startup.py [--rounds N]   (or `make startup`). Exits 1 when a goal is missed.
Each timing is a fresh process, from exec to exit, so imports count in full. This machine's speed drifts, so
each round runs the bare NumPy import and then every command once, back to back, and a goal is the median over
the rounds of the command's time divided by that round's NumPy import (issue 18: `--help` needs no NumPy and
takes at most as long as importing it; one-row `predict` at most twice as long).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ONE_ROW = "sepal_length,sepal_width,petal_length,petal_width\n7.0,3.2,4.7,1.4\n"
NUMPY = [sys.executable, "-c", "import numpy"]


# Every process may write its bytecode cache (__pycache__), as it does on a user's machine: a shell that sets
# PYTHONDONTWRITEBYTECODE would otherwise time nnctl recompiling its own modules on every start.
ENV = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}


def timed(command: list[str], stdin: str | None) -> float:
    started = time.perf_counter()
    result = subprocess.run(command, input=stdin, capture_output=True, text=True, cwd=ROOT, env=ENV)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)} failed: {result.stderr.strip()}")
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15, help="interleaved rounds (default 15)")
    rounds = parser.parse_args().rounds
    with tempfile.TemporaryDirectory() as folder:
        model = str(Path(folder) / "iris.npz")
        subprocess.run([sys.executable, "-m", "nnctl", "train", "configs/iris.yaml", "-o", model, "-q"],
                       cwd=ROOT, check=True)
        cases = [  # (what, args, stdin, goal as a multiple of the bare NumPy import, or None)
            ("nnctl --help", ["--help"], None, 1.0),
            ("nnctl --version", ["--version"], None, None),
            ("predict one row from stdin", ["predict", model], ONE_ROW, 2.0),
            ("predict 150 rows, --proba", ["predict", model, "datasets/iris.csv", "--proba"], None, None),
            ("check configs/iris.yaml", ["check", "configs/iris.yaml"], None, None),
            ("train iris, 150 epochs", ["train", "configs/iris.yaml", "-o", model, "-q"], None, None),
        ]
        commands = {what: ([sys.executable, "-m", "nnctl", *args], stdin) for what, args, stdin, _ in cases}
        for command, stdin in [(NUMPY, None), *commands.values()]:
            timed(command, stdin)  # warm the file and bytecode caches; not counted
        numpy: list[float] = []
        times: dict[str, list[float]] = {what: [] for what in commands}
        for _ in range(rounds):
            numpy.append(timed(NUMPY, None))
            for what, (command, stdin) in commands.items():
                times[what].append(timed(command, stdin))
    print(f"{'command':<32} {'median':>8} {'min':>8} {'÷ numpy':>8} {'goal':>6}   ({rounds} interleaved rounds, "
          f"{sys.executable})")
    bare = 'python -c "import numpy"'
    print(f"{bare:<32} {statistics.median(numpy):>6.3f} s {min(numpy):>6.3f} s")
    missed = 0
    for what, _, _, goal in cases:
        ratio = statistics.median(t / n for t, n in zip(times[what], numpy, strict=True))
        verdict = "" if goal is None else ("  ok" if ratio <= goal else "  MISSED")
        missed += goal is not None and ratio > goal
        goal_text = f"{goal:.1f}×" if goal else "-"
        print(f"{what:<32} {statistics.median(times[what]):>6.3f} s {min(times[what]):>6.3f} s {ratio:>7.2f}× "
              f"{goal_text:>6}{verdict}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
