"""Hyperparameter sweeps, the sweep file: a base config, a search space over dotted keys, and its trial plan.

A sweep file (YAML; paths relative to its folder) names the base config, the metric that decides the best
trial, the search method (`grid` or `random`), a trial budget, a seed for the draws and the space:

    base: ../iris.yaml
    metric: val_accuracy              # maximised or minimised as `schedules.monitor_mode` says
    method: random                    # grid | random
    trials: 12                        # random: this many draws; grid: at most this many points
    seed: 0
    space:
      optimizer.learning_rate: {low: 1e-4, high: 1e-1, log: true}       # a range (random only)
      model.layers[0].units: [8, 16, 32]                                 # a list of choices
    output: ../../sweeps/iris         # results.csv, results.json, best.npz
    cv: 5                             # optional: rank trials by the mean of 5 cross-validation folds

`load_sweep` validates all of it before anything runs: the file's keys and types, every space key and value
against the base config (with the config module's `--set` machinery), every planned trial's whole config,
and that the base config's run computes the metric. Each trial is the base config plus its values as
`--set`-style overrides, plus `training.threads=1` (parallel trials must not oversubscribe the cores) and no
checkpoints. Trials keep the base config's `seed`, so they differ only by their hyperparameters (put `seed`
in the space to sweep it). `nnctl.sweep.trials` runs them on Dask distributed.
"""

from __future__ import annotations

import copy
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from nnctl.config.load import config_from, load_config, parse_key, parse_text, read_yaml
from nnctl.config.safe_yaml import dump_scalar
from nnctl.config.schema import Config
from nnctl.config.sections import key_line
from nnctl.engine.schedules import monitor_mode
from nnctl.errors import ConfigError, OverrideError, require
from nnctl.registry import not_found, unknown_name_message
from nnctl.training.setup import describe, final_metrics

__all__ = ["Range", "Sweep", "load_sweep", "require_distributed", "sweep_output", "trial_config", "trial_overrides"]

SWEEP_KEYS = ("base", "metric", "method", "trials", "seed", "space", "output", "cv")
METHODS = ("grid", "random")
RANGE_KEYS = ("low", "high", "log", "integer")
# Every trial: one BLAS thread (trials run side by side) and no checkpoint files (trials would share them).
# The space's own values come after these, so a swept key wins.
TRIAL_SETTINGS = ("training.threads=1", "training.checkpoint=", "training.checkpoint_every=")
CONNECT_TIMEOUT = 5.0  # seconds to reach an existing scheduler before giving up
MAX_GRID = 10_000  # a bigger grid needs an explicit `trials` budget (every planned trial is validated up front)


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
    cv: int | None = None  # rank by the mean of this many cross-validation folds' val_* metrics

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
            "method": self.method, "trials": self.budget, "seed": self.seed, "cv": self.cv,
            "space": {k: v.to_json() if isinstance(v, Range) else v for k, v in self.space.items()},
        }


def trial_overrides(values: Mapping[str, Any]) -> list[str]:
    """A trial's `--set` assignments: the trial settings, then its values."""
    return [*TRIAL_SETTINGS, *(f"{key}={yaml_scalar(value)}" for key, value in values.items())]


def yaml_scalar(value: Any) -> str:
    """A value as `--set` text that the config loader reads back as the same value (`'1e-3'` stays a string)."""
    return dump_scalar(value)


