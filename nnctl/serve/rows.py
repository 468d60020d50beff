"""A request's rows in, its predictions out: what `nnctl predict` would print for the same rows.

A JSON body (a list of records, or `{"rows": [...]}`) becomes one `RawChunk` of columns without pandas, and goes
through predict's own `predict_chunk`; each answer item is the object `predict --format jsonl` prints for that row.
A CSV body is read and written by `predict` itself. Errors are `RequestError`s carrying their HTTP status, or the
`DataError`s predict raises (422); the messages name the body as `request` and a record by its position as
`line N`, as `predict --input-format jsonl` names the Nth line.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from nnctl.errors import InputError
from nnctl.inference.predict import check_threshold, json_value, output_columns, predict, predict_chunk
from nnctl.inference.reader import RawChunk
from nnctl.model.columns import require_names
from nnctl.model.model import Model
from nnctl.model.preprocessing import Unseen

SOURCE = "request"  # what messages call the body, where predict names its input file
JSON = "application/json"
CSV = "text/csv"


class RequestError(InputError):
    """A request the server cannot answer; `status` is the HTTP status that says why (400, 413, 415, 422)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Answer:
    """A request's predictions: the response body and its media type, the rows predicted, predict's warnings."""

    body: bytes
    media_type: str
    rows: int
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Options:
    """predict's flags, from the query string: `?proba=true`, `?threshold=0.3`."""

    proba: bool = False
    threshold: float | None = None

    @classmethod
    def parse(cls, query: dict[str, str]) -> Options:
        unknown = sorted(set(query) - {"proba", "threshold"})
        if unknown:
            raise RequestError(f"{SOURCE}: unknown query parameter '{unknown[0]}'; expected proba=true|false or "
                               "threshold=NUMBER", 422)
        proba = query.get("proba", "false").lower()
        if proba not in ("true", "false", "1", "0"):
            raise RequestError(f"{SOURCE}: proba={query['proba']}: expected true or false", 422)
        threshold = query.get("threshold")
        try:
            value = float(threshold) if threshold is not None else None
        except ValueError:
            raise RequestError(f"{SOURCE}: threshold={threshold}: not a number; expected one between 0 and 1",
                               422) from None
        return cls(proba in ("true", "1"), value)


def media_type(content_type: str | None) -> str:
    """The body's media type, JSON or CSV; anything else is a 415 naming the two."""
    kind = (content_type or "").split(";", 1)[0].strip().lower()
    if kind in (JSON, CSV):
        return kind
    shown = f"'{kind}'" if kind else "none"
    raise RequestError(f"{SOURCE}: content type {shown}; send the rows as {JSON} (a list of records, or "
                       f'{{"rows": [...]}}) or as {CSV} (a header line, then rows)', 415)


def answer(model: Model, body: bytes, kind: str, options: Options) -> Answer:
    """The predictions for a JSON or CSV body, as bytes of the same kind."""
    check_threshold(model, options.threshold)
    if kind == CSV:
        return _csv_answer(model, body, options)
    records = parse_records(body)
    items, warnings = predict_records(model, records, options)
    # each item is the text predict prints for its row, so the body is built as text, not dumped again
    text = '{"predictions": [' + ", ".join(items) + "]"
    if warnings:
        text += ', "warnings": ' + json.dumps(warnings)
    return Answer((text + "}").encode(), JSON, len(items), warnings)


def parse_records(body: bytes) -> list[dict[str, Any]]:
    """The records of a JSON body: a list of objects, or an object whose `rows` is one."""
    try:
        data = json.loads(body)
    except json.JSONDecodeError as exc:
        raise RequestError(f"{SOURCE}: not valid JSON ({exc.msg}, line {exc.lineno} column {exc.colno}); expected "
                           'a list of records or {"rows": [...]}', 400) from None
    except UnicodeDecodeError:
        raise RequestError(f"{SOURCE}: not valid JSON (not UTF-8 text)", 400) from None
    if isinstance(data, dict) and "rows" in data:
        data = data["rows"]
    if not isinstance(data, list):
        raise RequestError(f"{SOURCE}: expected a list of records or {{\"rows\": [...]}}, got "
                           f"{_json_type(data)}", 422)
    return data  # its items are checked to be objects as their columns are taken (`records_chunk`)


def records_chunk(records: list[dict[str, Any]], columns: Sequence[str]) -> RawChunk:
    """The `columns` of `records` as one chunk; a record without one of them is a DataError naming every key it
    lacks (with "did you mean"), as predict's JSON-lines reader says it."""
    values: dict[str, list[Any]] = {}
    for column in columns:
        try:
            values[column] = [record[column] for record in records]
        except (KeyError, TypeError, IndexError):
            for number, record in enumerate(records, 1):
                if type(record) is not dict:
                    raise RequestError(f"{SOURCE}: line {number}: expected a JSON object, got "
                                       f"{_json_type(record)}", 422) from None
                if column not in record:
                    require_names(list(record), columns, f"{SOURCE}: line {number}", "", "key")
            raise
    return RawChunk(values, list(range(1, len(records) + 1)))


def predict_records(model: Model, records: list[dict[str, Any]], options: Options) -> tuple[list[str], list[str]]:
    """Per record, the JSON text `predict --format jsonl` prints for it (the same bytes), and predict's warnings
    (unseen categories)."""
    chunk = records_chunk(records, model.preprocessor.names)
    unseen = Unseen()
    columns = predict_chunk(model, chunk, SOURCE, proba=options.proba, threshold=options.threshold, unseen=unseen)
    header = output_columns(model, proba=options.proba)
    # one %s per column, after its key as json.dumps writes it (", " and ": " separators)
    pattern = "{" + ", ".join(json.dumps(key).replace("%", "%%") + ": %s" for key in header) + "}"
    texts = [_encoded(column) for column in columns]
    return [pattern % values for values in zip(*texts, strict=True)], unseen.warnings(SOURCE, model.preprocessor)


def _encoded(values: list[Any]) -> list[str]:
    """Each value as json.dumps writes it in predict's line: floats to 6 significant digits (`json_value`)."""
    if values and all(type(v) is float for v in values):
        # one json.dumps of the whole list, in C; a float's text never holds ", "
        return json.dumps([json_value(v) for v in values])[1:-1].split(", ")
    known: dict[tuple[type, Any], str] = {}  # labels repeat: encode each once (by type too: 1, 1.0 and True differ)
    return [known[k] if (k := (type(v), v)) in known else known.setdefault(k, json.dumps(json_value(v)))
            for v in values]


def _csv_answer(model: Model, body: bytes, options: Options) -> Answer:
    out = io.StringIO()
    warnings: list[str] = []
    rows = predict(model, io.BytesIO(body), out, name=SOURCE, proba=options.proba, threshold=options.threshold,
                   warn=warnings.append)
    return Answer(out.getvalue().encode(), CSV, rows, warnings)


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")
