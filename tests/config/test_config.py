import json

import jsonschema
import pytest
import yaml

from nnctl.cli.app import FLAGS
from nnctl.config.load import apply_override, dotted, load_config, parse_key
from nnctl.config.schema import OptimizerConfig, ScheduleConfig, json_schema
from nnctl.engine.activations import ACTIVATIONS
from nnctl.errors import ConfigError

from conftest import DATASETS, iris_config


def _error(path, overrides=()) -> str:
    """The one-line message, as the CLI shows it (overrides are its --set flags)."""
    with pytest.raises(ConfigError) as info:
        load_config(path, overrides)
    message = info.value.render(FLAGS)
    assert "\n" not in message
    return message


def test_valid_config_fills_defaults(write_config):
    config = load_config(write_config(iris_config()))
    assert config.data.validation_split == 0.2
    assert config.data.scale == "standard"
    assert config.training.dtype == "float32"
    assert config.optimizer.hyperparameters() == {"learning_rate": 0.01, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8,
                                                  "weight_decay": 0.0}


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
    assert "valid: exp, identity, leaky_relu, relu, sigmoid, softmax, softplus, tanh" in message


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


def test_optimizer_keys_follow_the_chosen_optimizer(write_config):
    config = load_config(write_config(iris_config(optimizer={"name": "rmsprop", "momentum": 0.5})))
    assert config.optimizer.hyperparameters() == {"learning_rate": 0.001, "rho": 0.9, "eps": 1e-8, "momentum": 0.5,
                                                  "weight_decay": 0.0}
    assert load_config(write_config(iris_config(optimizer={"name": "adamw"}))).optimizer.weight_decay == 0.01
    message = _error(write_config(iris_config(optimizer={"name": "adam", "momentum": 0.9})))
    assert "optimizer.momentum: not used by optimizer 'adam' (its keys: learning_rate, beta1" in message
    message = _error(write_config(iris_config(optimizer={"name": "sgd", "nesterov": True})))
    assert "nesterov needs momentum > 0" in message


def test_schedule_and_early_stopping_keys(write_config):
    config = load_config(write_config(iris_config(schedule={"name": "step", "gamma": 0.5},
                                                  training={"early_stopping": {"monitor": "val_f1"}})))
    assert config.schedule.hyperparameters() == {"step_size": 10, "gamma": 0.5}
    assert config.training.early_stopping is not None and config.training.early_stopping.patience == 10
    assert "not used by schedule 'step'" in _error(write_config(iris_config(schedule={"name": "step",
                                                                                       "warmup_epochs": 2})))
    assert "did you mean 'cosine'?" in _error(write_config(iris_config(schedule={"name": "cosin"})))
    message = _error(write_config(iris_config(training={"early_stopping": {"monitor": "val_acuracy"}})))
    assert "did you mean 'val_accuracy'?" in message


def test_loss_is_a_name_or_a_mapping_with_its_parameters(write_config):
    assert load_config(write_config(iris_config(loss="mse"))).loss.hyperparameters() == {}
    huber = load_config(write_config(iris_config(loss="huber"))).loss
    assert huber.name == "huber" and huber.hyperparameters() == {"delta": 1.0}
    assert load_config(write_config(iris_config(loss={"name": "huber", "delta": 0.5}))).loss.delta == 0.5
    assert load_config(write_config(iris_config(loss=None))).loss is None
    path = write_config(iris_config(loss="hubr"))
    message = _error(path)
    assert message.startswith(f"{path}:") and "loss: unknown loss 'hubr'; did you mean 'huber'?" in message
    assert "loss.delta: not used by loss 'mse' (it takes no other keys)" in _error(
        write_config(iris_config(loss={"name": "mse", "delta": 1.0})))
    assert "loss.delta: input should be greater than 0" in _error(
        write_config(iris_config(loss={"name": "huber", "delta": 0})))
    assert "loss: expected a loss's name, or a mapping of its name and parameters, got int 3" in _error(
        write_config(iris_config(loss=3)))
    assert load_config(write_config(iris_config(loss="mse")), ["loss={name: huber, delta: 2}"]).loss.delta == 2
    config = iris_config()
    del config["loss"]
    assert load_config(write_config(config), ["loss.name=huber", "loss.delta=2"]).loss.delta == 2


