"""Hyperparameter sweeps: a base config, a search space over dotted keys, and trials run on Dask distributed.

A sweep file (YAML; paths relative to its folder) names the base config, the metric that decides the best
trial, the search method (`grid` or `random`), a trial budget, a seed for the draws and the space:

    base: ../iris.yaml
    metric: val_accuracy              # maximised or minimised as `schedules.monitor_mode` says
    method: random                    # grid | random
    trials: 12                        # random: this many draws; grid: at most this many points
    seed: 0
    space:
      optimizer.learning_rate: {low: 1.0e-4, high: 1.0e-1, log: true}   # a range (random only)
      model.layers[0].units: [8, 16, 32]                                 # a list of choices
    output: ../../sweeps/iris         # results.csv, results.json, best.npz

`load_sweep` validates all of it before anything runs: the file's keys and types, every space key and value
against the base config (with the config module's `--set` machinery), every planned trial's whole config,
and that the base config's run computes the metric. Each trial is the base config plus its values as
`--set`-style overrides, plus `training.threads=1` (parallel trials must not oversubscribe the cores) and no
checkpoints. Trials keep the base config's `seed`, so they differ only by their hyperparameters (put `seed`
in the space to sweep it).

`run_sweep` runs the trials as Dask futures: on an embedded `LocalCluster` (worker processes, one thread
each) or on an existing cluster's scheduler. `run_trial` is the pure function a worker runs; it returns the
final metrics and the trained model as .npz bytes, so workers need no shared filesystem with the client
(only the data files, at the paths the config gives). A trial that raises is recorded as failed with its
one-line error and the sweep goes on. `results.csv`, `results.json` and `best.npz` in the output folder are
replaced atomically as trials finish, so an interrupted sweep keeps what finished. Like the rest of the
library, this module never prints: progress goes to a `SweepCallback`.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import io
import json
import logging
import math
import os
import queue
import tempfile
import time
import uuid
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import yaml

from nnctl.config import Config, config_from, load_config, parse_key, read_yaml
from nnctl.errors import ConfigError, InputError, NnctlError, TrainingInterrupted, require
from nnctl.files import replace_on_success
from nnctl.loop import Callback, EpochStats, signals_held
from nnctl.registry import closest, unknown_name_message
from nnctl.schedules import monitor_mode

__all__ = ["Range", "Sweep", "SweepCallback", "SweepResult", "Trial", "load_sweep", "require_distributed",
           "run_sweep", "run_trial", "sweep_output", "trial_config", "trial_overrides"]

SWEEP_KEYS = ("base", "metric", "method", "trials", "seed", "space", "output")
METHODS = ("grid", "random")
RANGE_KEYS = ("low", "high", "log", "integer")
# Every trial: one BLAS thread (trials run side by side) and no checkpoint files (trials would share them).
# The space's own values come after these, so a swept key wins.
TRIAL_SETTINGS = ("training.threads=1", "training.checkpoint=", "training.checkpoint_every=")
CONNECT_TIMEOUT = 5.0  # seconds to reach an existing scheduler before giving up
MAX_GRID = 10_000  # a bigger grid needs an explicit `trials` budget (every planned trial is validated up front)
RESULTS_CSV, RESULTS_JSON, BEST_MODEL = "results.csv", "results.json", "best.npz"


def require_distributed() -> ModuleType:
    """Dask distributed, or MissingExtraError naming the `sweep` extra."""
    return require("distributed", "sweep", "nnctl sweep")


# --- the sweep file ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Range:
    """A numeric interval to draw from (random search): uniform, or log-uniform with `log`; `integer` rounds."""

    low: float
    high: float
    log: bool = False
    integer: bool = False

    def draw(self, rng: np.random.Generator) -> float | int:
        if self.log:
            value = math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        else:
            value = rng.uniform(self.low, self.high)
        if self.integer:
            return int(min(max(round(value), math.ceil(self.low)), math.floor(self.high)))
        # 4 significant digits: readable in the results and as a `--set` value; never outside the bounds
        return min(max(float(f"{value:.4g}"), self.low), self.high)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"low": self.low, "high": self.high, "log": self.log}
        if self.integer:
            out["integer"] = True
        return out


Choices = list[Any] | Range


@dataclass
class Sweep:
    """A validated sweep: its definition, the planned trials' values, and what the base config's run reports."""

    source: str  # the sweep file, as given
    base: Path  # the base config file
    base_raw: dict[str, Any]  # the base config's YAML, parsed
    metric: str
    method: str
    budget: int | None
    seed: int
    space: dict[str, Choices]
    output: Path | None  # the file's `output`, resolved against its folder
    plan: list[dict[str, Any]]  # each trial's value per space key, in trial order
    task: str
    metrics: list[str]  # the final metrics every trial reports (train_*, val_*)

    @property
    def mode(self) -> str:
        """'max' when a higher metric is better (accuracy, f1, r2, ...), else 'min'."""
        return monitor_mode(self.metric)

    @property
    def keys(self) -> list[str]:
        return list(self.space)

    def overrides(self, values: Mapping[str, Any]) -> list[str]:
        return trial_overrides(values)

    def definition(self) -> dict[str, Any]:
        """The sweep as JSON: what results.json records next to the trials."""
        return {
            "source": self.source, "base": str(self.base), "metric": self.metric, "mode": self.mode,
            "method": self.method, "trials": self.budget, "seed": self.seed,
            "space": {k: v.to_json() if isinstance(v, Range) else v for k, v in self.space.items()},
        }


def trial_overrides(values: Mapping[str, Any]) -> list[str]:
    """A trial's `--set` assignments: the trial settings, then its values."""
    return [*TRIAL_SETTINGS, *(f"{key}={_yaml_scalar(value)}" for key, value in values.items())]


