"""One row's journey through a model: its raw columns, the inputs they became, every layer's Z and A, the output
and the prediction, and, when the row has its target, the loss and the gradients of that row's loss.

The row is read as `evaluate` reads a labelled CSV (pandas, through `nnctl.data`), so its values and its errors
are evaluate's; the numbers come from `nnctl.engine.trace`, in float64.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nnctl.dialect import Settings, sniff
from nnctl.engine.trace import Trace, trace
from nnctl.errors import DataError, InputError
from nnctl.model.model import Model
from nnctl.model.preprocessing import FeatureSpec, Unseen, is_missing


@dataclass
class Column:
    """How one raw column became network inputs: its value in the row, its inputs' names and values x, and the
    rule applied, written out (`(4.5 - 3.758) / 1.765 = 0.4203`)."""

    name: str
    kind: str  # "numeric" | "categorical" | "date"
    raw: Any  # the value as read (None when missing)
    inputs: list[str]
    x: list[float]
    rule: str


@dataclass
class Explanation:
    """Everything `nnctl explain` shows about data row `row` (1-based: the first row under the header) of `source`."""

    source: str
    row: int
    line: int  # the row's line in the file
    columns: list[Column]
    input_names: list[str]
    trace: Trace
    output: dict[str, float]  # class label -> probability, or {target name: value}
    prediction: Any  # as `predict` writes it: the label (threshold applied), or the value on the target's scale
    target: Any | None  # the row's target value, None when the row has none
    loss: str
    activations: list[str]

    def to_json(self) -> dict[str, Any]:
        """The full arrays as lists; `loss` and `gradients` are None when the row has no target."""
        t, back = self.trace, self.trace.backward
        return {
            "row": self.row,
            "input": {c.name: c.raw for c in self.columns},
            "x": t.x.tolist(),
            "layers": [{"activation": act, "z": Z.tolist(), "a": A.tolist()}
                       for act, Z, A in zip(self.activations, t.Z, t.A, strict=True)],
            "output": self.output,
            "prediction": self.prediction,
            "loss": None if back is None else back.loss,
            "gradients": None if back is None else [{"dW": dW.tolist(), "db": db.tolist()}
                                                    for dW, db in zip(back.dW, back.db, strict=True)],
        }


def explanation(model: Model, source: str | Path, row: int = 1, dialect: Settings | None = None, *,
                strict: bool = False, warn: Callable[[str], None] | None = None) -> Explanation:
    """Explain data row `row` (1-based) of the CSV `source` through `model`; `row` out of range is an InputError
    naming it and the row count. A row whose target is missing (or a file without the target column) still has
    its forward pass; the loss and gradients need the target. A category the model never saw goes to `warn`, as in
    `evaluate` (with `strict`, it is a DataError)."""
    from nnctl.data.fit import encode_target, transform
    from nnctl.data.reader import read_csv

    name = str(source)
    target = model.target.name
    frame = read_csv(source, sniff(source, dialect or Settings(), model.preprocessor.names))
    if not 1 <= row <= len(frame):
        n = len(frame)
        rows = (f"{n} data row{'s' if n != 1 else ''} (1 to {n}, 1 is the first under the header)" if n
                else "no data rows")
        raise InputError(f"{name}: {{row}} {row} is out of range: the file has {rows}", arguments=("row",))
    frame = frame.iloc[[row - 1]]
    unseen = Unseen(strict)
    X = transform(model.preprocessor, frame, "float64", name, unseen)
    for line in unseen.warnings(name, model.preprocessor):
        (warn or (lambda message: None))(line)
    Y, label = None, None
    if target in frame.columns and not is_missing(frame[target].iloc[0]):
        label = _plain(frame[target].iloc[0])
        _, Yrows = encode_target(model.target, frame[target], "float64", name)
        Y = Yrows[0]
    result = trace(model.network, X[0], model.loss_function, Y, model.temperature)
    return Explanation(name, row, row + 1, _columns(model, frame, X[0]), model.preprocessor.input_names, result,
                       _output(model, result.output), _prediction(model, source, row, X, dialect), label, model.loss,
                       list(model.network.activation_names))


def _output(model: Model, A: np.ndarray) -> dict[str, float]:
    target = model.target
    if target.task != "classification":
        return {target.name: float(target.values(A.reshape(1, -1))[0])}
    P = target.probabilities(A.reshape(1, -1))[0]
    return {str(label): float(p) for label, p in zip(target.classes, P, strict=True)}


def _prediction(model: Model, source: str | Path, row: int, X: np.ndarray, dialect: Settings | None) -> Any:
    """The prediction exactly as `predict` writes it for this row: predict's reader and chunks (float32 rounding
    depends on how many rows are multiplied at once), with the model's temperature and threshold; a value with 6
    significant digits. When predict's reader cannot read the row's chunk (a bad value in another row) or counts
    its rows differently, the row alone."""
    from nnctl.inference.predict import CHUNK_ROWS, predict_chunk
    from nnctl.inference.reader import read_chunks

    name, regression = str(source), model.task != "classification"
    numeric = [spec.name for spec in model.preprocessor.features if spec.kind == "numeric"]
    try:
        with open(source, "rb") as stream:
            seen = 0
            for chunk in read_chunks(stream, name, model.preprocessor.names, chunk_rows=CHUNK_ROWS, numeric=numeric,
                                     dialect=dialect):
                if seen + chunk.n >= row:
                    if chunk.lines[row - 1 - seen] != row + 1:  # the readers count rows differently (blank lines)
                        break
                    value = predict_chunk(model, chunk, name)[0][row - 1 - seen]
                    return float(f"{value:.6g}") if regression else value
                seen += chunk.n
    except DataError:
        pass
    A = model.output(X.astype(model.network.dtype))
    if regression:
        return float(f"{float(model.target.values(A)[0]):.6g}")
    return model.target.classes[int(model.class_indices(A)[0])]


def _plain(value: Any) -> Any:
    """A cell as a JSON value: NumPy scalars to Python ones, missing to None."""
    if is_missing(value):
        return None
    return value.item() if isinstance(value, np.generic) else value


def _columns(model: Model, frame: Any, x: np.ndarray) -> list[Column]:
    columns, col = [], 0
    for spec in model.preprocessor.features:
        raw = _plain(frame[spec.name].iloc[0])
        values = x[col : col + spec.width]
        columns.append(Column(spec.name, spec.kind, raw, spec.input_names, values.tolist(), _rule(spec, raw, values)))
        col += spec.width
    return columns


def _rule(spec: FeatureSpec, raw: Any, values: np.ndarray) -> str:
    """The preprocessing of one value, written out with its numbers."""
    missing = raw is None
    if spec.kind == "numeric":
        shown = f"missing -> mean {spec.fill:.4g}" if missing else f"{float(raw):.4g}"
        value = spec.fill if missing else float(raw)
        if spec.center == 0 and spec.scale == 1:
            rule = f"{shown} (not scaled)"
        else:
            rule = f"({value:.4g} - {spec.center:.4g}) / {spec.scale:.4g} = {values[0]:.4g}"
            rule = f"{shown}: {rule}" if missing else rule
    elif spec.kind == "categorical":
        hot = [c for c, v in zip(spec.categories, values, strict=True) if v == 1]
        rule = (f"one-hot: {spec.name}={hot[0]} is 1, the other {len(spec.categories) - 1} are 0" if hot
                else f"'{raw}' was never seen in training: all {len(spec.categories)} one-hot inputs are 0")
    else:
        parts = ", ".join(f"{n} {v:.3g}" for n, v in zip(spec.input_names, values, strict=False))
        rule = ("missing -> the mean date; " if missing else "") + parts
    if spec.indicator:
        rule += f"; {spec.name}.missing = {int(values[-1])}"
    return rule