def test_dropout_range_and_not_on_the_output(write_config):
    layers = [{"units": 8, "dropout": 1.0}, {}]
    assert "model.layers[0].dropout" in _error(write_config(iris_config(model={"layers": layers})))
    layers = [{"units": 8}, {"dropout": 0.5}]
    assert "the output layer cannot have dropout" in _error(write_config(iris_config(model={"layers": layers})))


def test_class_weight_forms(write_config):
    config = iris_config()
    config["data"]["class_weight"] = "balanced"
    assert load_config(write_config(config)).data.class_weight == "balanced"
    config["data"]["class_weight"] = "heavy"
    assert "data.class_weight" in _error(write_config(config))
    config["data"]["class_weight"] = {"setosa": -1}
    assert "data.class_weight" in _error(write_config(config))


# --- JSON Schema ----------------------------------------------------------------------------------


def _schema_errors(config: dict) -> list[str]:
    return [error.message for error in jsonschema.Draft202012Validator(json_schema()).iter_errors(config)]


def test_json_schema_accepts_every_shipped_config():
    from conftest import CONFIGS

    jsonschema.Draft202012Validator.check_schema(json_schema())
    paths = sorted(CONFIGS.glob("*.yaml"))
    assert paths
    for path in paths:
        assert _schema_errors(yaml.safe_load(path.read_text())) == [], path
    config = iris_config(schedule={"name": "plateau", "patience": 3}, training={"early_stopping": {"patience": 5}})
    config["data"]["class_weight"] = {"setosa": 2.0}
    assert _schema_errors(config) == []
    assert _schema_errors(iris_config(loss={"name": "huber", "delta": 0.5})) == []


def test_json_schema_rejects_misspelled_keys_and_unknown_names():
    config = iris_config()
    config["data"]["tagret"] = "species"
    assert _schema_errors(config) == ["Additional properties are not allowed ('tagret' was unexpected)"]
    config = iris_config(model={"layers": [{"units": 8, "activation": "rleu"}, {"activation": "softmax"}]})
    assert len(errors := _schema_errors(config)) == 1 and errors[0].startswith("'rleu' is not valid")
    for bad in ({"trainig": {}}, {"loss": "hinge"}, {"optimizer": {"name": "adma"}},
                {"schedule": {"name": "cosin"}}, {"optimizer": {"name": "sgd", "momentun": 0.9}},
                {"loss": {"name": "huber", "delt": 1}}, {"loss": {"name": "hubr"}}):
        assert _schema_errors(iris_config(**bad)), bad


def test_json_schema_describes_every_key_and_lists_registry_names():
    schema = json_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["title"] == "nnctl config" and schema["description"]
    sections = [schema, *schema["$defs"].values()]
    assert all(section["additionalProperties"] is False for section in sections)
    for section in sections:
        for key, field in section["properties"].items():
            assert field.get("description"), key
    defs = schema["$defs"]
    # keys that default to None (the chosen optimizer's or schedule's own default) are still offered
    assert set(defs["OptimizerConfig"]["properties"]) == set(OptimizerConfig.model_fields)
    assert set(defs["ScheduleConfig"]["properties"]) == set(ScheduleConfig.model_fields)
    assert defs["OptimizerConfig"]["properties"]["name"]["enum"] == ["adam", "adamw", "rmsprop", "sgd"]
    assert defs["ScheduleConfig"]["properties"]["name"]["enum"] == ["constant", "cosine", "exponential", "plateau",
                                                                    "step"]
    activation = defs["LayerConfig"]["properties"]["activation"]["anyOf"][0]
    assert activation["enum"] == sorted(ACTIVATIONS)
    assert "he_normal" in defs["ModelConfig"]["properties"]["init"]["enum"]
    assert schema["properties"]["loss"]["anyOf"][0]["enum"] == ["binary_cross_entropy", "cross_entropy", "huber",
                                                                 "mae", "mse", "poisson"]


def test_json_schema_is_json_and_deterministic():
    text = json.dumps(json_schema())
    assert json.loads(text) == json_schema()
    assert json.dumps(json_schema()) == text


# --- numbers as people write them (YAML 1.2), hostile files -------------------------------------------------

NUMBER_FORMS = [("1e-3", 0.001), ("3E-4", 0.0003), ("+1e3", 1000.0), (".5", 0.5), ("2.5e-1", 0.25),
                ("1_000", 1000)]


