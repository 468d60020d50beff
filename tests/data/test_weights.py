"""Row weights (`data.weight`): a weight of 2 is exactly the row twice, combined with class weights; bad weights
are named with their line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nnctl.config.load import config_from
from nnctl.data.load import load_dataset
from nnctl.engine.losses import LOSSES
from nnctl.engine.network import Network
from nnctl.errors import DataError
from nnctl.training.run import train

from conftest import DATASETS


def _config(csv: Path, **data: object) -> dict:
    return {
        "seed": 0,
        "data": {"train": str(csv), "target": "species", "validation_split": 0, "scale": "none", "cache": False,
                 **data},
        "model": {"layers": [{"units": 6, "activation": "tanh"}, {"activation": "softmax"}]},
        "loss": "cross_entropy",
        "optimizer": {"name": "sgd", "learning_rate": 0.2},
        "training": {"epochs": 25, "batch_size": 1000, "shuffle": False, "dtype": "float64"},
    }


def _dataset(raw: dict, folder: Path):
    return load_dataset(config_from(raw, str(folder / "c.yaml"), folder), np.random.default_rng(0),
                        lambda message: None)


def _gradient(rows, loss_name: str = "cross_entropy") -> tuple[float, np.ndarray]:
    """The full-batch loss and its gradient (flat, float64) of one fixed network on the training rows."""
    network = Network([4, 6, 3], ["tanh", "softmax"], dtype="float64")
    network.initialise(["glorot_uniform", "glorot_uniform"], np.random.default_rng(7))
    ws = network.workspace(len(rows))
    loss = LOSSES[loss_name]
    A = network.forward_train(ws, rows.X)
    value = loss.value(A, rows.Y, ws.scratch[-1][: len(rows)], rows.w)
    network.backward(ws, rows.X, rows.Y, loss, rows.w)
    return value, network.grads.copy()


def test_a_weight_of_two_is_exactly_the_row_twice(tmp_path):
    """Full batch, float64: the weighted loss and its gradient equal those of the data with the rows copied."""
    frame = pd.read_csv(DATASETS / "iris.csv").iloc[::4].reset_index(drop=True)  # 38 rows, all three classes
    weighted = frame.assign(w=1.0)
    weighted.loc[5, "w"] = 2.0
    weighted.loc[20, "w"] = 3.0
    weighted.to_csv(tmp_path / "weighted.csv", index=False)
    copied = pd.concat([frame, frame.iloc[[5, 20, 20]]], ignore_index=True)
    copied.to_csv(tmp_path / "copied.csv", index=False)
    settings = {"training": {"dtype": "float64"}}
    a = _dataset({**_config(tmp_path / "weighted.csv", weight="w"), **settings}, tmp_path).train
    b = _dataset({**_config(tmp_path / "copied.csv"), **settings}, tmp_path).train
    assert len(a) == 38 and len(b) == 41
    (value_a, grad_a), (value_b, grad_b) = _gradient(a), _gradient(b)
    assert value_a == pytest.approx(value_b, rel=1e-12)
    np.testing.assert_allclose(grad_a, grad_b, rtol=1e-10, atol=1e-13)
    unweighted = _dataset({**_config(tmp_path / "weighted.csv", features=list(frame.columns[:4])), **settings},
                          tmp_path).train
    assert np.abs(_gradient(unweighted)[1] - grad_a).max() > 1e-4  # the weights did something


def test_weighted_training_runs_end_to_end(tmp_path):
    frame = pd.read_csv(DATASETS / "iris.csv").assign(w=lambda f: 1.0 + (f.species == "virginica"))
    frame.to_csv(tmp_path / "w.csv", index=False)
    raw = _config(tmp_path / "w.csv", weight="w")
    result = train(config_from(raw, str(tmp_path / "c.yaml"), tmp_path), save=False)
    assert result.model.preprocessor.names == ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    assert result.final["train"]["accuracy"] > 0.6


def test_the_weight_column_is_not_a_feature_and_combines_with_class_weights(tmp_path):
    frame = pd.read_csv(DATASETS / "iris.csv").assign(w=lambda f: np.where(f.index % 2, 1.0, 3.0))
    frame.to_csv(tmp_path / "w.csv", index=False)
    raw = _config(tmp_path / "w.csv", weight="w", class_weight={"setosa": 2.0})
    dataset = _dataset(raw, tmp_path)
    assert dataset.preprocessor.names == ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    w = dataset.train.w
    assert w is not None and w.mean() == pytest.approx(1.0)
    expected = np.where(frame.index % 2, 1.0, 3.0) * np.where(frame.species == "setosa", 2.0, 1.0)
    np.testing.assert_allclose(w, expected * len(expected) / expected.sum(), rtol=1e-6)


@pytest.mark.parametrize(("value", "line"), [("-1", 4), ("", 4), ("heavy", 4), ("inf", 4)])
def test_a_bad_weight_is_named_with_its_line(tmp_path, value, line):
    rows = ["a,b,species,w", "1,2,x,1", "2,3,y,1", f"3,4,x,{value}", "4,5,y,1"]
    (tmp_path / "d.csv").write_text("\n".join(rows) + "\n")
    raw = _config(tmp_path / "d.csv", weight="w")
    with pytest.raises(DataError, match=rf"column 'w' \(data.weight\) line {line}: .* is not a weight; weights are "
                                        r"numbers >= 0"):
        load_dataset(config_from(raw, str(tmp_path / "c.yaml"), tmp_path), np.random.default_rng(0),
                     lambda message: None)


def test_weight_errors_point_at_the_config(tmp_path):
    raw = _config(DATASETS / "iris.csv", weight="wieght")
    with pytest.raises(DataError, match=r"data.weight: 'wieght' is not a column of .*iris.csv"):
        load_dataset(config_from(raw, str(tmp_path / "c.yaml"), tmp_path), np.random.default_rng(0),
                     lambda message: None)
    raw = _config(DATASETS / "iris.csv", weight="sepal_length", features=["sepal_length", "petal_length"])
    with pytest.raises(DataError, match=r"data\.features lists the weight column .sepal_length."):
        load_dataset(config_from(raw, str(tmp_path / "c.yaml"), tmp_path), np.random.default_rng(0),
                     lambda message: None)


def _spilled(dataset) -> dict[str, np.ndarray]:
    """The loss weights w and row weights r of a streamed dataset's training rows, in file order."""
    dataset.open()
    try:
        [(_, parts, _)] = list(dataset.train.segments(None, 10_000, False))
        return {"w": parts.w.copy(), "r": parts.r.copy(), "y": parts.y.copy()}
    finally:
        dataset.close()


