"""A sweep's trials and their outcome: the `Trial` records, the best one, results.csv / results.json and
best.npz written as trials finish, and the `SweepCallback` that hears about them. No Dask: the CLI's live view
subclasses `SweepCallback`, imported only when a sweep runs.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nnctl.errors import InputError, NnctlError
from nnctl.files import replace_on_success, signals_held
from nnctl.sweep.plan import Sweep, yaml_scalar

RESULTS_CSV, RESULTS_JSON, BEST_MODEL = "results.csv", "results.json", "best.npz"


@dataclass
class Trial:
    """One trial's values and, once it ran, its outcome."""

    number: int  # 1-based, in plan order
    values: dict[str, Any]
    status: str = "queued"  # queued | running | done | failed | cancelled
    summary: dict[str, Any] = field(default_factory=dict)  # epochs, best_epoch, ..., train_*, val_*
    seconds: float | None = None
    error: str | None = None
    epoch: int = 0  # while running: the last epoch a worker reported
    epochs: int | None = None

    @property
    def finished(self) -> bool:
        return self.status in ("done", "failed", "cancelled")

    def value(self, metric: str) -> float | None:
        value = self.summary.get(metric)
        return float(value) if isinstance(value, int | float) and math.isfinite(value) else None

    def to_json(self, metric: str) -> dict[str, Any]:
        return {"trial": self.number, "status": self.status, "values": self.values, metric: self.value(metric),
                "summary": self.summary, "seconds": None if self.seconds is None else round(self.seconds, 3),
                "error": self.error}


class SweepCallback:
    """Receives what happens during a sweep; subclass and override what you need."""

    def on_warning(self, message: str) -> None:
        """Something the user should know."""

    def on_start(self, sweep: Sweep, trials: Sequence[Trial], cluster: str) -> None:
        """The cluster is up and the trials are submitted; `cluster` describes where they run."""

    def on_trial(self, trial: Trial, best: Trial | None) -> None:
        """A trial started, reported progress, finished or failed; `best` is the best finished trial so far."""


@dataclass
class SweepResult:
    sweep: Sweep
    trials: list[Trial]
    best: Trial | None
    output: Path
    seconds: float
    cluster: str
    interrupted: bool = False

    @property
    def best_model(self) -> Path | None:
        return self.output / BEST_MODEL if self.best is not None else None

    def counts(self) -> dict[str, int]:
        return {status: sum(t.status == status for t in self.trials)
                for status in ("done", "failed", "cancelled", "queued", "running") if
                any(t.status == status for t in self.trials)}

    def to_json(self) -> dict[str, Any]:
        """What results.json holds: the sweep's definition, the best trial, every finished trial."""
        metric = self.sweep.metric
        best = None
        if self.best is not None:
            best = {**self.best.to_json(metric), "model": str(self.best_model)}
        return {
            "sweep": self.sweep.definition(),
            "best": best,
            "trials": [t.to_json(metric) for t in self.trials if t.finished],
            "counts": self.counts(),
            "interrupted": self.interrupted,
            "seconds": round(self.seconds, 3),
            "cluster": self.cluster,
            "output": {"folder": str(self.output), "csv": str(self.output / RESULTS_CSV),
                       "json": str(self.output / RESULTS_JSON),
                       "model": None if self.best_model is None else str(self.best_model)},
        }

    def csv_text(self) -> str:
        """One row per finished trial: number, status, the swept values, the metric, the other final metrics,
        epochs, seconds and the error."""
        sweep = self.sweep
        others = [m for m in sweep.metrics if m != sweep.metric]
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["trial", "status", *sweep.keys, sweep.metric, *others, "epochs", "best_epoch", "seconds",
                         "error"])
        for t in self.trials:
            if not t.finished:
                continue
            values = [v if isinstance(v, str | int | float) and not isinstance(v, bool) else yaml_scalar(v)
                      for v in t.values.values()]
            metrics = [_cell(t.summary.get(m)) for m in (sweep.metric, *others)]
            writer.writerow([t.number, t.status, *values, *metrics, _cell(t.summary.get("epochs")),
                             _cell(t.summary.get("best_epoch")),
                             "" if t.seconds is None else f"{t.seconds:.3f}", t.error or ""])
        return buffer.getvalue()


def _cell(value: Any) -> str:
    return "" if value is None else str(value)


def better(trial: Trial, best: Trial | None, metric: str, mode: str) -> bool:
    """Whether `trial` beats `best`. A tie on the metric (30 validation rows give few distinct accuracies) goes
    to the lower loss on the same rows (val_loss for a val_* metric), then to the lower trial number, so the
    best does not depend on the order trials finish in."""
    value = trial.value(metric)
    if value is None:
        return False
    if best is None:
        return True
    incumbent = best.value(metric)
    assert incumbent is not None
    if value != incumbent:
        return value > incumbent if mode == "max" else value < incumbent
    loss = f"{metric.split('_')[0]}_loss"
    ours, theirs = trial.value(loss), best.value(loss)
    if loss != metric and ours is not None and theirs is not None and ours != theirs:
        return ours < theirs
    return trial.number < best.number


def one_line(exc: BaseException) -> str:
    """A trial's error as one line: an nnctl error's own message, anything else with its type."""
    text = str(exc) if isinstance(exc, NnctlError) else f"{type(exc).__name__}: {exc}"
    return " ".join(text.split()) or type(exc).__name__


class Writer:
    """results.csv, results.json and best.npz in the output folder, each replaced atomically."""

    def __init__(self, output: Path) -> None:
        self.output = output
        try:
            output.mkdir(parents=True, exist_ok=True)
        except FileExistsError:
            raise InputError(f"{output}: exists and is not a folder; give a folder for the sweep's results "
                             "({output} DIR)", arguments=("output",)) from None
        except OSError as exc:
            raise InputError(f"{output}: cannot create the results folder ({exc.strerror})") from None

    def results(self, result: SweepResult) -> None:
        with signals_held():  # a Ctrl-C now must not cost the results written so far
            with replace_on_success(self.output / RESULTS_CSV, "w", what="the sweep results",
                                    cannot_open=InputError) as handle:
                handle.write(result.csv_text())
            with replace_on_success(self.output / RESULTS_JSON, "w", what="the sweep results",
                                    cannot_open=InputError) as handle:
                handle.write(json.dumps(result.to_json(), indent=2) + "\n")

    def model(self, data: bytes) -> None:
        with signals_held(), replace_on_success(self.output / BEST_MODEL, "wb", what="the best model",
                                                cannot_open=InputError) as handle:
            handle.write(data)


