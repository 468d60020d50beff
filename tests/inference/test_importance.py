"""Permutation importance (`nnctl.inference.importance`): informative columns first and noise near 0 on a synthetic
set, a one-hot group and a date's parts shuffled as one, a shuffled pass equal to `evaluate` on the CSV with that
column shuffled, chunks that add up to the whole, and the metric's name and direction."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from nnctl.config.load import load_config
from nnctl.errors import InputError
from nnctl.inference.importance import importance
from nnctl.inference.predict import evaluate
from nnctl.model.model import Model, load_model
from nnctl.training.run import train

INFORMATIVE = {"x1", "x2", "color", "day"}
NOISE = {"noise1", "noise2"}


def synthetic(rows: int, rng: np.random.Generator) -> pd.DataFrame:
    """y from two numbers, a category and the season of a date; two columns of pure noise."""
    x1, x2 = rng.normal(size=rows), rng.normal(size=rows)
    color = rng.choice(["red", "green", "blue"], size=rows)
    days = rng.integers(0, 3 * 365, size=rows)
    day = pd.Timestamp("2020-01-01") + pd.to_timedelta(days, unit="D")
    season = np.cos(2 * np.pi * day.day_of_year.to_numpy() / 365.25)
    effect = pd.Series(color).map({"red": 1.5, "green": 0.0, "blue": -1.5}).to_numpy()
    y = 1.5 * x1 + 1.0 * x2 + effect + 1.2 * season + 0.1 * rng.normal(size=rows)
    return pd.DataFrame({"noise1": rng.uniform(-2, 2, rows), "x1": x1, "color": color, "day": day.strftime("%Y-%m-%d"),
                         "x2": x2, "noise2": rng.normal(size=rows), "y": y})


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Model, Path, Path]:
    """A small regression network on the synthetic set's training rows; the model, its file and held-out rows."""
    folder = tmp_path_factory.mktemp("importance")
    rng = np.random.default_rng(7)
    synthetic(600, rng).to_csv(folder / "train.csv", index=False)
    synthetic(300, rng).to_csv(folder / "test.csv", index=False)
    config = {"seed": 0, "data": {"train": "train.csv", "target": "y", "validation_split": 0},
              "model": {"layers": [{"units": 24, "activation": "tanh"}, {"activation": "identity"}]},
              "loss": "mse", "optimizer": {"name": "adam", "learning_rate": 0.01},
              "training": {"epochs": 60, "batch_size": 32}}
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    path = folder / "model.npz"
    train(load_config(folder / "config.yaml"), path)
    return load_model(path), path, folder / "test.csv"


def test_informative_columns_rank_first_and_noise_sits_near_zero(trained: tuple[Model, Path, Path]) -> None:
    model, _, data = trained
    result = importance(model, data, repeats=3)
    assert result.metric == "r2" and result.higher_is_better and result.baseline > 0.9
    names = [c.name for c in result.columns]
    assert set(names[:4]) == INFORMATIVE and set(names[4:]) == NOISE
    top = result.columns[0].mean
    for column in result.columns[4:]:
        assert abs(column.mean) < 0.02 * top, (column.name, column.mean, top)
    assert all(c.mean > 0.05 for c in result.columns[:4])


def test_a_one_hot_group_and_a_dates_parts_are_one_column_each(trained: tuple[Model, Path, Path]) -> None:
    model, _, data = trained
    slices = model.preprocessor.input_slices()
    assert list(slices) == ["noise1", "x1", "color", "day", "x2", "noise2"]
    assert slices["color"].stop - slices["color"].start == 3 and slices["day"].stop - slices["day"].start > 2
    assert sum(s.stop - s.start for s in slices.values()) == model.preprocessor.n_inputs
    result = importance(model, data, repeats=1)
    assert sorted(c.name for c in result.columns) == sorted(slices)
    kinds = {c.name: (c.kind, c.inputs) for c in result.columns}
    assert kinds["color"] == ("categorical", 3) and kinds["day"][0] == "date"
    assert result.passes == 1 + len(slices)


@pytest.mark.parametrize("metric", ["r2", "mae"])
def test_a_shuffled_pass_is_evaluate_on_the_csv_with_that_column_shuffled(trained: tuple[Model, Path, Path],
                                                                          tmp_path: Path, metric: str) -> None:
    model, _, data = trained
    result = importance(model, data, metric=metric, repeats=1, seed=11)
    frame = pd.read_csv(data)
    rng = np.random.default_rng(11)  # the documented order: per repeat, per column in the model's feature order
    permutations = {name: rng.permutation(len(frame)) for name in model.preprocessor.names}
    baseline = evaluate(model, data)[metric]
    assert result.baseline == pytest.approx(baseline, abs=1e-9)
    for column in result.columns:
        shuffled = frame.copy()
        shuffled[column.name] = frame[column.name].to_numpy()[permutations[column.name]]
        shuffled.to_csv(tmp_path / "shuffled.csv", index=False)
        value = evaluate(model, tmp_path / "shuffled.csv")[metric]
        expected = baseline - value if metric == "r2" else value - baseline  # positive: the model needs it
        assert column.drops[0] == pytest.approx(expected, abs=1e-9), column.name


