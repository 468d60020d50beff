"""Turn a config's `data` section into training and validation arrays plus the fitted preprocessing."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pandas as pd

from nnctl import cache
from nnctl._types import Array
from nnctl.config import Config
from nnctl.data import read_csv, require_columns
from nnctl.errors import ConfigError, DataError
from nnctl.losses import LOSSES
from nnctl.preprocess import Preprocessor, TargetEncoder, is_numeric, line_of

if TYPE_CHECKING:
    from nnctl.model import Model


@dataclass
class Split:
    """Preprocessed rows: X (n, n_inputs), the loss's target Y (n, n_outputs), and y (class index or value)."""

    X: Array
    Y: Array
    y: np.ndarray
    w: Array | None = None  # per-row loss weights (class weights), training rows only

    def __len__(self) -> int:
        return len(self.X)


# Part of an epoch's rows in batch order: X (n, n_inputs) — or, when the third item `gather` (n,) is given, the
# rows X[gather[i]] — and [Y (n, n_outputs), y (n,), w (n,) if row weights] in batch order.
Segment = tuple[Array, list[np.ndarray], np.ndarray | None]


class RowStream(Protocol):
    """Preprocessed rows kept out of memory (`data.streaming`): an epoch reads them segment by segment."""

    ss_total: float  # regression: sum of squared deviations of the target values (R²'s denominator), else 0
    rows_in_memory: int  # the most rows held at once while training on them

    def __len__(self) -> int: ...

    def segments(self, rng: np.random.Generator | None, batch: int, wide: bool) -> Iterator[Segment]:
        """One epoch's rows, every row once, in segments of whole batches (but the last); shuffled with `rng`
        (None: in file order). `wide`: give X unshuffled with a `gather` order instead of a shuffled copy."""
        ...

    def evaluate(self, model: Model) -> dict[str, float]:
        """`model.evaluate` of all the rows, computed chunk by chunk."""
        ...


@dataclass
class Dataset:
    train: Split | RowStream
    validation: Split | RowStream | None
    preprocessor: Preprocessor
    target: TargetEncoder
    loss: str
    sources: dict[str, Any]
    cleanup: Callable[[], None] | None = None  # streaming: deletes the temporary files

    def close(self) -> None:
        """Release what the data holds outside memory (streaming's temporary files); safe to call twice."""
        if self.cleanup is not None:
            self.cleanup()
            self.cleanup = None


def default_loss(target: pd.Series) -> str:
    """`loss` left out: cross_entropy for a text (or boolean) target, mse for a numeric one."""
    return "mse" if is_numeric(target) else "cross_entropy"


def _clean(frame: pd.DataFrame, target: str, features: list[str], missing: str, source: str,
           warn: Callable[[str], None]) -> pd.DataFrame:
    """Drop rows without a target (with a warning), then apply `data.missing` to the features."""
    rows = len(frame)
    frame, unlabelled = drop_unlabelled(frame, target)
    if unlabelled:
        warn(unlabelled_warning(source, target, unlabelled, rows))
    frame, incomplete = apply_missing(frame, features, missing, source)
    if incomplete:
        warn(incomplete_warning(source, incomplete, rows - unlabelled))
    if frame.empty:
        raise DataError(f"{source}: no usable rows left after removing rows with missing values")
    return frame


def drop_unlabelled(frame: pd.DataFrame, target: str) -> tuple[pd.DataFrame, int]:
    """The rows that have a target, and how many did not."""
    labelled: np.ndarray = frame[target].notna().to_numpy()
    dropped = len(frame) - int(labelled.sum())
    return (frame.loc[labelled] if dropped else frame), dropped


def apply_missing(frame: pd.DataFrame, features: list[str], missing: str, source: str) -> tuple[pd.DataFrame, int]:
    """`data.missing` on the feature columns: the rows kept, and how many `drop` dropped; `error` raises at the
    first gap (by row, then column), naming its column and line."""
    gaps = frame[features].isna().to_numpy()
    if not gaps.any() or missing == "impute":
        return frame, 0
    if missing == "error":
        row, column = np.argwhere(gaps)[0]
        raise DataError(f"{source}: column '{features[column]}' line {line_of(frame.index[row])}: missing value "
                        "(data.missing: error); use data.missing: impute or drop to accept gaps")
    complete = np.logical_not(gaps.any(axis=1))
    return frame.loc[complete], len(frame) - int(complete.sum())


