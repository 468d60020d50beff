"""Each loss trains a shipped dataset end to end; the loss a config leaves out follows from its output layer and
target; a loss's parameters reach the model file; the configs a loss cannot train are refused before training."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

from nnctl.config.load import load_config
from nnctl.data.load import load_dataset
from nnctl.engine.losses import build_loss
from nnctl.errors import ConfigError, DataError
from nnctl.model.model import load_model
from nnctl.training.run import train

from conftest import CONFIGS, DATASETS, iris_config

MPG = {"train": str(DATASETS / "auto_mpg.csv"), "target": "mpg", "features": ["weight", "horsepower", "model_year"]}


def _loss(write_config, config: dict, overrides: tuple[str, ...] = ()) -> str:
    """The loss a config's data load resolves to."""
    return load_dataset(load_config(write_config(config), overrides), np.random.default_rng(0), lambda _: None).loss


@pytest.mark.parametrize("loss", ["mae", {"name": "huber", "delta": 0.5}])
def test_robust_losses_train_auto_mpg(write_config, loss):
    config = {"data": {**MPG, "target_scale": "standard"}, "model": {"layers": [{"units": 16}, {}]}, "loss": loss,
              "optimizer": {"name": "adam", "learning_rate": 0.01}, "training": {"epochs": 40}}
    result = train(load_config(write_config(config)), save=False)
    assert result.final["validation"]["r2"] > 0.75
    assert result.model.network.activation_names[-1] == "identity"


def test_huber_delta_reaches_the_model_file_and_its_scores(write_config, tmp_path):
    config = {"data": MPG, "model": {"layers": [{"units": 8}, {}]}, "loss": {"name": "huber", "delta": 0.5},
              "training": {"epochs": 3}}
    out = tmp_path / "huber.npz"
    result = train(load_config(write_config(config)), output=out)
    model = load_model(out)
    assert model.loss == "huber" and model.loss_options == {"delta": 0.5}
    assert model.config["loss"] == {"name": "huber", "delta": 0.5}
    assert model.loss_function.delta == 0.5
    # `loss: huber` alone is delta 1.0, written out in the resolved config
    plain = train(load_config(write_config({**config, "loss": "huber"})), save=False).model
    assert plain.loss_options == {"delta": 1.0} and plain.config["loss"] == {"name": "huber", "delta": 1.0}
    data = load_dataset(load_config(write_config(config)), np.random.default_rng(0), lambda _: None)
    X, Y, _, _ = next(data.train.chunks())
    A = model.output(X)
    expected = build_loss("huber", delta=0.5).value(A, Y, np.empty_like(A))
    assert model.score(data.train.chunks())["loss"] == pytest.approx(expected)
    assert result.final["train"]["loss"] == pytest.approx(expected, rel=1e-6)


def test_a_loss_without_parameters_keeps_the_model_file_as_it_was(write_config, tmp_path):
    out = tmp_path / "iris.npz"
    train(load_config(write_config(iris_config())), output=out)
    with zipfile.ZipFile(out) as archive, archive.open("meta.npy") as member:
        meta = json.loads(str(np.lib.format.read_array(member)[()]))
    assert "loss_options" not in meta and meta["config"]["loss"] == "cross_entropy"


def test_the_output_layer_decides_a_loss_left_out(write_config, tmp_path):
    """softmax: classes (integers too); sigmoid: two classes from 0/1 or text; otherwise mse for numbers."""
    layers = {"layers": [{"units": 4}, {"activation": "sigmoid"}]}
    cancer = {"train": str(DATASETS / "breast_cancer.csv"), "target": "diagnosis"}
    assert _loss(write_config, {"data": cancer, "model": layers}) == "binary_cross_entropy"
    # numbers a sigmoid can reach but that are no 0/1 labels: a regression through the sigmoid
    fractions = tmp_path / "fractions.csv"
    fractions.write_text("x,share\n" + "".join(f"{i},{i / 10}\n" for i in range(10)))
    assert _loss(write_config, {"data": {"train": str(fractions), "target": "share"}, "model": layers}) == "mse"
    digits = {"train": str(DATASETS / "digits.csv"), "target": "digit"}
    softmax = {"layers": [{"units": 4}, {"activation": "softmax"}]}
    assert _loss(write_config, {"data": digits, "model": softmax}) == "cross_entropy"
    assert _loss(write_config, {"data": digits, "model": {"layers": [{"units": 4}, {}]}}) == "mse"  # as before
    streamed = ("data.streaming=true", "data.chunk_rows=500", "data.shuffle_buffer=500")
    assert _loss(write_config, {"data": digits, "model": softmax}, streamed) == "cross_entropy"
    with pytest.raises(DataError, match=r"needs exactly 2 classes, target 'species' has 3; use loss: cross_entropy "
                                        "with a softmax output"):
        _loss(write_config, iris_config(loss=None, model=layers))


