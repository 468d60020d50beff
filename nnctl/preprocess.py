"""Fitted preprocessing: raw feature columns in, network inputs X out; class labels <-> network outputs.

`Preprocessor` and `TargetEncoder` are plain data (they round-trip through JSON in the model file). Applying
them needs only NumPy, so `predict` never imports pandas; fitting them (at training time, from pandas
frames) imports pandas lazily.

Columns are sequences of raw values: str (CSV text), float (pandas numbers, JSON numbers), bool or None.
A value is missing when it is None, NaN or one of pandas' default missing-value strings, so a CSV parsed
by pandas at training time and by the `csv` module at predict time means the same thing.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from nnctl._types import Array, IntArray
from nnctl.errors import DataError
from nnctl.registry import closest

if TYPE_CHECKING:
    import pandas as pd

MISSING = "<missing>"  # the category that missing text values become under `missing: impute`
# pandas' default `na_values` (pandas._libs.parsers.STR_NA_VALUES; a test keeps the two in step)
NA_VALUES = frozenset({"", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
                       "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"})
BOOL_TEXT = {"True": "True", "TRUE": "True", "true": "True", "False": "False", "FALSE": "False", "false": "False"}


def is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return value in NA_VALUES
    return isinstance(value, float) and value != value  # NaN


def require_names(present: Sequence[str], columns: Sequence[str], source: str, role: str,
                  noun: str = "column") -> None:
    """DataError naming the first missing column (or JSON key) and the closest existing one."""
    for column in columns:
        if column not in present:
            hint = closest(column, present)
            did_you_mean = f"; did you mean '{hint}'?" if hint else ""
            what = f"{role} {noun}".strip()
            raise DataError(f"{source}: no {what} '{column}'{did_you_mean} ({noun}s: {', '.join(present)})")


def to_numbers(values: Sequence[Any] | np.ndarray) -> tuple[np.ndarray, int | None]:
    """float64 array with NaN for missing values, and the index of the first value that is not a number."""
    if isinstance(values, np.ndarray) and values.dtype.kind in "fiu":
        return values.astype(np.float64), None
    try:
        # fast path: numbers and numeric text (float() in C is the quickest parser NumPy offers here)
        return np.fromiter(map(float, values), np.float64, len(values)), None
    except (ValueError, TypeError):
        pass
    out = np.empty(len(values), np.float64)
    for i, value in enumerate(values):
        if is_missing(value):
            out[i] = np.nan
        else:
            try:
                out[i] = float(value)
            except (ValueError, TypeError):
                return out, i
    return out, None


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

    def texts(self, values: Sequence[Any] | np.ndarray) -> list[str]:
        """Raw values as the category strings training saw: missing -> MISSING, booleans as pandas wrote them."""
        boolish = bool(self.categories) and set(self.categories) <= {"True", "False", MISSING}
        out = []
        for value in values:
            if is_missing(value):
                out.append(MISSING)
            else:
                text = str(value)
                out.append(BOOL_TEXT.get(text, text) if boolish else text)
        return out


@dataclass
class Preprocessor:
    """Feature order, scaling and one-hot encoding, fitted on the training rows only."""

    features: list[FeatureSpec]
    scale: str = "standard"
    missing: str = "impute"

    @classmethod
    def fit(cls, frame: pd.DataFrame, columns: Sequence[str], scale: str, missing: str,
            source: str = "<data>") -> Preprocessor:
        specs = []
        for name in columns:
            series = frame[name]
            if is_numeric(series):
                values = series.to_numpy(dtype=np.float64, na_value=np.nan)
                if np.isinf(values).any():  # before fitting: inf would turn the scaling into NaN
                    i = int(np.argmax(np.isinf(values)))
                    raise _Where(source, name, _lines_of(frame)).error(i, f"{values[i]} is not a finite number")
                specs.append(_fit_numeric(name, values, scale))
            else:
                spec = FeatureSpec(name, "categorical")
                spec.categories = sorted(set(spec.texts(series.to_numpy())))
                specs.append(spec)
        return cls(specs, scale, missing)

    @property
    def n_inputs(self) -> int:
        return sum(spec.width for spec in self.features)

    @property
    def names(self) -> list[str]:
        """The raw columns the model reads, in order."""
        return [spec.name for spec in self.features]

    @property
    def input_names(self) -> list[str]:
        """One name per network input: `weight`, `origin=USA`, ..."""
        names: list[str] = []
        for spec in self.features:
            names += [spec.name] if spec.kind == "numeric" else [f"{spec.name}={c}" for c in spec.categories]
        return names

    def transform(self, frame: pd.DataFrame, dtype: np.dtype[Any] | str, source: str) -> Array:
        """X (n_samples, n_inputs) from the raw feature columns of a pandas frame."""
        require_names([str(c) for c in frame.columns], self.names, source, "feature")
        columns = {name: frame[name].to_numpy() for name in self.names}
        return self.transform_columns(columns, len(frame), dtype, source, _lines_of(frame))

    def transform_columns(self, columns: Mapping[str, Sequence[Any] | np.ndarray], n: int,
                          dtype: np.dtype[Any] | str, source: str,
                          lines: Sequence[int] | np.ndarray | None = None) -> Array:
        """X (n, n_inputs) from raw columns (every feature name -> n values); `lines[i]` is row i's line."""
        X = np.empty((n, self.n_inputs), dtype=dtype)
        largest = float(np.finfo(X.dtype).max)
        col = 0
        for spec in self.features:
            where = _Where(source, spec.name, lines)
            if spec.kind == "numeric":
                with np.errstate(over="ignore", invalid="ignore"):  # overflow is reported just below
                    values = self._numeric(spec, columns[spec.name], where)
                too_big = np.abs(values) > largest
                if too_big.any():
                    i = int(np.argmax(too_big))
                    raise where.error(i, f"{columns[spec.name][i]} is too large: beyond {X.dtype} range after "
                                         "scaling")
                X[:, col] = values
            else:
                self._one_hot(spec, columns[spec.name], where, X[:, col : col + spec.width])
            col += spec.width
        return X

    def _numeric(self, spec: FeatureSpec, raw: Sequence[Any] | np.ndarray, where: _Where) -> np.ndarray:
        values, bad = to_numbers(raw)
        if bad is not None:
            raise where.error(bad, f"'{raw[bad]}' is not a number")
        infinite = np.isinf(values)
        if infinite.any():
            i = int(np.argmax(infinite))
            raise where.error(i, f"{values[i]} is not a finite number")
        missing = np.isnan(values)
        if missing.any():
            if self.missing != "impute":
                raise where.error(int(np.argmax(missing)), "missing value, and the model was trained with "
                                                           f"data.missing: {self.missing}")
            values[missing] = spec.fill
        values -= spec.center
        values /= spec.scale
        return values

    def _one_hot(self, spec: FeatureSpec, raw: Sequence[Any] | np.ndarray, where: _Where, out: Array) -> None:
        text = spec.texts(raw)
        if self.missing != "impute" and MISSING in text:
            raise where.error(text.index(MISSING), "missing value, and the model was trained with "
                                                   f"data.missing: {self.missing}")
        # Categories never seen in training get all-zero columns, like scikit-learn's handle_unknown="ignore".
        lookup = {c: j for j, c in enumerate(spec.categories)}
        codes = np.fromiter((lookup.get(t, -1) for t in text), np.intp, len(text))
        out[...] = 0
        known = np.flatnonzero(codes >= 0)
        out[known, codes[known]] = 1

    def to_dict(self) -> dict[str, Any]:
        return {"scale": self.scale, "missing": self.missing, "features": [asdict(s) for s in self.features]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Preprocessor:
        return cls([FeatureSpec(**f) for f in data["features"]], data["scale"], data["missing"])


def _lines_of(frame: pd.DataFrame) -> np.ndarray | None:
    """CSV line of each row from pandas' row numbers (line 1 is the header), when the index is those."""
    index = frame.index.to_numpy()
    return index + 2 if index.dtype.kind in "iu" else None


@dataclass
class _Where:
    """Names the file, column and line of a bad value."""

    source: str
    column: str
    lines: Sequence[int] | np.ndarray | None

    def error(self, i: int, what: str) -> DataError:
        line = int(self.lines[i]) if self.lines is not None else i + 2
        return DataError(f"{self.source}: column '{self.column}' line {line}: {what}")


def _fit_numeric(name: str, values: np.ndarray, scale: str) -> FeatureSpec:
    present = values[~np.isnan(values)]
    if not present.size:
        return numeric_spec(name, scale, 0, 0.0, 0.0, 0.0, 0.0)
    std = float(present.std()) if scale == "standard" else 0.0
    low, high = (float(present.min()), float(present.max())) if scale == "minmax" else (0.0, 0.0)
    return numeric_spec(name, scale, present.size, float(present.mean()), std, low, high)


def numeric_spec(name: str, scale: str, count: int, mean: float, std: float, low: float, high: float) -> FeatureSpec:
    """A numeric column's spec from its training rows' statistics: the number of present values, their mean,
    population standard deviation, minimum and maximum (the whole column at once, or merged chunk by chunk)."""
    fill = mean if count else 0.0
    center, spread = 0.0, 1.0
    if scale == "standard" and count:
        center, spread = fill, std
    elif scale == "minmax" and count:
        center, spread = low, high - low
    # A constant column carries no information; dividing by 1 keeps it finite (and zero after centring).
    return FeatureSpec(name, "numeric", center=center, scale=spread if spread > 0 else 1.0, fill=fill)


def is_numeric(series: pd.Series) -> bool:
    """Numbers are scaled; anything else (text, booleans) is one-hot encoded."""
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    return is_numeric_dtype(series) and not is_bool_dtype(series)


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
            scaled = (y - self.center) / self.scale
            too_big = np.abs(scaled) > float(np.finfo(dtype).max)
            if too_big.any():
                i = int(np.argmax(too_big))
                raise DataError(f"{source}: target '{self.name}' line {_line(series, i)}: {y[i]:g} is beyond "
                                f"{np.dtype(dtype)} range; use data.target_scale: standard or training.dtype: float64")
            return y, scaled.astype(dtype).reshape(-1, 1)
        lookup = {label: i for i, label in enumerate(self.classes)}
        labels = labels_of(series)
        unknown = [label for label in labels if label not in lookup]
        if unknown:
            raise self.unknown_label(unknown[0], source)
        y = np.array([lookup[label] for label in labels], dtype=np.int64)
        if self.binary:
            return y, y.astype(dtype).reshape(-1, 1)
        Y = np.zeros((len(y), len(self.classes)), dtype=dtype)
        Y[np.arange(len(y)), y] = 1
        return y, Y

    def unknown_label(self, label: Any, source: str) -> DataError:
        """The error for a class label the model does not have."""
        return DataError(f"{source}: target '{self.name}' has label {label!r}, which is not one of the model's "
                         f"classes ({', '.join(map(str, self.classes))}); a network cannot learn a class its output "
                         "layer does not have")

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
    values, bad = to_numbers(series.to_numpy())
    if bad is None and not np.isfinite(values).all():
        bad = int(np.argmax(~np.isfinite(values)))
    if bad is not None:
        raise DataError(f"{source}: target '{series.name}' line {_line(series, bad)}: '{series.iloc[bad]}' "
                        "is not a finite number; regression (loss: mse) needs numeric targets, "
                        "classification needs loss: cross_entropy")
    return values


def line_of(index: Hashable) -> int:
    """CSV line of a row from its pandas index (line 1 is the header), or 0 when the index is not a row number."""
    return int(index) + 2 if isinstance(index, int | np.integer) else 0


def _line(series: pd.Series, i: int) -> int:
    """CSV line of the series' i-th row; its position when the index holds no row numbers."""
    return line_of(series.index[i]) or i + 2
