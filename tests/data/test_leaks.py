"""Leakage warnings: a feature that is a near-perfect copy of the target is named when the data loads (train and
check), and honest features are not."""

from __future__ import annotations

import numpy as np
import pandas as pd

from nnctl.data.rules import leaks

from conftest import DATASETS


def test_a_column_that_encodes_the_class_is_named():
    frame = pd.read_csv(DATASETS / "iris.csv")
    frame["code"] = frame.species.map({"setosa": 0, "versicolor": 1, "virginica": 2}) * 10 + 3
    frame["label"] = frame.species.str.upper()
    found = leaks(frame, ["sepal_length", "petal_width", "code", "label"], "species", "classification")
    assert len(found) == 2
    assert found[0].startswith("column 'code' tells the class of every row by itself (3 values")
    assert "column 'label'" in found[1] and "is it computed from the target?" in found[1]


def test_a_numeric_column_whose_class_ranges_do_not_overlap_is_named():
    frame = pd.read_csv(DATASETS / "iris.csv")
    rng = np.random.default_rng(0)
    frame["score"] = frame.species.map({"setosa": 0.0, "versicolor": 10.0, "virginica": 20.0}) + rng.random(150)
    assert leaks(frame, ["score"], "species", "classification") == [
        "column 'score' separates every class of 'species' by its value ranges alone; is it computed from the "
        "target? A leaked column scores well in validation and fails on new data"]


def test_a_regression_copy_is_named_and_honest_data_is_not():
    frame = pd.read_csv(DATASETS / "auto_mpg.csv")
    frame["km_per_litre"] = frame.mpg * 0.425144
    found = leaks(frame, ["weight", "km_per_litre"], "mpg", "regression")
    assert len(found) == 1 and found[0].startswith("column 'km_per_litre' follows the target 'mpg' almost exactly")
    for name, target, task in (("iris", "species", "classification"), ("wine", "cultivar", "classification"),
                               ("breast_cancer", "diagnosis", "classification"), ("diabetes", "progression",
                                                                                   "regression")):
        data = pd.read_csv(DATASETS / f"{name}.csv")
        assert leaks(data, [c for c in data.columns if c != target], target, task) == []


def test_check_and_train_warn_about_a_leak(tmp_path):
    import subprocess
    import sys

    frame = pd.read_csv(DATASETS / "iris.csv").assign(answer=lambda f: f.species.str[:3])
    frame.to_csv(tmp_path / "leaky.csv", index=False)
    (tmp_path / "c.yaml").write_text("data: {train: leaky.csv, target: species}\n"
                                     "model: {layers: [{units: 4}, {activation: softmax}]}\n")
    result = subprocess.run([sys.executable, "-m", "nnctl", "check", str(tmp_path / "c.yaml")], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "warning: " in result.stderr and "column 'answer' tells the class of every row by itself" in result.stderr
