"""A run's record besides its model file (the config's `tracking` section), written through the training
callbacks: `tracking.metrics_csv`, a CSV with one row per epoch, and `tracking.mlflow`, an MLflow run.

The CSV always agrees with the model's history: a new run starts a new file; a resumed run rewrites it from the
history it resumes (so rows an interrupted run wrote past its checkpoint, or a lost file, never show) and then
appends its new epochs, one row each, flushed at once (`tail -f` follows it). A resumed MLflow run continues the
run whose id the model file holds (`Provenance.mlflow_run_id`) and logs the epochs it lacks. Sweeps and
cross-validation run their trials and folds with `TrackAs`: nested under their own parent run, without a CSV.
"""

from __future__ import annotations

import csv
import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from nnctl.config.schema import Config
from nnctl.errors import InputError
from nnctl.files import refuse_to_replace
from nnctl.model.model import Model
from nnctl.training.events import Callback, EpochStats, StartInfo
from nnctl.training.mlflow_run import MlflowRun, Warn, params, require_mlflow, tracking_uri

FLUSH_SECONDS = 1.0  # MLflow gets the epochs' metrics in one call at most this often (and at the end)


@dataclass(frozen=True)
class TrackAs:
    """How a sweep's trial or a cross-validation's fold is tracked: as a run named `run_name` nested under the
    MLflow run `parent_run_id` (a plain string: it travels to Dask workers), or, without a parent, not in MLflow;
    never with a metrics CSV (the trials would share one file)."""

    parent_run_id: str | None
    run_name: str


def _is_metrics_csv(path: Path) -> bool:
    """An earlier metrics CSV may be replaced; anything else (a data CSV given by mistake) may not."""
    try:
        with path.open(encoding="utf-8") as handle:
            return handle.readline().startswith("epoch,") or path.stat().st_size == 0
    except (OSError, UnicodeDecodeError):
        return False


