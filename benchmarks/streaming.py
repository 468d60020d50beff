"""Streaming training on a CSV bigger than the memory the run may use (`make bench-streaming`).

Writes benchmarks/data/stream.csv once (16M rows of 20 random numbers and a 3-class label, about 3 GB), then
runs `nnctl train` with data.streaming=true for one epoch in a child process whose address space is limited
(RLIMIT_AS, default 1.5 GiB), and reports the file's size, the peak resident memory (VmHWM), the seconds of
pass 1, of the spill (pass 2) and of the epoch, and rows per second. Then what the in-memory path needs: its
peaks on two prefixes of the file, extrapolated to the whole file, and what it does under the same limit.

Options: --rows N (file size), --limit-mb MB, --skip-in-memory.
"""

from __future__ import annotations

import argparse
import io
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "benchmarks" / "data"
BLOCK = 100_000


def write_csv(path: Path, rows: int) -> None:
    """`rows` rows of 20 standard normal features (6 decimals) and a label 0/1/2 that depends on three of them."""
    tmp = path.with_suffix(".csv.tmp")
    started = time.perf_counter()
    with tmp.open("w") as out:
        out.write(",".join([*(f"x{i}" for i in range(20)), "label"]) + "\n")
        for k, start in enumerate(range(0, rows, BLOCK)):
            rng = np.random.default_rng(k)
            X = rng.standard_normal((min(BLOCK, rows - start), 20))
            label = (X[:, 0] + X[:, 1] > 0).astype(int) + (X[:, 2] + 0.3 * X[:, 3] > 1)
            text = io.StringIO()
            np.savetxt(text, np.column_stack([X, label]), fmt=["%.6f"] * 20 + ["%d"], delimiter=",")
            out.write(text.getvalue())
            if k % 20 == 19:
                print(f"  wrote {start + BLOCK:,} rows ({time.perf_counter() - started:.0f} s)", file=sys.stderr)
    tmp.rename(path)


def prefix(path: Path, rows: int) -> Path:
    """The first `rows` rows of the CSV, as a file of their own."""
    out = DATA / f"stream_prefix_{rows}.csv"
    if not out.exists():
        with path.open() as source, out.open("w") as target:
            for _ in range(rows + 1):
                target.write(source.readline())
    return out


def config(train: Path, streaming: bool) -> Path:
    path = DATA / f"stream_{'on' if streaming else 'off'}.yaml"
    path.write_text(yaml.safe_dump({
        "seed": 0,
        "data": {"train": str(train), "target": "label", "validation_split": 0.01, "cache": False,
                 "streaming": streaming},
        "model": {"layers": [{"units": 64}, {"units": 64}, {"activation": "softmax"}]},
        "loss": "cross_entropy", "optimizer": {"name": "adam", "learning_rate": 0.001},
        "training": {"epochs": 1, "batch_size": 256},
    }, sort_keys=False))
    return path


def run(cfg: Path, limit: int | None, *overrides: str) -> dict:
    """`nnctl train` through peak_memory.py, under an address-space limit; its summary, peak and model meta."""

    def limited() -> None:
        if limit is not None:
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    model = DATA / "stream_model.npz"
    model.unlink(missing_ok=True)
    sets = [arg for override in overrides for arg in ("--set", override)]
    started = time.perf_counter()
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "peak_memory.py"), "train", str(cfg), "-o",
                             str(model), "-q", "--json", *sets], capture_output=True, text=True, preexec_fn=limited)
    seconds = time.perf_counter() - started
    lines = result.stderr.strip().splitlines()
    report = {"exit": result.returncode, "seconds": seconds, "rss_kb": int(lines[-1].split()[0].split("=")[1]),
              "stderr": [line for line in lines[:-1] if line.strip()]}
    if result.returncode == 0:
        report["summary"] = json.loads(result.stdout)
        with np.load(model, allow_pickle=False) as npz:
            report["meta"] = json.loads(str(npz["meta"][()]))
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=16_000_000)
    parser.add_argument("--limit-mb", type=int, default=1536)
    parser.add_argument("--skip-in-memory", action="store_true")
    args = parser.parse_args()
    DATA.mkdir(parents=True, exist_ok=True)
    csv = DATA / "stream.csv"
    stamp = DATA / "stream.rows"
    if not csv.exists() or not stamp.exists() or stamp.read_text() != str(args.rows):
        print(f"writing {csv} ({args.rows:,} rows), once", file=sys.stderr)
        for old in DATA.glob("stream_prefix_*.csv"):
            old.unlink()
        write_csv(csv, args.rows)
        stamp.write_text(str(args.rows))
    size = csv.stat().st_size
    limit = args.limit_mb << 20
    print(f"{csv.relative_to(ROOT)}: {size / 1e9:.2f} GB, {args.rows:,} rows of 20 features + label; "
          f"limit RLIMIT_AS {args.limit_mb} MiB; 64-64 network, Adam, batch 256, 1 epoch, 1% validation")

    streamed = run(config(csv, True), limit)
    if streamed["exit"]:
        print(f"streaming FAILED (exit {streamed['exit']}): {' | '.join(streamed['stderr'][-3:])}")
        sys.exit(1)
    state, history, summary = streamed["meta"]["state"]["streaming"], streamed["meta"]["history"], streamed["summary"]
    epoch = history[0]["seconds"]
    train_rows = round(args.rows * 0.99)
    print(f"streaming: exit 0, peak RSS {streamed['rss_kb'] / 1024:.0f} MiB, whole run {streamed['seconds']:.1f} s")
    pass1, spill = state["pass1_seconds"], state["spill_seconds"]
    print(f"  pass 1 (fit, chunk by chunk)  {pass1:7.1f} s  {args.rows / pass1:>12,.0f} rows/s  "
          f"{size / pass1 / 1e6:.0f} MB/s of CSV")
    print(f"  pass 2 (transform + spill)    {spill:7.1f} s  {args.rows / spill:>12,.0f} rows/s  "
          f"spill {state['spill_bytes'] / 1e9:.2f} GB")
    print(f"  epoch (train + validation)    {epoch:7.1f} s  {train_rows / epoch:>12,.0f} rows/s")
    rest = streamed["seconds"] - pass1 - spill - epoch
    print(f"  the rest (start-up, final scores on all training and validation rows, save) {rest:.1f} s")
    print(f"  train_loss {summary['train_loss']:.4f}  val_accuracy {summary['val_accuracy']:.4f}  "
          f"val_f1 {summary['val_f1']:.4f}")
    if args.skip_in_memory:
        return
    points = []
    for n in (500_000, 1_000_000):
        measured = run(config(prefix(csv, n), False), None)
        points.append((n, measured["rss_kb"] * 1024))
    (n1, p1), (n2, p2) = points
    per_row = (p2 - p1) / (n2 - n1)
    estimate = p1 + per_row * (args.rows - n1)
    print(f"in memory: peak {p1 / 2**20:.0f} MiB at {n1:,} rows, {p2 / 2**20:.0f} MiB at {n2:,} rows: "
          f"{per_row:.0f} bytes per row, so about {estimate / 2**30:.1f} GiB for the whole file")
    whole = run(config(csv, False), limit)
    said = whole["stderr"][-1] if whole["stderr"] else ""
    print(f"in memory under the same limit: exit {whole['exit']} after {whole['seconds']:.1f} s, peak RSS "
          f"{whole['rss_kb'] / 1024:.0f} MiB: {said}")


if __name__ == "__main__":
    main()
