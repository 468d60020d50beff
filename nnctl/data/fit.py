"""Fitting the preprocessing on the training rows of a pandas frame, and encoding frames with it.

The fitted `Preprocessor` and `TargetEncoder` live in `nnctl.model.preprocessing` and apply with NumPy alone; what
needs pandas (column dtypes, the CSV line of a bad value) is here. Numbers are scaled, everything else (text,
booleans) one-hot encoded; class labels keep their type (`labels_of`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from pandas.api.types import is_bool_dtype, is_numeric_dtype

from nnctl._types import Array
from nnctl.data.reader import lines_of, series_line
from nnctl.errors import DataError
from nnctl.model.preprocessing import FeatureSpec, Preprocessor, TargetEncoder, require_names, to_numbers, value_error


def is_numeric(series: pd.Series) -> bool:
    """Numbers are scaled; anything else (text, booleans) is one-hot encoded."""
    return is_numeric_dtype(series) and not is_bool_dtype(series)


def labels_of(series: pd.Series) -> list[Any]:
    """Class labels as JSON-friendly Python values: ints stay ints (1.0 -> 1), everything else is str."""
    values = series.to_numpy()
    if is_numeric(series):
        numbers = values.astype(np.float64)
        if np.all(numbers == np.round(numbers)):
            return [int(v) for v in numbers]
    return [str(v) for v in values]


def fit_preprocessor(frame: pd.DataFrame, columns: Sequence[str], scale: str, missing: str,
                     source: str = "<data>") -> Preprocessor:
    """Scaling (numbers) and categories (the rest) of `columns`, from the training rows in `frame`."""
    specs = []
    for name in columns:
        series = frame[name]
        if is_numeric(series):
            values = series.to_numpy(dtype=np.float64, na_value=np.nan)
            if np.isinf(values).any():  # before fitting: inf would turn the scaling into NaN
                i = int(np.argmax(np.isinf(values)))
                raise value_error(source, name, series_line(series, i), f"{values[i]} is not a finite number")
            specs.append(_fit_numeric(name, values, scale))
        else:
            spec = FeatureSpec(name, "categorical")
            spec.categories = sorted(set(spec.texts(series.to_numpy())))
            specs.append(spec)
    return Preprocessor(specs, scale, missing)


def _fit_numeric(name: str, values: np.ndarray, scale: str) -> FeatureSpec:
    present = values[~np.isnan(values)]
    if not present.size:
        return FeatureSpec.numeric(name, scale, 0, 0.0, 0.0, 0.0, 0.0)
    std = float(present.std()) if scale == "standard" else 0.0
    low, high = (float(present.min()), float(present.max())) if scale == "minmax" else (0.0, 0.0)
    return FeatureSpec.numeric(name, scale, present.size, float(present.mean()), std, low, high)


def fit_target(series: pd.Series, task: str, *, binary: bool, target_scale: str, source: str) -> TargetEncoder:
    """The classes of a classification target (at least two; exactly two for a binary one), or a regression
    target's standardisation (`target_scale: standard`), from the training rows."""
    if task == "regression":
        values = target_numbers(series, source)
        if target_scale == "standard":
            std = float(values.std())
            return TargetEncoder(str(series.name), task, center=float(values.mean()), scale=std if std > 0 else 1.0)
        return TargetEncoder(str(series.name), task)
    classes = sorted(set(labels_of(series)))
    if len(classes) < 2:
        raise DataError(f"{source}: target '{series.name}' has only one class ({classes[0]!r}); "
                        "classification needs at least two")
    if binary and len(classes) != 2:
        raise DataError(f"{source}: binary_cross_entropy (one sigmoid output unit) needs exactly 2 classes, target "
                        f"'{series.name}' has {len(classes)}; use loss: cross_entropy with a softmax output")
    return TargetEncoder(str(series.name), task, classes=classes, binary=binary)


def target_numbers(series: pd.Series, source: str) -> np.ndarray:
    """A regression target's values (n,) as float64; DataError naming the line of one that is not a finite number."""
    values, bad = to_numbers(series.to_numpy())
    if bad is None and not np.isfinite(values).all():
        bad = int(np.argmax(~np.isfinite(values)))
    if bad is not None:
        raise DataError(f"{source}: target '{series.name}' line {series_line(series, bad)}: '{series.iloc[bad]}' "
                        "is not a finite number; regression (loss: mse) needs numeric targets, "
                        "classification needs loss: cross_entropy")
    return values


def encode_target(target: TargetEncoder, series: pd.Series, dtype: np.dtype[Any] | str,
                  source: str) -> tuple[np.ndarray, Array]:
    """(y, Y): class indices (n,) or target values (n,), and the loss's target Y (n, n_outputs)."""
    if target.task == "regression":
        y = target_numbers(series, source)
        scaled = (y - target.center) / target.scale
        too_big = np.abs(scaled) > float(np.finfo(dtype).max)
        if too_big.any():
            i = int(np.argmax(too_big))
            raise DataError(f"{source}: target '{target.name}' line {series_line(series, i)}: {y[i]:g} is beyond "
                            f"{np.dtype(dtype)} range; use data.target_scale: standard or training.dtype: float64")
        return y, scaled.astype(dtype).reshape(-1, 1)
    y = target.indices(labels_of(series), source)
    return y, target.loss_targets(y, dtype)


def transform(preprocessor: Preprocessor, frame: pd.DataFrame, dtype: np.dtype[Any] | str, source: str) -> Array:
    """X (n_samples, n_inputs) from the raw feature columns of a pandas frame."""
    require_names([str(c) for c in frame.columns], preprocessor.names, source, "feature")
    columns = {name: frame[name].to_numpy() for name in preprocessor.names}
    return preprocessor.transform_columns(columns, len(frame), dtype, source, lines_of(frame))
