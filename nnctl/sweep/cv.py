"""Cross-validation (`nnctl cv`): the config trained from scratch on each fold's training rows, with preprocessing
fitted on them alone, and scored on the fold's held-out rows.

The labelled rows of `data.train` are split once per repeat (`nnctl.data.folds`: stratified for classification,
grouped when a group column is given); each fold's rows are written to a temporary training and held-out CSV
(plain comma-separated UTF-8, whatever the original's dialect). A fold is an ordinary `train` run on its
training rows — early stopping splits its validation rows off them, as `data.validation_split` says, so no
choice is made on the scored rows — and `evaluate` on its held-out rows, reported under the names training
gives validation metrics (`val_accuracy`, `val_loss`, ...). Each fold trains with the config's seed, a pure
function of its rows, so where it runs changes no bit. It lives beside the sweep because it scores with
`nnctl.inference`, a sibling of training, and its folds are trials the sweep's Dask machinery can run: on a
scheduler, on an embedded cluster of `workers` processes, or — by default — here, until the first fold's time
says the rest would take more than AUTO_PARALLEL_SECONDS; then, with the `sweep` extra installed and more than
one core, the rest run on an embedded cluster (it costs about 4 s to start on 2 cores: small runs stay here).
Out-of-fold predictions, one per labelled row in the input order, come from each fold's model on its held-out
rows.
"""

from __future__ import annotations

import importlib.util
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nnctl.config.schema import Config
from nnctl.data.dialects import config_dialect
from nnctl.data.fit import labels_of
from nnctl.data.folds import Fold, make_folds
from nnctl.data.reader import read_csv, require_columns
from nnctl.data.rules import configured_columns, drop_unlabelled, loss_name
from nnctl.engine.losses import LOSSES
from nnctl.errors import ConfigError
from nnctl.inference.predict import Evaluation, evaluation
from nnctl.model.model import Model
from nnctl.training.mlflow_run import MlflowRun
from nnctl.training.run import train
from nnctl.training.tracking import TrackAs, parent_run

AUTO_PARALLEL_SECONDS = 8.0  # the rest of the folds' expected time above which an embedded cluster pays for itself


@dataclass
class FoldScores:
    """One fold's validation metrics (`val_*`, as training names them) and its size."""

    repeat: int
    fold: int
    rows_train: int
    rows_validation: int
    seconds: float
    metrics: dict[str, float]

    def record(self) -> dict[str, Any]:
        return {"repeat": self.repeat, "fold": self.fold, "rows_train": self.rows_train,
                "rows_validation": self.rows_validation, "seconds": round(self.seconds, 3), **self.metrics}


@dataclass
class CvResult:
    """Every fold's scores, their mean and standard deviation (sample, ddof 1) per metric, and the out-of-fold
    predictions (`predictions`: one row per labelled row, in the input order; the last repeat's)."""

    task: str
    folds: list[FoldScores]
    predictions: pd.DataFrame | None = None
    mean: dict[str, float] = field(default_factory=dict)
    std: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in self.folds[0].metrics:
            values = [f.metrics[name] for f in self.folds if name in f.metrics]
            self.mean[name] = statistics.fmean(values)
            self.std[name] = statistics.stdev(values) if len(values) > 1 else 0.0

    def to_json(self) -> dict[str, Any]:
        return {"folds": [f.record() for f in self.folds], "mean": self.mean, "std": self.std}


