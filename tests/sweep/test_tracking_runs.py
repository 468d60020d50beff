"""`tracking.mlflow` in sweeps and cross-validation: a parent run, and each trial or fold a run nested under it,
read back from a real local MLflow store."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from nnctl.config.load import load_config
from nnctl.sweep.cv import cross_validate
from nnctl.sweep.plan import load_sweep
from nnctl.sweep.trials import run_sweep

from conftest import iris_config

mlflow = pytest.importorskip("mlflow")
distributed = pytest.importorskip("distributed")


@pytest.fixture
def store(tmp_path, monkeypatch) -> str:
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    return (tmp_path / "mlruns").as_uri()


def runs(uri: str, experiment: str) -> list:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    return client.search_runs([client.get_experiment_by_name(experiment).experiment_id])


def tracked(store: str, experiment: str, **training: object) -> dict:
    return iris_config(training={"epochs": 3, "batch_size": 16, **training},
                       tracking={"metrics_csv": "metrics.csv",
                                 "mlflow": {"tracking_uri": store, "experiment": experiment}})


def test_a_sweep_logs_each_trial_nested_under_its_run(tmp_path, store):
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(tracked(store, "sweep")))
    sweep = {"base": "base.yaml", "metric": "val_accuracy", "space": {"optimizer.learning_rate": [0.01, 0.05]}}
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump(sweep))
    with distributed.Client(processes=False, n_workers=1, threads_per_worker=2, dashboard_address=None) as client:
        result = run_sweep(load_sweep(tmp_path / "sweep.yaml"), tmp_path / "out", client=client)
    found = runs(store, "sweep")
    parent = next(r for r in found if r.data.tags.get("nnctl.kind") == "sweep")
    trials = sorted((r for r in found if r is not parent), key=lambda r: r.info.run_name)
    assert [r.info.run_name for r in trials] == ["trial 1", "trial 2"]
    assert all(r.data.tags["mlflow.parentRunId"] == parent.info.run_id for r in trials)
    assert [r.data.params["optimizer.learning_rate"] for r in trials] == ["0.01", "0.05"]
    assert all(r.info.status == "FINISHED" for r in found)
    assert result.best is not None
    assert parent.data.metrics["best_val_accuracy"] == pytest.approx(result.best.summary["val_accuracy"])
    assert parent.data.params["sweep.metric"] == "val_accuracy"
    assert not (tmp_path / "metrics.csv").exists()  # trials would share one file: they write none


def test_cv_logs_each_fold_nested_under_its_run(tmp_path, store, write_config):
    config = load_config(write_config(tracked(store, "cv")))
    result = cross_validate(config, folds=2, workers=1)
    found = runs(store, "cv")
    parent = next(r for r in found if r.data.tags.get("nnctl.kind") == "cv")
    folds = sorted((r for r in found if r is not parent), key=lambda r: r.info.run_name)
    assert [r.info.run_name for r in folds] == ["fold 1", "fold 2"]
    assert all(r.data.tags["mlflow.parentRunId"] == parent.info.run_id for r in folds)
    assert parent.data.metrics["mean_val_accuracy"] == pytest.approx(result.mean["val_accuracy"])
    assert parent.data.params["cv.folds"] == "2"
    from mlflow.tracking import MlflowClient

    per_fold = MlflowClient(store).get_metric_history(parent.info.run_id, "val_accuracy")
    assert sorted((m.step, m.value) for m in per_fold) == [
        (i, pytest.approx(f.metrics["val_accuracy"])) for i, f in enumerate(result.folds, start=1)]
    assert not Path(tmp_path / "metrics.csv").exists()
