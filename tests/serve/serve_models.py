"""Small trained models for the serve tests: iris (three classes), a calibrated two-class model with a stored
threshold, and a regression with a categorical feature; each trains in well under a second."""

from __future__ import annotations

from pathlib import Path

import yaml

from nnctl.config.load import load_config
from nnctl.model.model import Model
from nnctl.training.run import train

from conftest import DATASETS, iris_config


def trained(folder: Path, config: dict, name: str) -> Model:
    (folder / f"{name}.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return train(load_config(folder / f"{name}.yaml"), save=False).model


def iris(folder: Path, epochs: int = 30, seed: int = 0) -> Model:
    return trained(folder, iris_config(seed=seed, training={"epochs": epochs, "batch_size": 16}), f"iris{seed}")


def cancer(folder: Path) -> Model:
    """Two classes, with training.calibrate and training.threshold: predictions depend on both."""
    config = {"seed": 0, "data": {"train": str(DATASETS / "breast_cancer.csv"), "target": "diagnosis",
                                  "validation_split": 0.25},
              "model": {"layers": [{"units": 8, "activation": "relu"}, {"activation": "softmax"}]},
              "loss": "cross_entropy", "optimizer": {"name": "adam", "learning_rate": 0.01},
              "training": {"epochs": 10, "batch_size": 32, "calibrate": "temperature", "threshold": "f1"}}
    return trained(folder, config, "cancer")


def mpg(folder: Path) -> Model:
    """A regression with a categorical feature (origin) and missing values (horsepower)."""
    config = {"seed": 0, "data": {"train": str(DATASETS / "auto_mpg.csv"), "target": "mpg",
                                  "features": ["cylinders", "horsepower", "weight", "model_year", "origin"],
                                  "target_scale": "standard"},
              "model": {"layers": [{"units": 8, "activation": "relu"}, {"activation": "identity"}]},
              "loss": "mse", "optimizer": {"name": "adam", "learning_rate": 0.01},
              "training": {"epochs": 10, "batch_size": 32}}
    return trained(folder, config, "mpg")
