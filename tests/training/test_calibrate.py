"""`training.calibrate` and `training.threshold`: fitted on the validation rows after training, stored in the
model, and checked before training starts."""

from __future__ import annotations

import numpy as np
import pytest

from nnctl.config.load import load_config
from nnctl.data.load import load_dataset
from nnctl.engine.calibration import log_loss
from nnctl.errors import ConfigError
from nnctl.model.model import load_model
from nnctl.training.run import train

from conftest import CONFIGS, DATASETS, iris_config


def _validation(config, model):
    """The run's validation rows (the same split: the same seed) as logits Z, outputs A and class indices y."""
    dataset = load_dataset(config, np.random.default_rng(config.seed), lambda message: None)
    try:
        dataset.open()
        assert dataset.validation is not None
        (X, _, y, _), = list(dataset.validation.chunks())
        return model.network.logits(X), model.output(X), np.array(y)
    finally:
        dataset.close()


@pytest.mark.parametrize("name", ["breast_cancer", "digits"])
def test_calibration_never_worsens_the_validation_log_loss(tmp_path, name):
    plain = train(load_config(CONFIGS / f"{name}.yaml"), save=False)
    config = load_config(CONFIGS / f"{name}.yaml", ["training.calibrate=temperature"])
    result = train(config, output=tmp_path / "m.npz")
    model = result.model
    assert model.temperature is not None and model.temperature > 0
    # same seed, same weights: only the temperature differs
    assert model.network.params.tobytes() == plain.model.network.params.tobytes()
    assert result.final["validation"]["loss"] <= plain.final["validation"]["loss"] + 1e-6
    assert result.summary()["temperature"] == model.temperature
    Z, _, y = _validation(config, model)
    assert log_loss(Z, y, model.temperature, False) <= log_loss(Z, y, 1.0, False)
    # stored, loaded, applied
    loaded = load_model(tmp_path / "m.npz")
    assert loaded.temperature == model.temperature
    assert train(load_config(CONFIGS / f"{name}.yaml"), save=False).model.temperature is None


def test_an_overconfident_model_is_cooled(write_config):
    # a wide network, a large step, no validation-based stopping: it fits the training rows far too sharply
    config = iris_config(model={"layers": [{"units": 64, "activation": "relu"}, {"activation": "softmax"}]},
                         optimizer={"name": "adam", "learning_rate": 0.05},
                         training={"epochs": 300, "batch_size": 8, "calibrate": "temperature"})
    config["data"]["validation_split"] = 0.4
    cfg = load_config(write_config(config))
    result = train(cfg, save=False)
    model = result.model
    Z, _, y = _validation(cfg, model)
    assert model.temperature is not None and model.temperature > 1
    assert log_loss(Z, y, model.temperature, False) < log_loss(Z, y, 1.0, False)


def test_temperature_changes_probabilities_not_classes(write_config):
    for loss, activation in [("cross_entropy", "softmax"), ("binary_cross_entropy", "sigmoid")]:
        config = {"seed": 3, "data": {"train": str(DATASETS / "breast_cancer.csv"), "target": "diagnosis"},
                  "model": {"layers": [{"units": 8, "activation": "tanh"}, {"activation": activation}]},
                  "loss": loss, "training": {"epochs": 30, "calibrate": "temperature"}}
        model = train(load_config(write_config(config)), save=False).model
        assert model.temperature is not None and model.temperature != 1.0
        X, _, _, _ = next(iter(_rows(write_config(config))))
        calibrated = model.output(X)
        model.temperature = None
        raw = model.output(X)
        assert not np.allclose(calibrated, raw)
        assert (model.class_indices(calibrated) == model.class_indices(raw)).all()


def _rows(path):
    config = load_config(path)
    dataset = load_dataset(config, np.random.default_rng(0), lambda message: None)
    dataset.open()
    return list(dataset.train.chunks())


@pytest.mark.parametrize("criterion", ["f1", "youden", "balanced_accuracy"])
def test_the_threshold_maximises_the_criterion_on_the_validation_rows(tmp_path, criterion):
    config = load_config(CONFIGS / "breast_cancer.yaml", [f"training.threshold={criterion}",
                                                          "training.calibrate=temperature"])
    result = train(config, output=tmp_path / "m.npz")
    model = result.model
    assert model.threshold is not None and 0 < model.threshold < 1
    assert load_model(tmp_path / "m.npz").threshold == model.threshold
    _, A, y = _validation(config, model)
    p = model.target.probabilities(A)[:, 1]

    def value(t: float) -> float:
        predicted = p >= t
        tp, fp = np.sum(predicted & (y == 1)), np.sum(predicted & (y == 0))
        fn, tn = np.sum(~predicted & (y == 1)), np.sum(~predicted & (y == 0))
        if criterion == "f1":
            return 2 * tp / (2 * tp + fp + fn)
        return (tp / (tp + fn) + tn / (tn + fp)) / (1 if criterion == "youden" else 2) - (criterion == "youden")

    assert value(model.threshold) == pytest.approx(max(value(t) for t in np.unique(p) if 0 < t < 1), abs=1e-12)
    # the run's validation metrics are at the threshold
    assert result.final["validation"]["f1"] == pytest.approx(_f1(y, (p >= model.threshold).astype(int)), abs=1e-9)


def _f1(y: np.ndarray, predicted: np.ndarray) -> float:
    """The macro F1 nnctl reports, of two classes."""
    scores = []
    for c in (0, 1):
        tp = np.sum((predicted == c) & (y == c))
        scores.append(2 * tp / (np.sum(predicted == c) + np.sum(y == c)))
    return float(np.mean(scores))


@pytest.mark.parametrize("key, value", [("calibrate", "temperature"), ("threshold", "f1")])
def test_what_a_run_cannot_do_is_a_config_error_before_training(write_config, key, value):
    no_validation = {"data": {"train": str(DATASETS / "breast_cancer.csv"), "target": "diagnosis",
                              "validation_split": 0.0},
                     "model": {"layers": [{"units": 4}, {}]}, "training": {"epochs": 1, key: value}}
    with pytest.raises(ConfigError, match=rf"training\.{key} needs validation rows; set data\.validation_split"):
        train(load_config(write_config(no_validation)), save=False)
    regression = {"data": {"train": str(DATASETS / "auto_mpg.csv"), "target": "mpg"},
                  "model": {"layers": [{"units": 4}, {}]}, "training": {"epochs": 1, key: value}}
    with pytest.raises(ConfigError, match=rf"training\.{key}: .* regression; remove training\.{key}"):
        train(load_config(write_config(regression)), save=False)


def test_a_threshold_needs_two_classes(write_config):
    with pytest.raises(ConfigError, match=r"training\.threshold: youden needs two classes, and the data has 3 "
                                          r"classes \(setosa, versicolor, virginica\); remove training\.threshold"):
        train(load_config(write_config(iris_config(training={"epochs": 1, "threshold": "youden"}))), save=False)


def test_without_the_keys_the_model_file_is_as_before(write_config, tmp_path):
    path = write_config(iris_config(training={"epochs": 3}))
    model = train(load_config(path), output=tmp_path / "m.npz").model
    meta = model.meta(model.arrays())
    assert meta["format_version"] == 1 and "temperature" not in meta and "threshold" not in meta
    calibrated = train(load_config(path, ["training.calibrate=temperature"]), output=tmp_path / "c.npz").model
    assert calibrated.meta(calibrated.arrays())["format_version"] == 2
