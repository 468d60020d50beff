"""Predictions and evaluation on CSV rows, using only what the model file stores."""

from __future__ import annotations

import json
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd

from nnctl.data import iter_csv, read_csv
from nnctl.errors import DataError
from nnctl.model import Model

CHUNK_ROWS = 50_000


def predict_frame(model: Model, frame: pd.DataFrame, source: str, proba: bool = False) -> pd.DataFrame:
    """A frame with the prediction column (named after the target) and, with `proba`, `proba_<label>` columns."""
    A = model.output(model.preprocessor.transform(frame, model.network.dtype, source))
    target = model.target
    out = pd.DataFrame(index=frame.index)
    if target.task == "classification":
        out[target.name] = np.asarray(target.classes, dtype=object)[target.class_indices(A)]
        if proba:
            P = target.probabilities(A)
            for j, label in enumerate(target.classes):
                out[f"proba_{label}"] = P[:, j].astype(np.float64)
    else:
        out[target.name] = target.values(A)
    return out


def predict(model: Model, source: str | Path | IO[str], out: IO[str], *, name: str = "<stdin>",
            proba: bool = False, fmt: str = "csv") -> int:
    """Stream predictions for the CSV rows of `source` to `out` chunk by chunk; returns the row count."""
    rows = 0
    header = True
    for chunk in iter_csv(source, name, CHUNK_ROWS):
        frame = predict_frame(model, chunk, name, proba)
        if fmt == "jsonl":
            for record in frame.to_dict(orient="records"):
                out.write(json.dumps(record, default=_json_default) + "\n")
        else:
            frame.to_csv(out, index=False, header=header, float_format="%.6g", lineterminator="\n")
        header = False
        rows += len(frame)
    return rows


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(type(value).__name__)


def evaluate(model: Model, source: str | Path) -> dict[str, Any]:
    """Loss and metrics of `model` on a labelled CSV (rows without a target are skipped)."""
    name = str(source)
    frame = read_csv(source)
    target = model.target.name
    if target not in frame.columns:
        raise DataError(f"{name}: no target column '{target}'; evaluate needs the labels the model predicts")
    frame = frame[frame[target].notna()]
    if frame.empty:
        raise DataError(f"{name}: no rows with a value in the target column '{target}'")
    X = model.preprocessor.transform(frame, model.network.dtype, name)
    y, Y = model.target.encode(frame[target], model.network.dtype, name)
    scores: dict[str, Any] = {"rows": len(frame), **model.evaluate(X, Y, y)}
    if model.task == "classification":
        scores["confusion_matrix"] = {
            "labels": list(model.target.classes),
            "counts": model.confusion(X, y).tolist(),  # rows: true class, columns: predicted class
        }
    return scores