def cross_validate(config: Config, folds: int = 5, repeats: int = 1, group: str | None = None,
                   on_fold: Callable[[FoldScores, int], None] | None = None, predictions: bool = False,
                   scheduler: str | None = None, workers: int | None = None, parallel: bool = True,
                   tracking: bool = True, on_warning: Callable[[str], None] | None = None) -> CvResult:
    """Train the config on each of `folds` x `repeats` folds of its training CSV's labelled rows and score each on
    its held-out rows. `group` names a column whose values never span training and validation. `on_fold(scores,
    total)` hears of each finished fold. The folds run on Dask at `scheduler`, or on an embedded cluster of
    `workers` processes (the `sweep` extra; `workers=1`: here, one after another), or else here and, with
    `parallel` and the first fold slow enough, the rest on an embedded cluster (see the module docstring).
    With `tracking` and the config's `tracking.mlflow`, the cross-validation is an MLflow run (each fold's held-out
    metrics at step = the fold's position, their `mean_*` and `std_*`) and each fold a run nested under it;
    `on_warning` hears when MLflow cannot be reached."""
    if folds < 2 or repeats < 1:
        raise ConfigError(f"{{folds}} must be at least 2 and {{repeats}} at least 1 (got {folds} and {repeats})",
                          arguments=("folds", "repeats"))
    group = group or config.data.group
    path = str(config.resolve(config.data.train))
    frame = read_csv(path, config_dialect(config, path))
    configured_columns(config, frame, [config.data.target], path, "target")
    if group is not None:
        require_columns(frame, [group], path, "group")
    frame = drop_unlabelled(frame, config.data.target)[0].reset_index(drop=True)
    task = LOSSES[loss_name(config, frame[config.data.target], None)].task
    classes = np.unique(labels_of(frame[config.data.target]), return_inverse=True)[1] \
        if task == "classification" else None
    groups = frame[group].astype(str).to_numpy() if group is not None else None
    plan = make_folds(len(frame), folds, repeats, np.random.default_rng(config.seed), classes, groups, path)
    parent = parent_run(config, "cv", f"cv {Path(config.source).stem}", on_warning or (lambda _: None),
                        {"cv": {"folds": folds, "repeats": repeats, "group": group}}) if tracking else None
    parent_id = parent.run_id if parent is not None else None
    jobs = [(config, frame.iloc[f.train].to_csv(index=False), frame.iloc[f.validation].to_csv(index=False),
             len(f.train), f.repeat, f.number, predictions and f.repeat == repeats, parent_id) for f in plan]
    try:
        result = _folds(plan, jobs, task, len(frame), on_fold, scheduler, workers, parallel, parent)
    except BaseException as exc:
        if parent is not None:
            parent.end("KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED")
        raise
    if parent is not None:
        parent.log_metrics([(0, {**{f"mean_{k}": v for k, v in result.mean.items()},
                                 **{f"std_{k}": v for k, v in result.std.items()}})])
        parent.end("FINISHED")
    return result


def _folds(plan: list[Fold], jobs: list[tuple[Any, ...]], task: str, n: int,
           on_fold: Callable[[FoldScores, int], None] | None, scheduler: str | None, workers: int | None,
           parallel: bool, parent: MlflowRun | None) -> CvResult:
    """Run the folds' jobs where `cross_validate` says; each fold's held-out metrics to the parent MLflow run."""
    if scheduler or (workers or 1) > 1:
        done = _on_dask(jobs, scheduler, workers)
    else:
        done = _here_then_cluster(jobs, parallel and workers is None)
    scores: list[FoldScores] = []
    out: pd.DataFrame | None = None
    for step, (fold, (result, predicted)) in enumerate(zip(plan, done, strict=True), start=1):
        scores.append(result)
        if parent is not None:
            parent.log_metrics([(step, result.metrics)])
        if predicted is not None:
            out = _place(predicted, fold, out, n)
        if on_fold is not None:
            on_fold(result, len(plan))
    return CvResult(task, scores, out)


