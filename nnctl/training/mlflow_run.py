"""One MLflow run, logged through `mlflow.tracking.MlflowClient` (the `mlflow` extra, mlflow-skinny): a training
run's, or the parent run of a sweep's trials or a cross-validation's folds.

Tracking must never cost a training run: the first call that fails (an unreachable server, a misconfigured store)
becomes one warning, and the run logs nothing more. MLflow is imported only here, only when `tracking.mlflow` is
set. Its HTTP retries and timeout are kept short within nnctl's calls (MLflow's defaults retry for minutes), and
a local file store is allowed (MLflow 3 keeps it in maintenance mode and refuses it unless told); an environment
variable the user set wins.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from nnctl._version import __version__
from nnctl.config.schema import Config
from nnctl.config.tracking import MlflowConfig
from nnctl.errors import require

Warn = Callable[[str], None]

# Only within nnctl's own calls, and only when the user has not set them.
ENVIRONMENT = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "5",
               "MLFLOW_ALLOW_FILE_STORE": "true"}
PARENT_TAG = "mlflow.parentRunId"
_BATCH = 100  # log_batch takes at most 100 params and 1000 metrics per call
_INDEX, _KEY = re.compile(r"\[(\d+)\]"), re.compile(r"[^\w\-. /]")
_LOCK = threading.RLock()  # one call at a time changes the environment (in-process Dask workers are threads)
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:")  # file:, http:, databricks:, ... (not a Windows drive letter)


def require_mlflow() -> None:
    """MissingExtraError (with the pip command) unless MLflow can be imported."""
    require("mlflow", "mlflow", "tracking.mlflow")


@contextlib.contextmanager
def _environment() -> Iterator[None]:
    with _LOCK:
        added = [key for key in ENVIRONMENT if key not in os.environ]
        os.environ.update({key: ENVIRONMENT[key] for key in added})
        try:
            yield
        finally:
            for key in added:
                os.environ.pop(key, None)


def tracking_uri(config: Config, settings: MlflowConfig) -> str | None:
    """`tracking_uri` as MLflow takes it: a URI as written; a folder, relative to the config's, as a file: URI."""
    uri = settings.tracking_uri
    if uri is None or _SCHEME.match(uri):
        return uri
    return config.resolve(uri).resolve().as_uri()


def params(config: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """A resolved config as MLflow params: dotted keys (`optimizer.learning_rate`, `model.layers.0.units`), values
    as JSON text (a text value as itself)."""
    out: dict[str, str] = {}
    for key, value in config.items():
        # MLflow keys: letters, digits, _ - . / and spaces (a sweep's `model.layers[0].units`: model.layers.0.units)
        name = _KEY.sub("_", _INDEX.sub(r".\1", f"{prefix}{key}"))
        if isinstance(value, dict) and value:
            out.update(params(value, f"{name}."))
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            out.update(params({str(i): v for i, v in enumerate(value)}, f"{name}."))
        else:
            out[name] = value if isinstance(value, str) else json.dumps(value)
    return out


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


class MlflowRun:
    """A run in an MLflow store. Every method is safe to call after a failure: it does nothing then."""

    def __init__(self, uri: str | None, warn: Warn) -> None:
        self.uri, self.warn = uri, warn
        self.run_id: str | None = None
        self.failed = False
        self.client: Any = None

    def call(self, what: str, action: Callable[[], Any]) -> Any:
        """`action()` with nnctl's MLflow settings; a failure is one warning and the end of this run's logging."""
        if self.failed:
            return None
        try:
            with _environment():
                if self.client is None:
                    from mlflow.tracking import MlflowClient

                    self.client = MlflowClient(self.uri)
                return action()
        except Exception as exc:  # whatever MLflow raises, training goes on
            self.failed = True
            where = f" at {self.uri}" if self.uri else ""
            self.warn(f"tracking.mlflow: could not {what}{where} ({_one_line(exc)}); the run goes on without MLflow")
            return None

    def start(self, settings: MlflowConfig, name: str, tags: Mapping[str, str] | None = None,
              parent_run_id: str | None = None, resume_run_id: str | None = None) -> bool:
        """Continue `resume_run_id` (when the store has it), else create a run of the experiment; True when done."""
        self.call("start the run", lambda: self._start(settings, name, tags or {}, parent_run_id, resume_run_id))
        return self.run_id is not None

    def _start(self, settings: MlflowConfig, name: str, tags: Mapping[str, str], parent_run_id: str | None,
               resume_run_id: str | None) -> None:
        client = self.client
        if resume_run_id is not None:
            from mlflow.exceptions import MlflowException

            try:
                client.get_run(resume_run_id)
            except MlflowException as exc:
                if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
                    raise
                self.warn(f"tracking.mlflow: the model's run {resume_run_id} is not in "
                          f"{self.uri or 'the tracking store'}; logging to a new run")
            else:
                client.update_run(resume_run_id, status="RUNNING")
                self.run_id = resume_run_id
                return
        experiment, wanted = "0", settings.experiment or os.environ.get("MLFLOW_EXPERIMENT_NAME")
        if wanted:
            found = client.get_experiment_by_name(wanted)
            experiment = found.experiment_id if found is not None else client.create_experiment(wanted)
        all_tags = {"nnctl.version": __version__, **settings.tags, **tags}
        if parent_run_id is not None:
            all_tags[PARENT_TAG] = parent_run_id
        self.run_id = client.create_run(experiment, run_name=settings.run_name or name, tags=all_tags).info.run_id

    def log_params(self, values: Mapping[str, str]) -> None:
        """Params the run does not hold yet (a resumed run keeps its first values: MLflow refuses a change)."""
        def log() -> None:
            from mlflow.entities import Param

            held = self.client.get_run(self.run_id).data.params
            new = [Param(k, v[:6000]) for k, v in values.items() if k not in held]
            for i in range(0, len(new), _BATCH):
                self.client.log_batch(self.run_id, params=new[i:i + _BATCH])

        if self.run_id is not None:
            self.call("log the params", log)

    def log_metrics(self, rows: Iterable[tuple[int, Mapping[str, Any]]]) -> None:
        """Numbers of each (step, {name: value}); anything not a number is left out."""
        def log() -> None:
            from mlflow.entities import Metric

            now = int(time.time() * 1000)
            metrics = [Metric(k, float(v), now, step) for step, row in rows for k, v in row.items()
                       if isinstance(v, int | float) and not isinstance(v, bool)]
            for i in range(0, len(metrics), 10 * _BATCH):
                self.client.log_batch(self.run_id, metrics=metrics[i:i + 10 * _BATCH])

        if self.run_id is not None:
            self.call("log metrics", log)

    def logged_steps(self, key: str) -> set[int]:
        """The steps at which the run has `key` (the epochs a resumed run logged before)."""
        if self.run_id is None:
            return set()
        steps = self.call("read the run", lambda: {m.step for m in self.client.get_metric_history(self.run_id, key)})
        return steps or set()

    def set_tags(self, tags: Mapping[str, str]) -> None:
        if self.run_id is not None:
            self.call("set tags", lambda: [self.client.set_tag(self.run_id, k, v) for k, v in tags.items()])

    def log_artifact(self, path: str | Path, folder: str | None = None) -> None:
        if self.run_id is not None:
            self.call(f"log the artifact {Path(path).name}",
                      lambda: self.client.log_artifact(self.run_id, str(path), folder))

    def end(self, status: str) -> None:
        """FINISHED, FAILED or KILLED (interrupted; a resume sets it RUNNING again)."""
        if self.run_id is not None:
            self.call("end the run", lambda: self.client.set_terminated(self.run_id, status))
