import io

import numpy as np
import pandas as pd
import pytest

from nnctl.config import load_config
from nnctl.errors import DataError
from nnctl.inference import evaluate, predict, predict_frame
from nnctl.training import train

from conftest import DATASETS, iris_config


@pytest.fixture(scope="module")
def iris_model(tmp_path_factory):
    import yaml

    folder = tmp_path_factory.mktemp("iris")
    (folder / "c.yaml").write_text(yaml.safe_dump(iris_config(training={"epochs": 60, "batch_size": 16})))
    return train(load_config(folder / "c.yaml"), save=False).model


def test_predict_frame_gives_labels_and_probabilities(iris_model):
    frame = pd.read_csv(DATASETS / "iris.csv")
    out = predict_frame(iris_model, frame.drop(columns="species"), "iris.csv", proba=True)
    assert list(out.columns) == ["species", "proba_setosa", "proba_versicolor", "proba_virginica"]
    np.testing.assert_allclose(out.iloc[:, 1:].sum(axis=1), 1, rtol=1e-5)
    assert (out["species"] == frame["species"]).mean() > 0.9


def test_streaming_predict_matches_the_whole_frame(iris_model, monkeypatch):
    import nnctl.inference

    text = (DATASETS / "iris.csv").read_text()
    whole = io.StringIO()
    predict(iris_model, io.StringIO(text), whole)
    monkeypatch.setattr(nnctl.inference, "CHUNK_ROWS", 7)
    chunked = io.StringIO()
    rows = predict(iris_model, io.StringIO(text), chunked)
    assert rows == 150
    assert chunked.getvalue() == whole.getvalue()
    assert whole.getvalue().splitlines()[0] == "species"


def test_jsonl_output(iris_model):
    out = io.StringIO()
    predict(iris_model, io.StringIO("sepal_length,sepal_width,petal_length,petal_width\n5.1,3.5,1.4,0.2\n"),
            out, fmt="jsonl", proba=True)
    import json

    record = json.loads(out.getvalue())
    assert record["species"] == "setosa" and record["proba_setosa"] > 0.5


def test_evaluate_on_labelled_rows(iris_model):
    scores = evaluate(iris_model, DATASETS / "iris.csv")
    assert scores["rows"] == 150 and scores["accuracy"] > 0.9 and scores["loss"] > 0


def test_evaluate_needs_the_target(iris_model, tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("sepal_length,sepal_width,petal_length,petal_width\n1,2,3,4\n")
    with pytest.raises(DataError, match="no target column 'species'"):
        evaluate(iris_model, path)


def test_regression_predictions_are_on_the_target_scale(write_config):
    config = {"data": {"train": str(DATASETS / "auto_mpg.csv"), "target": "mpg",
                       "features": ["weight", "horsepower", "origin"], "target_scale": "standard"},
              "model": {"layers": [{"units": 8}, {}]}, "optimizer": {"learning_rate": 0.01},
              "training": {"epochs": 30}}
    model = train(load_config(write_config(config)), save=False).model
    frame = pd.read_csv(DATASETS / "auto_mpg.csv").dropna(subset=["mpg"])
    out = predict_frame(model, frame, "auto_mpg.csv")
    assert list(out.columns) == ["mpg"]
    assert 15 < out["mpg"].mean() < 32
    scores = evaluate(model, DATASETS / "auto_mpg.csv")
    assert scores["r2"] > 0.5 and set(scores) == {"rows", "loss", "mae", "rmse", "r2"}
