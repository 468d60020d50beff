"""Streaming training (`data.streaming: true`): CSVs larger than memory, read in chunks by pandas.

Pass 1 (`fit`) reads the training CSV chunk by chunk. It drops rows without a target, applies `data.missing`,
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

Pass 2 (`spill`) reads the CSV again, transforms each chunk with the fitted preprocessing and appends its rows
to two spill files (`nnctl.spill`), training and validation, in a temporary folder under the cache folder
(`nnctl.cache.spill_folder`); `Dataset.close()` deletes it. Epochs then read the spill, never the CSV.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from nnctl import cache
from nnctl._types import Array
from nnctl.config import Config
from nnctl.data import read_csv_chunks, read_header, require_columns
from nnctl.dataset import (
    Dataset,
    apply_missing,
    checked_features,
    class_weights_from_counts,
    drop_unlabelled,
    incomplete_warning,
    loss_name,
    unlabelled_warning,
    unseen_warning,
)
from nnctl.errors import ConfigError, DataError, OutputError
from nnctl.losses import LOSSES
from nnctl.metrics import Moments
from nnctl.preprocess import FeatureSpec, Preprocessor, TargetEncoder, is_numeric, line_of, numeric_spec
from nnctl.spill import Layout, SpilledRows, SpillWriter

if TYPE_CHECKING:
    from nnctl.model import Model

_TEXTS = FeatureSpec("", "categorical")  # raw values -> category strings, as the in-memory fit turns them


@dataclass
class Plan:
    """What pass 1 found that pass 2 needs to write the spill files."""

    config: Config
    train_path: str
    validation_path: str | None
    dtypes: dict[str, Any]  # columns pass 2 reads with a fixed type (text)
    fraction: float  # validation_split (0 with a validation file)
    start: dict[str, Any]  # the generator's state when pass 1 began: pass 2 replays the split from it
    preprocessor: Preprocessor
    target: TargetEncoder
    weights: np.ndarray | None  # loss weight per class index
    warn: Callable[[str], None]
    status: Callable[[str], None]  # progress of the long passes, every few seconds


STATUS_SECONDS = 2.0  # how often the passes report their progress


def _chunks(path: str, rows: int, dtypes: dict[str, Any], status: Callable[[str], None],
            what: str) -> Iterator[pd.DataFrame]:
    """`read_csv_chunks`, saying every few seconds how many rows `what` has read."""
    done, last = 0, time.perf_counter()
    for frame in read_csv_chunks(path, rows, dtypes):
        yield frame
        done += len(frame)
        if time.perf_counter() - last >= STATUS_SECONDS:
            status(f"{what}: {done:,} rows of {path} read")
            last = time.perf_counter()


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


def _clean(frame: pd.DataFrame, target: str, features: list[str], missing: str,
           source: str) -> tuple[pd.DataFrame, int, int]:
    """`dataset._clean` for one chunk, counting instead of warning: (usable rows, rows without a target, rows
    dropped for gaps)."""
    frame, unlabelled = drop_unlabelled(frame, target)
    frame, incomplete = apply_missing(frame, features, missing, source)
    return frame, unlabelled, incomplete


def _target_codes(series: pd.Series) -> tuple[np.ndarray, list[Hashable]]:
    """A chunk's labelled targets as codes (m,) into class keys: floats for a numeric column, else text."""
    codes, uniques = pd.factorize(series)
    keys: list[Hashable] = [float(u) for u in uniques] if is_numeric(series) else [str(u) for u in uniques]
    return codes.astype(np.intp), keys


def _label(key: Hashable, integral: bool) -> Any:
    """The class label of a key, as `preprocess.labels_of` gives it: ints for whole numbers, else text."""
    if not isinstance(key, float):
        return key
    return int(key) if integral and key.is_integer() else str(np.float64(key))


