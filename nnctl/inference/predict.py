"""Predictions and evaluation on rows of data, using only what the model file stores.

`predict` is a pipeline stage: rows stream in (CSV or JSON lines), predictions stream out chunk by chunk,
and a small input never imports pandas (`nnctl.inference.reader`). `evaluate` reads a whole labelled CSV with
pandas (`nnctl.data`), imported only then.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from nnctl.dialect import Settings, sniff
from nnctl.engine.metrics import class_scores, confusion_matrix
from nnctl.errors import DataError
from nnctl.inference.reader import RawChunk, read_chunks
from nnctl.model.model import Model
from nnctl.model.preprocessing import Unseen

CHUNK_ROWS = 10_000


def output_columns(model: Model, *, proba: bool = False, keep: Sequence[str] = ()) -> list[str]:
    """The header `predict` writes: kept columns, the prediction (named after the target), probabilities.

    A kept column with the target's name (say, the true labels) is written as `input_<name>`."""
    target = model.target.name
    kept = [f"input_{c}" if c == target else c for c in keep]
    probabilities = [f"proba_{label}" for label in model.target.classes] if proba else []
    return [*kept, target, *probabilities]


def check_threshold(model: Model, threshold: float | None) -> None:
    """A `threshold` only means something for a model with two classes."""
    if threshold is None:
        return
    if model.task != "classification" or len(model.target.classes) != 2:
        what = ("a regression model" if model.task != "classification"
                else f"{len(model.target.classes)} classes ({', '.join(map(str, model.target.classes))})")
        raise DataError(f"{{threshold}} needs a model with two classes; this one has {what}", arguments=("threshold",))
    if not 0 < threshold < 1:
        raise DataError(f"{{threshold}} must be between 0 and 1, not {threshold}", arguments=("threshold",))


def predict_chunk(model: Model, chunk: RawChunk, source: str, *, proba: bool = False,
                  threshold: float | None = None, unseen: Unseen | None = None) -> list[list[Any]]:
    """Output columns for one chunk: the predictions, then one probability column per class with `proba`;
    categories the model never saw are counted in `unseen`. A two-class model predicts the second class when its
    probability is at least `threshold`, else the model's stored threshold (`training.threshold`), else 0.5."""
    pre = model.preprocessor
    numeric = {spec.name for spec in pre.features if spec.kind == "numeric"}
    X = pre.transform_columns(chunk.with_points(numeric), chunk.n, model.network.dtype, source, chunk.lines, unseen,
                              chunk.block)
    A = model.output(X)
    target = model.target
    if target.task != "classification":
        return [target.values(A).tolist()]
    P = target.probabilities(A)
    # with a threshold (given, else the model's own), the second class is the "positive" one
    indices = model.class_indices(A, threshold)
    labels = [target.classes[i] for i in indices.tolist()]
    if not proba:
        return [labels]
    return [labels, *(P[:, j].astype(np.float64).tolist() for j in range(P.shape[1]))]


def predict(model: Model, source: IO[Any], out: IO[str], *, name: str = "<stdin>", proba: bool = False,
            fmt: str = "csv", input_format: str = "csv", keep: Sequence[str] = (),
            threshold: float | None = None, dialect: Settings | None = None, strict: bool = False,
            warn: Callable[[str], None] | None = None) -> int:
    """Stream predictions for the rows of `source` (bytes or text) to `out`; returns the row count. A CSV is read
    in the `dialect` asked for, the rest detected (`nnctl.dialect`).

    Each chunk is written and flushed as soon as it is predicted, so a reader downstream sees output
    before the input ends. Categories the model never saw are encoded as all zeros and reported to `warn` at the
    end, one line per column; with `strict` the first one is a DataError instead."""
    check_threshold(model, threshold)
    header = output_columns(model, proba=proba, keep=keep)
    features = model.preprocessor.names
    wanted = list(dict.fromkeys([*features, *keep]))
    writer = csv.writer(out, lineterminator="\n") if fmt == "csv" else None
    rows, first = 0, True
    numeric = [spec.name for spec in model.preprocessor.features if spec.kind == "numeric"]
    unseen = Unseen(strict)
    for chunk in read_chunks(source, name, wanted, fmt=input_format, chunk_rows=CHUNK_ROWS,
                             role="feature" if not keep else "input", numeric=numeric, dialect=dialect):
        columns = [list(chunk.columns[c]) for c in keep]
        columns += predict_chunk(model, chunk, name, proba=proba, threshold=threshold, unseen=unseen)
        if writer is not None:
            if first:
                writer.writerow(header)  # even with no rows, so the reader learns the columns
            writer.writerows(zip(*(_csv_cells(c) for c in columns), strict=True))
        else:
            for values in zip(*columns, strict=True):
                out.write(json.dumps(dict(zip(header, map(json_value, values), strict=True))) + "\n")
        out.flush()
        rows, first = rows + chunk.n, False
    for line in unseen.warnings(name, model.preprocessor):
        (warn or (lambda message: None))(line)
    return rows


