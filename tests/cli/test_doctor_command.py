"""`nnctl doctor` through Typer's CliRunner: exit 0 with nothing found, 1 with findings, 2 on bad input; --json; and
the hint `train` prints when doctor would find something."""

from __future__ import annotations

import json

import yaml
from typer.testing import CliRunner

from nnctl.cli import app
from nnctl.cli.doctor import is_model_file

from conftest import CONFIGS, iris_config

runner = CliRunner()
TOO_LOW = iris_config(optimizer={"name": "adam", "learning_rate": 1e-7})


def test_a_healthy_config_exits_0():
    result = runner.invoke(app, ["doctor", str(CONFIGS / "wine.yaml"), "--set", "training.epochs=60"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "no problems found"


def test_findings_exit_1_with_code_message_and_fix(write_config):
    result = runner.invoke(app, ["doctor", str(write_config(TOO_LOW))])
    assert result.exit_code == 1, result.output
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith("learning_rate_too_low: the train loss fell by ")
    assert "raise optimizer.learning_rate (now 1e-07)" in lines[0]
    assert any(line.startswith("underfitting: ") for line in lines)


def test_json_lists_the_diagnoses(write_config):
    result = runner.invoke(app, ["doctor", str(write_config(TOO_LOW)), "--json"])
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert [d["code"] for d in document["diagnoses"]] == ["learning_rate_too_low", "underfitting"]
    assert set(document["diagnoses"][0]) == {"code", "message", "evidence"}
    assert document["diagnoses"][0]["evidence"]["learning_rate"] == 1e-7


def test_json_of_a_healthy_model_is_empty_and_exit_0(tmp_path):
    model = tmp_path / "wine.npz"
    assert runner.invoke(app, ["train", str(CONFIGS / "wine.yaml"), "-o", str(model), "-q"]).exit_code == 0
    result = runner.invoke(app, ["doctor", str(model), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"diagnoses": []}


def test_train_hints_at_doctor_on_stderr_only(write_config, tmp_path):
    model = tmp_path / "low.npz"
    result = runner.invoke(app, ["train", str(write_config(TOO_LOW)), "-o", str(model), "--json"])
    assert result.exit_code == 0, result.output
    json.loads(result.stdout)  # stdout stays one JSON summary
    assert (f"doctor: 2 findings (learning_rate_too_low, underfitting); run: nnctl doctor {model}"
            in result.stderr.replace("\n", ""))
    quiet = runner.invoke(app, ["train", str(write_config(TOO_LOW)), "-o", str(model), "-q"])
    assert quiet.exit_code == 0 and "doctor" not in quiet.stderr
    doctored = runner.invoke(app, ["doctor", str(model)])
    assert doctored.exit_code == 1 and "learning_rate_too_low" in doctored.stdout


def test_bad_input_exits_2(tmp_path, write_config):
    missing = runner.invoke(app, ["doctor", str(tmp_path / "nope.npz")])
    assert missing.exit_code == 2 and "model file not found" in missing.stderr
    model = tmp_path / "m.npz"
    runner.invoke(app, ["train", str(write_config(iris_config())), "-o", str(model), "-q"])
    with_set = runner.invoke(app, ["doctor", str(model), "--set", "training.epochs=3"])
    assert with_set.exit_code == 2 and "--set applies to a CONFIG" in with_set.stderr
    bad = write_config({**iris_config(), "training": {"epochs": -1}}, "bad.yaml")
    assert runner.invoke(app, ["doctor", str(bad)]).exit_code == 2


def test_a_model_is_told_from_a_config_by_name_or_first_bytes(tmp_path):
    renamed = tmp_path / "model.bin"
    renamed.write_bytes(b"PK\x03\x04rest")
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(iris_config()))
    assert is_model_file(renamed) and is_model_file(tmp_path / "absent.npz")
    assert not is_model_file(config) and not is_model_file(tmp_path / "absent.yaml")


def test_training_a_config_shows_its_warnings_on_stderr():
    result = runner.invoke(app, ["doctor", str(CONFIGS / "auto_mpg.yaml"), "--set", "training.epochs=3"])
    assert "warning: " in result.stderr and "dropped 8 of 406 rows" in result.stderr
    assert "warning" not in result.stdout