class _Splitter:
    """Holds out round(fraction * rows seen) rows per class (regression: of all rows) after every chunk; which
    rows of a chunk is a uniform draw from `rng`. No draws when `fraction` is 0."""

    def __init__(self, fraction: float, rng: np.random.Generator) -> None:
        self.fraction, self.rng = fraction, rng
        self.seen: dict[Hashable, int] = {}
        self.held: dict[Hashable, int] = {}

    def held_out(self, m: int, codes: np.ndarray | None, keys: list[Hashable]) -> np.ndarray:
        """Mask (m,) of the chunk's rows that go to validation; `codes` (m,) index `keys` (classification)."""
        mask = np.zeros(m, bool)
        if not self.fraction or not m:
            return mask
        order = self.rng.permutation(m)
        if codes is None:
            groups: list[tuple[Hashable, np.ndarray]] = [(None, order)]
        else:
            ranked = order[np.argsort(codes[order], kind="stable")]  # by class, each in the drawn order
            bounds = np.concatenate([[0], np.cumsum(np.bincount(codes, minlength=len(keys)))])
            groups = [(key, ranked[bounds[c] : bounds[c + 1]]) for c, key in enumerate(keys)]
        for key, members in groups:
            seen = self.seen.get(key, 0) + len(members)
            goal = round(self.fraction * seen)
            mask[members[: goal - self.held.get(key, 0)]] = True
            self.seen[key], self.held[key] = seen, goal
        return mask


class _Pass1:
    """Pass 1 over the training CSV: cleaning, the split and the statistics of the training rows."""

    def __init__(self, config: Config, path: str, features: list[str], text: set[str], rng: np.random.Generator,
                 base: Model | None, status: Callable[[str], None]) -> None:
        self.config, self.path, self.features, self.text, self.base = config, path, features, text, base
        self.status = status
        data = config.data
        self.target = data.target
        self.kinds: dict[str, set[str]] = {column: set() for column in [*features, data.target]}
        self.moments = Moments(len(features))
        self.categories: dict[str, set[str]] = {column: set() for column in features}
        self.class_counts: dict[Hashable, int] = {}
        self.target_moments = Moments(1)
        self.splitter = _Splitter(0.0 if data.validation else data.validation_split, rng)
        self.loss: str | None = None
        self.rows = self.unlabelled = self.incomplete = self.rows_train = self.rows_validation = 0
        self.unseen: dict[str, tuple[int, set[str]]] = {}

    def run(self) -> _Pass1:
        data = self.config.data
        for frame in _chunks(self.path, data.chunk_rows, dict.fromkeys(self.text, str), self.status,
                             "pass 1 of 2 (fitting the preprocessing)"):
            self.rows += len(frame)
            for column, kinds in self.kinds.items():
                kind = _kind(frame[column])
                if kind is not None:
                    kinds.add(kind)
                    if len(kinds) > 1:
                        raise _MixedColumnError(column)
            frame, unlabelled, incomplete = _clean(frame, self.target, self.features, data.missing, self.path)
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
        if self.task == "regression" and self.kinds[self.target] != {"numeric"}:
            raise DataError(f"{self.path}: target '{self.target}' is not numeric, but loss '{self.loss}' is for "
                            "regression; use loss: cross_entropy to classify it")
        codes, keys = _target_codes(series) if self.task == "classification" else (None, [])
        held = self.splitter.held_out(len(frame), codes, keys)
        self.rows_validation += int(held.sum())
        part = frame[~held] if held.any() else frame
        self.rows_train += len(part)
        if self.base is not None:
            self._unseen(frame)
        if not len(part):
            return
        if codes is not None:
            counts = np.bincount(codes[~held], minlength=len(keys))
            for key, count in zip(keys, counts.tolist(), strict=True):
                self.class_counts[key] = self.class_counts.get(key, 0) + count
        else:
            values = part[self.target].to_numpy(np.float64)
            if not np.isfinite(values).all():
                i = int(np.argmax(~np.isfinite(values)))
                raise DataError(f"{self.path}: target '{self.target}' line {line_of(part.index[i])}: "
                                f"'{part[self.target].iloc[i]}' is not a finite number; regression (loss: mse) "
                                "needs numeric targets, classification needs loss: cross_entropy")
            self.target_moments.add(values.reshape(-1, 1))
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
                raise DataError(f"{self.path}: column '{names[j]}' line {line_of(part.index[i])}: {block[i, j]} "
                                "is not a finite number")
            self.moments.add(block, np.array(numeric))
        for j, column in enumerate(self.features):
            if j not in scaled:  # text, booleans, or (so far) nothing but gaps
                self.categories[column].update(_TEXTS.texts(list(part[column].unique())))

    def _unseen(self, frame: pd.DataFrame) -> None:
        """Count values of a fine-tuned model's categorical columns it has never seen (`_warn_unseen_categories`)."""
        assert self.base is not None
        for spec in self.base.preprocessor.features:
            if spec.kind == "categorical":
                values = frame[spec.name].dropna().astype(str)
                unseen = values[~values.isin(spec.categories)]
                if len(unseen):
                    count, examples = self.unseen.get(spec.name, (0, set()))
                    self.unseen[spec.name] = (count + len(unseen), examples | set(unseen))

    def preprocessor(self) -> Preprocessor:
        data = self.config.data
        specs = []
        std = self.moments.std
        for j, name in enumerate(self.features):
            if self.kinds[name] <= {"numeric"}:  # a column with no value at all is numeric too, as in pandas
                specs.append(numeric_spec(name, data.scale, int(self.moments.count[j]), float(self.moments.mean[j]),
                                          float(std[j]), float(self.moments.low[j]), float(self.moments.high[j])))
            else:
                specs.append(FeatureSpec(name, "categorical", categories=sorted(self.categories[name])))
        return Preprocessor(specs, data.scale, data.missing)

    def target_encoder(self) -> TargetEncoder:
        data, loss = self.config.data, self.loss
        if self.task == "regression":
            if data.target_scale == "standard":
                std = float(self.target_moments.std[0])
                return TargetEncoder(self.target, "regression", center=float(self.target_moments.mean[0]),
                                     scale=std if std > 0 else 1.0)
            return TargetEncoder(self.target, "regression")
        present = [key for key, count in self.class_counts.items() if count]
        integral = all(isinstance(key, float) and key.is_integer() for key in present)
        labels = pd.Series([_label(key, integral) for key in present], name=self.target)
        return TargetEncoder.fit(labels, "classification", binary=loss == "binary_cross_entropy",
                                 target_scale="none", source=self.path)

    def counts_per_class(self, target: TargetEncoder) -> np.ndarray:
        """The training rows' count per class index (n_classes,)."""
        integral = all(isinstance(c, int) for c in target.classes)
        lookup = {label: i for i, label in enumerate(target.classes)}
        counts = np.zeros(len(target.classes), np.int64)
        for key, count in self.class_counts.items():
            if count:
                label = _label(key, integral)
                if label not in lookup:
                    raise target.unknown_label(label, self.path)
                counts[lookup[label]] += count
        return counts


