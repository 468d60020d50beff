"""Fault injection: each diagnosis fires on a run with its fault, and none fires on a shipped config.

Every fault is a tiny run (iris or wine, a few epochs, well under 0.2 s each); the shipped configs train with
their own settings (all eight: about 3 s).
"""

from __future__ import annotations

import json

import pandas as pd
import pytest

from nnctl.config.load import load_config
from nnctl.model.model import load_model
from nnctl.training.doctor import CODES, diagnose, examine_config, examine_model
from nnctl.training.run import train

from conftest import CONFIGS, DATASETS, iris_config

IRIS = pd.read_csv(DATASETS / "iris.csv")


def _csv(tmp_path, name: str, frame: pd.DataFrame) -> str:
    path = tmp_path / f"{name}.csv"
    frame.to_csv(path, index=False)
    return str(path)


def _relu(*units: int) -> dict:
    return {"layers": [*({"units": u, "activation": "relu"} for u in units), {}]}


def _faults(tmp_path) -> dict[str, tuple[dict, set[str]]]:
    """code -> (a config injecting its fault, the codes allowed to fire with it: the fault's own consequences)."""
    big = IRIS.copy()
    big["sepal_length"] *= 1e4  # one feature 10^4 times the others, not scaled
    constant = IRIS.assign(site=7)
    target = IRIS.drop(columns=["species"]).assign(petal_width=IRIS["petal_width"] * 1e4)
    return {
        "unscaled_inputs": (iris_config(data={"train": _csv(tmp_path, "big", big), "target": "species",
                                              "scale": "none"}, model=_relu(8)),
                            {"dead_units", "learning_rate_too_high", "exploding_gradients", "underfitting"}),
        "constant_feature": (iris_config(data={"train": _csv(tmp_path, "constant", constant), "target": "species"}),
                             set()),
        "dead_units": (iris_config(model=_relu(16, 16), optimizer={"name": "sgd", "learning_rate": 3.0},
                                   training={"epochs": 10, "batch_size": 16}),
                       {"exploding_gradients", "underfitting"}),
        "saturated_units": (iris_config(model={"layers": [{"units": 16, "activation": "tanh"}, {}]},
                                        data={"train": str(DATASETS / "iris.csv"), "target": "species",
                                              "scale": "none"},
                                        optimizer={"name": "adam", "learning_rate": 0.5}),
                            set()),
        "learning_rate_too_low": (iris_config(optimizer={"name": "adam", "learning_rate": 1e-7}), {"underfitting"}),
        "learning_rate_too_high": (iris_config(model=_relu(16), optimizer={"name": "adam", "learning_rate": 3.0},
                                               training={"epochs": 10, "batch_size": 16}), set()),
        "exploding_gradients": (iris_config(data={"train": _csv(tmp_path, "target", target), "target": "petal_width",
                                                  "target_scale": "none"}, loss="mse",
                                            model={"layers": [{"units": 8, "activation": "tanh"}, {}]},
                                            optimizer={"name": "sgd", "learning_rate": 1e-6}),
                                {"underfitting"}),
        "vanishing_gradients": (iris_config(model={"layers": [{"units": 16, "activation": "sigmoid"}] * 8 + [{}]}),
                                {"underfitting"}),
        "overfitting": (iris_config(data={"train": str(DATASETS / "wine.csv"), "target": "cultivar",
                                          "validation_split": 0.5}, model=_relu(64),
                                    optimizer={"name": "adam", "learning_rate": 0.05},
                                    training={"epochs": 60, "batch_size": 8}), set()),
        "underfitting": (iris_config(optimizer={"name": "adamw", "learning_rate": 0.01, "weight_decay": 50.0}),
                         set()),
    }


def test_every_code_has_a_fault():
    assert set(CODES) == {"unscaled_inputs", "constant_feature", "dead_units", "saturated_units",
                          "learning_rate_too_low", "learning_rate_too_high", "exploding_gradients",
                          "vanishing_gradients", "overfitting", "underfitting"}


