"""Cross-validation end to end: each fold trains from scratch, the mean is the folds' mean, out-of-fold
predictions cover every labelled row once, in input order; the CLI's table, JSON, -o and --fail-under."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from nnctl.config.load import load_config
from nnctl.sweep import cv
from nnctl.sweep.cv import cross_validate

from conftest import CONFIGS, DATASETS, ROOT


def test_folds_mean_and_out_of_fold_predictions_on_iris():
    result = cross_validate(load_config(CONFIGS / "iris.yaml", ["training.epochs=20"]), 5, predictions=True)
    assert [(f.repeat, f.fold) for f in result.folds] == [(1, n) for n in range(1, 6)]
    assert all((f.rows_train, f.rows_validation) == (120, 30) for f in result.folds)
    values = [f.metrics["val_accuracy"] for f in result.folds]
    assert result.mean["val_accuracy"] == pytest.approx(statistics.fmean(values))
    assert result.std["val_accuracy"] == pytest.approx(statistics.stdev(values))
    out = result.predictions
    assert out is not None and len(out) == 150 and sorted(out["fold"].unique()) == [1, 2, 3, 4, 5]
    assert list(out.columns) == ["species", "proba_setosa", "proba_versicolor", "proba_virginica", "fold"]
    truth = pd.read_csv(DATASETS / "iris.csv")["species"]
    accuracy = {fold: float((out.species == truth)[out.fold == fold].mean()) for fold in range(1, 6)}
    assert [accuracy[f.fold] for f in result.folds] == pytest.approx(values)  # the same rows, in input order
    np.testing.assert_allclose(out.filter(like="proba_").sum(axis=1), 1.0, rtol=1e-5)


def test_regression_drops_unlabelled_rows_and_groups_stay_whole(tmp_path):
    config = load_config(CONFIGS / "auto_mpg.yaml", ["training.epochs=3"])
    result = cross_validate(config, 4, group="model_year", predictions=True)
    frame = pd.read_csv(DATASETS / "auto_mpg.csv").dropna(subset=["mpg"]).reset_index(drop=True)
    out = result.predictions
    assert out is not None and len(out) == len(frame) == 398
    for year in frame.model_year.unique():
        assert out.fold[frame.model_year == year].nunique() == 1  # a year is never in two folds
    assert set(result.mean) >= {"val_loss", "val_mae", "val_rmse", "val_r2"}


def nnctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nnctl", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=120)


def test_cli_table_json_predictions_and_bars(tmp_path):
    table = nnctl("cv", "configs/iris.yaml", "-k", "3", "--set", "training.epochs=10")
    assert table.returncode == 0, table.stderr
    assert "3 folds (classification): validation metrics" in table.stdout and "val_accuracy" in table.stdout
    assert table.stderr.count("fold ") == 3
    out = tmp_path / "oof.csv"
    result = nnctl("cv", "configs/iris.yaml", "-k", "3", "--set", "training.epochs=10", "--json", "-q",
                   "-o", str(out))
    assert result.returncode == 0 and result.stderr == ""
    data = json.loads(result.stdout)
    assert len(data["folds"]) == 3 and set(data) == {"folds", "mean", "std"}
    assert data["mean"]["val_accuracy"] == pytest.approx(statistics.fmean(f["val_accuracy"] for f in data["folds"]))
    assert len(pd.read_csv(out)) == 150
    missed = nnctl("cv", "configs/iris.yaml", "-k", "3", "--set", "training.epochs=2", "-q",
                   "--fail-under", "val_accuracy=0.999")
    assert missed.returncode == 1 and "the folds' mean misses --fail-under: val_accuracy" in missed.stderr
    unknown = nnctl("cv", "configs/iris.yaml", "-k", "3", "--set", "training.epochs=2", "-q",
                    "--fail-under", "val_r2=0.5")
    assert unknown.returncode == 2 and "val_r2: not a cross-validated metric" in unknown.stderr
    grouped = nnctl("cv", "configs/iris.yaml", "--group", "colour")
    assert grouped.returncode == 2 and "no group column 'colour'" in grouped.stderr


def test_folds_on_an_embedded_dask_cluster_give_the_sequential_results(monkeypatch):
    """`workers=1` runs every fold here; a first fold slower than the bound sends the rest to a cluster (the
    default); both give the same bits as `workers=2`."""
    pytest.importorskip("distributed")
    clusters: list[int | None] = []
    on_dask = cv._on_dask

    def recorded(jobs, scheduler, workers):
        clusters.append(workers)
        return on_dask(jobs, scheduler, workers)

    monkeypatch.setattr(cv, "_on_dask", recorded)
    config = load_config(CONFIGS / "iris.yaml", ["training.epochs=15"])
    here = cross_validate(config, 4, predictions=True, workers=1)
    assert clusters == []
    monkeypatch.setattr(cv, "AUTO_PARALLEL_SECONDS", 0.0)
    monkeypatch.setattr(cv.os, "cpu_count", lambda: 2)
    assert cross_validate(config, 4, parallel=False).folds and clusters == []  # a sweep trial's cv stays here
    auto = cross_validate(config, 4, predictions=True)
    assert clusters == [2]  # the three folds after the first, on a process per core
    there = cross_validate(config, 4, predictions=True, workers=2)
    for other in (auto, there):
        assert [f.metrics for f in other.folds] == [f.metrics for f in here.folds]  # same rows, seed: same bits
        assert other.predictions is not None and here.predictions is not None
        pd.testing.assert_frame_equal(other.predictions, here.predictions)