def unlabelled_warning(source: str, target: str, dropped: int, rows: int) -> str:
    return f"{source}: dropped {dropped} of {rows} rows whose target '{target}' is missing"


def incomplete_warning(source: str, dropped: int, rows: int) -> str:
    return f"{source}: dropped {dropped} of {rows} rows with missing feature values (data.missing: drop)"


def unseen_warning(source: str, column: str, count: int, examples: set[str]) -> str:
    """A fine-tuned model's categorical column has values it never saw in training."""
    shown = ", ".join(repr(v) for v in sorted(examples)[:5])
    return (f"{source}: column '{column}' has {count} rows with categories the model has never seen ({shown}); "
            "they are encoded as all zeros")


def split_rows(n: int, fraction: float, rng: np.random.Generator,
               classes: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Row indices (train, validation); stratified by class when `classes` (n,) is given."""
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


def load_dataset(config: Config, rng: np.random.Generator, warn: Callable[[str], None],
                 base: Model | None = None) -> Dataset:
    """Read, clean, split and preprocess the config's data; validation rows never influence the fit.

    With `base` (fine-tuning or resuming), its preprocessing, class labels and loss are kept, not refitted.
    Otherwise a big CSV's result is cached (`nnctl.cache`) and the next identical load reads the arrays."""
    cache_key = cache.key(config) if base is None and config.data.cache else None
    if cache_key is not None:
        cached = cache.load(cache_key, rng, warn)
        if cached is not None:
            return cached
    warnings: list[str] = []

    def record(message: str) -> None:
        warnings.append(message)
        warn(message)

    dataset = _load(config, rng, record, base)
    if cache_key is not None:
        cache.store(cache_key, dataset, rng, warnings)
    return dataset


def _load(config: Config, rng: np.random.Generator, warn: Callable[[str], None], base: Model | None) -> Dataset:
    data = config.data
    train_path = str(config.resolve(data.train))
    frame = read_csv(train_path)
    features = checked_features(config, frame, train_path, base)
    frame = _clean(frame, data.target, features, data.missing, train_path, warn)

    loss = loss_name(config, frame[data.target], base)
    task = LOSSES[loss].task
    binary = loss == "binary_cross_entropy"
    if task == "regression" and not is_numeric(frame[data.target]):
        raise DataError(f"{train_path}: target '{data.target}' is not numeric, but loss '{loss}' is for regression; "
                        "use loss: cross_entropy to classify it")

    sources: dict[str, Any] = {"train": train_path}
    if data.validation:
        val_path = str(config.resolve(data.validation))
        val_frame = read_csv(val_path)
        require_columns(val_frame, [data.target, *features], val_path, "validation")
        val_frame = _clean(val_frame, data.target, features, data.missing, val_path, warn)
        train_frame = frame
        sources["validation"] = val_path
    else:
        labels = None
        if task == "classification":
            classes = base.target if base else TargetEncoder.fit(
                frame[data.target], task, binary=binary, target_scale="none", source=train_path)
            labels = classes.encode(frame[data.target], "float64", train_path)[0]
        train_rows, val_rows = split_rows(len(frame), data.validation_split, rng, labels)
        if len(train_rows) == 0:
            raise DataError(f"{train_path}: no training rows left after data.validation_split; lower it")
        train_frame, val_frame = frame.iloc[train_rows], frame.iloc[val_rows]
        sources["validation_split"] = data.validation_split

    if base is not None:
        target, preprocessor = base.target, base.preprocessor
        _warn_unseen_categories(preprocessor, frame, train_path, warn)
    else:
        target = TargetEncoder.fit(train_frame[data.target], task, binary=binary,
                                   target_scale=data.target_scale, source=train_path)
        preprocessor = Preprocessor.fit(train_frame, features, data.scale, data.missing, train_path)
    dtype = np.dtype(config.training.dtype)

    def encode(part: pd.DataFrame, source: str) -> Split:
        X = preprocessor.transform(part, dtype, source)
        y, Y = target.encode(part[data.target], dtype, source)
        return Split(X, Y, y)

    train = encode(train_frame, train_path)
    if data.class_weight is not None:
        if task != "classification":
            raise ConfigError(f"{config.source}: data.class_weight: only classification has classes; remove it")
        weights = class_weights(data.class_weight, target, train.y, config.source)
        train.w = weights[train.y].astype(dtype)
        sources["class_weight"] = dict(zip(map(str, target.classes), weights.tolist(), strict=True))
    validation = encode(val_frame, sources.get("validation", train_path)) if len(val_frame) else None
    sources.update(rows_train=len(train_frame), rows_validation=len(val_frame))
    return Dataset(train, validation, preprocessor, target, loss, sources)


def checked_features(config: Config, frame: pd.DataFrame, source: str, base: Model | None) -> list[str]:
    """The feature columns, once `frame` (a CSV, or only its header) is known to hold them and the target."""
    require_columns(frame, [config.data.target], source, "target")
    features = feature_columns(config, frame, source, base)
    require_columns(frame, features, source, "feature")
    return features


def feature_columns(config: Config, frame: pd.DataFrame, source: str, base: Model | None) -> list[str]:
    data = config.data
    if base is not None:
        known = [spec.name for spec in base.preprocessor.features]
        if data.target != base.target.name:
            raise DataError(f"{config.source}: data.target '{data.target}' differs from the model's target "
                            f"'{base.target.name}'; a model keeps the target it was trained on")
        if data.features and list(data.features) != known:
            raise DataError(f"{config.source}: data.features {list(data.features)} differ from the model's "
                            f"features {known}; a model keeps the features it was trained on")
        missing = [name for name in known if name not in frame.columns]
        if missing:
            shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            raise DataError(f"{source}: lacks {len(missing)} of the model's {len(known)} feature columns ({shown}); "
                            "the data must have the columns the model was trained on")
        return known
    features = list(data.features) if data.features else [str(c) for c in frame.columns if c != data.target]
    if data.target in features:
        raise DataError(f"{source}: target '{data.target}' is also listed in data.features; remove it there")
    if not features:
        raise DataError(f"{source}: no feature columns besides the target '{data.target}'")
    return features


def loss_name(config: Config, target: pd.Series, base: Model | None) -> str:
    if base is None:
        return config.loss or default_loss(target)
    if config.loss and config.loss != base.loss:
        raise ConfigError(f"{config.source}: loss '{config.loss}' differs from the model's '{base.loss}'; "
                          "a model keeps its loss and output layer")
    return base.loss


def _warn_unseen_categories(preprocessor: Preprocessor, frame: pd.DataFrame, source: str,
                            warn: Callable[[str], None]) -> None:
    for spec in preprocessor.features:
        if spec.kind != "categorical":
            continue
        values = frame[spec.name].dropna().astype(str)
        unseen = values[~values.isin(spec.categories)]
        if len(unseen):
            warn(unseen_warning(source, spec.name, len(unseen), set(unseen)))


def class_weights(setting: str | dict[Any, float], target: TargetEncoder, y: np.ndarray, source: str) -> np.ndarray:
    """Loss weight per class index: 'balanced' = n_rows / (n_classes * rows of the class), or a label mapping."""
    return class_weights_from_counts(setting, target, np.bincount(y, minlength=len(target.classes)), source)


def class_weights_from_counts(setting: str | dict[Any, float], target: TargetEncoder, counts: np.ndarray,
                              source: str) -> np.ndarray:
    """`class_weights` from the training rows' count per class index (n_classes,)."""
    k = len(target.classes)
    if setting == "balanced":
        counts = counts.astype(np.float64)
        balanced: np.ndarray = np.divide(int(counts.sum()), k * counts, out=np.ones(k), where=counts > 0)
        return balanced
    assert isinstance(setting, dict)
    by_text = {str(label): i for i, label in enumerate(target.classes)}
    weights = np.ones(k)
    for label, weight in setting.items():
        if str(label) not in by_text:
            raise ConfigError(f"{source}: data.class_weight: unknown class {label!r} "
                              f"(classes: {', '.join(map(str, target.classes))})")
        weights[by_text[str(label)]] = weight
    return weights