@pytest.mark.parametrize("code", CODES)
def test_each_diagnosis_fires_on_its_fault(code, tmp_path, write_config):
    config, allowed = _faults(tmp_path)[code]
    found = diagnose(train(load_config(write_config(config)), save=False).model)
    codes = {d.code for d in found}
    assert code in codes, [d.message for d in found]
    assert codes - {code} <= allowed, [d.message for d in found]
    for diagnosis in found:
        json.dumps(diagnosis.to_json())  # evidence is plain JSON
        assert diagnosis.message and diagnosis.evidence


@pytest.mark.parametrize("name", ["iris", "wine", "digits", "breast_cancer", "auto_mpg", "diabetes", "doctor_visits",
                                  "seattle_weather"])
def test_no_diagnosis_on_a_shipped_config(name):
    model = train(load_config(CONFIGS / f"{name}.yaml"), save=False).model
    assert model.diagnostics is not None and len(model.diagnostics.epochs) == len(model.history)
    assert [d.message for d in diagnose(model)] == []


def test_the_messages_name_the_evidence_and_the_config_key(tmp_path, write_config):
    config, _ = _faults(tmp_path)["learning_rate_too_low"]
    found = {d.code: d for d in diagnose(train(load_config(write_config(config)), save=False).model)}
    low = found["learning_rate_too_low"]
    assert "optimizer.learning_rate (now 1e-07)" in low.message
    assert low.evidence["learning_rate"] == 1e-7 and low.evidence["largest_update_ratio"] < 1e-4


def test_diagnostics_travel_in_the_model_file(tmp_path, write_config):
    config, _ = _faults(tmp_path)["constant_feature"]
    out = tmp_path / "m.npz"
    trained = train(load_config(write_config(config)), output=out).model
    loaded = load_model(out)
    assert loaded.diagnostics is not None and trained.diagnostics is not None
    assert len(loaded.diagnostics.epochs) == len(loaded.history) == 5
    assert loaded.diagnostics.data is not None and loaded.diagnostics.data.constant == {"site": 7.0}
    assert [d.code for d in examine_model(out).diagnoses] == ["constant_feature"]


def test_a_run_without_diagnostics_records_none_and_keeps_the_history_rules(tmp_path, write_config):
    config, _ = _faults(tmp_path)["overfitting"]
    out = tmp_path / "m.npz"
    train(load_config(write_config(config), ["training.diagnostics=false"]), output=out)
    examination = examine_model(out)
    assert load_model(out).diagnostics is None and not examination.recorded
    assert [d.code for d in examination.diagnoses] == ["overfitting"]  # the history's rules still run


def test_a_resumed_run_continues_the_record(tmp_path, write_config):
    path = write_config(iris_config(training={"epochs": 6, "batch_size": 16}))
    train(load_config(path, ["training.epochs=3"]), output=tmp_path / "a.npz")
    resumed = train(load_config(path), output=tmp_path / "b.npz", resume=tmp_path / "a.npz").model
    whole = train(load_config(path), save=False).model
    assert resumed.diagnostics is not None and whole.diagnostics is not None
    assert [e.epoch for e in resumed.diagnostics.epochs] == [1, 2, 3, 4, 5, 6]
    assert resumed.diagnostics.epochs[-1].grad_norm == pytest.approx(whole.diagnostics.epochs[-1].grad_norm)


def test_a_diverging_config_is_a_learning_rate_too_high():
    config = load_config(CONFIGS / "auto_mpg.yaml", ["optimizer.name=sgd", "optimizer.learning_rate=10",
                                                     "training.epochs=3"])
    examination = examine_config(config)
    assert [d.code for d in examination.diagnoses] == ["learning_rate_too_high"]
    assert "diverged" in examination.diagnoses[0].message


def test_a_dead_network_underfits_and_is_not_called_overfitting():
    """The shipped iris config, its ReLU layers killed by a rate of 2: its val_loss drifts up from epoch 5 while
    the train loss creeps down, which alone would read as overfitting; a model no better than a constant is not
    overfitting, and its underfitting names the dead units as the cause, not a higher rate."""
    config = load_config(CONFIGS / "iris.yaml", ["model.layers[0].activation=relu", "optimizer.learning_rate=2"])
    found = {d.code: d for d in diagnose(train(config, save=False).model)}
    assert "dead_units" in found and "underfitting" in found and "overfitting" not in found
    assert "dead or saturated units found above are why" in found["underfitting"].message
    assert "raise optimizer.learning_rate" not in found["underfitting"].message
