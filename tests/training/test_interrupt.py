"""Ctrl-C (SIGINT) and `kill` (SIGTERM) during training: a resumable checkpoint, a hint, exit 130, and a
resume that ends with the same weights as a run that was never interrupted."""

import json
import signal
import subprocess
import sys

import numpy as np
import pytest
import yaml

from conftest import ROOT


@pytest.fixture(scope="module")
def slow_config(tmp_path_factory):
    """A run of ~0.1 s per epoch: slow enough to interrupt mid-way, quick enough for the suite."""
    folder = tmp_path_factory.mktemp("slow")
    rng = np.random.default_rng(0)
    X = rng.standard_normal((30_000, 12))
    y = np.array(["a", "b", "c"])[(X[:, 0] + X[:, 1] > 0).astype(int) + (X[:, 2] > 1)]
    header = ",".join([*(f"x{i}" for i in range(12)), "y"])
    lines = [header] + [",".join([*(f"{v:.4f}" for v in row), label]) for row, label in zip(X, y, strict=True)]
    (folder / "data.csv").write_text("\n".join(lines) + "\n")
    config = {"data": {"train": "data.csv", "target": "y"},
              "model": {"layers": [{"units": 64, "dropout": 0.2}, {"units": 32}, {}]},
              "optimizer": {"name": "adam", "learning_rate": 0.003},
              "training": {"epochs": 10, "batch_size": 32}}
    path = folder / "slow.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _weights(path) -> dict[str, bytes]:
    with np.load(path, allow_pickle=False) as npz:
        return {k: npz[k].tobytes() for k in npz.files if k.startswith("layers.")}


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_training_saves_a_checkpoint_and_resumes_exactly(slow_config, tmp_path, signum):
    straight = tmp_path / "straight.npz"
    subprocess.run([sys.executable, "-m", "nnctl", "train", str(slow_config), "-o", str(straight), "-q"],
                   cwd=ROOT, check=True, timeout=300)
    out = tmp_path / "run.npz"
    proc = subprocess.Popen([sys.executable, "-m", "nnctl", "train", str(slow_config), "-o", str(out),
                             "--log-format", "jsonl"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    assert proc.stdout is not None and proc.stderr is not None
    for line in proc.stdout:  # wait for two finished epochs, then interrupt the third mid-way
        if json.loads(line)["epoch"] == 2:
            proc.send_signal(signum)
            break
    stderr = proc.stderr.read()
    assert proc.wait(timeout=120) == 130, stderr
    ckpt = tmp_path / "run.ckpt.npz"
    assert f"checkpoint saved: {ckpt}" in stderr and "Traceback" not in stderr
    assert f"resume with: nnctl train {slow_config} --resume {ckpt} -o {out}" in stderr
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.ckpt.npz", "straight.npz"]  # no temp files
    with np.load(ckpt, allow_pickle=False) as npz:
        done = json.loads(str(npz["meta"][()]))["state"]["epochs_done"]
    assert 2 <= done < 10
    resumed = subprocess.run([sys.executable, "-m", "nnctl", "train", str(slow_config), "-o", str(out), "-q",
                              "--resume", str(ckpt)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert _weights(out) == _weights(straight)
    assert not ckpt.exists()
