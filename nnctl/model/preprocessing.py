"""Fitted preprocessing: raw feature columns in, network inputs X out; class labels <-> network outputs.

`Preprocessor` and `TargetEncoder` are plain data (they round-trip through JSON in the model file). Applying
them needs only NumPy, so `predict` never imports pandas; fitting them, from pandas frames at training time, is
`nnctl.data.fit`'s work.

Columns are sequences of raw values: str (CSV text), float (pandas numbers, JSON numbers), bool or None.
A value is missing when it is None, NaN or one of pandas' default missing-value strings, so a CSV parsed
by pandas at training time and by the `csv` module at predict time means the same thing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from nnctl._types import Array, IntArray
from nnctl.errors import DataError
from nnctl.model import dates
from nnctl.model.block import NumericBlock, scale_block

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


def value_error(source: str, column: str, line: int, what: str) -> DataError:
    """The error for one bad value: `FILE: column 'x' line 7: what is wrong`."""
    return DataError(f"{source}: column '{column}' line {line}: {what}")


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
    """How one raw column becomes input columns: a scaled number, one-hot over `categories`, or a date's `parts`
    (`nnctl.model.dates`: the year scaled like a number, the cyclic parts as sine/cosine pairs); with `indicator`,
    one more input that is 1 where the value is missing (numbers and dates; text has its `<missing>` category)."""

    name: str
    kind: str  # "numeric" | "categorical" | "date"
    center: float = 0.0
    scale: float = 1.0
    fill: float = 0.0  # training mean, used for missing numbers (dates: the mean instant, in seconds)
    categories: list[str] = field(default_factory=list)
    order: str = ""  # dates: "iso", "dmy" or "mdy"
    parts: list[str] = field(default_factory=list)  # dates: the parts fed to the network
    indicator: bool = False

    @property
    def width(self) -> int:
        if self.kind == "numeric":
            own = 1
        elif self.kind == "categorical":
            own = len(self.categories)
        else:
            own = dates.width(self.parts)
        return own + self.indicator

    @property
    def input_names(self) -> list[str]:
        """One name per network input: `weight`, `origin=USA`, `day.month_sin`, `weight.missing`."""
        if self.kind == "numeric":
            names = [self.name]
        elif self.kind == "categorical":
            names = [f"{self.name}={c}" for c in self.categories]
        else:
            names = [f"{self.name}.{part}" for part in dates.part_names(self.parts)]
        return names + [f"{self.name}.missing"] * self.indicator

    @classmethod
    def numeric(cls, name: str, scale: str, count: int, mean: float, std: float, low: float,
                high: float) -> FeatureSpec:
        """A numeric column's spec from its training rows' statistics: the number of present values, their mean,
        population standard deviation, minimum and maximum (the whole column at once, or merged chunk by chunk)."""
        fill = mean if count else 0.0
        center, spread = 0.0, 1.0
        if scale == "standard" and count:
            center, spread = fill, std
        elif scale == "minmax" and count:
            center, spread = low, high - low
        # A constant column carries no information; dividing by 1 keeps it finite (and zero after centring).
        return cls(name, "numeric", center=center, scale=spread if spread > 0 else 1.0, fill=fill)

    def to_dict(self) -> dict[str, Any]:
        """`dataclasses.asdict(self)`, the same keys in the same order, without its deep copy (a hundred times
        faster: a model of 100,000 columns writes its file in a fraction of a second)."""
        return {"name": self.name, "kind": self.kind, "center": self.center, "scale": self.scale, "fill": self.fill,
                "categories": list(self.categories), "order": self.order, "parts": list(self.parts),
                "indicator": self.indicator}

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

    @property
    def n_inputs(self) -> int:
        return sum(spec.width for spec in self.features)

    @property
    def names(self) -> list[str]:
        """The raw columns the model reads, in order."""
        return [spec.name for spec in self.features]

    def input_slices(self) -> dict[str, slice]:
        """Each raw column's block of network inputs, in feature order: `X[:, slices[name]]` (n, width) is what that
        column becomes (its scaled number, one-hot group or date parts, and its missing indicator)."""
        slices, col = {}, 0
        for spec in self.features:
            slices[spec.name] = slice(col, col + spec.width)
            col += spec.width
        return slices

    @property
    def input_names(self) -> list[str]:
        """One name per network input: `weight`, `origin=USA`, ..."""
        return [name for spec in self.features for name in spec.input_names]

    def transform_columns(self, columns: Mapping[str, Sequence[Any] | np.ndarray], n: int,
                          dtype: np.dtype[Any] | str, source: str,
                          lines: Sequence[int] | np.ndarray | None = None, unseen: Unseen | None = None,
                          block: NumericBlock | None = None) -> Array:
        """X (n, n_inputs) from raw columns (every feature name -> n values); `lines[i]` is row i's line. Categories
        training never saw become all zeros, counted in `unseen` (which may make the first one an error).

        The numeric features in `block` are scaled all at once from it (`nnctl.model.block`), the same bits as one
        by one; `columns` is read only for the other features and for a block column that fails a check."""
        X = np.empty((n, self.n_inputs), dtype=dtype)
        largest = float(np.finfo(X.dtype).max)
        done = scale_block(X, self.features, block, self.missing == "impute") if block is not None else set()
        col = 0
        for spec in self.features:
            width = spec.width
            if spec.name in done:
                col += width
                continue
            where = _Where(source, spec.name, lines)
            raw = columns[spec.name]
            if spec.kind == "numeric":
                with np.errstate(over="ignore", invalid="ignore"):  # overflow is reported just below
                    values, missing = self._numeric(spec, raw, where)
                too_big = np.abs(values) > largest
                if too_big.any():
                    i = int(np.argmax(too_big))
                    raise where.error(i, f"{raw[i]} is too large: beyond {X.dtype} range after scaling")
                X[:, col] = values
            elif spec.kind == "date":
                parts, missing = self._date(spec, raw, where)
                for j, part in enumerate(parts):
                    X[:, col + j] = part
            else:
                self._one_hot(spec, raw, where, X[:, col : col + len(spec.categories)], unseen)
            if spec.indicator:  # numbers and dates only: text has its `<missing>` category
                X[:, col + width - 1] = missing
            col += width
        return X

    def _numeric(self, spec: FeatureSpec, raw: Sequence[Any] | np.ndarray,
                 where: _Where) -> tuple[np.ndarray, np.ndarray]:
        """The scaled values (n,) float64 and where they were missing (n,) bool."""
        values, bad = to_numbers(raw)
        if bad is not None:
            raise where.error(bad, f"'{raw[bad]}' is not a number")
        infinite = np.isinf(values)
        if infinite.any():
            i = int(np.argmax(infinite))
            raise where.error(i, f"{values[i]} is not a finite number")
        missing = self._impute(spec, values, where)
        values -= spec.center
        values /= spec.scale
        return values, missing

    def _date(self, spec: FeatureSpec, raw: Sequence[Any] | np.ndarray,
              where: _Where) -> tuple[list[np.ndarray], np.ndarray]:
        """The date's inputs, one (n,) float64 column each (the year scaled), and where it was missing (n,)."""
        stamps, bad = dates.parse(raw, spec.order, is_missing)
        if bad is not None:
            raise where.error(bad, f"'{raw[bad]}' is not a date like the training ones ({dates.EXAMPLES[spec.order]})")
        missing = self._impute(spec, stamps, where)
        parts = dates.part_columns(stamps, spec.parts)
        if spec.parts[0] == "year":
            parts[0] = (parts[0] - spec.center) / spec.scale
        return parts, missing

    def _impute(self, spec: FeatureSpec, values: np.ndarray, where: _Where) -> np.ndarray:
        """Fill the NaNs of `values` (n,) with the training mean, in place (`missing: impute`; otherwise a gap is an
        error); where they were (n,) bool."""
        missing = np.isnan(values)
        if missing.any():
            if self.missing != "impute":
                raise where.error(int(np.argmax(missing)), "missing value, and the model was trained with "
                                                           f"data.missing: {self.missing}")
            values[missing] = spec.fill
        return np.asarray(missing)

    def _one_hot(self, spec: FeatureSpec, raw: Sequence[Any] | np.ndarray, where: _Where, out: Array,
                 unseen: Unseen | None) -> None:
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
        if unseen is not None and len(known) < len(codes):
            rows = np.flatnonzero(codes < 0).tolist()
            unseen.add(spec, [text[i] for i in rows], where.line(rows[0]), where.source)

    def to_dict(self) -> dict[str, Any]:
        return {"scale": self.scale, "missing": self.missing, "features": [s.to_dict() for s in self.features]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Preprocessor:
        return cls([FeatureSpec(**f) for f in data["features"]], data["scale"], data["missing"])


@dataclass
class Unseen:
    """Categories a model never saw in training, counted per column as chunks of rows pass (`predict`, `evaluate`);
    with `strict`, the first one is an error naming its line."""

    strict: bool = False
    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # column -> category text -> rows

    def add(self, spec: FeatureSpec, texts: list[str], line: int, source: str) -> None:
        """Count unseen category `texts` of column `spec`; the first of them is on `line` of `source`."""
        if self.strict:
            shown = ", ".join(spec.categories[:10]) + (", ..." if len(spec.categories) > 10 else "")
            raise DataError(f"{source}: column '{spec.name}' line {line}: category '{texts[0]}' was not in the "
                            f"training data ({shown}); without {{strict}} it is encoded as all zeros",
                            arguments=("strict",))
        counts = self.counts.setdefault(spec.name, {})
        for text in texts:
            counts[text] = counts.get(text, 0) + 1

    def warnings(self, source: str, preprocessor: Preprocessor) -> list[str]:
        """One line per column with unseen categories, in the model's feature order, with their counts."""
        lines = []
        for name in preprocessor.names:
            if name in self.counts:
                counts = sorted(self.counts[name].items(), key=lambda item: (-item[1], item[0]))
                shown = ", ".join(f"'{text}' {count}" for text, count in counts[:5])
                more = f" and {len(counts) - 5} more" if len(counts) > 5 else ""
                rows = sum(self.counts[name].values())
                lines.append(f"{source}: column '{name}': {rows} row{'s' if rows > 1 else ''} with categories the "
                             f"model has never seen ({shown}{more}); they are encoded as all zeros")
        return lines


@dataclass
class _Where:
    """Names the file, column and line of a bad value."""

    source: str
    column: str
    lines: Sequence[int] | np.ndarray | None

    def line(self, i: int) -> int:
        return int(self.lines[i]) if self.lines is not None else i + 2

    def error(self, i: int, what: str) -> DataError:
        return value_error(self.source, self.column, self.line(i), what)


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

    def indices(self, labels: Sequence[Any], source: str) -> IntArray:
        """The class index (n,) of each label (as `labels_of` gives them); DataError for a label the model lacks."""
        lookup = {label: i for i, label in enumerate(self.classes)}
        unknown = [label for label in labels if label not in lookup]
        if unknown:
            raise self.unknown_label(unknown[0], source)
        return np.array([lookup[label] for label in labels], dtype=np.int64)

    def loss_targets(self, y: IntArray, dtype: np.dtype[Any] | str) -> Array:
        """The loss's target Y (n, n_outputs) for class indices y (n,): one-hot rows, or one 0/1 column (binary)."""
        if self.binary:
            return y.astype(dtype).reshape(-1, 1)
        Y = np.zeros((len(y), len(self.classes)), dtype=dtype)
        Y[np.arange(len(y)), y] = 1
        return Y

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