def _yaml_scalar(value: Any) -> str:
    """A value as `--set` text that YAML reads back as the same value (1e-05 needs its `.0` in YAML 1.1)."""
    text = yaml.safe_dump(value, default_flow_style=True, width=1 << 30)
    return text.removesuffix("\n...\n").strip()


def _line_index(text: str) -> dict[tuple[str, ...], int]:
    """1-based lines of the top-level keys and the space's keys."""
    try:
        node = yaml.compose(text)
    except yaml.YAMLError:
        return {}
    lines: dict[tuple[str, ...], int] = {}
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            lines[(str(key.value),)] = key.start_mark.line + 1
            if key.value == "space" and isinstance(value, yaml.MappingNode):
                for sub, _ in value.value:
                    lines[("space", str(sub.value))] = sub.start_mark.line + 1
    return lines


class _Problems:
    """Builds the one-line ConfigErrors about a sweep file: `FILE:LINE: KEY: what is wrong`."""

    def __init__(self, source: str, lines: Mapping[tuple[str, ...], int]) -> None:
        self.source, self.lines = source, lines

    def __call__(self, message: str, *where: str) -> ConfigError:
        line = next((self.lines[where[:n]] for n in range(len(where), 0, -1) if where[:n] in self.lines), None)
        prefix = f"{self.source}:{line}" if line else self.source
        key = f" {': '.join(where)}:" if where else ""  # `space: model.layers[0].units:`
        return ConfigError(f"{prefix}:{key} {message}")


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _parse_range(key: str, spec: Mapping[Any, Any], method: str, problem: _Problems) -> Range:
    for name in spec:
        if name not in RANGE_KEYS:
            hint = closest(str(name), RANGE_KEYS)
            mean = f"did you mean '{hint}'? " if hint else ""
            raise problem(f"unknown range key '{name}'; {mean}(valid: {', '.join(RANGE_KEYS)})", "space", key)
    if method == "grid":
        raise problem("a range needs method: random; a grid takes a list of values, e.g. [0.001, 0.01, 0.1]",
                      "space", key)
    low, high = spec.get("low"), spec.get("high")
    if not (_number(low) and _number(high)):
        raise problem(f"a range needs numbers low and high, got low {low!r}, high {high!r}", "space", key)
    assert isinstance(low, int | float) and isinstance(high, int | float)
    if not math.isfinite(low) or not math.isfinite(high) or not low < high:
        raise problem(f"a range needs low < high, got low {low!r}, high {high!r}", "space", key)
    log, integer = spec.get("log", False), spec.get("integer", False)
    for name, flag in (("log", log), ("integer", integer)):
        if not isinstance(flag, bool):
            raise problem(f"range key '{name}' must be true or false, got {flag!r}", "space", key)
    if log and low <= 0:
        raise problem(f"a log range needs low > 0, got {low!r}", "space", key)
    if integer and not (isinstance(low, int) and isinstance(high, int)):
        raise problem(f"an integer range needs whole-number bounds, got low {low!r}, high {high!r}", "space", key)
    return Range(low, high, log, integer)


