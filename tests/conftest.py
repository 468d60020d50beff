from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import yaml

from nnctl.cli.catalog import load_all

# Tests walk every command (`typer.main.get_command(app).commands`); `nnctl` itself imports a command's module
# only when that command runs (tests/cli/test_catalog.py covers that path, in fresh processes).
load_all()

ROOT = Path(__file__).resolve().parent.parent
DATASETS = ROOT / "datasets"
CONFIGS = ROOT / "configs"


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory: pytest.TempPathFactory):
    """Tests (and the CLI processes they start) never touch the user's data cache."""
    folder = tmp_path_factory.mktemp("nnctl-cache")
    previous = os.environ.get("NNCTL_CACHE_DIR")
    os.environ["NNCTL_CACHE_DIR"] = str(folder)
    yield folder
    if previous is None:
        del os.environ["NNCTL_CACHE_DIR"]
    else:
        os.environ["NNCTL_CACHE_DIR"] = previous


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture
def write_config(tmp_path: Path):
    """Write a config dict as YAML in tmp_path; data paths may point anywhere (absolute)."""

    def write(config: dict, name: str = "config.yaml") -> Path:
        path = tmp_path / name
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        return path

    return write


def iris_config(**overrides: object) -> dict:
    config = {
        "seed": 0,
        "data": {"train": str(DATASETS / "iris.csv"), "target": "species"},
        "model": {"layers": [{"units": 8, "activation": "tanh"}, {"activation": "softmax"}]},
        "loss": "cross_entropy",
        "optimizer": {"name": "adam", "learning_rate": 0.01},
        "training": {"epochs": 5, "batch_size": 16},
    }
    config.update(overrides)
    return config


def _same_history(a: list[dict], b: list[dict]) -> None:
    strip = [{k: v for k, v in row.items() if k != "seconds"} for row in a]
    assert strip == [{k: v for k, v in row.items() if k != "seconds"} for row in b]


RESUMABLE = {
    "model": {"layers": [{"units": 16, "activation": "relu", "dropout": 0.3},
                         {"units": 8, "activation": "tanh", "dropout": 0.1}, {}]},
    "optimizer": {"name": "adamw", "learning_rate": 0.01, "weight_decay": 0.01},
    "schedule": {"name": "cosine", "warmup_epochs": 2},
    "training": {"epochs": 6, "batch_size": 16, "checkpoint_every": 3, "clip_norm": 5.0,
                 "early_stopping": {"monitor": "val_loss", "patience": 50}},
}
