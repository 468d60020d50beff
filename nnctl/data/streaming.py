"""Streaming training (`data.streaming: true`): CSVs larger than memory, read in chunks by pandas.

Pass 1 (`load`) reads the training CSV chunk by chunk. It drops rows without a target, applies `data.missing`,
assigns each row to training or validation and accumulates, on the training rows only, what the in-memory fit
computes from them at once: per numeric column the count, mean and M2 (merged with Chan's parallel update, in
float64) and min/max; the categories of the other columns; the classes and their counts, or the target's
moments. From those it builds the same `Preprocessor` and `TargetEncoder` the in-memory path fits.

The split is stratified like the in-memory one and has its totals: after each chunk, a class (regression: all
rows) has round(validation_split * rows seen) rows held out; which rows of the chunk those are is a uniform
draw from the run's generator. Pass 2 replays the same draws from a copy of the generator's starting state.

pandas infers each chunk's column types on its own. A column read as numbers in one chunk and as text (or
booleans) in another is what a whole read would turn into text, so pass 1 starts again with that column read
as text. Pass 2 reads the categorical columns as text, as `predict` does.

Pass 1 returns a `StreamingDataset` whose rows are `SpilledRows` without a file yet: opening it runs pass 2
(`nnctl.data.spill`), which writes the preprocessed rows to spill files that epochs then read, never the CSV;
closing it deletes them.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from nnctl.config.schema import Config
from nnctl.data import spill
from nnctl.data.chunks import Splitter, key_label, read_with_status, target_codes
from nnctl.data.dataset import Dataset, Sources, Warn
from nnctl.data.dialects import config_dialect
from nnctl.data.fit import fit_target, is_numeric, target_numbers, text_spec
from nnctl.data.reader import line_of, read_header, require_columns
from nnctl.data.rows import Layout, SpilledRows
from nnctl.data.rules import (
    Unseen,
    checked_features,
    class_weights,
    clean,
    loss_name,
    no_training_rows,
    report_dropped,
    require_counts,
    require_labels,
    require_numeric_target,
    row_weights,
    unseen_categories,
    warn_unseen,
    weights_by_label,
)
from nnctl.engine.losses import LOSSES
from nnctl.engine.metrics import Moments
from nnctl.engine.weighted import WeightedSpread
from nnctl.errors import DataError
from nnctl.model.preprocessing import FeatureSpec, Preprocessor, TargetEncoder, value_error
from nnctl.model.state import StreamingInfo

if TYPE_CHECKING:
    from nnctl.model.model import Model

_TEXTS = FeatureSpec("", "categorical")  # raw values -> category strings, as the in-memory fit turns them


@dataclass(eq=False, repr=False)  # holds arrays: compared by identity, not shown whole
class StreamingDataset(Dataset):
    """A dataset whose rows live in spill files: `open` writes them (pass 2), `close` deletes them."""

    job: spill.SpillJob  # pass 2, and the spilled rows it fills (this dataset's train and validation)
    folder: Path | None = field(default=None, repr=False)

    @property
    def spill_bytes(self) -> int:
        return self.job.bytes

    def open(self) -> None:
        started = time.perf_counter()
        self.folder = spill.write(self.job)
        if self.validation is not None:
            self.sources.rows_validation = len(self.validation)
        assert self.sources.streaming is not None
        self.sources.streaming.spill_seconds = round(time.perf_counter() - started, 3)
        self.sources.streaming.spill_bytes = sum((self.folder / name).stat().st_size
                                                 for name in ("train.bin", "validation.bin")
                                                 if (self.folder / name).exists())

    def verify(self) -> None:
        """Read the validation file once, to check and count its rows (pass 1 only read its header)."""
        rows = self.job.validation
        if self.job.validation_path is not None and rows is not None:
            rows.rows = self.sources.rows_validation = spill.validation_rows(self.job, None)

    def close(self) -> None:
        super().close()
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None


class _MixedColumnError(Exception):
    """A column pandas read as numbers in one chunk and as text in another: read it as text throughout."""

    def __init__(self, column: str) -> None:
        super().__init__(column)
        self.column = column


def _kind(series: pd.Series) -> str | None:
    """How pandas read a chunk's column: 'numeric', 'bool' or 'text'; None when every value is missing."""
    if not series.notna().any():
        return None
    if is_numeric(series):
        return "numeric"
    if pd.api.types.is_bool_dtype(series) or pd.api.types.infer_dtype(series, skipna=True) == "boolean":
        return "bool"
    return "text"