def _parse_space(raw: Any, method: str, problem: _Problems) -> dict[str, Choices]:
    if not isinstance(raw, dict) or not raw:
        raise problem("expected a mapping of dotted config keys to a list of values (or, for random, a range "
                      "{low, high, log}), e.g. optimizer.learning_rate: [0.001, 0.01]", "space")
    space: dict[str, Choices] = {}
    for key, spec in raw.items():
        key = str(key)
        try:
            parse_key(key)
        except ValueError:
            raise problem("not a dotted config key; write e.g. optimizer.learning_rate or model.layers[0].units",
                          "space", key) from None
        if isinstance(spec, dict):
            space[key] = _parse_range(key, spec, method, problem)
        elif isinstance(spec, list):
            if not spec:
                raise problem("an empty list of values; give at least one", "space", key)
            for i, value in enumerate(spec):
                if value in spec[:i]:
                    raise problem(f"the value {_yaml_scalar(value)} is listed twice", "space", key)
            space[key] = spec
        else:
            raise problem(f"expected a list of values, e.g. [{_yaml_scalar(spec)}], or a range {{low, high, log}} "
                          f"(random only); got {type(spec).__name__} {spec!r}", "space", key)
    return space


def _plan(space: Mapping[str, Choices], method: str, budget: int | None, seed: int,
          warn: Callable[[str], None], problem: _Problems) -> list[dict[str, Any]]:
    """Each trial's values. Grid: every point, or a seeded subset of `budget` of them (in grid order). Random:
    `budget` draws; a space of lists only gives distinct points (the same point twice would repeat a run)."""
    keys = list(space)
    lists = [v for v in space.values() if isinstance(v, list)]
    rng = np.random.default_rng(seed)
    if len(lists) == len(keys):
        sizes = [len(v) for v in lists]
        total = math.prod(sizes)

        def point(index: int) -> dict[str, Any]:
            values = {}
            for key, choices in zip(reversed(keys), reversed(lists), strict=True):  # the first key varies slowest
                index, i = divmod(index, len(choices))
                values[key] = choices[i]
            return {key: values[key] for key in keys}

        if method == "grid":
            if budget is None and total > MAX_GRID:
                raise problem(f"the grid has {total:,} points; set trials: N to run N of them (chosen by seed), "
                              "or use method: random", "space")
            if budget is None or budget >= total:
                return [point(i) for i in range(total)]
            warn(f"{problem.source}: the grid has {total} points and trials is {budget}; running {budget} of "
                 f"them, chosen by seed {seed}")
            return [point(int(i)) for i in sorted(rng.choice(total, size=budget, replace=False))]
        assert budget is not None
        if budget > total:
            warn(f"{problem.source}: the space has only {total} distinct points; running each once instead of "
                 f"{budget} trials")
            budget = total
        return [point(int(i)) for i in rng.choice(total, size=budget, replace=False)]
    assert budget is not None
    plan = []
    for _ in range(budget):
        plan.append({key: (spec.draw(rng) if isinstance(spec, Range) else spec[int(rng.integers(len(spec)))])
                     for key, spec in space.items()})
    return plan