class MetricsCsv(Callback):
    """`tracking.metrics_csv`: epoch, every history column, learning_rate, seconds; one row per epoch."""

    def __init__(self, path: Path, warn: Warn) -> None:
        self.path, self.warn = path, warn
        self.handle: IO[str] | None = None
        self.writer: csv.DictWriter[str] | None = None

    def check(self) -> None:
        """Fail before training, not after: the folder must be creatable, and an existing file a metrics CSV."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"tracking.metrics_csv {self.path}: cannot create its folder ({exc.strerror})") from None
        if self.path.is_dir():
            raise InputError(f"tracking.metrics_csv {self.path}: is a directory; give a file path, e.g. "
                             f"{self.path / 'metrics.csv'}")
        refuse_to_replace(self.path, _is_metrics_csv, "a metrics CSV (its header starts with 'epoch,')",
                          "choose another tracking.metrics_csv")

    def on_start(self, info: StartInfo) -> None:
        try:
            self.handle = self.path.open("w", encoding="utf-8", newline="")
        except OSError as exc:
            self._lost(exc)
            return
        for row in info.history:
            self._write(row)

    def on_epoch(self, stats: EpochStats) -> None:
        self._write(stats.record())

    def _write(self, row: dict[str, Any]) -> None:
        if self.handle is None:
            return
        try:
            if self.writer is None:
                self.writer = csv.DictWriter(self.handle, fieldnames=list(row), extrasaction="ignore")
                self.writer.writeheader()
            self.writer.writerow(row)
            self.handle.flush()
        except OSError as exc:
            self._lost(exc)

    def _lost(self, exc: OSError) -> None:
        self.warn(f"tracking.metrics_csv {self.path}: cannot write ({exc.strerror}); no more rows are written")
        self.close()

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()
            self.handle = None


class Tracking(Callback):
    """Every tracker a config asks for, as one callback, plus the end of the run (`finish`, `end`)."""

    def __init__(self, config: Config, warn: Warn, resume_run_id: str | None = None,
                 track_as: TrackAs | None = None) -> None:
        self.config, self.warn, self.resume_run_id, self.track_as = config, warn, resume_run_id, track_as
        section = config.tracking
        self.csv = MetricsCsv(config.resolve(section.metrics_csv), warn) \
            if section.metrics_csv is not None and track_as is None else None
        self.resolved: dict[str, Any] | None = None  # the config as the run resolves it (`Model.config`): its params
        self.mlflow: MlflowRun | None = None
        self.pending: list[tuple[int, dict[str, Any]]] = []  # epochs not yet sent to MLflow
        self.sent = 0.0
        if section.mlflow is not None and (track_as is None or track_as.parent_run_id is not None):
            self.mlflow = MlflowRun(tracking_uri(config, section.mlflow), warn)

    @property
    def active(self) -> bool:
        return self.csv is not None or self.mlflow is not None

    @property
    def run_id(self) -> str | None:
        """The MLflow run this run logs to, once started (None without MLflow, or when it could not start)."""
        return self.mlflow.run_id if self.mlflow is not None else None

    def check(self) -> None:
        """Before any data is read: the CSV can be written, MLflow is installed."""
        if self.csv is not None:
            self.csv.check()
        if self.mlflow is not None:
            require_mlflow()

    def on_start(self, info: StartInfo) -> None:
        if self.csv is not None:
            self.csv.on_start(info)
        settings = self.config.tracking.mlflow
        if self.mlflow is None or settings is None:
            return
        name = self.track_as.run_name if self.track_as is not None else Path(self.config.source).stem
        parent = self.track_as.parent_run_id if self.track_as is not None else None
        if not self.mlflow.start(settings, name, parent_run_id=parent, resume_run_id=self.resume_run_id):
            return
        self.mlflow.log_params(params(self.resolved or self.config.model_dump(mode="json")))
        logged = self.mlflow.logged_steps("train_loss")
        self.mlflow.log_metrics((row["epoch"], _metrics(row)) for row in info.history if row["epoch"] not in logged)

    def on_epoch(self, stats: EpochStats) -> None:
        if self.csv is not None:
            self.csv.on_epoch(stats)
        if self.mlflow is not None:
            self.pending.append((stats.epoch, _metrics(stats.record())))
            if time.monotonic() - self.sent >= FLUSH_SECONDS:
                self._flush()

    def _flush(self) -> None:
        """Send the pending epochs in one call (a fast run's epochs would otherwise cost more than training)."""
        if self.mlflow is not None and self.pending:
            self.mlflow.log_metrics(self.pending)
        self.pending = []
        self.sent = time.monotonic()

    def finish(self, summary: dict[str, Any], model: Model, output: Path | None) -> None:
        """The run is saved: its summary (as `final_*` metrics and tags), the model and its config as artifacts."""
        if self.csv is not None:
            self.csv.close()
        self._flush()
        run = self.mlflow
        if run is None or run.run_id is None:
            return
        numbers = {k: v for k, v in summary.items() if isinstance(v, int | float) and not isinstance(v, bool)}
        run.log_metrics([(len(model.history), {f"final_{k}" if k.startswith(("train_", "val_")) else k: v
                                               for k, v in numbers.items()})])
        run.set_tags({"task": str(summary.get("task")), "stopped_early": str(summary.get("stopped_early"))})
        with tempfile.TemporaryDirectory(prefix="nnctl-mlflow-") as folder:
            if output is None or not output.exists():
                output = Path(folder) / "model.npz"
                model.save(output)
            run.log_artifact(output)
            resolved = Path(folder) / "config.resolved.json"
            resolved.write_text(json.dumps(model.config, indent=2) + "\n", encoding="utf-8")
            run.log_artifact(resolved)
            source = Path(self.config.source)
            if source.is_file():
                run.log_artifact(source)
        run.end("FINISHED")

    def end(self, status: str) -> None:
        """A run that did not finish: FAILED, or KILLED (interrupted)."""
        if self.csv is not None:
            self.csv.close()
        self._flush()
        if self.mlflow is not None:
            self.mlflow.end(status)


def _metrics(row: dict[str, Any]) -> dict[str, Any]:
    """A history row's metrics: all but its epoch, which is the step."""
    return {k: v for k, v in row.items() if k != "epoch"}


def parent_run(config: Config, kind: str, name: str, warn: Warn, values: dict[str, Any]) -> MlflowRun | None:
    """The parent run of a sweep's trials or a cross-validation's folds (`kind`), named `name` unless the config
    names it, with the config and `values` as params; None when the config does not ask for MLflow. Its `run_id`
    is None when it could not be started (after a warning)."""
    settings = config.tracking.mlflow
    if settings is None:
        return None
    require_mlflow()
    run = MlflowRun(tracking_uri(config, settings), warn)
    if run.start(settings, name, {"nnctl.kind": kind}):
        run.log_params(params({**config.model_dump(mode="json"), **values}))
    return run