class _Pass1:
    """Pass 1 over the training CSV: cleaning, the split and the statistics of the training rows."""

    def __init__(self, config: Config, path: str, features: list[str], text: set[str], rng: np.random.Generator,
                 base: Model | None, status: Callable[[str], None]) -> None:
        self.config, self.path, self.features, self.text, self.base = config, path, features, text, base
        self.status = status
        data = config.data
        self.target = data.target
        # the group column too: a group read as numbers in one chunk and as text in another is read as text
        self.kinds: dict[str, set[str]] = {column: set() for column in [*features, data.target, data.group] if column}
        self.moments = Moments(len(features))
        self.categories: dict[str, dict[str, int]] = {column: {} for column in features}  # text -> training rows
        self.class_counts: dict[Hashable, int] = {}
        self.class_weights: dict[Hashable, float] = {}  # data.weight: the training rows' total weight per class
        self.target_moments = Moments(1)
        self.spread = WeightedSpread()  # data.weight, regression: the total weight and weighted SS of the target
        self.splitter = Splitter(0.0 if data.validation else data.validation_split, rng, data.group)
        self.loss: str | None = None
        self.rows = self.unlabelled = self.incomplete = self.rows_train = self.rows_validation = 0
        self.unseen: Unseen = {}

    def run(self) -> _Pass1:
        data = self.config.data
        dialect = config_dialect(self.config, self.path)
        for frame in read_with_status(self.path, data.chunk_rows, dict.fromkeys(self.text, str), self.status,
                                      "pass 1 of 2 (fitting the preprocessing)", dialect):
            self.rows += len(frame)
            for column, kinds in self.kinds.items():
                kind = _kind(frame[column])
                if kind is not None:
                    kinds.add(kind)
                    if len(kinds) > 1:
                        raise _MixedColumnError(column)
            frame, unlabelled, incomplete = clean(frame, self.target, self.features, data.missing, self.path)
            self.unlabelled += unlabelled
            self.incomplete += incomplete
            if len(frame):
                self._chunk(frame)
        return self

    @property
    def task(self) -> str:
        assert self.loss is not None
        return LOSSES[self.loss].task

    def _chunk(self, frame: pd.DataFrame) -> None:
        series = frame[self.target]
        if self.loss is None:  # decided by the first labelled rows; a later switch to text restarts the pass
            self.loss = loss_name(self.config, series, self.base)
        if self.task == "regression":
            require_numeric_target(self.kinds[self.target] == {"numeric"}, self.config, self.loss, self.path)
        else:
            require_labels(self.config, self.loss, series, self.path, self.base)
        if self.loss == "poisson":
            require_counts(self.config, series, self.path)
        codes, keys = target_codes(series) if self.task == "classification" else (None, [])
        held = self.splitter.held_out(frame, codes, keys)
        self.rows_validation += int(held.sum())
        part = frame[~held] if held.any() else frame
        self.rows_train += len(part)
        if self.config.data.weight:  # every row's weight is checked here, the held-out ones too
            r = row_weights(self.config.data.weight, frame, self.path, None)[~held]
            if codes is not None:
                sums = np.bincount(codes[~held], weights=r, minlength=len(keys))
                for key, total in zip(keys, sums.tolist(), strict=True):
                    self.class_weights[key] = self.class_weights.get(key, 0.0) + total
            else:
                self.spread.add(target_numbers(part[self.target], self.path), r)
        if self.base is not None:
            unseen_categories(self.base.preprocessor, frame, self.unseen)
        if not len(part):
            return
        if codes is not None:
            counts = np.bincount(codes[~held], minlength=len(keys))
            for key, count in zip(keys, counts.tolist(), strict=True):
                self.class_counts[key] = self.class_counts.get(key, 0) + count
        else:
            self.target_moments.add(target_numbers(part[self.target], self.path).reshape(-1, 1))
        if self.base is None:
            self._statistics(part)

    def _statistics(self, part: pd.DataFrame) -> None:
        numeric = [j for j, column in enumerate(self.features) if self.kinds[column] == {"numeric"}]
        scaled = set(numeric)
        if numeric:
            names = [self.features[j] for j in numeric]
            block = part[names].to_numpy(np.float64, na_value=np.nan)
            infinite = np.isinf(block)
            if infinite.any():
                j = int(np.flatnonzero(infinite.any(axis=0))[0])
                i = int(np.argmax(infinite[:, j]))
                raise value_error(self.path, names[j], line_of(part.index[i]), f"{block[i, j]} is not a finite number")
            self.moments.add(block, np.array(numeric))
        for j, column in enumerate(self.features):
            if j not in scaled:  # text, booleans, or (so far) nothing but gaps
                counts = part[column].value_counts(dropna=False, sort=False)
                seen = self.categories[column]
                for text, count in zip(_TEXTS.texts(counts.index.to_numpy()), counts.tolist(), strict=True):
                    seen[text] = seen.get(text, 0) + count

    def preprocessor(self) -> Preprocessor:
        data = self.config.data
        specs = []
        std = self.moments.std
        for j, name in enumerate(self.features):
            if self.kinds[name] <= {"numeric"}:  # a column with no value at all is numeric too, as in pandas
                count = int(self.moments.count[j])
                spec = FeatureSpec.numeric(name, data.scale, count, float(self.moments.mean[j]), float(std[j]),
                                           float(self.moments.low[j]), float(self.moments.high[j]))
                spec.indicator = data.missing_indicators and count < self.rows_train
                specs.append(spec)
            else:
                seen = self.categories[name]
                specs.append(text_spec(name, list(seen), np.array(list(seen.values()), np.int64), data, self.path))
        return Preprocessor(specs, data.scale, data.missing)

    def target_encoder(self) -> TargetEncoder:
        data = self.config.data
        if self.task == "regression":
            if data.target_scale == "standard":
                std = float(self.target_moments.std[0])
                return TargetEncoder(self.target, "regression", center=float(self.target_moments.mean[0]),
                                     scale=std if std > 0 else 1.0)
            return TargetEncoder(self.target, "regression")
        present = [key for key, count in self.class_counts.items() if count]
        integral = all(isinstance(key, float) and key.is_integer() for key in present)
        labels = pd.Series([key_label(key, integral) for key in present], name=self.target)
        assert self.loss is not None  # `task` has just said so
        return fit_target(labels, "classification", binary=LOSSES[self.loss].binary, target_scale="none",
                          source=self.path)

    def per_class(self, target: TargetEncoder, totals: dict[Hashable, float] | dict[Hashable, int]) -> np.ndarray:
        """Per class index (n_classes,): the training rows' `totals` (class_counts or class_weights) by class key."""
        integral = all(isinstance(c, int) for c in target.classes)
        lookup = {label: i for i, label in enumerate(target.classes)}
        out = np.zeros(len(target.classes))
        for key, total in totals.items():
            if self.class_counts.get(key):
                label = key_label(key, integral)
                if label not in lookup:
                    raise target.unknown_label(label, self.path)
                out[lookup[label]] += total
        return out

    def weight_scale(self, target: TargetEncoder, weights: np.ndarray | None) -> float:
        """data.weight: what scales row times class weights to average 1 over the training rows (as in memory)."""
        if target.task == "classification":
            sums = self.per_class(target, self.class_weights)
            total = float(sums.sum() if weights is None else sums @ weights)
        else:
            total = self.spread.weight
        if total <= 0:
            raise DataError(f"{self.path}: column '{self.config.data.weight}' (data.weight): every training row "
                            "weighs 0; nothing to learn")
        return self.rows_train / total