def load_sweep(path: str | Path, on_warning: Callable[[str], None] | None = None) -> Sweep:
    """Read and validate a sweep file, its base config and every planned trial; ConfigError says what is wrong.

    The base config's data is loaded once (`training.describe`), so a missing file or a metric the run cannot
    compute fails here, before any trial runs."""
    warn = on_warning or (lambda message: None)
    source = str(path)
    text, raw = read_yaml(path, "sweep")
    problem = _Problems(source, _line_index(text))
    if not isinstance(raw, dict):
        raise problem(f"expected a mapping with the keys {', '.join(SWEEP_KEYS)}; got {type(raw).__name__}")
    for key in raw:
        if key not in SWEEP_KEYS:
            hint = closest(str(key), SWEEP_KEYS)
            mean = f"did you mean '{hint}'? " if hint else ""
            raise problem(f"unknown key; {mean}(valid: {', '.join(SWEEP_KEYS)})", str(key))
    folder = Path(path).parent

    base_path = raw.get("base")
    if not isinstance(base_path, str) or not base_path:
        raise problem("missing the base config: base: PATH (relative to the sweep file's folder), e.g. "
                      "base: ../iris.yaml", *(["base"] if "base" in raw else []))
    metric = raw.get("metric")
    if not isinstance(metric, str) or not metric:
        raise problem("missing the metric that decides the best trial, e.g. metric: val_accuracy (maximised) or "
                      "metric: val_loss (minimised)", *(["metric"] if "metric" in raw else []))
    method = raw.get("method", "grid")
    if method not in METHODS:
        raise problem(unknown_name_message("method", method, METHODS), "method")
    budget = raw.get("trials")
    if budget is not None and (not isinstance(budget, int) or isinstance(budget, bool) or budget < 1):
        raise problem(f"expected a whole number of trials >= 1, got {budget!r}", "trials")
    if method == "random" and budget is None:
        raise problem("random search needs a budget: trials: N (how many draws)", "method")
    seed = raw.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise problem(f"expected a whole number >= 0, got {seed!r}", "seed")
    output = raw.get("output")
    if output is not None and (not isinstance(output, str) or not output):
        raise problem(f"expected a folder path, got {output!r}", "output")
    space = _parse_space(raw.get("space"), method, problem)

    base = Path(_normpath(folder / Path(base_path).expanduser()))
    try:
        config = load_config(base)
    except ConfigError as exc:
        raise problem(str(exc), "base") from None
    base_raw = yaml.safe_load(base.read_text(encoding="utf-8"))
    plan = _plan(space, method, budget, seed, warn, problem)
    _check_space_values(space, base, problem)
    for number, values in enumerate(plan, start=1):
        try:
            trial_config(base_raw, trial_overrides(values), base.parent, str(base))
        except ConfigError as exc:
            shown = ", ".join(f"{k}={_yaml_scalar(v)}" for k, v in values.items())
            raise problem(f"trial {number} ({shown}) is not a valid config: {exc}", "space") from None
    task, metrics = _base_run(config, warn)
    if metric not in metrics:
        hint = closest(metric, metrics)
        mean = f"did you mean '{hint}'? " if hint else ""
        why = ("the base config has no validation data (set data.validation_split > 0 or data.validation)"
               if metric.startswith("val_") and not any(m.startswith("val_") for m in metrics)
               else f"not a {task} metric")
        raise problem(f"cannot rank trials by '{metric}': {why}; {mean}(available: {', '.join(metrics)})", "metric")
    return Sweep(source, base, base_raw, metric, method, budget, seed, space,
                 None if output is None else Path(_normpath(folder / Path(output).expanduser())), plan, task, metrics)


def _normpath(path: Path) -> str:
    return os.path.normpath(path)


def _check_space_values(space: Mapping[str, Choices], base: Path, problem: _Problems) -> None:
    """Each key with each of its values (a range: both bounds) on the base config alone, so a typo in a key or
    a value the config rejects is named precisely."""
    for key, spec in space.items():
        if isinstance(spec, Range):  # draws are whole numbers only with `integer`
            values = [int(spec.low), int(spec.high)] if spec.integer else [float(spec.low), float(spec.high)]
        else:
            values = spec
        for value in values:
            try:
                load_config(base, [f"{key}={_yaml_scalar(value)}"])
            except ConfigError as exc:
                reason = str(exc).removeprefix("--set ")
                hint = ("; for whole numbers, add integer: true to the range"
                        if isinstance(spec, Range) and not spec.integer and "integer" in reason else "")
                raise problem(f"{_yaml_scalar(value)} is rejected by the base config {base}: {reason}{hint}",
                              "space", key) from None


def _base_run(config: Config, warn: Callable[[str], None]) -> tuple[str, list[str]]:
    """The base config's task and the final metrics its run reports (loads the data once)."""
    from nnctl.training import describe, final_metrics

    dataset = describe(config, warn)[0]
    return dataset.target.task, final_metrics(dataset.target.task, dataset.validation is not None)