def fit(config: Config, rng: np.random.Generator, warn: Callable[[str], None], base: Model | None = None,
        status: Callable[[str], None] | None = None) -> tuple[Dataset, Plan]:
    """Pass 1: the dataset's preprocessing, classes and row counts, without keeping any rows. Its splits are
    `SpilledRows` without a file yet; `spill` (pass 2) writes them. With `base` (fine-tuning or resuming), its
    preprocessing, classes and loss are kept, as `load_dataset` keeps them."""
    started = time.perf_counter()
    status = status or (lambda message: None)
    data = config.data
    path = str(config.resolve(data.train))
    features = checked_features(config, read_header(path), path, base)
    validation_path = str(config.resolve(data.validation)) if data.validation else None
    if validation_path is not None:
        require_columns(read_header(validation_path), [data.target, *features], validation_path, "validation")
    start = dict(rng.bit_generator.state)
    text: set[str] = set()
    while True:
        try:
            found = _Pass1(config, path, features, text, rng, base, status).run()
            break
        except _MixedColumnError as mixed:
            text.add(mixed.column)
            rng.bit_generator.state = start
    if found.unlabelled:
        warn(unlabelled_warning(path, data.target, found.unlabelled, found.rows))
    if found.incomplete:
        warn(incomplete_warning(path, found.incomplete, found.rows - found.unlabelled))
    if found.loss is None or not found.rows_train + found.rows_validation:
        raise DataError(f"{path}: no usable rows left after removing rows with missing values")
    if not found.rows_train:
        raise DataError(f"{path}: no training rows left after data.validation_split; lower it")
    for name, (count, examples) in found.unseen.items():
        warn(unseen_warning(path, name, count, examples))
    preprocessor = base.preprocessor if base is not None else found.preprocessor()
    target = base.target if base is not None else found.target_encoder()
    sources: dict[str, Any] = {"train": path}
    if validation_path is not None:
        sources["validation"] = validation_path
    else:
        sources["validation_split"] = data.validation_split
    weights = None
    if data.class_weight is not None:
        if target.task != "classification":
            raise ConfigError(f"{config.source}: data.class_weight: only classification has classes; remove it")
        weights = class_weights_from_counts(data.class_weight, target, found.counts_per_class(target), config.source)
        sources["class_weight"] = dict(zip(map(str, target.classes), weights.tolist(), strict=True))
    elif target.task == "classification" and base is not None:
        found.counts_per_class(target)  # a label the model does not know is an error now, not in pass 2
    dtype = np.dtype(config.training.dtype)
    layout = Layout(preprocessor.n_inputs, target.n_outputs, dtype,
                    np.dtype(np.int64 if target.task == "classification" else np.float64), weights is not None,
                    data.chunk_rows)
    ss_total = float(found.target_moments.m2[0]) if target.task == "regression" else 0.0
    train = SpilledRows(found.rows_train, layout, data.shuffle_buffer, ss_total)
    validation = None
    if validation_path is not None or found.rows_validation:
        validation = SpilledRows(found.rows_validation, replace(layout, weights=False), data.shuffle_buffer)
    sources.update(rows_train=found.rows_train, rows_validation=found.rows_validation, streaming={
        "chunk_rows": data.chunk_rows, "shuffle_buffer": data.shuffle_buffer,
        "text_columns": sorted(text), "pass1_seconds": round(time.perf_counter() - started, 3)})
    categorical = {spec.name for spec in preprocessor.features if spec.kind == "categorical"}
    plan = Plan(config, path, validation_path, dict.fromkeys(text | categorical, str),
                0.0 if validation_path else data.validation_split, start, preprocessor, target, weights, warn,
                status)
    return Dataset(train, validation, preprocessor, target, found.loss, sources), plan