class _Problems:
    """Builds the one-line ConfigErrors about a sweep file: `FILE:LINE: KEY: what is wrong`."""

    def __init__(self, source: str, lines: Mapping[tuple[str | int, ...], int]) -> None:
        self.source, self.lines = source, lines

    def __call__(self, message: str, *where: str, arguments: tuple[str, ...] = ()) -> ConfigError:
        line = key_line(self.lines, where)
        prefix = f"{self.source}:{line}" if line else self.source
        key = f" {': '.join(where)}:" if where else ""  # `space: model.layers[0].units:`
        return ConfigError(f"{prefix}:{key} {message}", arguments=arguments)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _parse_range(key: str, spec: Mapping[Any, Any], method: str, problem: _Problems) -> Range:
    for name in spec:
        if name not in RANGE_KEYS:
            raise problem(not_found(f"unknown range key '{name}'", name, RANGE_KEYS), "space", key)
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
                    raise problem(f"the value {yaml_scalar(value)} is listed twice", "space", key)
            space[key] = spec
        else:
            raise problem(f"expected a list of values, e.g. [{yaml_scalar(spec)}], or a range {{low, high, log}} "
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


def trial_config(base: str | Mapping[str, Any], overrides: Sequence[str], base_dir: str | Path,
                 source: str = "<base config>") -> Config:
    """A config from the base config's YAML text (or parsed mapping) plus `--set` overrides; relative paths
    in it resolve against `base_dir`. No file is read, so this works on a worker without the config file."""
    raw = parse_text(base, source)[0] if isinstance(base, str) else copy.deepcopy(dict(base))
    return config_from(raw, source, Path(base_dir), overrides)


def load_sweep(path: str | Path, on_warning: Callable[[str], None] | None = None) -> Sweep:
    """Read and validate a sweep file, its base config and every planned trial; ConfigError says what is wrong.

    The base config's data is loaded once (`nnctl.training.setup.describe`), so a missing file or a metric the run
    cannot compute fails here, before any trial runs."""
    warn = on_warning or (lambda message: None)
    source = str(path)
    raw, lines = read_yaml(path, "sweep")
    problem = _Problems(source, lines)
    if not isinstance(raw, dict):
        raise problem(f"expected a mapping with the keys {', '.join(SWEEP_KEYS)}; got {type(raw).__name__}")
    for key in raw:
        if key not in SWEEP_KEYS:
            raise problem(not_found("unknown key", key, SWEEP_KEYS), str(key))
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
    cv = raw.get("cv")
    if cv is not None and (not isinstance(cv, int) or isinstance(cv, bool) or cv < 2):
        raise problem(f"expected a whole number of folds >= 2, got {cv!r}", "cv")

    base = Path(_normpath(folder / Path(base_path).expanduser()))
    try:
        config = load_config(base)
    except ConfigError as exc:
        raise problem(str(exc), "base") from None
    base_raw = read_yaml(base)[0]  # as load_config read it
    plan = _plan(space, method, budget, seed, warn, problem)
    _check_space_values(space, base, problem)
    for number, values in enumerate(plan, start=1):
        try:
            trial_config(base_raw, trial_overrides(values), base.parent, str(base))
        except ConfigError as exc:
            shown = ", ".join(f"{k}={yaml_scalar(v)}" for k, v in values.items())
            raise problem(f"trial {number} ({shown}) is not a valid config: {exc.template}", "space",
                          arguments=exc.arguments) from None
    task, metrics = _base_run(config, warn)
    if cv is not None:  # the folds' held-out rows give every validation metric, whatever the base config's split
        metrics = final_metrics(task, True)
    if metric not in metrics:
        why = ("the base config has no validation data (set data.validation_split > 0 or data.validation)"
               if metric.startswith("val_") and not any(m.startswith("val_") for m in metrics)
               else f"not a {task} metric")
        raise problem(not_found(f"cannot rank trials by '{metric}': {why}", metric, metrics, "available"), "metric")
    return Sweep(source, base, base_raw, metric, method, budget, seed, space,
                 None if output is None else Path(_normpath(folder / Path(output).expanduser())), plan, task, metrics,
                 cv)


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
                load_config(base, [f"{key}={yaml_scalar(value)}"])
            except ConfigError as exc:
                reason = f"{exc.subject}: {exc.problem}" if isinstance(exc, OverrideError) else str(exc)
                hint = ("; for whole numbers, add integer: true to the range"
                        if isinstance(spec, Range) and not spec.integer and "integer" in reason else "")
                raise problem(f"{yaml_scalar(value)} is rejected by the base config {base}: {reason}{hint}",
                              "space", key) from None


def _base_run(config: Config, warn: Callable[[str], None]) -> tuple[str, list[str]]:
    """The base config's task and the final metrics its run reports (loads the data once)."""
    dataset = describe(config, warn).dataset
    return dataset.target.task, final_metrics(dataset.target.task, dataset.validation is not None)


def sweep_output(sweep: Sweep, override: str | Path | None) -> Path:
    """The `override` folder (relative to the current directory) wins; then the file's `output`; else
    `<sweep name>-sweep`."""
    if override is not None:
        return Path(override)
    if sweep.output is not None:
        return sweep.output
    return Path(Path(sweep.source).stem + "-sweep")
