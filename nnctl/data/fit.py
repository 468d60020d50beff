"""Fitting the preprocessing on the training rows of a pandas frame, and encoding frames with it.

The fitted `Preprocessor` and `TargetEncoder` live in `nnctl.model.preprocessing` and apply with NumPy alone; what
needs pandas (column dtypes, the CSV line of a bad value) is here. Numbers are scaled, everything else (text,
booleans) one-hot encoded; class labels keep their type (`labels_of`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from pandas.api.types import is_bool_dtype, is_numeric_dtype

from nnctl._types import Array
from nnctl.config.schema import DataConfig
from nnctl.data.reader import lines_of, series_line
from nnctl.errors import DataError
from nnctl.model import dates
from nnctl.model.block import SLAB, NumericBlock
from nnctl.model.columns import require_names
from nnctl.model.preprocessing import (
    MISSING,
    FeatureSpec,
    Preprocessor,
    TargetEncoder,
    Unseen,
    to_numbers,
    value_error,
)


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


def fit_preprocessor(frame: pd.DataFrame, columns: Sequence[str], data: DataConfig,
                     source: str = "<data>") -> Preprocessor:
    """Scaling (numbers), parts (dates) and categories (the rest) of `columns`, from the training rows in `frame`.

    Number columns without gaps are fitted as one block (`_fit_block`), the rest one by one: the same specs."""
    fitted = _fit_block(frame, number_columns(frame, columns), data.scale)
    specs = []
    for name in columns:
        spec = fitted.get(name)
        specs.append(spec if spec is not None else _fit_column(frame[name], name, data, source))
    return Preprocessor(specs, data.scale, data.missing)


def number_columns(frame: pd.DataFrame, columns: Sequence[str]) -> list[str]:
    """Those of `columns` that NumPy int, uint or float columns of `frame` hold (from the dtypes alone, no column
    looked up): what `numeric_block` reads at once."""
    wanted = set(columns)
    found = {str(name) for name, dtype in zip(frame.columns, frame.dtypes, strict=True)
             if isinstance(dtype, np.dtype) and dtype.kind in "iuf" and str(name) in wanted}
    return [name for name in columns if name in found]


def numeric_block(frame: pd.DataFrame, names: Sequence[str]) -> NumericBlock:
    """The columns `names` of `frame` (NumPy numbers: `number_columns`) as one (n, len(names)) float64 block."""
    values = frame[list(names)].to_numpy(dtype=np.float64, na_value=np.nan) if names else np.empty((len(frame), 0))
    return NumericBlock(values, {name: j for j, name in enumerate(names)})


def _fit_block(frame: pd.DataFrame, names: Sequence[str], scale: str) -> dict[str, FeatureSpec]:
    """The specs of the number columns `names` that have no gap and no infinity, a slab of columns at a time; the
    statistics are reduced along contiguous rows of the transposed block, which gives the bits a column's own
    `mean()` and `std()` give (the rest, left out, are fitted one by one)."""
    fitted: dict[str, FeatureSpec] = {}
    if not len(frame):
        return fitted
    for start in range(0, len(names), SLAB):
        part = list(names[start : start + SLAB])
        V = np.ascontiguousarray(frame[part].to_numpy(dtype=np.float64, na_value=np.nan).T)  # (k, n)
        good = np.isfinite(V).all(axis=1)
        none = np.zeros(len(part))
        with np.errstate(invalid="ignore", over="ignore"):  # the columns with NaN or inf are not kept
            mean = V.mean(axis=1)
            std = V.std(axis=1) if scale == "standard" else none
        low, high = (V.min(axis=1), V.max(axis=1)) if scale == "minmax" else (none, none)
        for j in np.flatnonzero(good).tolist():
            fitted[part[j]] = FeatureSpec.numeric(part[j], scale, V.shape[1], float(mean[j]), float(std[j]),
                                                  float(low[j]), float(high[j]))
    return fitted


def _fit_column(series: pd.Series, name: str, data: DataConfig, source: str) -> FeatureSpec:
    """One column's spec: a number column with gaps (or an infinity: an error naming its line), or any other."""
    if is_numeric(series):
        values = series.to_numpy(dtype=np.float64, na_value=np.nan)
        if np.isinf(values).any():  # before fitting: inf would turn the scaling into NaN
            i = int(np.argmax(np.isinf(values)))
            raise value_error(source, name, series_line(series, i), f"{values[i]} is not a finite number")
        spec = _fit_numeric(name, values, data.scale)
        spec.indicator = data.missing_indicators and bool(np.isnan(values).any())
        return spec
    counts = series.value_counts(dropna=False, sort=False)
    texts = FeatureSpec(name, "categorical").texts(counts.index.to_numpy())
    return text_spec(name, texts, counts.to_numpy(), data, source)