def _encode(plan: Plan, part: pd.DataFrame, weights: bool, source: str) -> list[np.ndarray]:
    """[X (m, n_inputs), Y (m, n_outputs), y (m,), w (m,)?] of a chunk's usable rows."""
    dtype = np.dtype(plan.config.training.dtype)
    X = plan.preprocessor.transform(part, dtype, source)
    target = plan.target
    series = part[target.name]
    if target.task == "regression":
        y, Y = target.encode(series, dtype, source)
        return [X, Y, y]
    codes, keys = _target_codes(series)
    integral = all(isinstance(c, int) for c in target.classes)
    lookup = {label: i for i, label in enumerate(target.classes)}
    index = np.empty(len(keys), np.int64)
    for j, key in enumerate(keys):
        label = _label(key, integral)
        if label not in lookup:
            raise target.unknown_label(label, source)
        index[j] = lookup[label]
    y = index[codes]
    if target.binary:
        Y = y.astype(dtype).reshape(-1, 1)
    else:
        Y = np.zeros((len(y), len(target.classes)), dtype)
        Y[np.arange(len(y)), y] = 1
    parts: list[Array] = [X, Y, y]
    if weights:
        assert plan.weights is not None
        parts.append(plan.weights[y].astype(dtype))
    return parts


def _validation_file(plan: Plan, writer: SpillWriter | None) -> int:
    """Clean, check and encode the rows of `data.validation` (and write them, with a writer); returns how many."""
    config, path = plan.config, plan.validation_path
    assert path is not None
    data = config.data
    features = plan.preprocessor.names
    rows = unlabelled = incomplete = usable = 0
    for frame in read_csv_chunks(path, data.chunk_rows, plan.dtypes):
        rows += len(frame)
        frame, dropped, gaps = _clean(frame, data.target, features, data.missing, path)
        unlabelled, incomplete, usable = unlabelled + dropped, incomplete + gaps, usable + len(frame)
        if len(frame):
            parts = _encode(plan, frame, False, path)
            if writer is not None:
                writer.append(parts)
    if unlabelled:
        plan.warn(unlabelled_warning(path, data.target, unlabelled, rows))
    if incomplete:
        plan.warn(incomplete_warning(path, incomplete, rows - unlabelled))
    if not usable:
        raise DataError(f"{path}: no usable rows left after removing rows with missing values")
    return usable


