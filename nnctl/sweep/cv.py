"""Cross-validation (`nnctl cv`): the config trained from scratch on each fold's training rows, with preprocessing
fitted on them alone, and scored on the fold's held-out rows.

The labelled rows of `data.train` are split once per repeat (`nnctl.data.folds`: stratified for classification,
grouped when a group column is given); each fold's rows are written to a temporary training and held-out CSV
(plain comma-separated UTF-8, whatever the original's dialect). A fold is an ordinary `train` run on its
training rows — early stopping splits its validation rows off them, as `data.validation_split` says, so no
choice is made on the scored rows — and `evaluate` on its held-out rows, reported under the names training
gives validation metrics (`val_accuracy`, `val_loss`, ...). The folds run one after another, each with the
config's seed; it lives beside the sweep because it scores with `nnctl.inference`, a sibling of training, and
its folds are trials the sweep's Dask machinery can run. Out-of-fold predictions, one per labelled row in the
input order, come from each fold's model on its held-out rows.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nnctl.config.schema import Config
from nnctl.data.fit import labels_of, transform
from nnctl.data.folds import Fold, make_folds
from nnctl.data.reader import config_dialect, read_csv, require_columns
from nnctl.data.rules import configured_columns, drop_unlabelled, loss_name
from nnctl.engine.losses import LOSSES
from nnctl.errors import ConfigError
from nnctl.inference.predict import evaluate
from nnctl.model.model import Model
from nnctl.training.events import Callback
from nnctl.training.run import train


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
                   on_fold: Callable[[FoldScores, int], None] | None = None,
                   callback: Callable[[], Callback] | None = None, predictions: bool = False) -> CvResult:
    """Train the config on each of `folds` x `repeats` folds of its training CSV's labelled rows and score each on
    its held-out rows. `group` names a column whose values never span training and validation. `on_fold(scores,
    total)` hears of each finished fold; `callback()` makes each fold's training callback."""
    if folds < 2 or repeats < 1:
        raise ConfigError(f"{{folds}} must be at least 2 and {{repeats}} at least 1 (got {folds} and {repeats})",
                          arguments=("folds", "repeats"))
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
    out: pd.DataFrame | None = None
    scores: list[FoldScores] = []
    with tempfile.TemporaryDirectory(prefix="nnctl-cv-") as folder:
        for fold in plan:
            model, result = _run_fold(config, frame, fold, Path(folder), callback)
            scores.append(result)
            if predictions and fold.repeat == repeats:
                out = _predict(model, frame, fold, out)
            if on_fold is not None:
                on_fold(result, len(plan))
    return CvResult(task, scores, out)


def _run_fold(config: Config, frame: pd.DataFrame, fold: Fold, folder: Path,
              callback: Callable[[], Callback] | None) -> tuple[Model, FoldScores]:
    train_csv, validation_csv = folder / "train.csv", folder / "validation.csv"
    frame.iloc[fold.train].to_csv(train_csv, index=False)
    frame.iloc[fold.validation].to_csv(validation_csv, index=False)
    # The held-out rows are only scored: early stopping (and any validation the config asks for) splits its own
    # rows off the fold's training rows, as `data.validation_split` says, so nothing is chosen on the scored rows.
    data = config.data.model_copy(update={"train": str(train_csv), "validation": None, "delimiter": None,
                                          "decimal": None, "encoding": None, "cache": False})
    fold_config = config.model_copy(update={"data": data})
    started = time.perf_counter()
    result = train(fold_config, callback=callback() if callback else None, save=False)
    scores = evaluate(result.model, validation_csv)
    metrics = {f"val_{k}": float(v) for k, v in scores.items() if k not in ("rows", "confusion_matrix")}
    return result.model, FoldScores(fold.repeat, fold.number, len(fold.train), len(fold.validation),
                                    time.perf_counter() - started, metrics)


def _predict(model: Model, frame: pd.DataFrame, fold: Fold, out: pd.DataFrame | None) -> pd.DataFrame:
    """The fold's held-out rows' predictions written into `out` (made on the first fold)."""
    target = model.target
    if out is None:
        classes = target.task == "classification"
        columns: dict[str, Any] = {target.name: pd.Series([None] * len(frame), dtype=object) if classes
                                   else np.full(len(frame), np.nan)}
        if classes:
            columns.update({f"proba_{label}": np.full(len(frame), np.nan) for label in target.classes})
        out = pd.DataFrame({**columns, "fold": np.zeros(len(frame), np.int64)})
    rows = frame.iloc[fold.validation]
    A = model.output(transform(model.preprocessor, rows, model.network.dtype, "<fold>"))
    if target.task == "classification":
        out.loc[fold.validation, target.name] = [target.classes[i] for i in target.class_indices(A).tolist()]
        P = target.probabilities(A).astype(np.float64)
        for j, label in enumerate(target.classes):
            out.loc[fold.validation, f"proba_{label}"] = P[:, j]
    else:
        out.loc[fold.validation, target.name] = target.values(A)
    out.loc[fold.validation, "fold"] = fold.number
    return out