def test_chunks_add_up_to_the_whole_file_and_the_seed_fixes_the_numbers(trained: tuple[Model, Path, Path]) -> None:
    model, _, data = trained
    whole = importance(model, data, metric="mae", repeats=2, seed=3)
    assert whole.chunks == 1 and whole.rows == 300
    held = importance(model, data, metric="mae", repeats=2, seed=3, chunk_rows=300)
    assert held.to_json() == whole.to_json()
    done: list[int] = []
    chunked = importance(model, data, metric="mae", repeats=2, seed=3, chunk_rows=64, progress=done.append)
    assert done == [64, 128, 192, 256]  # after each chunk but the last
    assert chunked.chunks == 5 and chunked.rows == 300
    assert chunked.baseline == pytest.approx(whole.baseline, rel=1e-9)  # the baseline does not depend on chunks
    assert {c.name for c in chunked.columns[:4]} == INFORMATIVE
    other = importance(model, data, metric="mae", repeats=2, seed=4)
    assert other.to_json() != whole.to_json()


def test_json_holds_metric_baseline_and_each_columns_mean_and_sd(trained: tuple[Model, Path, Path]) -> None:
    model, _, data = trained
    result = importance(model, data, metric="loss", repeats=2)
    document = result.to_json()
    assert set(document) == {"metric", "baseline", "importance"} and document["metric"] == "loss"
    assert not result.higher_is_better  # the loss rises: importance is permuted - baseline, still positive
    assert list(document["importance"]) == [c.name for c in result.columns]
    for name, entry in document["importance"].items():
        assert set(entry) == {"mean", "std"}
        drops = next(c.drops for c in result.columns if c.name == name)
        assert entry["mean"] == pytest.approx(np.mean(drops)) and entry["std"] == pytest.approx(np.std(drops, ddof=1))
    assert document["importance"]["x1"]["mean"] > 0
    single = importance(model, data, repeats=1).to_json()
    assert all(entry["std"] is None for entry in single["importance"].values())


def test_an_unknown_metric_names_the_valid_ones(trained: tuple[Model, Path, Path]) -> None:
    model, _, data = trained
    with pytest.raises(InputError) as caught:
        importance(model, data, metric="rmsee")
    message = caught.value.render({"metric": "--metric"})
    assert "--metric rmsee" in message and "did you mean 'rmse'" in message and "r2" in message
    with pytest.raises(InputError, match="not a regression metric"):
        importance(model, data, metric="accuracy")


def test_an_every_row_metric_refuses_a_file_of_several_chunks(trained: tuple[Model, Path, Path]) -> None:
    model, _, data = trained
    one = importance(model, data, metric="median_ae", repeats=1)
    assert math.isfinite(one.baseline) and one.columns[0].mean > 0
    with pytest.raises(InputError, match="median_ae needs every row's output at once"):
        importance(model, data, metric="median_ae", chunk_rows=100)


def test_weights_temperature_and_threshold_score_as_evaluate_scores(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    frame = synthetic(240, rng)
    frame["y"] = np.where(frame["y"] > 0, "high", "low")
    frame["w"] = rng.integers(0, 4, len(frame))
    frame.to_csv(tmp_path / "rows.csv", index=False)
    config = {"seed": 0, "data": {"train": "rows.csv", "target": "y", "weight": "w", "validation_split": 0},
              "model": {"layers": [{"units": 8, "activation": "tanh"}, {"activation": "softmax"}]},
              "loss": "cross_entropy", "optimizer": {"name": "adam", "learning_rate": 0.01},
              "training": {"epochs": 5, "batch_size": 32}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    model = train(load_config(tmp_path / "config.yaml"), save=False).model
    model.temperature, model.threshold = 2.0, 0.3
    result = importance(model, tmp_path / "rows.csv", metric="f1", repeats=1, seed=2)
    assert result.weighted_by == "w"
    assert result.baseline == pytest.approx(evaluate(model, tmp_path / "rows.csv")["f1"], abs=1e-9)
    unweighted = importance(model, tmp_path / "rows.csv", metric="f1", repeats=1, seed=2, weighted=False)
    assert unweighted.weighted_by is None and unweighted.baseline != result.baseline  # the weights count
    model.threshold = None
    assert importance(model, tmp_path / "rows.csv", metric="f1", repeats=1).baseline != result.baseline
    model.threshold = 0.3
    assert unweighted.baseline == pytest.approx(evaluate(model, tmp_path / "rows.csv", weighted=False)["f1"], abs=1e-9)
    rng = np.random.default_rng(2)
    permutations = {name: rng.permutation(len(frame)) for name in model.preprocessor.names}
    shuffled = frame.copy()
    shuffled["x1"] = frame["x1"].to_numpy()[permutations["x1"]]
    shuffled.to_csv(tmp_path / "shuffled.csv", index=False)
    x1 = next(c for c in result.columns if c.name == "x1")
    assert x1.drops[0] == pytest.approx(result.baseline - evaluate(model, tmp_path / "shuffled.csv")["f1"], abs=1e-9)
