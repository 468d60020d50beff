"""Wide data: the cost of loading, training and predicting grows linearly with the number of columns.

Usage: python benchmarks/wide.py [--columns 1000,10000,100000] [--rows 1000] [--categorical 0]
(or `make bench-wide`).

For each width a CSV of `rows` rows is written once under benchmarks/data/ (bag-of-words like: small counts,
mostly zero, a 3-class label `y` drawn from a few of them; `--categorical K` makes K more columns text). Each step
runs in a process of its own, as a user runs it: `nnctl train` of one epoch with one 64-unit hidden layer (load,
preprocess, train, save) and `nnctl predict` of every row of the file. The table prints the seconds and the
microseconds per column, which stay roughly constant when the cost is linear in the columns.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "benchmarks" / "data"
NNCTL = str(Path(sys.executable).parent / "nnctl")
CATEGORIES = ["red", "green", "blue", "none"]


def write_csv(path: Path, rows: int, columns: int, categorical: int = 0, seed: int = 0) -> Path:
    """A CSV of `rows` rows: `columns` numeric features x0.. (small counts, mostly zero), then `categorical` text
    features c0.. (a few colours), then the 3-class target y, which depends on the first features. Written once."""
    if path.exists():
        return path
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    header = [*(f"x{i}" for i in range(columns)), *(f"c{i}" for i in range(categorical)), "y"]
    with open(tmp, "w") as handle:
        handle.write(",".join(header) + "\n")
        for start in range(0, rows, 100):
            n = min(100, rows - start)
            X = rng.poisson(0.3, (n, columns))
            y = (X[:, : min(columns, 10)].sum(axis=1) % 3).astype(np.int64)
            text = np.array(CATEGORIES)[rng.integers(0, len(CATEGORIES), (n, categorical))]
            lines = [",".join([*map(str, X[i]), *text[i], str(y[i])]) for i in range(n)]
            handle.write("\n".join(lines) + "\n")
    tmp.replace(path)
    return path


def write_config(folder: Path, csv: Path, model: Path) -> Path:
    config = folder / "wide.yaml"
    config.write_text(f"""seed: 0
data:
  train: {csv}
  target: y
  validation_split: 0.2
  cache: false
model:
  layers:
    - {{units: 64, activation: relu}}
    - {{activation: softmax}}
loss: cross_entropy
training:
  epochs: 1
  batch_size: 64
  dtype: float32
output: {model}
""")
    return config


def timed(args: list[str]) -> float:
    """Wall seconds of one whole process; its output is discarded, a failure stops the benchmark."""
    started = time.perf_counter()
    done = subprocess.run(args, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode:
        sys.exit(f"{' '.join(args)} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--columns", default="1000,10000,100000")
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--categorical", type=int, default=0)
    args = parser.parse_args()
    widths = [int(w) for w in args.columns.split(",")]
    steps = ("train", "predict", "evaluate")
    print(f"{'columns':>8} {'rows':>6}" + "".join(f"  {step + ' s':>11} {'µs/col':>7}" for step in steps))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for width in widths:
            name = f"wide_{width}x{args.rows}" + (f"_c{args.categorical}" if args.categorical else "") + ".csv"
            csv = write_csv(DATA / name, args.rows, width, args.categorical)
            model = folder / f"wide_{width}.npz"
            config = write_config(folder, csv, model)
            seconds = [timed([NNCTL, "train", str(config), "--quiet"]),
                       timed([NNCTL, "predict", str(model), str(csv), "--output", str(folder / "out.csv")]),
                       timed([NNCTL, "evaluate", str(model), str(csv), "--json"])]
            print(f"{width:>8} {args.rows:>6}" + "".join(f"  {s:>11.2f} {s / width * 1e6:>7.1f}" for s in seconds),
                  flush=True)
    print("train: one process reading the CSV, fitting, one epoch of a 64-unit layer, saving the model; predict and "
          "evaluate: one process each over every row")


if __name__ == "__main__":
    main()