def check_validation_file(plan: Plan, dataset: Dataset) -> None:
    """What `nnctl check` does instead of pass 2: read the validation file once to check and count its rows."""
    if plan.validation_path is not None and isinstance(dataset.validation, SpilledRows):
        dataset.validation.rows = dataset.sources["rows_validation"] = _validation_file(plan, None)


def spill(plan: Plan, dataset: Dataset) -> None:
    """Pass 2: write the preprocessed training and validation rows to spill files that the dataset then reads;
    `dataset.close()` deletes them. Fails before writing when the disk has too little space for them."""
    started = time.perf_counter()
    train, validation = dataset.train, dataset.validation
    assert isinstance(train, SpilledRows) and (validation is None or isinstance(validation, SpilledRows))
    folder = cache.spill_folder()
    writers: list[SpillWriter] = []
    try:
        need = len(train) * train.layout.row_bytes + (len(validation) * validation.layout.row_bytes
                                                      if validation is not None else 0)
        free = shutil.disk_usage(folder).free
        if need > free:
            raise OutputError(f"{folder}: streaming needs {need / 2**30:.2f} GiB for the preprocessed rows and "
                              f"{free / 2**30:.2f} GiB are free; set NNCTL_CACHE_DIR to a folder on a bigger disk")
        writers.append(SpillWriter(folder / "train.bin", train.layout))
        if validation is not None:
            writers.append(SpillWriter(folder / "validation.bin", validation.layout))
        _write(plan, writers)
        if plan.validation_path is not None:
            _validation_file(plan, writers[1])
        counts = [writer.close() for writer in writers]
        if counts[0] != len(train) or (plan.validation_path is None and validation is not None
                                       and counts[1] != len(validation)):
            raise DataError(f"{plan.train_path}: changed while training read it (pass 1 counted {len(train)} "
                            f"training rows, pass 2 {counts[0]})")
        for rows, writer, split in zip(counts, writers, (train, validation), strict=False):
            assert split is not None
            split.attach(writer.path, rows)
    except BaseException:
        for writer in writers:
            writer.abandon()
        for split in (train, validation):
            if split is not None:
                split.close()
        shutil.rmtree(folder, ignore_errors=True)
        raise
    if validation is not None:
        dataset.sources["rows_validation"] = len(validation)

    def cleanup() -> None:
        for split in (train, validation):
            if split is not None:
                split.close()
        shutil.rmtree(folder, ignore_errors=True)

    dataset.cleanup = cleanup
    dataset.sources["streaming"].update(spill_seconds=round(time.perf_counter() - started, 3), spill_bytes=sum(
        (folder / name).stat().st_size for name in ("train.bin", "validation.bin") if (folder / name).exists()))


def _write(plan: Plan, writers: list[SpillWriter]) -> None:
    """Pass 2 over the training CSV: the same cleaning and split as pass 1 (its draws replayed), then transform."""
    config = plan.config
    data = config.data
    replay = np.random.default_rng()
    replay.bit_generator.state = plan.start
    splitter = _Splitter(plan.fraction, replay)
    features = plan.preprocessor.names
    stratified = plan.target.task == "classification"
    for frame in _chunks(plan.train_path, data.chunk_rows, plan.dtypes, plan.status,
                         "pass 2 of 2 (writing the preprocessed rows)"):
        frame = _clean(frame, data.target, features, data.missing, plan.train_path)[0]
        if not len(frame):
            continue
        codes, keys = _target_codes(frame[data.target]) if stratified else (None, [])
        held = splitter.held_out(len(frame), codes, keys)
        train = frame[~held] if held.any() else frame
        if len(train):
            writers[0].append(_encode(plan, train, writers[0].layout.weights, plan.train_path))
        if held.any():
            writers[1].append(_encode(plan, frame[held], False, plan.train_path))
