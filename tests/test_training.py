import numpy as np
import pytest

from nnctl.config import load_config
from nnctl.errors import ConfigError, TrainingError
from nnctl.model import load_model
from nnctl.training import Callback, train

from conftest import CONFIGS, iris_config


def test_same_seed_same_weights_byte_for_byte(write_config, tmp_path):
    path = write_config(iris_config(training={"epochs": 10, "batch_size": 8}))
    a = train(load_config(path), output=tmp_path / "a.npz").model
    b = train(load_config(path), output=tmp_path / "b.npz").model
    assert a.network.params.tobytes() == b.network.params.tobytes()
    for key, value in a.arrays().items():
        assert value.tobytes() == b.arrays()[key].tobytes(), key
    c = train(load_config(path, ["seed=1"]), save=False).model
    assert c.network.params.tobytes() != a.network.params.tobytes()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_dtype_follows_the_config(write_config, tmp_path, dtype):
    path = write_config(iris_config(training={"epochs": 2, "dtype": dtype}))
    train(load_config(path), output=tmp_path / "m.npz")
    loaded = load_model(tmp_path / "m.npz")
    assert all(W.dtype == np.dtype(dtype) for W in loaded.network.W)
    with np.load(tmp_path / "m.npz") as npz:
        assert npz["layers.0.W"].dtype == np.dtype(dtype)


def test_iris_reaches_093_validation_accuracy(tmp_path):
    result = train(load_config(CONFIGS / "iris.yaml"), output=tmp_path / "iris.npz")
    assert result.final["validation"]["accuracy"] >= 0.93
    assert result.model.history[-1]["val_accuracy"] == result.final["validation"]["accuracy"]
    assert result.model.history[-1]["train_loss"] < result.model.history[0]["train_loss"] / 5


def test_auto_mpg_beats_the_mean_by_a_wide_margin(tmp_path):
    result = train(load_config(CONFIGS / "auto_mpg.yaml"), output=tmp_path / "mpg.npz")
    assert result.final["validation"]["r2"] > 0.5
    assert result.final["validation"]["rmse"] < 4.5  # mpg; the target's standard deviation is 7.8


def test_binary_classification_with_one_sigmoid_unit(write_config, tmp_path):
    csv = tmp_path / "two.csv"
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 2))
    labels = np.where(X[:, 0] + X[:, 1] > 0, "yes", "no")
    csv.write_text("a,b,label\n" + "".join(f"{a},{b},{c}\n" for (a, b), c in zip(X, labels, strict=True)))
    config = {"data": {"train": str(csv), "target": "label"},
              "model": {"layers": [{"units": 4, "activation": "tanh"}, {}]},
              "loss": "binary_cross_entropy", "optimizer": {"learning_rate": 0.05},
              "training": {"epochs": 30}}
    result = train(load_config(write_config(config)), output=tmp_path / "b.npz")
    assert result.model.network.sizes[-1] == 1
    assert result.model.network.activation_names[-1] == "sigmoid"
    assert result.final["validation"]["accuracy"] > 0.9


def test_sgd_also_learns(write_config):
    config = iris_config(optimizer={"name": "sgd", "learning_rate": 0.1}, training={"epochs": 30})
    result = train(load_config(write_config(config)), save=False)
    assert result.final["validation"]["accuracy"] > 0.8


def test_zero_epochs_saves_the_initial_model(write_config, tmp_path):
    path = write_config(iris_config())
    result = train(load_config(path, ["training.epochs=0"]), output=tmp_path / "init.npz")
    assert result.model.history == []
    assert load_model(tmp_path / "init.npz").network.params.tobytes() == result.model.network.params.tobytes()


def test_callback_sees_every_epoch(write_config):
    seen: list[int] = []

    class Record(Callback):
        def on_epoch(self, stats):
            seen.append(stats.epoch)

    train(load_config(write_config(iris_config())), save=False, callback=Record())
    assert seen == [1, 2, 3, 4, 5]


def test_divergence_exits_cleanly_and_keeps_the_existing_model(write_config, tmp_path):
    from conftest import DATASETS

    out = tmp_path / "mpg.npz"
    out.write_bytes(b"previous model")
    config = {"data": {"train": str(DATASETS / "auto_mpg.csv"), "target": "mpg",
                       "features": ["weight", "horsepower"], "scale": "none"},
              "model": {"layers": [{"units": 8}, {}]}, "loss": "mse",
              "optimizer": {"name": "sgd", "learning_rate": 1000}, "training": {"epochs": 5}}
    with pytest.raises(TrainingError, match=r"diverged.*lower optimizer.learning_rate \(now 1000"):
        train(load_config(write_config(config)), output=out)
    assert out.read_bytes() == b"previous model"


def test_output_layer_must_fit_the_loss_and_data(write_config):
    config = iris_config(model={"layers": [{"units": 4}, {"units": 2, "activation": "softmax"}]})
    with pytest.raises(ConfigError, match=r"model.layers\[1\].units: the data needs 3 output units"):
        train(load_config(write_config(config)), save=False)
    config = iris_config(model={"layers": [{"units": 4}, {"activation": "sigmoid"}]})
    with pytest.raises(ConfigError, match="needs a softmax output layer"):
        train(load_config(write_config(config)), save=False)