@pytest.mark.parametrize("class_weight", [None, {"setosa": 2.0}])
def test_streaming_weighs_the_rows_as_in_memory(tmp_path, class_weight):
    """Streamed in chunks of 40 rows, the loss weights (row times class weights, average 1) and data.weight's values
    equal the in-memory ones row for row."""
    frame = pd.read_csv(DATASETS / "iris.csv").assign(w=lambda f: np.where(f.index % 3, 0.5, 4.0))
    frame.to_csv(tmp_path / "w.csv", index=False)
    extra = {} if class_weight is None else {"class_weight": class_weight}
    memory = _dataset(_config(tmp_path / "w.csv", weight="w", **extra), tmp_path)
    streamed = _spilled(_dataset(_config(tmp_path / "w.csv", weight="w", streaming=True, chunk_rows=40,
                                         shuffle_buffer=40, **extra), tmp_path))
    np.testing.assert_array_equal(streamed["y"], memory.train.y)
    np.testing.assert_array_equal(streamed["r"], frame.w.to_numpy())
    np.testing.assert_allclose(streamed["w"], memory.train.w, rtol=1e-12)
    assert streamed["w"].mean() == pytest.approx(1.0)


def test_streaming_checks_every_weight_and_that_some_row_weighs(tmp_path):
    rows = ["a,b,species,w", *[f"{i},{i % 3},{'xy'[i % 2]},1" for i in range(30)], "3,4,x,-2"]
    (tmp_path / "d.csv").write_text("\n".join(rows) + "\n")
    raw = _config(tmp_path / "d.csv", weight="w", streaming=True, chunk_rows=10, shuffle_buffer=10)
    with pytest.raises(DataError, match=r"column 'w' \(data.weight\) line 32: '-2' is not a weight"):
        _dataset(raw, tmp_path)
    (tmp_path / "d.csv").write_text("\n".join(row[:-1] + "0" if i else row for i, row in enumerate(rows[:-1])))
    with pytest.raises(DataError, match=r"every training row weighs 0; nothing to learn"):
        _dataset(raw, tmp_path)
