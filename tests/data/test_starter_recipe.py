"""The starter's network and training rules (nnctl.data.starter_recipe), pinned: they were chosen by
benchmarks/starter_results.py, and a change to any of them should be measured there again."""

import pytest

from nnctl.config.load import load_config
from nnctl.data.starter import starter_config
from nnctl.data.starter_recipe import Recipe, recipe

from conftest import DATASETS


@pytest.mark.parametrize(("n_rows", "split", "epochs", "patience"), [
    (150, 0.2, 500, 50),  # iris: 120 training rows, 4 steps an epoch; the 500 cap binds
    (569, 0.2, 500, 50),  # breast cancer: 455 rows, 15 steps an epoch (the step budget would allow 1,334)
    (1797, 0.2, 445, 44),  # digits: 1,438 rows, 45 steps an epoch; ~20,000 steps
    (100_000, 0.2, 20, 10),  # 80,000 rows, 2,500 steps an epoch: at least 20 epochs, patience at least 10
    (40, 0.0, 500, None),  # too few rows to hold any out: no early stopping
])
def test_epochs_and_patience_follow_the_rows(n_rows, split, epochs, patience):
    assert recipe(n_rows, split) == Recipe(units=256, init="glorot_uniform", learning_rate=0.001,
                                           weight_decay=0.001, batch_size=32, epochs=epochs, patience=patience)


def test_the_written_config_has_one_wide_glorot_layer_and_patient_early_stopping(tmp_path):
    path = tmp_path / "iris.yaml"
    path.write_text(starter_config(DATASETS / "iris.csv", "species", tmp_path))
    config = load_config(path)
    hidden, output = config.model.layers
    assert (hidden.units, hidden.activation, hidden.dropout) == (256, "relu", 0.0)
    assert output.units is None and output.activation == "softmax"
    assert config.model.init == "glorot_uniform"
    assert (config.optimizer.name, config.optimizer.learning_rate, config.optimizer.weight_decay) == \
        ("adam", 0.001, 0.001)
    assert (config.training.epochs, config.training.batch_size) == (500, 32)
    stop = config.training.early_stopping
    assert stop is not None and (stop.monitor, stop.patience, stop.restore_best) == ("val_loss", 50, True)


def test_each_choice_has_its_reason_beside_it():
    text = starter_config(DATASETS / "digits.csv", "digit")
    comments = {line.split("#")[0].strip(): line.split("#", 1)[1].strip() for line in text.splitlines()
                if "#" in line and line.split("#")[0].strip()}
    assert "better than He" in comments["init: glorot_uniform"]
    assert comments["layers:"] == "64 inputs (one per number or category, a few per date) -> 256 -> output"
    assert "one wide layer" in comments["- {units: 256, activation: relu}"]
    assert comments["epochs: 445"] == "passes over the rows: ~20,000 gradient steps (at most 500 passes)"
    assert comments["early_stopping:"] == "stop sooner once val_loss has not improved for 44 epochs (a tenth of them)"
    assert "L2" in comments["weight_decay: 0.001"]

