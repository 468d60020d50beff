import pytest

from nnctl.config import apply_override, dotted, load_config, parse_key
from nnctl.errors import ConfigError

from conftest import iris_config


def _error(path, overrides=()) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(path, overrides)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_valid_config_fills_defaults(write_config):
    config = load_config(write_config(iris_config()))
    assert config.data.validation_split == 0.2
    assert config.data.scale == "standard"
    assert config.training.dtype == "float32"
    assert config.optimizer.hyperparameters() == {"learning_rate": 0.01, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8}


def test_shipped_configs_are_valid():
    from conftest import CONFIGS

    for path in CONFIGS.glob("*.yaml"):
        assert load_config(path).data.target


def test_unknown_activation_names_file_line_key_and_closest(tmp_path):
    path = tmp_path / "x.yaml"
    path.write_text(
        "data:\n  train: a.csv\n  target: y\nmodel:\n  layers:\n"
        "    - {units: 4, activation: relu}\n    - {units: 4, activation: rleu}\n    - {activation: softmax}\n"
    )
    message = _error(path)
    assert message.startswith(f"{path}:7: model.layers[1].activation: unknown activation 'rleu'")
    assert "did you mean 'relu'?" in message
    assert "valid: identity, leaky_relu, relu, sigmoid, softmax, tanh" in message


def test_unknown_key_suggests_the_valid_one(write_config):
    config = iris_config()
    config["training"]["epoch"] = 3
    message = _error(write_config(config))
    assert "training.epoch: unknown key; did you mean 'epochs'?" in message


def test_missing_required_key(write_config):
    config = iris_config()
    del config["data"]["target"]
    assert "data.target: missing required key" in _error(write_config(config))


def test_wrong_type(write_config):
    config = iris_config()
    config["training"]["epochs"] = "many"
    assert "training.epochs: expected an integer, got str 'many'" in _error(write_config(config))


def test_out_of_range_value(write_config):
    config = iris_config()
    config["training"]["batch_size"] = 0
    assert "training.batch_size: input should be greater than or equal to 1" in _error(write_config(config))


def test_unknown_optimizer_and_foreign_key(write_config):
    assert "did you mean 'adam'?" in _error(write_config(iris_config(optimizer={"name": "adma"})))
    message = _error(write_config(iris_config(optimizer={"name": "sgd", "beta1": 0.9})))
    assert "optimizer.beta1: not used by optimizer 'sgd'" in message


def test_hidden_layer_needs_units(write_config):
    config = iris_config(model={"layers": [{"activation": "relu"}, {"activation": "softmax"}]})
    assert "hidden layer 0 needs 'units'" in _error(write_config(config))


def test_invalid_yaml_and_missing_file(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("data:\n  train: [a.csv\n")
    assert _error(path).startswith(f"{path}:")
    assert "config file not found" in _error(tmp_path / "nope.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    assert "expected a mapping" in _error(tmp_path / "list.yaml")


def test_overrides_are_typed_and_validated(write_config):
    path = write_config(iris_config())
    config = load_config(path, ["training.epochs=7", "model.layers[0].units=3", "optimizer.name=sgd",
                                "optimizer.learning_rate=0.5", "data.scale=minmax"])
    assert config.training.epochs == 7
    assert config.model.layers[0].units == 3
    assert config.optimizer.name == "sgd" and config.optimizer.learning_rate == 0.5
    assert config.data.scale == "minmax"
    assert _error(path, ["training.epochs=x"]).startswith("--set training.epochs: expected an integer")
    assert "does not exist" in _error(path, ["model.layers[5].units=3"])
    assert "expected KEY=VALUE" in _error(path, ["training.epochs"])


def test_key_parsing():
    assert parse_key("model.layers[1].units") == ["model", "layers", 1, "units"]
    assert dotted(["model", "layers", 1, "units"]) == "model.layers[1].units"
    for bad in ("", "[0]", "a..b", "a.[0]x"):
        with pytest.raises(ValueError):
            parse_key(bad)
    raw: dict = {}
    apply_override(raw, "optimizer.beta1=0.8")
    assert raw == {"optimizer": {"beta1": 0.8}}


def test_paths_are_relative_to_the_config_file(tmp_path):
    (tmp_path / "sub").mkdir()
    path = tmp_path / "sub" / "c.yaml"
    path.write_text("data: {train: ../d.csv, target: y}\nmodel: {layers: [{units: 1}]}\n")
    assert load_config(path).resolve("../d.csv") == tmp_path / "d.csv"