def sweep_output(sweep: Sweep, override: str | Path | None) -> Path:
    """`-o` (relative to the current directory) wins; then the file's `output`; else `<sweep name>-sweep`."""
    if override is not None:
        return Path(override)
    if sweep.output is not None:
        return sweep.output
    return Path(Path(sweep.source).stem + "-sweep")


# --- one trial (runs on a worker) ------------------------------------------------------------------------


def trial_config(base: str | Mapping[str, Any], overrides: Sequence[str], base_dir: str | Path,
                 source: str = "<base config>") -> Config:
    """A config from the base config's YAML text (or parsed mapping) plus `--set` overrides; relative paths
    in it resolve against `base_dir`. No file is read, so this works on a worker without the config file."""
    raw = yaml.safe_load(base) if isinstance(base, str) else copy.deepcopy(dict(base))
    return config_from(raw, source, Path(base_dir), overrides)


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

    def on_start(self, info: dict[str, Any]) -> None:
        self._send({"epoch": 0, "epochs": info["epochs"]})

    def on_epoch(self, stats: EpochStats) -> None:
        if time.monotonic() - self.sent >= 1.0:
            self._send({"epoch": stats.epoch, "epochs": stats.epochs})


def run_trial(base: str | Mapping[str, Any], overrides: Sequence[str], base_dir: str, source: str = "<base config>",
              topic: str | None = None, number: int | None = None) -> dict[str, Any]:
    """Train one trial without saving; its final metrics, seconds and the model as .npz bytes.

    A pure function of its arguments (the data files aside), for a Dask worker anywhere: the model travels
    back as bytes, not as a file. `topic` and `number` let a Dask worker report progress to the client."""
    from nnctl.training import train

    started = time.perf_counter()
    config = trial_config(base, overrides, base_dir, source)
    result = train(config, callback=_Progress(topic, number), save=False)
    with tempfile.TemporaryDirectory(prefix="nnctl-trial-") as folder:
        path = Path(folder) / "model.npz"
        result.model.save(path)  # the model file format, written by the one function that writes it
        model = path.read_bytes()
    summary = result.summary()
    summary.pop("output", None)
    return {"summary": summary, "seconds": time.perf_counter() - started, "model": model}


# --- running a sweep -------------------------------------------------------------------------------------


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
            values = [v if isinstance(v, str | int | float) and not isinstance(v, bool) else _yaml_scalar(v)
                      for v in t.values.values()]
            metrics = [_cell(t.summary.get(m)) for m in (sweep.metric, *others)]
            writer.writerow([t.number, t.status, *values, *metrics, _cell(t.summary.get("epochs")),
                             _cell(t.summary.get("best_epoch")),
                             "" if t.seconds is None else f"{t.seconds:.3f}", t.error or ""])
        return buffer.getvalue()


def _cell(value: Any) -> str:
    return "" if value is None else str(value)


def _better(trial: Trial, best: Trial | None, metric: str, mode: str) -> bool:
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


class _Writer:
    """results.csv, results.json and best.npz in the output folder, each replaced atomically."""

    def __init__(self, output: Path) -> None:
        self.output = output
        try:
            output.mkdir(parents=True, exist_ok=True)
        except FileExistsError:
            raise InputError(f"{output}: exists and is not a folder; give a folder for the sweep's results "
                             "(-o DIR)") from None
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


@contextlib.contextmanager
def _quiet_dask(debug: bool) -> Iterator[None]:
    """Dask's own logging and warnings stay off stderr unless `debug`."""
    if debug:
        yield
        return
    from distributed.utils import silence_logging_cmgr

    with silence_logging_cmgr(logging.CRITICAL), warnings.catch_warnings():
        warnings.filterwarnings("ignore", module=r"(distributed|dask)(\.|$)")
        yield


def _check_address(address: str) -> None:
    """A malformed scheduler address is a one-line input error, before any connection attempt."""
    from distributed.comm import parse_address, parse_host_port
    from distributed.comm.registry import get_backend

    try:
        scheme, location = parse_address(address)
        get_backend(scheme)
        if scheme in ("tcp", "tls"):
            parse_host_port(location)
    except (ValueError, TypeError) as exc:
        raise InputError(f"--scheduler {address}: not a scheduler address ({exc}); expected e.g. "
                         "tcp://HOST:8786") from None