def _csv_cells(values: list[Any]) -> list[Any]:
    """Floats as 6 significant digits (float32 outputs hold about 7); other values as they are."""
    if values and isinstance(values[0], float):
        return [f"{v:.6g}" for v in values]
    return ["" if v is None else v for v in values]


def json_value(value: Any) -> Any:
    """A value as `predict --format jsonl` writes it: floats to 6 significant digits, the rest as they are."""
    return float(f"{value:.6g}") if isinstance(value, float) else value


@dataclass
class Evaluation:
    """What `evaluate` measured on a labelled CSV, with the rows behind it (for a plot of them)."""

    scores: dict[str, Any]  # what `evaluate` returns (and `nnctl evaluate --json` prints)
    truth: np.ndarray  # per row: the true class index (classification) or target value (regression)
    predicted: np.ndarray  # per row: the predicted class index, or the predicted value on the target's scale
    probabilities: np.ndarray | None = None  # classification: (n, n_classes) float64, as `predict --proba` gives them

    @property
    def metrics(self) -> dict[str, float]:
        """The scores that are metrics (loss, accuracy, ...), without the row count, the threshold or the tables."""
        return {k: float(v) for k, v in self.scores.items()
                if k not in ("rows", "threshold") and isinstance(v, int | float)}


def evaluate(model: Model, source: str | Path, dialect: Settings | None = None, *, strict: bool = False,
             weighted: bool = True, warn: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Loss and metrics of `model` on a labelled CSV (rows without a target are skipped), read in the `dialect`
    asked for, the rest detected; unseen categories as in `predict`. When the model was trained with data.weight
    and the CSV has that column, every score weighs the rows by it (`weighted=False`: each row weighs 1)."""
    return evaluation(model, source, dialect, strict=strict, weighted=weighted, warn=warn).scores


def evaluation(model: Model, source: str | Path, dialect: Settings | None = None, *, strict: bool = False,
               weighted: bool = True, warn: Callable[[str], None] | None = None) -> Evaluation:
    """`evaluate`'s scores, plus each row's true and predicted class index or value."""
    from nnctl.data.fit import encode_target, transform
    from nnctl.data.reader import read_csv
    from nnctl.data.rules import row_weights

    name = str(source)
    target = model.target.name
    frame = read_csv(source, sniff(source, dialect or Settings(), [*model.preprocessor.names, target]))
    if target not in frame.columns:
        raise DataError(f"{name}: no target column '{target}'; evaluate needs the labels the model predicts")
    frame = frame[frame[target].notna()]
    if frame.empty:
        raise DataError(f"{name}: no rows with a value in the target column '{target}'")
    unseen = Unseen(strict)
    X = transform(model.preprocessor, frame, model.network.dtype, name, unseen)
    for line in unseen.warnings(name, model.preprocessor):
        (warn or (lambda message: None))(line)
    y, Y = encode_target(model.target, frame[target], model.network.dtype, name)
    weight = model.setting("data", "weight")
    r = row_weights(weight, frame, name, "labelled") if weighted and weight in frame.columns else None
    A = model.output(X)  # one forward pass for the scores and the rows' predictions
    # a stored threshold decides the classes the metrics and the confusion matrix count: say which
    at = {"threshold": model.threshold} if model.threshold is not None else {}
    by = {"weighted_by": weight} if r is not None else {}
    scores: dict[str, Any] = {"rows": len(frame), **at, **by, **model.scores(A, Y, y, r)}
    if model.task != "classification":
        return Evaluation(scores, y, model.target.values(A))
    predicted = model.class_indices(A)
    n_classes = len(model.target.classes)
    C = confusion_matrix(y, predicted, n_classes)
    # the per-class table weighs rows as the metrics do (the unweighted matrix serves when there are no weights);
    # support stays a count of rows
    precision, recall, f1, _ = class_scores(C if r is None else confusion_matrix(y, predicted, n_classes, r))
    support = C.sum(axis=1)
    scores["per_class"] = {
        str(label): {"precision": float(precision[k]), "recall": float(recall[k]), "f1": float(f1[k]),
                     "support": int(support[k])}
        for k, label in enumerate(model.target.classes)
    }
    scores["confusion_matrix"] = {
        "labels": list(model.target.classes),
        # rows: true class, columns: predicted class
        "counts": C.tolist(),
    }
    return Evaluation(scores, y, predicted, model.target.probabilities(A).astype(np.float64))
