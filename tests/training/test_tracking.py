"""`tracking`: the per-epoch metrics CSV and the MLflow run, read back from the file and from a real local store."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nnctl.cli import app
from nnctl.config.load import load_config
from nnctl.errors import InputError
from nnctl.model.model import load_model
from nnctl.training.events import Callback
from nnctl.training.mlflow_run import params
from nnctl.training.run import train

from conftest import RESUMABLE, iris_config

mlflow = pytest.importorskip("mlflow")
runner = CliRunner()


def csv_rows(path: Path) -> list[dict[str, float]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(handle)]


def as_floats(history: list[dict]) -> list[dict[str, float]]:
    return [{k: float(v) for k, v in row.items()} for row in history]


class Interrupt(Callback):
    """Ctrl-C after epoch `at` (as tests/training/test_run.py simulates it); keeps a copy of each checkpoint."""

    def __init__(self, at: int) -> None:
        self.at = at

    def on_checkpoint(self, path: str, epoch: int) -> None:
        shutil.copy(path, Path(path).with_name(f"epoch{epoch}.npz"))

    def on_epoch(self, stats):
        if stats.epoch == self.at:
            raise KeyboardInterrupt


@pytest.fixture
def store(tmp_path, monkeypatch) -> str:
    """A local MLflow file store, readable by the test's own client (MLflow 3 wants the opt-in)."""
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    return (tmp_path / "mlruns").as_uri()


def client(uri: str):
    from mlflow.tracking import MlflowClient

    return MlflowClient(uri)


def history_of(uri: str, run_id: str, key: str) -> list[tuple[int, float]]:
    return sorted((m.step, m.value) for m in client(uri).get_metric_history(run_id, key))


# --- the metrics CSV -----------------------------------------------------------------------------------------


def test_metrics_csv_is_the_history_and_a_new_run_starts_a_new_file(write_config, tmp_path):
    path = write_config(iris_config(tracking={"metrics_csv": "logs/metrics.csv"}))
    model = train(load_config(path), output=tmp_path / "m.npz").model
    written = tmp_path / "logs" / "metrics.csv"  # relative to the config's folder
    header = written.read_text().splitlines()[0].split(",")
    assert header == list(model.history[0])
    assert header[0] == "epoch" and header[-2:] == ["learning_rate", "seconds"]
    assert csv_rows(written) == as_floats(model.history)
    again = train(load_config(path, ["training.epochs=2"]), output=tmp_path / "m.npz").model
    assert csv_rows(written) == as_floats(again.history) and len(again.history) == 2


def test_an_interrupted_and_resumed_run_has_each_epoch_once(write_config, tmp_path):
    """Interrupted after epoch 5 (its CSV has 5 rows), resumed from the checkpoint of epoch 3: 6 rows, the model's."""
    path = write_config(iris_config(**RESUMABLE, tracking={"metrics_csv": "metrics.csv"}))
    config = load_config(path)
    out, written = tmp_path / "run.npz", tmp_path / "metrics.csv"
    with pytest.raises(KeyboardInterrupt):
        train(config, output=out, callback=Interrupt(at=5))
    assert [row["epoch"] for row in csv_rows(written)] == [1, 2, 3, 4, 5]
    resumed = train(config, output=out, resume=tmp_path / "epoch3.npz").model
    assert [row["epoch"] for row in csv_rows(written)] == [1, 2, 3, 4, 5, 6]
    assert csv_rows(written) == as_floats(resumed.history)
    straight = train(config, save=False).model
    assert [r["train_loss"] for r in csv_rows(written)] == [r["train_loss"] for r in straight.history]


def test_the_metrics_csv_never_overwrites_another_file(write_config, tmp_path):
    (tmp_path / "data.csv").write_text("a,b\n1,2\n")
    path = write_config(iris_config(tracking={"metrics_csv": "data.csv"}))
    with pytest.raises(InputError, match=r"data.csv: exists and is not a metrics CSV.*tracking.metrics_csv"):
        train(load_config(path), save=False)
    assert (tmp_path / "data.csv").read_text() == "a,b\n1,2\n"