def _iris_yaml(tmp_path, learning_rate: str = "0.01", extra: str = "", name: str = "c.yaml"):
    path = tmp_path / name
    path.write_text(f"data:\n  train: {DATASETS / 'iris.csv'}\n  target: species\n"
                    "model:\n  layers: [{units: 8}, {activation: softmax}]\n"
                    f"optimizer:\n  name: sgd\n  learning_rate: {learning_rate}\n"
                    f"training:\n  epochs: 1_000\n  batch_size: 16\n{extra}")
    return path


@pytest.mark.parametrize(("text", "expected"), NUMBER_FORMS)
def test_numbers_in_every_form_in_a_config_file(tmp_path, text, expected):
    config = load_config(_iris_yaml(tmp_path, text))
    assert config.optimizer.learning_rate == expected and config.training.epochs == 1000


@pytest.mark.parametrize(("text", "expected"), NUMBER_FORMS)
def test_numbers_in_every_form_in_overrides(tmp_path, text, expected):
    path = _iris_yaml(tmp_path)
    config = load_config(path, [f"optimizer.learning_rate={text}", "optimizer.momentum=.5", "training.epochs=1_500",
                                "data.validation_split=2e-1"])
    assert config.optimizer.learning_rate == expected and config.optimizer.momentum == 0.5
    assert config.training.epochs == 1500 and config.data.validation_split == 0.2
    assert _error(path, ["optimizer.learning_rate=-2.5e-1"]) == (
        "--set optimizer.learning_rate: input should be greater than 0, got -0.25")


def test_number_errors_keep_their_file_line(tmp_path):
    path = _iris_yaml(tmp_path, "-2.5e-1")
    assert _error(path) == f"{path}:8: optimizer.learning_rate: input should be greater than 0, got -0.25"
    path = _iris_yaml(tmp_path, "3e-3", extra="  shuffle: 1e3\n")
    assert _error(path) == f"{path}:12: training.shuffle: expected true or false, got float 1000.0"
    path = _iris_yaml(tmp_path, "3e-3", extra="seed: 1e3\n")
    assert _error(path) == f"{path}:12: seed: expected an integer, got float 1000.0"


def test_quoted_numbers_and_yes_no_on_off_are_strings(tmp_path):
    path = _iris_yaml(tmp_path, '"1e-3"')
    assert _error(path) == f"{path}:8: optimizer.learning_rate: expected a number, got str '1e-3'"
    assert load_config(_iris_yaml(tmp_path), ["output=on", "data.target=yes"]).output == "on"
    assert load_config(_iris_yaml(tmp_path), ["output='1e-3'"]).output == "1e-3"
    assert load_config(_iris_yaml(tmp_path), ["training.shuffle=false"]).training.shuffle is False
    path = _iris_yaml(tmp_path, extra="  shuffle: yes\n")
    assert _error(path) == (f"{path}:12: training.shuffle: expected true or false, got str 'yes'; write true or "
                            "false (yes, no, on and off are strings in YAML 1.2)")
    assert _error(path, ["training.shuffle=off"]).startswith("--set training.shuffle: expected true or false, "
                                                             "got str 'off'; write true or false")


def test_hostile_files_and_overrides_are_refused_with_file_and_line(tmp_path):
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
        f"{c}: &{c} [{', '.join(['*' + p] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True)))
    assert _error(bomb) == (f"{bomb}:5: aliases expand to more than 10,000 values (limit 10,000); a config needs "
                            "no YAML anchors at this scale")
    deep = tmp_path / "deep.yaml"
    deep.write_text("data: " + "[" * 5000 + "]" * 5000 + "\n")
    assert _error(deep) == f"{deep}:1: nested more than 64 levels deep (limit 64); a config needs a few"
    huge = tmp_path / "huge.yaml"
    huge.write_text("# padding\n" * 30_000)
    assert _error(huge) == (f"{huge}: the config file is larger than 256 KiB (the limit); a config names its data "
                            "files, it does not hold data")
    path = _iris_yaml(tmp_path)
    assert _error(path, ["data.features=" + "[" * 100 + "]" * 100]) == (
        "--set data.features=" + "[" * 100 + "]" * 100 + ": nested more than 64 levels deep (limit 64); a config "
        "needs a few")
    assert _error(path, ["data.features=[a"]).startswith("--set data.features=[a: invalid YAML: expected ',' or ']'")
