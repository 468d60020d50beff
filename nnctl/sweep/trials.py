"""Running a sweep's trials on Dask distributed, and the one trial a worker runs.

`run_sweep` runs the trials of a `nnctl.sweep.Sweep` as Dask futures: on an embedded `LocalCluster` (worker
processes, one thread each) or on an existing cluster's scheduler. `run_trial` is the pure function a worker
runs; it returns the final metrics and the trained model as .npz bytes, so workers need no shared filesystem
with the client (only the data files, at the paths the config gives). A trial that raises is recorded as
failed with its one-line error and the sweep goes on. `results.csv`, `results.json` and `best.npz` in the
output folder are replaced atomically as trials finish, so an interrupted sweep keeps what finished. Like the
rest of the library, this module never prints: progress goes to a `SweepCallback`.
"""

from __future__ import annotations

import contextlib
import queue
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from nnctl.errors import InputError, TrainingInterrupted
from nnctl.sweep.cluster import check_address, connect, quiet_dask
from nnctl.sweep.plan import CONNECT_TIMEOUT, Sweep, require_distributed, trial_config
from nnctl.sweep.results import (
    BEST_MODEL,
    RESULTS_CSV,
    RESULTS_JSON,
    SweepCallback,
    SweepResult,
    Trial,
    Writer,
    better,
    one_line,
)
from nnctl.training.events import Callback, EpochStats, StartInfo
from nnctl.training.mlflow_run import MlflowRun
from nnctl.training.tracking import TrackAs, parent_run

__all__ = ["SweepCallback", "SweepResult", "Trial", "run_sweep", "run_trial"]


# --- one trial (runs on a worker) ------------------------------------------------------------------------


class _Progress(Callback):
    """Training callback on a worker: tells the client when the trial starts and, about once a second, its
    epoch (Dask worker events on `topic`)."""

    def __init__(self, topic: str | None, number: int | None) -> None:
        self.topic, self.number, self.sent = topic, number, 0.0
        self.worker: Any = None
        if topic is not None:
            with contextlib.suppress(ImportError, ValueError):  # not on a Dask worker: nobody to tell
                from distributed import get_worker

                self.worker = get_worker()

    def _send(self, message: dict[str, Any]) -> None:
        if self.worker is not None:
            with contextlib.suppress(Exception):  # progress is a nicety; it must never fail the trial
                self.worker.log_event(self.topic, {"trial": self.number, **message})
            self.sent = time.monotonic()

    def on_start(self, info: StartInfo) -> None:
        self._send({"epoch": 0, "epochs": info.epochs})

    def on_epoch(self, stats: EpochStats) -> None:
        if time.monotonic() - self.sent >= 1.0:
            self._send({"epoch": stats.epoch, "epochs": stats.epochs})


def run_trial(base: str | Mapping[str, Any], overrides: Sequence[str], base_dir: str, source: str = "<base config>",
              topic: str | None = None, number: int | None = None, cv: int | None = None,
              mlflow_parent: str | None = None) -> dict[str, Any]:
    """Train one trial without saving; its final metrics, seconds and the model as .npz bytes.

    A pure function of its arguments (the data files aside), for a Dask worker anywhere: the model travels
    back as bytes, not as a file. `topic` and `number` let a Dask worker report progress to the client. With
    `cv` (K folds), the trial is first cross-validated and its `val_*` metrics are the folds' means (the model
    is still the one trained on the config's own split). With `mlflow_parent` (the sweep's MLflow run id) and the
    config's `tracking.mlflow`, the trial is logged as a run nested under it (its folds are not logged)."""
    from nnctl.training.run import train  # on the worker: the client never imports training

    started = time.perf_counter()
    config = trial_config(base, overrides, base_dir, source)
    result = train(config, callback=_Progress(topic, number), save=False,
                   tracking=TrackAs(mlflow_parent, f"trial {number}"))
    model = result.model.to_bytes()
    summary = result.summary()
    summary.pop("output", None)
    if cv is not None:
        from nnctl.sweep.cv import cross_validate

        folds = cross_validate(config, cv, parallel=False, tracking=False)  # on a worker: no cluster inside it
        summary = {k: v for k, v in summary.items() if not k.startswith("val_")} | folds.mean
    return {"summary": summary, "seconds": time.perf_counter() - started, "model": model}


# --- running a sweep -------------------------------------------------------------------------------------


