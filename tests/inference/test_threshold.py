"""A model's stored threshold (`training.threshold`) and temperature (`training.calibrate`) in predict, evaluate
and `nnctl inspect`."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from nnctl.cli import app
from nnctl.config.load import load_config
from nnctl.inference.predict import evaluate, predict
from nnctl.model.model import load_model
from nnctl.training.run import train

from conftest import CONFIGS, DATASETS

runner = CliRunner()
ROWS = DATASETS / "breast_cancer.csv"


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A two-class model saved plain and with a threshold and a temperature, and its probabilities."""
    folder = tmp_path_factory.mktemp("threshold")
    config = load_config(CONFIGS / "breast_cancer.yaml", ["training.epochs=15", "training.early_stopping=null"])
    model = train(config, output=folder / "plain.npz").model
    stored = train(load_config(CONFIGS / "breast_cancer.yaml",
                               ["training.epochs=15", "training.early_stopping=null", "training.threshold=youden",
                                "training.calibrate=temperature"]),
                   output=folder / "stored.npz").model
    assert stored.threshold is not None and stored.temperature is not None
    return folder, model, stored


def _predict(model) -> list[list[str]]:
    out = io.StringIO()
    predict(model, io.BytesIO(ROWS.read_bytes()), out, proba=True)
    return list(csv.reader(io.StringIO(out.getvalue())))[1:]


def _cli(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def test_predict_uses_the_stored_threshold_unless_one_is_given(models):
    folder, _, stored = models
    model = str(folder / "stored.npz")
    default = _cli("predict", model, str(ROWS), "--proba")
    assert default == _cli("predict", model, str(ROWS), "--proba", "--threshold", repr(stored.threshold))
    rows = list(csv.reader(io.StringIO(default)))[1:]
    p = np.array([float(row[2]) for row in rows])
    assert [row[0] for row in rows] == ["malignant" if v >= stored.threshold else "benign" for v in p]


def test_a_stored_threshold_decides_where_it_matters(models, tmp_path):
    folder, plain, _ = models
    # a threshold between the probabilities, as training.threshold would store: half the rows change sides of 0.5
    p = np.array([float(row[2]) for row in _predict(plain)])
    plain.threshold = float(np.quantile(p[p >= 0.5], 0.5))
    plain.save(tmp_path / "cut.npz")
    plain.threshold = None
    cut = str(tmp_path / "cut.npz")
    stored = _cli("predict", cut, str(ROWS))
    assert stored == _cli("predict", cut, str(ROWS), "--threshold", repr(load_model(cut).threshold))
    at_half = _cli("predict", cut, str(ROWS), "--threshold", "0.5")
    assert at_half == _cli("predict", str(folder / "plain.npz"), str(ROWS))
    changed = sum(a != b for a, b in zip(stored.splitlines(), at_half.splitlines(), strict=True))
    assert changed >= 5
    # evaluate counts at the stored threshold, and says which
    scores = json.loads(_cli("evaluate", cut, str(ROWS), "--json"))
    plain_scores = json.loads(_cli("evaluate", str(folder / "plain.npz"), str(ROWS), "--json"))
    assert scores["threshold"] == load_model(cut).threshold and "threshold" not in plain_scores
    assert scores["loss"] == plain_scores["loss"]
    assert scores["confusion_matrix"]["counts"][0][1] < plain_scores["confusion_matrix"]["counts"][0][1] or \
        scores["confusion_matrix"]["counts"][1][0] > plain_scores["confusion_matrix"]["counts"][1][0]
    assert "threshold" in _cli("evaluate", cut, str(ROWS))


def test_a_calibrated_model_predicts_its_calibrated_probabilities(models):
    _, _, stored = models
    rows = _predict(stored)
    threshold, temperature = stored.threshold, stored.temperature
    stored.threshold = stored.temperature = None
    try:
        raw = _predict(stored)
    finally:
        stored.threshold, stored.temperature = threshold, temperature
    p, q = np.array([float(r[2]) for r in rows]), np.array([float(r[2]) for r in raw])
    assert not np.allclose(p, q)
    # softmax(Z / T) keeps the order of the second class's probability, and the side of 0.5
    assert ((p >= 0.5) == (q >= 0.5)).all()
    assert evaluate(stored, ROWS)["loss"] != pytest.approx(0.0)


def test_inspect_shows_the_temperature_and_threshold(models):
    folder, _, stored = models
    text = _cli("inspect", str(folder / "stored.npz"))
    assert f"calibrated: temperature {stored.temperature:.6g}" in text
    assert f"decision threshold: {stored.threshold:.6g}" in text and "training.threshold: youden" in text
    meta = json.loads(_cli("inspect", str(folder / "stored.npz"), "--json"))
    assert meta["temperature"] == stored.temperature and meta["threshold"] == stored.threshold
    assert "calibrated" not in _cli("inspect", str(folder / "plain.npz"))