# --- MLflow ----------------------------------------------------------------------------------------------------


def test_mlflow_params_metrics_summary_and_artifacts(write_config, tmp_path, store):
    mlflow_section = {"tracking_uri": store, "experiment": "iris", "run_name": "first", "tags": {"team": "ml"}}
    path = write_config(iris_config(tracking={"mlflow": mlflow_section}))
    result = train(load_config(path), output=tmp_path / "m.npz")
    run_id = load_model(tmp_path / "m.npz").provenance.mlflow_run_id
    run = client(store).get_run(run_id)
    assert run.info.run_name == "first" and run.info.status == "FINISHED" and run.data.tags["team"] == "ml"
    assert client(store).get_experiment(run.info.experiment_id).name == "iris"
    assert run.data.params["optimizer.learning_rate"] == "0.01"
    assert run.data.params["model.layers.0.units"] == "8" and run.data.params["loss"] == "cross_entropy"
    assert params(result.model.config) == run.data.params
    for key in ("train_loss", "val_accuracy", "learning_rate"):
        assert history_of(store, run_id, key) == [(row["epoch"], pytest.approx(row[key]))
                                                 for row in result.model.history]
    summary = result.summary()
    assert run.data.metrics["final_val_accuracy"] == pytest.approx(summary["val_accuracy"])
    assert run.data.metrics["epochs"] == 5 and "epoch" not in run.data.metrics
    artifacts = {a.path for a in client(store).list_artifacts(run_id)}
    assert artifacts == {"m.npz", "config.yaml", "config.resolved.json"}
    model_copy = client(store).download_artifacts(run_id, "m.npz", str(tmp_path / "down"))
    assert Path(model_copy).read_bytes() == (tmp_path / "m.npz").read_bytes()


def test_resume_continues_the_same_mlflow_run(write_config, tmp_path, store):
    path = write_config(iris_config(**RESUMABLE, tracking={"mlflow": {"tracking_uri": store}}))
    config, out = load_config(path), tmp_path / "run.npz"
    with pytest.raises(KeyboardInterrupt):
        train(config, output=out, callback=Interrupt(at=4))
    ckpt = tmp_path / "run.ckpt.npz"
    run_id = load_model(ckpt).provenance.mlflow_run_id
    assert run_id is not None and client(store).get_run(run_id).info.status == "KILLED"
    resumed = train(config, output=out, resume=ckpt).model
    assert resumed.provenance.mlflow_run_id == run_id
    assert len(client(store).search_runs([client(store).get_run(run_id).info.experiment_id])) == 1
    assert client(store).get_run(run_id).info.status == "FINISHED"
    logged = history_of(store, run_id, "train_loss")
    assert logged == [(row["epoch"], pytest.approx(row["train_loss"])) for row in resumed.history]
    assert [step for step, _ in logged] == [1, 2, 3, 4, 5, 6]


def test_an_unreachable_server_is_a_warning_and_the_model_is_saved(write_config, tmp_path):
    path = write_config(iris_config(tracking={"mlflow": {"tracking_uri": "http://127.0.0.1:9"}}))
    result = runner.invoke(app, ["train", str(path), "-o", str(tmp_path / "m.npz"), "-q"])
    assert result.exit_code == 0, result.output
    assert "warning: tracking.mlflow: could not start the run at http://127.0.0.1:9" in result.stderr
    assert "Traceback" not in result.output
    model = load_model(tmp_path / "m.npz")
    assert len(model.history) == 5 and model.provenance.mlflow_run_id is None





def test_params_are_dotted_keys_mlflow_accepts():
    config = {"optimizer": {"name": "adam", "learning_rate": 0.01}, "data": {"features": ["a", "b"], "weight": None},
              "model": {"layers": [{"units": 8}, {"units": 3}]},
              "sweep": {"space": {"model.layers[0].units": [4, 16]}}}
    assert params(config) == {"optimizer.name": "adam", "optimizer.learning_rate": "0.01",
                              "data.features": '["a", "b"]', "data.weight": "null", "model.layers.0.units": "8",
                              "model.layers.1.units": "3", "sweep.space.model.layers.0.units": "[4, 16]"}