def run_sweep(sweep: Sweep, output: str | Path, *, scheduler: str | None = None, client: Any = None,
              workers: int | None = None, callback: SweepCallback | None = None, debug: bool = False,
              connect_timeout: float | None = None) -> SweepResult:
    """Run every planned trial on Dask and keep the best; results in `output` (a folder) as trials finish.

    Where: `client` (a `distributed.Client`, left open), else the scheduler at `scheduler` (tcp://HOST:PORT),
    else an embedded LocalCluster of `workers` processes (default: one per core); `connect_timeout` (seconds,
    default CONNECT_TIMEOUT) bounds the wait for an existing scheduler. A failing trial is recorded
    with its error; the sweep goes on. Ctrl-C cancels what is left, closes what was started, writes the
    results so far and raises TrainingInterrupted. Returns the result even when every trial failed (its `best`
    is None then)."""
    callback = callback or SweepCallback()
    require_distributed()
    if scheduler is not None and client is None:
        check_address(scheduler)  # before the results folder exists: a typo leaves nothing behind
    if workers is not None and workers < 1:
        raise InputError(f"{{workers}} {workers}: needs at least 1", arguments=("workers",))
    writer = Writer(Path(output))
    trials = [Trial(number, dict(values)) for number, values in enumerate(sweep.plan, start=1)]
    started = time.perf_counter()
    result = SweepResult(sweep, trials, None, Path(output), 0.0, "")
    base = trial_config(sweep.base_raw, [], sweep.base.resolve().parent, str(sweep.base))
    parent = parent_run(base, "sweep", f"sweep {Path(sweep.source).stem}", callback.on_warning,
                        {"sweep": sweep.definition()})
    try:
        timeout = CONNECT_TIMEOUT if connect_timeout is None else connect_timeout
        with quiet_dask(debug), connect(scheduler, client, workers, debug, timeout) as (dask, where):
            result.cluster = where
            # a stale best.npz from an earlier sweep in this folder must not pass for this one's
            (Path(output) / BEST_MODEL).unlink(missing_ok=True)
            _run(sweep, dask, trials, result, writer, callback, started, parent.run_id if parent else None)
    except KeyboardInterrupt:
        for trial in trials:
            if not trial.finished:
                trial.status = "cancelled"
        result.seconds = time.perf_counter() - started
        result.interrupted = True
        writer.results(result)
        done = sum(t.status in ("done", "failed") for t in trials)
        _end_parent(parent, result, "KILLED")
        raise TrainingInterrupted(f"interrupted after {done} of {len(trials)} trials; the finished trials' results "
                                  f"are in {Path(output) / RESULTS_CSV}") from None
    except BaseException:
        _end_parent(parent, None, "FAILED")
        raise
    result.seconds = time.perf_counter() - started
    writer.results(result)
    _end_parent(parent, result, "FINISHED")
    return result


def _end_parent(parent: MlflowRun | None, result: SweepResult | None, status: str) -> None:
    """The sweep's MLflow run: the best trial's numbers (`best_*`) and number, the results files, its status."""
    if parent is None:
        return
    if result is not None:
        best = result.best
        if best is not None:
            parent.log_metrics([(0, {f"best_{k}": v for k, v in best.summary.items()})])
            parent.set_tags({"best_trial": str(best.number)})
        for name in (RESULTS_CSV, RESULTS_JSON, BEST_MODEL):
            if (result.output / name).exists():
                parent.log_artifact(result.output / name)
    parent.end(status)


def _run(sweep: Sweep, client: Any, trials: list[Trial], result: SweepResult, writer: Writer,
         callback: SweepCallback, started: float, mlflow_parent: str | None) -> None:
    from distributed import as_completed

    events: queue.Queue[Any] = queue.Queue()
    topic = f"nnctl-sweep-{uuid.uuid4().hex}"
    client.subscribe_topic(topic, events.put)
    base_dir = str(sweep.base.resolve().parent)
    futures: dict[Any, Trial] = {}
    try:
        for trial in trials:
            future = client.submit(run_trial, sweep.base_raw, sweep.overrides(trial.values), base_dir,
                                   str(sweep.base), topic, trial.number, sweep.cv, mlflow_parent, pure=False,
                                   key=f"nnctl-trial-{trial.number}-{topic[-8:]}")
            futures[future] = trial
        callback.on_start(sweep, trials, result.cluster)
        pending = as_completed(list(futures), loop=client.loop)
        while not pending.is_empty():
            _drain(events, trials, result, callback)
            if not pending.has_ready():
                # wait for a worker's news (handled at once), or look for finished trials again in 0.1 s
                with contextlib.suppress(queue.Empty):
                    events.put(events.get(timeout=0.1))
                continue
            for future in pending.next_batch(block=False):
                trial = futures.pop(future)
                _finish(trial, future, sweep, result, writer)
                future.release()
                result.seconds = time.perf_counter() - started
                writer.results(result)
                callback.on_trial(trial, result.best)
    finally:
        if futures:
            with contextlib.suppress(Exception):
                client.cancel(list(futures), force=True)
        with contextlib.suppress(Exception):
            client.unsubscribe_topic(topic)


def _drain(events: queue.Queue[Any], trials: list[Trial], result: SweepResult, callback: SweepCallback) -> None:
    """Apply the workers' progress reports (a trial started; its epoch)."""
    while True:
        try:
            _, message = events.get_nowait()
        except queue.Empty:
            return
        number = message.get("trial") if isinstance(message, dict) else None
        if not isinstance(number, int) or not 1 <= number <= len(trials):
            continue
        trial = trials[number - 1]
        if trial.finished:
            continue
        trial.status = "running"
        trial.epoch, trial.epochs = int(message.get("epoch", 0)), message.get("epochs")
        callback.on_trial(trial, result.best)


def _finish(trial: Trial, future: Any, sweep: Sweep, result: SweepResult, writer: Writer) -> None:
    """Record a finished future's outcome; a new best model is written at once."""
    try:
        outcome = future.result()
    except (Exception, KeyboardInterrupt) as exc:  # a worker's Ctrl-C comes back as TrainingInterrupted
        if isinstance(exc, KeyboardInterrupt) and not isinstance(exc, TrainingInterrupted):
            raise
        trial.status, trial.error = "failed", one_line(exc)
        return
    trial.summary, trial.seconds = dict(outcome["summary"]), float(outcome["seconds"])
    if trial.value(sweep.metric) is None:
        trial.status = "failed"
        trial.error = (f"the run reported no finite {sweep.metric}"
                       + (f" ({trial.summary[sweep.metric]})" if sweep.metric in trial.summary else ""))
        return
    trial.status = "done"
    if better(trial, result.best, sweep.metric, sweep.mode):
        writer.model(outcome["model"])
        result.best = trial