def _fit_numeric(name: str, values: np.ndarray, scale: str) -> FeatureSpec:
    present = values[~np.isnan(values)]
    if not present.size:
        return FeatureSpec.numeric(name, scale, 0, 0.0, 0.0, 0.0, 0.0)
    std = float(present.std()) if scale == "standard" else 0.0
    low, high = (float(present.min()), float(present.max())) if scale == "minmax" else (0.0, 0.0)
    return FeatureSpec.numeric(name, scale, present.size, float(present.mean()), std, low, high)


def text_spec(name: str, texts: Sequence[str], counts: np.ndarray, data: DataConfig, source: str) -> FeatureSpec:
    """The spec of a column that is not numbers, from its distinct training values (as category texts, `<missing>`
    for gaps) and their counts (k,): a date column (`data.dates` lists it, or it is left unset and every present
    value is a date) or a categorical one. Both loaders use it: a whole frame, and streaming's counts per chunk."""
    present = [t for t in texts if t != MISSING]
    listed = data.dates is not None and name in data.dates
    if data.dates is None or listed:
        order = _date_order(name, present, data, source, listed)
        if order is not None:
            return _fit_date(name, texts, counts, order, data)
    return FeatureSpec(name, "categorical", categories=sorted(set(texts)))


def _date_order(name: str, present: Sequence[str], data: DataConfig, source: str, listed: bool) -> str | None:
    """The order the column's dates are written in (`data.date_order`, or detected); None when it holds no dates
    and is not listed in `data.dates` (then it is categorical)."""
    if data.date_order != "auto":
        bad = next((t for t in present if dates.seconds(t, data.date_order) is None), None)
        if bad is None and present:
            return data.date_order
        if not listed:
            return None
        raise DataError(f"{source}: column '{name}' (data.dates): '{bad}' is not a date in data.date_order "
                        f"{data.date_order} ({dates.EXAMPLES[data.date_order]})")
    if listed and not present:
        return "iso"  # nothing but gaps: every row gets the (default) fill
    order = dates.detect(present)
    if order is None:
        if listed:
            bad = next((t for t in present if all(dates.seconds(t, o) is None for o in dates.ORDERS)), None)
            problem = f"{bad!r} is not a date" if bad is not None else "its dates are not all written one way"
            raise DataError(f"{source}: column '{name}' (data.dates): {problem}; write dates as 2024-03-31, "
                            "2024-03-31 14:05, 31/03/2024 or 03/31/2024")
        return None
    if order != "iso" and dates.ambiguous(present):
        raise DataError(f"{source}: column '{name}': dates like '{present[0]}' read as day first and as month first; "
                        "set data.date_order: dmy (31/03/2024) or mdy (03/31/2024)")
    return order


def _fit_date(name: str, texts: Sequence[str], counts: np.ndarray, order: str, data: DataConfig) -> FeatureSpec:
    """A date column's spec from its distinct values and their counts: the parts it varies in, the year's scaling
    (weighted by the counts, as over the rows) and the mean instant that fills gaps."""
    stamps = dates.parse(texts, order, lambda text: text == MISSING)[0]
    present = ~np.isnan(stamps)
    weights = counts[present].astype(np.float64)
    spec = FeatureSpec(name, "date", order=order, parts=dates.fitted_parts(stamps[present]),
                       indicator=data.missing_indicators and not present.all())
    total = float(weights.sum())
    if not total:
        return spec
    spec.fill = float(np.dot(stamps[present], weights) / total)
    year = dates.part_columns(stamps[present], ["year"])[0]
    mean = float(np.dot(year, weights) / total)
    if data.scale == "standard":
        std = float(np.sqrt(np.dot((year - mean) ** 2, weights) / total))
        spec.center, spec.scale = mean, std if std > 0 else 1.0
    elif data.scale == "minmax":
        spread = float(year.max() - year.min())
        spec.center, spec.scale = float(year.min()), spread if spread > 0 else 1.0
    return spec


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


def transform(preprocessor: Preprocessor, frame: pd.DataFrame, dtype: np.dtype[Any] | str, source: str,
              unseen: Unseen | None = None) -> Array:
    """X (n_samples, n_inputs) from the raw feature columns of a pandas frame (unseen categories as
    `Preprocessor.transform_columns` counts them). Number columns are read as one block; a column is looked up
    on its own only when it is not numbers, or fails a check."""
    require_names([str(c) for c in frame.columns], preprocessor.names, source, "feature", trained=True)
    numeric = [spec.name for spec in preprocessor.features if spec.kind == "numeric"]
    block = numeric_block(frame, number_columns(frame, numeric))
    return preprocessor.transform_columns(_Columns(frame), len(frame), dtype, source, lines_of(frame), unseen, block)


class _Columns(Mapping[str, np.ndarray]):
    """A frame's columns as arrays, each looked up when asked for (a pandas lookup costs tens of microseconds)."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame

    def __getitem__(self, name: str) -> np.ndarray:
        values: np.ndarray = self.frame[name].to_numpy()
        return values

    def __iter__(self) -> Iterator[str]:
        return iter(map(str, self.frame.columns))

    def __len__(self) -> int:
        return len(self.frame.columns)
