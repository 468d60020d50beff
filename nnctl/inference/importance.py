"""Permutation importance: how much a model's score drops when one raw column's values are shuffled across rows.

Preprocessing works column by column (a number and its missing indicator, a category's one-hot group, a date's
parts), so shuffling a raw column is shuffling the rows of that column's block of network inputs: DATA is read and
transformed once, then for each repeat and each column the block is permuted in a reused copy of X and the
network runs one forward pass. A categorical column (its whole one-hot group) and a date (all its parts) are
permuted as one, and reported once.

Importance is the drop in the metric, signed so that positive always means "the model needs this column":
baseline - permuted for a metric where higher is better (accuracy, R², ...), permuted - baseline for one where
lower is better (loss, log loss, MAE, ...). Its mean and sample standard deviation over the repeats are reported.

A file is read in chunks of `CHUNK_ROWS` rows, and rows are permuted within their chunk (so for a file of more
rows than that, a column's values are shuffled within each block of `CHUNK_ROWS` rows); the scores are merged over
the chunks (`nnctl.engine.metrics.Scores`), so memory stays that of a chunk however big the file. The random
draws follow one generator (`seed`) in a fixed order: per chunk, per repeat, per column in the model's feature
order, one `rng.permutation(rows of the chunk)`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nnctl.dialect import Settings, sniff
from nnctl.engine.metrics import EVERY_ROW, HIGHER_IS_BETTER, Scores, metric_names
from nnctl.errors import DataError, InputError
from nnctl.model.model import Model
from nnctl.model.preprocessing import Unseen
from nnctl.registry import not_found

CHUNK_ROWS = 100_000  # rows read, transformed and permuted at a time
DEFAULT_METRIC = {"classification": "accuracy", "regression": "r2"}  # scikit-learn's `score` of each task


@dataclass
class ColumnImportance:
    """One raw column: the drop in the metric when it is shuffled, once per repeat (positive: the model needs it)."""

    name: str
    kind: str  # "numeric" | "categorical" | "date"
    inputs: int  # the network inputs it feeds (a one-hot group's width, a date's parts, a missing indicator)
    drops: list[float]  # per repeat

    @property
    def mean(self) -> float:
        return float(np.mean(self.drops))

    @property
    def std(self) -> float | None:
        """Sample standard deviation of the drops (ddof 1, as `nnctl cv`'s sd); None with a single repeat."""
        return float(np.std(self.drops, ddof=1)) if len(self.drops) > 1 else None


@dataclass
class Importance:
    """Permutation importance of every raw column of a model on a labelled CSV, most important first."""

    metric: str
    baseline: float  # the metric on the rows as they are
    higher_is_better: bool
    rows: int
    repeats: int
    seed: int
    chunks: int  # how many chunks of at most `chunk_rows` rows the rows were read (and permuted) in
    chunk_rows: int
    weighted_by: str | None  # data.weight's column, when the rows were weighed by it
    columns: list[ColumnImportance]

    @property
    def passes(self) -> int:
        """Forward passes over the rows: one for the baseline, then one per column per repeat."""
        return 1 + self.repeats * len(self.columns)

    def to_json(self) -> dict[str, Any]:
        """`{"metric", "baseline", "importance": {column: {"mean", "std"}}}`, columns most important first."""
        return {"metric": self.metric, "baseline": self.baseline,
                "importance": {c.name: {"mean": c.mean, "std": c.std} for c in self.columns}}


def choose_metric(model: Model, metric: str | None) -> str:
    """The metric to score by: `metric` when it is one of `evaluate`'s for the model's task (or `loss`), else an
    InputError naming the valid ones; left out, accuracy (classification) or R² (regression)."""
    if metric is None:
        return DEFAULT_METRIC[model.task]
    valid = ("loss", *metric_names(model.task))
    if metric not in valid:
        raise InputError(not_found(f"{{metric}} {metric}: not a {model.task} metric", metric, valid),
                         arguments=("metric",))
    return metric


def importance(model: Model, source: str | Path, *, metric: str | None = None, repeats: int = 5, seed: int = 0,
               dialect: Settings | None = None, strict: bool = False, weighted: bool = True,
               chunk_rows: int = CHUNK_ROWS, warn: Callable[[str], None] | None = None,
               progress: Callable[[int], None] | None = None) -> Importance:
    """Permutation importance of each raw column of `model` on the labelled CSV `source` (rows without a target are
    skipped), read as `evaluate` reads it: in the `dialect` asked for, unseen categories as all zeros (an error with
    `strict`), rows weighed by data.weight's column when the model has one and the CSV holds it (unless not
    `weighted`), classes at the model's stored threshold, outputs with its temperature. A file of several chunks
    reports the rows done to `progress` after each chunk but the last."""
    metric = choose_metric(model, metric)
    if repeats < 1:
        raise InputError(f"{{repeats}} must be at least 1, not {repeats}", arguments=("repeats",))
    name = str(source)
    every_row = metric in EVERY_ROW
    slices = model.preprocessor.input_slices()
    n_classes = len(model.target.classes)
    rng = np.random.default_rng(seed)
    # one running tally per repeat and column (and the baseline's), merged chunk by chunk; an every-row metric
    # (ROC AUC, PR AUC, median AE) is computed at once on its single chunk instead, so no rows are kept
    tallies = [[Scores(model.task, n_classes, every_row=False) for _ in slices] for _ in range(repeats)]
    base_tally = Scores(model.task, n_classes, every_row=False)
    values = np.full((repeats, len(slices)), np.nan)
    baseline = math.nan
    rows = chunks = 0
    total_weight = 0.0
    weight: str | None = None
    unseen = Unseen(strict)
    frames = _labelled_frames(model, source, dialect, chunk_rows, name)
    frame = next(frames, None)
    if frame is None:
        raise DataError(f"{name}: no rows with a value in the target column '{model.target.name}'")
    while frame is not None:
        following = next(frames, None)
        if every_row and following is not None:
            raise InputError(f"{{metric}} {metric} needs every row's output at once, and {name} has more than "
                             f"{chunk_rows:,} labelled rows; choose a metric summed over rows (e.g. "
                             f"{DEFAULT_METRIC[model.task]}, {'log_loss' if model.task == 'classification' else 'mae'})"
                             " or a sample of the rows", arguments=("metric",))
        X, Y, y, r, weight = _encoded(model, frame, name, unseen, weighted)
        total_weight += float(r.sum()) if r is not None else len(X)
        A = model.output(X)
        if every_row:
            baseline = model.scores(A, Y, y, r)[metric]
        else:
            model.add_scores(base_tally, A, Y, y, r)
        buffer = X.copy()  # X with one column's block permuted at a time, restored after each pass
        for k in range(repeats):
            for j, block in enumerate(slices.values()):
                buffer[:, block] = X[rng.permutation(len(X)), block]
                A = model.output(buffer)
                if every_row:
                    values[k, j] = model.scores(A, Y, y, r)[metric]
                else:
                    model.add_scores(tallies[k][j], A, Y, y, r)
                buffer[:, block] = X[:, block]
        rows, chunks, frame = rows + len(X), chunks + 1, following
        if progress is not None and frame is not None:
            progress(rows)
    if not total_weight:
        raise DataError(f"{name}: column '{weight}' (data.weight): every labelled row weighs 0; nothing to score")
    for line in unseen.warnings(name, model.preprocessor):
        (warn or (lambda message: None))(line)
    if not every_row:
        baseline = base_tally.result()[metric]
        values = np.array([[tally.result()[metric] for tally in row] for row in tallies])
    higher = metric in HIGHER_IS_BETTER
    drops = baseline - values if higher else values - baseline
    specs = model.preprocessor.features
    columns = [ColumnImportance(spec.name, spec.kind, spec.width, [float(v) for v in drops[:, j]])
               for j, spec in enumerate(specs)]
    # most important first; a column whose drop is not a number (a metric undefined on the rows) last
    columns.sort(key=lambda c: -c.mean if math.isfinite(c.mean) else math.inf)
    return Importance(metric, float(baseline), higher, rows, repeats, seed, chunks, chunk_rows, weight, columns)


def _labelled_frames(model: Model, source: str | Path, dialect: Settings | None, chunk_rows: int,
                     name: str) -> Iterator[Any]:
    """The CSV's rows that have a target value, in frames (pandas DataFrames) of at most `chunk_rows` rows, parsed
    as `evaluate` parses the whole file; text columns (categories, dates, a text target) are read as text in every
    chunk, so a chunk of number-like values cannot change their type. pandas comes in through `nnctl.data`, only
    here: `predict` never pays for it."""
    from nnctl.data.reader import read_csv_chunks

    target = model.target.name
    names = model.preprocessor.names
    text = {spec.name: str for spec in model.preprocessor.features if spec.kind != "numeric"}
    if model.task == "classification" and not all(isinstance(c, int) for c in model.target.classes):
        text[target] = str
    for frame in read_csv_chunks(source, chunk_rows, text, sniff(source, dialect or Settings(), [*names, target])):
        if target not in frame.columns:
            raise DataError(f"{name}: no target column '{target}'; importance needs the labels the model predicts")
        labelled = frame[frame[target].notna()]
        if len(labelled):
            yield labelled


def _encoded(model: Model, frame: Any, name: str, unseen: Unseen,
             weighted: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None, str | None]:
    """X (m, n_inputs), Y (m, n_outputs), y (m,), the rows' weights r (m,) or None, and the weight column's name
    when the rows are weighed, for one frame of labelled rows: `evaluate`'s encoding."""
    from nnctl.data.fit import encode_target, transform
    from nnctl.data.rules import row_weights

    X = transform(model.preprocessor, frame, model.network.dtype, name, unseen)
    y, Y = encode_target(model.target, frame[model.target.name], model.network.dtype, name)
    weight = model.setting("data", "weight")
    if not (weighted and weight in frame.columns):
        return X, Y, y, None, None
    return X, Y, y, row_weights(weight, frame, name, None), str(weight)
