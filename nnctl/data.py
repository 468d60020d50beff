"""Tables in, arrays out: read CSVs, fit and apply the preprocessing, encode the target.

The fitted `Preprocessor` and `TargetEncoder` are plain data (they round-trip through JSON in the model
file), so `predict` needs nothing but the model and the raw feature columns.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any, TypeVar

import numpy as np
import pandas as pd

from nnctl._types import Array, IntArray
from nnctl.errors import DataError
from nnctl.registry import closest

T = TypeVar("T")
MISSING = "<missing>"  # the category that missing text values become under `missing: impute`


def read_csv(path: str | Path | IO[str], **kwargs: Any) -> pd.DataFrame:
    """Read a whole CSV with pandas; any failure is a one-line DataError naming the file."""
    frame: pd.DataFrame = _guarded(path, lambda: pd.read_csv(path, **kwargs))
    check_header(frame.columns, str(path))
    return frame


def iter_csv(path: str | Path | IO[str], name: str, chunk_rows: int) -> Iterator[pd.DataFrame]:
    """Read a CSV in chunks of rows (the index keeps counting across chunks)."""
    reader = _guarded(name, lambda: pd.read_csv(path, chunksize=chunk_rows))
    with reader:
        while True:
            chunk = _guarded(name, lambda: next(reader, None))
            if chunk is None:
                return
            check_header(chunk.columns, name)
            yield chunk


def _guarded(name: object, read: Callable[[], T]) -> T:
    try:
        return read()
    except FileNotFoundError:
        raise DataError(f"{name}: file not found") from None
    except IsADirectoryError:
        raise DataError(f"{name}: is a directory, expected a CSV file") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{name}: no data; expected a header line and rows") from None
    except UnicodeDecodeError:
        raise DataError(f"{name}: not UTF-8 text; save the CSV as UTF-8") from None
    except (pd.errors.ParserError, ValueError, OSError) as exc:
        detail = str(exc).strip().splitlines()[-1] if str(exc).strip() else exc.__class__.__name__
        raise DataError(f"{name}: cannot parse as CSV: {detail}") from None


def check_header(columns: pd.Index, name: str) -> None:
    """pandas renames a repeated column `x` to `x.1`; a silent rename would train on the wrong data."""
    names = [str(c) for c in columns]
    for column in names:
        stem, _, suffix = column.rpartition(".")
        if suffix.isdigit() and stem in names:
            raise DataError(f"{name}: duplicate column name '{stem}'; rename one of them")


def require_columns(frame: pd.DataFrame, columns: Sequence[str], source: str, role: str) -> None:
    """DataError naming the first missing column and the closest existing one."""
    present = [str(c) for c in frame.columns]
    for column in columns:
        if column not in present:
            hint = closest(column, present)
            did_you_mean = f"; did you mean '{hint}'?" if hint else ""
            raise DataError(f"{source}: no {role} column '{column}'{did_you_mean} (columns: {', '.join(present)})")


def line_of(index: Hashable) -> int:
    """CSV line of a row from its pandas index (line 1 is the header)."""
    return int(index) + 2 if isinstance(index, int | np.integer) else 0


def is_numeric(series: pd.Series) -> bool:
    """Numbers are scaled; anything else (text, booleans) is one-hot encoded."""
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def _as_text(values: np.ndarray) -> np.ndarray:
    """Object array of str, with missing values as the MISSING category."""
    return np.array([MISSING if pd.isna(v) else str(v) for v in values], dtype=object)


# --- features --------------------------------------------------------------------------------------


@dataclass
class FeatureSpec:
    """How one raw column becomes input columns: scaled number, or one-hot over `categories`."""

    name: str
    kind: str  # "numeric" | "categorical"
    center: float = 0.0
    scale: float = 1.0
    fill: float = 0.0  # training mean, used for missing numbers
    categories: list[str] = field(default_factory=list)

    @property
    def width(self) -> int:
        return 1 if self.kind == "numeric" else len(self.categories)


@dataclass
class Preprocessor:
    """Feature order, scaling and one-hot encoding, fitted on the training rows only."""

    features: list[FeatureSpec]
    scale: str = "standard"
    missing: str = "impute"

    @classmethod
    def fit(cls, frame: pd.DataFrame, columns: Sequence[str], scale: str, missing: str) -> Preprocessor:
        specs = []
        for name in columns:
            series = frame[name]
            if is_numeric(series):
                values = series.to_numpy(dtype=np.float64, na_value=np.nan)
                specs.append(_fit_numeric(name, values, scale))
            else:
                categories = sorted(set(_as_text(series.to_numpy())))
                specs.append(FeatureSpec(name, "categorical", categories=categories))
        return cls(specs, scale, missing)

    @property
    def n_inputs(self) -> int:
        return sum(spec.width for spec in self.features)

    @property
    def input_names(self) -> list[str]:
        """One name per network input: `weight`, `origin=USA`, ..."""
        names: list[str] = []
        for spec in self.features:
            names += [spec.name] if spec.kind == "numeric" else [f"{spec.name}={c}" for c in spec.categories]
        return names

    def transform(self, frame: pd.DataFrame, dtype: np.dtype[Any] | str, source: str) -> Array:
        """X (n_samples, n_inputs) from the raw feature columns of `frame`."""
        require_columns(frame, [s.name for s in self.features], source, "feature")
        X = np.empty((len(frame), self.n_inputs), dtype=dtype)
        col = 0
        for spec in self.features:
            series = frame[spec.name]
            if spec.kind == "numeric":
                X[:, col] = self._numeric(spec, series, source)
            else:
                X[:, col : col + spec.width] = self._one_hot(spec, series, source)
            col += spec.width
        return X

    def _numeric(self, spec: FeatureSpec, series: pd.Series, source: str) -> np.ndarray:
        values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan, copy=True)
        bad = np.isnan(values) & series.notna().to_numpy()
        if bad.any():
            i = int(np.argmax(bad))
            raise DataError(f"{source}: column '{spec.name}' line {line_of(series.index[i])}: "
                            f"'{series.iloc[i]}' is not a number")
        infinite = np.isinf(values)
        if infinite.any():
            i = int(np.argmax(infinite))
            raise DataError(f"{source}: column '{spec.name}' line {line_of(series.index[i])}: "
                            f"{values[i]} is not a finite number")
        missing = np.isnan(values)
        if missing.any():
            if self.missing != "impute":
                i = int(np.argmax(missing))
                raise DataError(f"{source}: column '{spec.name}' line {line_of(series.index[i])}: missing "
                                f"value, and the model was trained with data.missing: {self.missing}")
            values[missing] = spec.fill
        return (values - spec.center) / spec.scale

    def _one_hot(self, spec: FeatureSpec, series: pd.Series, source: str) -> np.ndarray:
        text = _as_text(series.to_numpy())
        if self.missing != "impute" and (text == MISSING).any():
            i = int(np.argmax(text == MISSING))
            raise DataError(f"{source}: column '{spec.name}' line {line_of(series.index[i])}: missing value, "
                            f"and the model was trained with data.missing: {self.missing}")
        # Categories never seen in training get all-zero columns, like scikit-learn's handle_unknown="ignore".
        codes = pd.Index(spec.categories).get_indexer(pd.Index(text))
        out = np.zeros((len(text), spec.width))
        known = codes >= 0
        out[np.flatnonzero(known), codes[known]] = 1.0
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"scale": self.scale, "missing": self.missing, "features": [asdict(s) for s in self.features]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Preprocessor:
        return cls([FeatureSpec(**f) for f in data["features"]], data["scale"], data["missing"])


def _fit_numeric(name: str, values: np.ndarray, scale: str) -> FeatureSpec:
    present = values[~np.isnan(values)]
    fill = float(present.mean()) if present.size else 0.0
    center, spread = 0.0, 1.0
    if scale == "standard" and present.size:
        center, spread = fill, float(present.std())
    elif scale == "minmax" and present.size:
        center, spread = float(present.min()), float(present.max() - present.min())
    # A constant column carries no information; dividing by 1 keeps it finite (and zero after centring).
    return FeatureSpec(name, "numeric", center=center, scale=spread if spread > 0 else 1.0, fill=fill)


# --- target ----------------------------------------------------------------------------------------


@dataclass
class TargetEncoder:
    """Classification: labels <-> class indices. Regression: optional standardisation of the target."""

    name: str
    task: str  # "classification" | "regression"
    classes: list[Any] = field(default_factory=list)
    center: float = 0.0
    scale: float = 1.0
    binary: bool = False  # one sigmoid output instead of one softmax unit per class

    @property
    def n_outputs(self) -> int:
        return 1 if self.task == "regression" or self.binary else len(self.classes)

    @classmethod
    def fit(cls, series: pd.Series, task: str, *, binary: bool, target_scale: str, source: str) -> TargetEncoder:
        if task == "regression":
            values = _target_numbers(series, source)
            if target_scale == "standard":
                std = float(values.std())
                return cls(str(series.name), task, center=float(values.mean()), scale=std if std > 0 else 1.0)
            return cls(str(series.name), task)
        classes = sorted(set(labels_of(series)))
        if len(classes) < 2:
            raise DataError(f"{source}: target '{series.name}' has only one class ({classes[0]!r}); "
                            "classification needs at least two")
        if binary and len(classes) != 2:
            raise DataError(f"{source}: binary_cross_entropy needs exactly 2 classes, target '{series.name}' "
                            f"has {len(classes)}; use loss: cross_entropy")
        return cls(str(series.name), task, classes=classes, binary=binary)

    def encode(self, series: pd.Series, dtype: np.dtype[Any] | str, source: str) -> tuple[np.ndarray, Array]:
        """(y, Y): class indices (n,) or target values (n,), and the loss's target Y (n, n_outputs)."""
        if self.task == "regression":
            y = _target_numbers(series, source)
            return y, ((y - self.center) / self.scale).astype(dtype).reshape(-1, 1)
        lookup = {label: i for i, label in enumerate(self.classes)}
        labels = labels_of(series)
        unknown = [label for label in labels if label not in lookup]
        if unknown:
            raise DataError(f"{source}: target '{self.name}' has label {unknown[0]!r}, which is not one of the "
                            f"model's classes ({', '.join(map(str, self.classes))}); a network cannot learn a "
                            "class its output layer does not have")
        y = np.array([lookup[label] for label in labels], dtype=np.int64)
        if self.binary:
            return y, y.astype(dtype).reshape(-1, 1)
        Y = np.zeros((len(y), len(self.classes)), dtype=dtype)
        Y[np.arange(len(y)), y] = 1
        return y, Y

    def class_indices(self, A: Array) -> IntArray:
        """Predicted class index per row from the network output A (n, n_outputs)."""
        if self.binary:
            return (A[:, 0] >= 0.5).astype(np.int64)
        indices: IntArray = A.argmax(axis=1)
        return indices

    def probabilities(self, A: Array) -> Array:
        """(n, n_classes) class probabilities from the network output."""
        if self.binary:
            return np.column_stack([1 - A[:, 0], A[:, 0]])
        return A

    def values(self, A: Array) -> np.ndarray:
        """Regression predictions on the target's own scale."""
        return A[:, 0].astype(np.float64) * self.scale + self.center

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TargetEncoder:
        return cls(**data)


def labels_of(series: pd.Series) -> list[Any]:
    """Class labels as JSON-friendly Python values: ints stay ints (1.0 -> 1), everything else is str."""
    values = series.to_numpy()
    if is_numeric(series):
        numbers = values.astype(np.float64)
        if np.all(numbers == np.round(numbers)):
            return [int(v) for v in numbers]
    return [str(v) for v in values]


def _target_numbers(series: pd.Series, source: str) -> np.ndarray:
    values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan, copy=True)
    bad = ~np.isfinite(values)
    if bad.any():
        i = int(np.argmax(bad))
        raise DataError(f"{source}: target '{series.name}' line {line_of(series.index[i])}: {series.iloc[i]!r} "
                        "is not a finite number; regression (loss: mse) needs numeric targets, "
                        "classification needs loss: cross_entropy")
    return values