def dask_setup(worker: Any) -> None:
    """Dask preload for the embedded cluster's worker processes: ignore SIGINT. A Ctrl-C on the terminal
    reaches the whole process group; the client cancels the trials and closes the cluster, and workers
    interrupted on their own would only print tracebacks."""
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def _workers(client: Any) -> str:
    n = len(client.scheduler_info().get("workers", {}))
    return f"{n} worker{'s' if n != 1 else ''}"


@contextlib.contextmanager
def _client(scheduler: str | None, client: Any, workers: int | None, debug: bool,
            connect_timeout: float) -> Iterator[tuple[Any, str]]:
    """A Dask client, and a description of its cluster: the one given, one connected to `scheduler`, or an
    embedded LocalCluster of `workers` processes (one thread each, no dashboard). What it starts, it closes."""
    distributed = require_distributed()
    if client is not None:
        yield client, f"the cluster at {client.scheduler.address} ({_workers(client)})"
        return
    if scheduler is not None:
        _check_address(scheduler)
        try:
            connected = distributed.Client(scheduler, timeout=connect_timeout, set_as_default=False)
        except (OSError, TimeoutError) as exc:
            detail = "" if "timed out" in str(exc).lower() else f" ({one_line(exc)})"
            raise InputError(f"--scheduler {scheduler}: no Dask scheduler answered within {connect_timeout:g} s"
                             f"{detail}; is the cluster running, and is the address right?") from None
        try:
            yield connected, f"the cluster at {scheduler} ({_workers(connected)})"
        finally:
            with contextlib.suppress(Exception):
                connected.close()
        return
    n = workers or os.cpu_count() or 1
    cluster = distributed.LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None,
                                       silence_logs=logging.WARNING if debug else logging.CRITICAL,
                                       preload=[__name__])  # dask_setup below: Ctrl-C is the client's to handle
    try:
        local = distributed.Client(cluster, set_as_default=False)
        try:
            yield local, f"a local cluster of {n} worker process{'es' if n != 1 else ''}"
        finally:
            with contextlib.suppress(Exception):
                local.close()
    finally:
        with contextlib.suppress(Exception):
            cluster.close()


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
    if workers is not None and workers < 1:
        raise InputError(f"--workers {workers}: needs at least 1")
    writer = _Writer(Path(output))
    trials = [Trial(number, dict(values)) for number, values in enumerate(sweep.plan, start=1)]
    started = time.perf_counter()
    result = SweepResult(sweep, trials, None, Path(output), 0.0, "")
    try:
        timeout = CONNECT_TIMEOUT if connect_timeout is None else connect_timeout
        with _quiet_dask(debug), _client(scheduler, client, workers, debug, timeout) as (dask, where):
            result.cluster = where
            # a stale best.npz from an earlier sweep in this folder must not pass for this one's
            (Path(output) / BEST_MODEL).unlink(missing_ok=True)
            _run(sweep, dask, trials, result, writer, callback, started)
    except KeyboardInterrupt:
        for trial in trials:
            if not trial.finished:
                trial.status = "cancelled"
        result.seconds = time.perf_counter() - started
        result.interrupted = True
        writer.results(result)
        done = sum(t.status in ("done", "failed") for t in trials)
        raise TrainingInterrupted(f"interrupted after {done} of {len(trials)} trials; the finished trials' results "
                                  f"are in {Path(output) / RESULTS_CSV}") from None
    result.seconds = time.perf_counter() - started
    writer.results(result)
    return result


def _run(sweep: Sweep, client: Any, trials: list[Trial], result: SweepResult, writer: _Writer,
         callback: SweepCallback, started: float) -> None:
    from distributed import as_completed

    events: queue.Queue[Any] = queue.Queue()
    topic = f"nnctl-sweep-{uuid.uuid4().hex}"
    client.subscribe_topic(topic, events.put)
    base_dir = str(sweep.base.resolve().parent)
    futures: dict[Any, Trial] = {}
    try:
        for trial in trials:
            future = client.submit(run_trial, sweep.base_raw, sweep.overrides(trial.values), base_dir,
                                   str(sweep.base), topic, trial.number, pure=False,
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


def _finish(trial: Trial, future: Any, sweep: Sweep, result: SweepResult, writer: _Writer) -> None:
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
    if _better(trial, result.best, sweep.metric, sweep.mode):
        writer.model(outcome["model"])
        result.best = trial