@pytest.mark.parametrize("streaming", [False, True])
def test_classes_must_be_labels_and_a_regression_cannot_end_in_softmax(write_config, streaming):
    overrides = ("data.streaming=true", "data.chunk_rows=100", "data.shuffle_buffer=100") if streaming else ()
    softmax = {"layers": [{"units": 4}, {"activation": "softmax"}]}
    with pytest.raises(ConfigError, match=r"model.layers\[1\].activation: softmax outputs class probabilities, but "
                                          r"target 'mpg' holds numbers that are not class labels \(\d+\.5 on line "):
        _loss(write_config, {"data": MPG, "model": softmax}, overrides)
    sigmoid = {"layers": [{"units": 4}, {"activation": "sigmoid"}]}
    with pytest.raises(ConfigError, match="loss: binary_cross_entropy classifies, but target 'mpg'"):
        _loss(write_config, {"data": MPG, "model": sigmoid, "loss": "binary_cross_entropy"}, overrides)
    with pytest.raises(ConfigError, match=r"model.layers\[1\].activation: a softmax output is for classes .* loss "
                                          "'huber' is a regression; use activation: identity"):
        train(load_config(write_config({"data": MPG, "model": softmax, "loss": "huber"}), overrides), save=False)


def test_poisson_needs_counts_on_their_own_scale(write_config, tmp_path):
    counts = {"train": str(DATASETS / "doctor_visits.csv"), "target": "mdvis"}
    config = {"data": {**counts, "target_scale": "standard"}, "model": {"layers": [{}]}, "loss": "poisson"}
    with pytest.raises(ConfigError, match=r"data\.target_scale: loss poisson predicts counts on their own scale"):
        load_config(write_config(config))
    negative = tmp_path / "negative.csv"
    negative.write_text("x,y\n1,2\n2,-1\n3,4\n")
    with pytest.raises(DataError, match=r"target 'y' line 3: -1 is negative; loss: poisson predicts counts"):
        _loss(write_config, {"data": {"train": str(negative), "target": "y"}, "model": {"layers": [{}]},
                             "loss": "poisson"})
    valid = tmp_path / "valid.csv"
    valid.write_text("x,y\n1,2\n2,0\n3,4\n")
    with pytest.raises(DataError, match=r"negative.csv: target 'y' line 3"):
        _loss(write_config, {"data": {"train": str(valid), "target": "y", "validation": str(negative)},
                             "model": {"layers": [{}]}, "loss": "poisson"})
    with pytest.raises(ConfigError, match=r"needs an exp or softplus output layer, got 'relu'"):
        train(load_config(write_config({"data": counts, "model": {"layers": [{"activation": "relu"}]},
                                        "loss": "poisson"})), save=False)


def test_the_shipped_count_config_predicts_rates(tmp_path):
    """configs/doctor_visits.yaml: softplus rates, all positive, and the resolved loss is poisson."""
    config = load_config(CONFIGS / "doctor_visits.yaml", ["training.epochs=3"])
    model = train(config, save=False).model
    assert model.loss == "poisson" and model.loss_options == {} and model.network.activation_names[-1] == "softplus"
    X = next(load_dataset(config, np.random.default_rng(0), lambda _: None).train.chunks())[0]
    assert (model.target.values(model.output(X)) > 0).all()