def run_fold(config: Config, train_csv: str, held_csv: str, rows_train: int, repeat: int, number: int,
             predictions: bool, mlflow_parent: str | None = None) -> tuple[FoldScores, pd.DataFrame | None]:
    """One fold, a pure function of its arguments for a Dask worker anywhere: train the config on the rows of
    `train_csv` (CSV text), score it on `held_csv`'s, and (with `predictions`) predict those rows. With
    `mlflow_parent` (the cross-validation's MLflow run id), the fold's training is a run nested under it."""
    with tempfile.TemporaryDirectory(prefix="nnctl-cv-") as folder:
        train_path, held_path = Path(folder) / "train.csv", Path(folder) / "held_out.csv"
        train_path.write_text(train_csv, encoding="utf-8")
        held_path.write_text(held_csv, encoding="utf-8")
        # The held-out rows are only scored: early stopping (or a plateau schedule) splits its own rows off the
        # fold's training rows, as `data.validation_split` says, so nothing is chosen on them; a config that
        # chooses nothing by validation trains on all of the fold's training rows.
        split = config.data.validation_split if _chooses_by_validation(config) else 0.0
        data = config.data.model_copy(update={"train": str(train_path), "validation": None, "delimiter": None,
                                              "decimal": None, "encoding": None, "cache": False,
                                              "validation_split": split})
        started = time.perf_counter()
        name = f"fold {number}" if repeat == 1 else f"repeat {repeat} fold {number}"
        result = train(config.model_copy(update={"data": data}), save=False, tracking=TrackAs(mlflow_parent, name))
        scored = evaluation(result.model, held_path)  # one pass over the held-out rows: scores and predictions
    scores = scored.scores
    metrics = {f"val_{k}": v for k, v in scored.metrics.items()}
    fold = FoldScores(repeat, number, rows_train, int(scores["rows"]), time.perf_counter() - started, metrics)
    return fold, _predictions(result.model, scored) if predictions else None


def _chooses_by_validation(config: Config) -> bool:
    """Whether training decides anything from validation rows: early stopping, or a plateau schedule."""
    return config.training.early_stopping is not None or config.schedule.name == "plateau"


def _here_then_cluster(jobs: list[tuple[Any, ...]], parallel: bool) -> Iterator[Any]:
    """The folds' results in plan order: the first computed here; the rest here too, or, with `parallel`, Dask
    installed, more than one core and the first fold's time times the rest above AUTO_PARALLEL_SECONDS, on an
    embedded cluster of a process per core."""
    started = time.perf_counter()
    yield run_fold(*jobs[0])
    rest = jobs[1:]
    cores = os.cpu_count() or 1
    expected = (time.perf_counter() - started) * len(rest)
    if (parallel and rest and cores > 1 and expected > AUTO_PARALLEL_SECONDS
            and importlib.util.find_spec("distributed") is not None):
        yield from _on_dask(rest, None, min(cores, len(rest)))
    else:
        yield from (run_fold(*job) for job in rest)


def _on_dask(jobs: list[tuple[Any, ...]], scheduler: str | None, workers: int | None) -> Iterator[Any]:
    """The folds' results in plan order, computed as Dask futures on the sweep's clusters."""
    from nnctl.sweep.cluster import dask_client

    with dask_client(scheduler, workers) as client:
        futures = [client.submit(run_fold, *job, pure=False) for job in jobs]
        for future in futures:
            yield future.result()


def _predictions(model: Model, scored: Evaluation) -> pd.DataFrame:
    """The held-out rows' predictions, as `evaluate` made them: the prediction (named after the target, classes at
    the model's threshold), then `proba_<label>` per class."""
    target = model.target
    if scored.probabilities is None:
        return pd.DataFrame({target.name: scored.predicted})
    P = scored.probabilities
    labels = [target.classes[i] for i in scored.predicted.tolist()]
    return pd.DataFrame({target.name: pd.Series(labels, dtype=object),
                         **{f"proba_{label}": P[:, j] for j, label in enumerate(target.classes)}})


def _place(predicted: pd.DataFrame, fold: Fold, out: pd.DataFrame | None, n: int) -> pd.DataFrame:
    """A fold's predictions written into the rows it held out of `out` (made on the first fold, n rows)."""
    if out is None:
        out = pd.DataFrame({column: pd.Series([None] * n, dtype=object) if predicted[column].dtype == object
                            else np.full(n, np.nan) for column in predicted.columns})
        out["fold"] = np.zeros(n, np.int64)
    for column in predicted.columns:
        out.loc[fold.validation, column] = predicted[column].to_numpy()
    out.loc[fold.validation, "fold"] = fold.number
    return out
