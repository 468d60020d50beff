"""`data.weight` weighs the metrics end to end: a weight of 2 scores as the row twice in `evaluate`, the history's
`train_*` and `val_*`, streaming validation and `cv`; `evaluate --unweighted` weighs every row 1."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from nnctl.cli.app import app
from nnctl.config.load import config_from
from nnctl.inference.predict import evaluate
from nnctl.training.run import train

from conftest import DATASETS

SKIP = ("rows", "weighted_by", "per_class", "confusion_matrix")


def _frames(name: str, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A shipped dataset with integer weights 0..3 in column `w`, and the same rows each copied w times."""
    frame = pd.read_csv(DATASETS / f"{name}.csv")
    frame = frame[frame.iloc[:, -1].notna()].reset_index(drop=True)
    frame["w"] = np.random.default_rng(seed).integers(0, 4, len(frame))
    copied = frame.loc[np.repeat(frame.index.to_numpy(), frame.w.to_numpy())].drop(columns="w")
    return frame, copied


def _raw(csv: Path, target: str, loss: str, last: str, **data: object) -> dict:
    return {"seed": 0,
            "data": {"train": str(csv), "target": target, "weight": "w", "cache": False, "missing": "impute", **data},
            "model": {"layers": [{"units": 8, "activation": "tanh"}, {"activation": last}]}, "loss": loss,
            "optimizer": {"name": "adam", "learning_rate": 0.01}, "training": {"epochs": 8, "batch_size": 32}}


def _same_scores(weighted: dict, copied: dict) -> None:
    names = [k for k in weighted if k not in SKIP]
    assert names and names == [k for k in copied if k not in SKIP]
    for k in names:
        a, b = weighted[k], copied[k]
        assert (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b, rel=1e-6, abs=1e-9), k


@pytest.mark.parametrize(("name", "target", "loss", "last"), [
    ("iris", "species", "cross_entropy", "softmax"),
    ("breast_cancer", "diagnosis", "binary_cross_entropy", "sigmoid"),
    ("auto_mpg", "mpg", "mse", "identity"),
])
def test_evaluate_and_the_history_weigh_a_row_as_its_copies(tmp_path, name, target, loss, last):
    frame, copied = _frames(name, 1)
    frame.to_csv(tmp_path / "weighted.csv", index=False)
    copied.to_csv(tmp_path / "copied.csv", index=False)
    raw = _raw(tmp_path / "weighted.csv", target, loss, last, validation=str(tmp_path / "weighted.csv"))
    result = train(config_from(raw, str(tmp_path / "c.yaml"), tmp_path), save=False)
    model = result.model
    weighted = evaluate(model, tmp_path / "weighted.csv")
    assert weighted["weighted_by"] == "w" and weighted["rows"] == len(frame)
    _same_scores(weighted, evaluate(model, tmp_path / "copied.csv"))
    # the last epoch's val_* (and the training rows' summary) are the same weighted scores
    last_epoch = model.history[-1]
    for key, value in weighted.items():
        if key not in SKIP:
            assert last_epoch[f"val_{key}"] == pytest.approx(value, rel=1e-6, abs=1e-9), key
            assert result.final["train"].get(key, value) == pytest.approx(value, rel=1e-6, abs=1e-9), key
    unweighted = evaluate(model, tmp_path / "weighted.csv", weighted=False)
    assert "weighted_by" not in unweighted
    assert unweighted["loss"] != pytest.approx(weighted["loss"], rel=1e-6)


def test_streamed_validation_is_weighted_too(tmp_path):
    frame, _ = _frames("iris", 2)
    frame.to_csv(tmp_path / "weighted.csv", index=False)
    raw = _raw(tmp_path / "weighted.csv", "species", "cross_entropy", "softmax", streaming=True, chunk_rows=40,
               shuffle_buffer=40, validation=str(tmp_path / "weighted.csv"))
    model = train(config_from(raw, str(tmp_path / "c.yaml"), tmp_path), save=False).model
    scores = evaluate(model, tmp_path / "weighted.csv")
    for key in ("loss", "accuracy", "log_loss", "roc_auc", "ece"):
        assert model.history[-1][f"val_{key}"] == pytest.approx(scores[key], rel=1e-6), key


def test_cv_folds_are_scored_weighted(tmp_path):
    from nnctl.sweep.cv import cross_validate

    frame, _ = _frames("iris", 3)
    frame.to_csv(tmp_path / "weighted.csv", index=False)
    raw = _raw(tmp_path / "weighted.csv", "species", "cross_entropy", "softmax", validation_split=0)
    config = config_from(raw, str(tmp_path / "c.yaml"), tmp_path)
    folds = cross_validate(config, 3, predictions=True)
    out = folds.predictions
    assert out is not None
    for fold in folds.folds:  # each fold's accuracy is its held-out rows' weighted share predicted right
        rows = (out.fold == fold.fold).to_numpy()
        hit = (out.species[rows] == frame.species[rows]).to_numpy()
        expected = float(hit @ frame.w[rows]) / float(frame.w[rows].sum())
        assert fold.metrics["val_accuracy"] == pytest.approx(expected, rel=1e-12)


def test_the_cli_says_what_weighs_and_unweighted_turns_it_off(tmp_path):
    frame, _ = _frames("iris", 4)
    frame.to_csv(tmp_path / "weighted.csv", index=False)
    raw = _raw(tmp_path / "weighted.csv", "species", "cross_entropy", "softmax")
    train(config_from(raw, str(tmp_path / "c.yaml"), tmp_path), output=tmp_path / "m.npz")
    runner = CliRunner()
    shown = runner.invoke(app, ["evaluate", str(tmp_path / "m.npz"), str(tmp_path / "weighted.csv")])
    assert shown.exit_code == 0 and "weighted_by" in shown.stdout and " w " in shown.stdout
    plain = runner.invoke(app, ["evaluate", str(tmp_path / "m.npz"), str(tmp_path / "weighted.csv"), "--json",
                                "--unweighted"])
    assert plain.exit_code == 0 and "weighted_by" not in json.loads(plain.stdout)
    frame.assign(w=-frame.w).to_csv(tmp_path / "bad.csv", index=False)
    bad = runner.invoke(app, ["evaluate", str(tmp_path / "m.npz"), str(tmp_path / "bad.csv")])
    assert bad.exit_code == 2 and "column 'w' (data.weight) line" in bad.stderr


@pytest.mark.parametrize(("name", "target", "loss", "last", "keys"), [
    ("iris", "species", "cross_entropy", "softmax", ("accuracy",)),
    ("auto_mpg", "mpg", "mse", "identity", ("mae", "rmse", "r2")),
])
def test_the_epochs_running_train_metrics_are_weighted(tmp_path, name, target, loss, last, keys):
    """A rate too small to move a float32 weight: the epoch's running train_* equal the weighted scores of the
    final model on the training rows."""
    frame, _ = _frames(name, 5)
    frame.to_csv(tmp_path / "weighted.csv", index=False)
    raw = _raw(tmp_path / "weighted.csv", target, loss, last, validation_split=0)
    raw["optimizer"] = {"name": "sgd", "learning_rate": 1e-20}
    raw["training"]["epochs"] = 1
    model = train(config_from(raw, str(tmp_path / "c.yaml"), tmp_path), save=False).model
    scores = evaluate(model, tmp_path / "weighted.csv")
    plain = evaluate(model, tmp_path / "weighted.csv", weighted=False)
    for key in keys:
        assert model.history[0][f"train_{key}"] == pytest.approx(scores[key], rel=1e-5), key
        assert plain[key] != pytest.approx(scores[key], rel=1e-5), key
