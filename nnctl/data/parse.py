"""Parsing a whole CSV into memory with pandas: read, clean, split, fit the preprocessing on the training rows,
encode. `nnctl.data.memory` imports this module only when the data cache has no copy of the result.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from nnctl.config.schema import Config
from nnctl.data.dataset import Dataset, Sources, Warn
from nnctl.data.dialects import config_dialect
from nnctl.data.fit import encode_target, fit_preprocessor, fit_target, is_numeric, transform
from nnctl.data.reader import read_csv, require_columns
from nnctl.data.rows import InMemoryRows
from nnctl.data.rules import (
    checked_features,
    class_weights,
    clean,
    leaks,
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

if TYPE_CHECKING:
    from nnctl.model.model import Model


def split_rows(n: int, fraction: float, rng: np.random.Generator, classes: np.ndarray | None = None,
               groups: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Row indices (train, validation); whole groups when `groups` (n,) is given (groups in a shuffled order are
    held out until round(fraction * n) rows are), else stratified by class when `classes` (n,) is given."""
    if groups is not None:
        codes = np.unique(groups, return_inverse=True)[1]
        sizes = np.bincount(codes)
        order = rng.permutation(len(sizes))
        enough = round(fraction * n)
        count = np.searchsorted(np.cumsum(sizes[order]), enough) + 1 if enough else 0  # groups until enough rows
        held_mask = np.isin(codes, order[:count])
        return np.flatnonzero(~held_mask), np.flatnonzero(held_mask)
    order = rng.permutation(n)
    if classes is None:
        k = round(fraction * n)
        held = order[:k]
    else:
        held = np.concatenate([members[: round(fraction * len(members))]
                               for c in np.unique(classes) for members in [order[classes[order] == c]]])
    mask = np.zeros(n, dtype=bool)
    mask[held] = True
    return np.flatnonzero(~mask), np.flatnonzero(mask)


def _read_clean(path: str, config: Config, features: list[str] | None, base: Model | None,
                warn: Warn) -> tuple[pd.DataFrame, list[str]]:
    """A CSV's usable rows and the feature columns (checked on the training file, required of a validation file)."""
    data = config.data
    frame = read_csv(path, config_dialect(config, path))
    if features is None:
        features = checked_features(config, frame, path, base)
    else:
        require_columns(frame, [data.target, *features], path, "validation")
    rows = len(frame)
    frame, unlabelled, incomplete = clean(frame, data.target, features, data.missing, path)
    report_dropped(warn, path, data.target, rows, unlabelled, incomplete, len(frame))
    return frame, features


def parse(config: Config, rng: np.random.Generator, warn: Warn,
          base: Model | None) -> tuple[Dataset, InMemoryRows, InMemoryRows | None]:
    """Read, clean, split and preprocess the config's CSVs: the dataset, and its training and validation rows."""
    data = config.data
    train_path = str(config.resolve(data.train))
    frame, features = _read_clean(train_path, config, None, base, warn)
    loss = loss_name(config, frame[data.target], base)
    task, binary = LOSSES[loss].task, LOSSES[loss].binary
    if task == "regression":
        require_numeric_target(is_numeric(frame[data.target]), config, loss, train_path)
    else:
        require_labels(config, loss, frame[data.target], train_path, base)
    if loss == "poisson":
        require_counts(config, frame[data.target], train_path)

    if base is None:
        for message in leaks(frame, features, data.target, task):
            warn(f"{train_path}: {message}")
    sources = Sources(train_path)
    if data.validation:
        sources.validation = str(config.resolve(data.validation))
        val_frame = _read_clean(sources.validation, config, features, base, warn)[0]
        if loss == "poisson":
            require_counts(config, val_frame[data.target], sources.validation)
        train_frame = frame
    else:
        labels = None
        if task == "classification":
            classes = base.target if base else fit_target(frame[data.target], task, binary=binary,
                                                          target_scale="none", source=train_path)
            labels = encode_target(classes, frame[data.target], "float64", train_path)[0]
        groups = frame[data.group].astype(str).to_numpy() if data.group else None
        train_rows, val_rows = split_rows(len(frame), data.validation_split, rng, labels, groups)
        if len(train_rows) == 0:
            raise no_training_rows(train_path)
        train_frame, val_frame = frame.iloc[train_rows], frame.iloc[val_rows]
        sources.validation_split = data.validation_split

    if base is not None:
        target, preprocessor = base.target, base.preprocessor
        warn_unseen(warn, train_path, preprocessor, unseen_categories(preprocessor, frame))
    else:
        target = fit_target(train_frame[data.target], task, binary=binary, target_scale=data.target_scale,
                            source=train_path)
        preprocessor = fit_preprocessor(train_frame, features, data, train_path)
    dtype = np.dtype(config.training.dtype)

    def encode(part: pd.DataFrame, source: str) -> InMemoryRows:
        X = transform(preprocessor, part, dtype, source)
        y, Y = encode_target(target, part[data.target], dtype, source)
        return InMemoryRows(X, Y, y)

    train = encode(train_frame, train_path)
    weights = class_weights(config, target, np.bincount(train.y, minlength=len(target.classes))
                            if task == "classification" else np.zeros(0))
    w = None if weights is None else weights[train.y]
    if weights is not None:
        sources.class_weight = weights_by_label(target, weights)
    if data.weight:  # times the class weights, scaled to average 1: a weight of 2 is the row twice
        train.r = row_weights(data.weight, train_frame, train_path)
        w = train.r * (1.0 if w is None else w)
        w *= len(w) / w.sum()
    if w is not None:
        train.w = w.astype(dtype)
    validation = encode(val_frame, sources.validation or train_path) if len(val_frame) else None
    if validation is not None and data.weight and data.weight in val_frame.columns:  # weighs the metrics alone
        validation.r = row_weights(data.weight, val_frame, sources.validation or train_path, "validation")
    sources.rows_train, sources.rows_validation = len(train_frame), len(val_frame)
    return Dataset(train, validation, preprocessor, target, loss, sources), train, validation