def load(config: Config, rng: np.random.Generator, warn: Warn, base: Model | None = None,
         status: Warn | None = None) -> StreamingDataset:
    """Pass 1: the dataset's preprocessing, classes and row counts, without keeping any rows. Its rows are
    `SpilledRows` without a file until the dataset is opened. With `base` (fine-tuning or resuming), its
    preprocessing, classes and loss are kept, as the in-memory load keeps them."""
    started = time.perf_counter()
    status = status or (lambda message: None)
    data = config.data
    path = str(config.resolve(data.train))
    features = checked_features(config, read_header(path, config_dialect(config, path)), path, base)
    validation_path = str(config.resolve(data.validation)) if data.validation else None
    weighted_validation = bool(data.weight)  # data.weight weighs the validation metrics, when its rows have it
    if validation_path is not None:
        header = read_header(validation_path, config_dialect(config, validation_path))
        require_columns(header, [data.target, *features], validation_path, "validation")
        weighted_validation = bool(data.weight) and data.weight in header.columns
    start = dict(rng.bit_generator.state)
    text: set[str] = set()
    while True:
        try:
            found = _Pass1(config, path, features, text, rng, base, status).run()
            break
        except _MixedColumnError as mixed:
            text.add(mixed.column)
            rng.bit_generator.state = start
    usable = found.rows_train + found.rows_validation if found.loss is not None else 0
    report_dropped(warn, path, data.target, found.rows, found.unlabelled, found.incomplete, usable)
    if not found.rows_train:
        raise no_training_rows(path)
    preprocessor = base.preprocessor if base is not None else found.preprocessor()
    if base is not None:
        warn_unseen(warn, path, preprocessor, found.unseen)
    target = base.target if base is not None else found.target_encoder()
    sources = Sources(path, validation_path, None if validation_path else data.validation_split)
    counts = (found.per_class(target, found.class_counts).astype(np.int64) if target.task == "classification"
              else np.zeros(0))
    weights = class_weights(config, target, counts)  # counting checks every label against a model's classes
    if weights is not None:
        sources.class_weight = weights_by_label(target, weights)
    dtype = np.dtype(config.training.dtype)
    layout = Layout(preprocessor.n_inputs, target.n_outputs, dtype,
                    np.dtype(np.int64 if target.task == "classification" else np.float64),
                    weights is not None or bool(data.weight), data.chunk_rows, bool(data.weight))
    ss_total = 0.0
    if target.task == "regression":
        ss_total = found.spread.m2 if data.weight else float(found.target_moments.m2[0])
    train = SpilledRows(found.rows_train, layout, data.shuffle_buffer, ss_total)
    validation = None
    if validation_path is not None or found.rows_validation:
        validation = SpilledRows(found.rows_validation, replace(layout, weights=False, row_weights=weighted_validation),
                                 data.shuffle_buffer)
    sources.rows_train, sources.rows_validation = found.rows_train, found.rows_validation
    sources.streaming = StreamingInfo(data.chunk_rows, data.shuffle_buffer, sorted(text),
                                      round(time.perf_counter() - started, 3))
    as_text = {spec.name for spec in preprocessor.features if spec.kind != "numeric"}  # categories and dates
    job = spill.SpillJob(train, validation, config, path, validation_path, dict.fromkeys(text | as_text, str),
                         0.0 if validation_path else data.validation_split, start, preprocessor, target, weights,
                         warn, status, found.weight_scale(target, weights) if data.weight else 1.0)
    assert found.loss is not None  # there are usable rows
    return StreamingDataset(train, validation, preprocessor, target, found.loss, sources, job)
