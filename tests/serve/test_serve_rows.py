"""A request's rows -> the answers `nnctl predict` gives for the same rows (JSON lines and CSV), and the errors."""

from __future__ import annotations

import io
import json

import pytest

from nnctl.errors import DataError
from nnctl.inference.predict import predict
from nnctl.serve.rows import CSV, JSON, Options, RequestError, answer, media_type, parse_records

from conftest import DATASETS
from serve_models import cancer, iris, mpg


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("serve-rows")
    return {"iris": iris(folder), "cancer": cancer(folder), "mpg": mpg(folder)}


def _jsonl_predict(model, records, **options) -> list[dict]:
    """What `nnctl predict --input-format jsonl --format jsonl` prints for `records`."""
    text = "".join(json.dumps(r) + "\n" for r in records)
    out = io.StringIO()
    predict(model, io.BytesIO(text.encode()), out, fmt="jsonl", input_format="jsonl", **options)
    return [json.loads(line) for line in out.getvalue().splitlines()]


def _records(name: str, columns: list[str], n: int) -> list[dict]:
    import csv

    with open(DATASETS / name, newline="") as handle:
        rows = list(csv.DictReader(handle))[:n]
    # numbers as JSON numbers where they parse, text (and gaps) as strings: what a client would send
    def value(text: str):
        try:
            return float(text) if "." in text else int(text)
        except ValueError:
            return text
    return [{c: value(row[c]) for c in columns} for row in rows]


@pytest.mark.parametrize("name, dataset, proba, threshold", [
    ("iris", "iris.csv", True, None), ("iris", "iris.csv", False, None),
    ("cancer", "breast_cancer.csv", True, None), ("cancer", "breast_cancer.csv", False, 0.3),
    ("mpg", "auto_mpg.csv", False, None)])
def test_json_answers_are_predicts_jsonl_lines(models, name, dataset, proba, threshold):
    model = models[name]
    records = _records(dataset, model.preprocessor.names, 120)
    options = Options(proba, threshold)
    got = answer(model, json.dumps(records).encode(), JSON, options)
    assert got.rows == len(records) and got.media_type == JSON
    expected = _jsonl_predict(model, records, proba=proba, threshold=threshold)
    assert json.loads(got.body)["predictions"] == expected
    # {"rows": [...]} is the same request
    wrapped = answer(model, json.dumps({"rows": records}).encode(), JSON, options)
    assert wrapped.body == got.body


def test_the_stored_threshold_and_temperature_apply(models):
    model = models["cancer"]
    assert model.threshold is not None and model.temperature is not None
    records = _records("breast_cancer.csv", model.preprocessor.names, 200)
    body = json.dumps(records).encode()
    stored = json.loads(answer(model, body, JSON, Options(True)).body)["predictions"]
    second = model.target.classes[1]
    # the class follows the stored threshold, not 0.5, wherever the two disagree
    for item in stored:
        assert (item["diagnosis"] == second) == (item[f"proba_{second}"] >= model.threshold - 1e-6)


def test_csv_answers_are_predicts_csv(models):
    model = models["mpg"]
    body = (DATASETS / "auto_mpg.csv").read_bytes()
    got = answer(model, body, CSV, Options())
    out = io.StringIO()
    predict(model, io.BytesIO(body), out)
    assert got.body.decode() == out.getvalue() and got.media_type == CSV and got.rows == out.getvalue().count("\n") - 1


def test_unseen_categories_come_back_as_warnings(models):
    model = models["mpg"]
    record = _records("auto_mpg.csv", model.preprocessor.names, 1)[0] | {"origin": "Mars"}
    document = json.loads(answer(model, json.dumps([record]).encode(), JSON, Options()).body)
    assert len(document["predictions"]) == 1
    assert document["warnings"] == ["request: column 'origin': 1 row with categories the model has never seen "
                                    "('Mars' 1); they are encoded as all zeros"]


def test_missing_and_wrong_typed_columns_are_named(models):
    model = models["iris"]
    with pytest.raises(DataError, match=r"request: line 2: no key 'petal_width'; did you mean 'petal_widht'\?"):
        answer(model, json.dumps([{"sepal_length": 1, "sepal_width": 1, "petal_length": 1, "petal_width": 1},
                                  {"sepal_length": 1, "sepal_width": 1, "petal_length": 1, "petal_widht": 1}]
                                 ).encode(), JSON, Options())
    with pytest.raises(DataError, match="request: column 'sepal_width' line 1: 'wide' is not a number"):
        answer(model, b'[{"sepal_length": 1, "sepal_width": "wide", "petal_length": 1, "petal_width": 1}]', JSON,
               Options())
    with pytest.raises(DataError, match="request: no feature column 'petal_width'"):
        answer(model, b"sepal_length,sepal_width,petal_length\n1,2,3\n", CSV, Options())


@pytest.mark.parametrize("body, status, fragment", [
    (b"[{", 400, "not valid JSON (Expecting property name"), (b"\xff", 400, "not valid JSON"),
    (b'{"row": []}', 422, "got an object"), (b'"text"', 422, "got a string")])
def test_bodies_that_are_not_records(body, status, fragment):
    with pytest.raises(RequestError, match=None) as caught:
        parse_records(body)
    assert caught.value.status == status and fragment in str(caught.value)


@pytest.mark.parametrize("body, fragment", [
    (b"[1, 2]", "request: line 1: expected a JSON object, got a number"),
    (b'[{"sepal_length": 1, "sepal_width": 1, "petal_length": 1, "petal_width": 1}, ["x"]]',
     "request: line 2: expected a JSON object, got a list")])
def test_records_that_are_not_objects(models, body, fragment):
    with pytest.raises(RequestError, match=fragment.replace("[", r"\[")) as caught:
        answer(models["iris"], body, JSON, Options())
    assert caught.value.status == 422


def test_items_are_predicts_lines_byte_for_byte(models):
    model = models["cancer"]
    records = _records("breast_cancer.csv", model.preprocessor.names, 50)
    text = "".join(json.dumps(r) + "\n" for r in records)
    out = io.StringIO()
    predict(model, io.BytesIO(text.encode()), out, fmt="jsonl", input_format="jsonl", proba=True)
    body = answer(model, json.dumps(records).encode(), JSON, Options(proba=True)).body.decode()
    assert body == '{"predictions": [' + ", ".join(out.getvalue().splitlines()) + "]}"


def test_a_threshold_needs_two_classes(models):
    with pytest.raises(DataError, match="threshold needs a model with two classes; this one has 3 classes"):
        answer(models["iris"], b"[]", JSON, Options(threshold=0.4))


def test_query_options_and_media_types():
    assert Options.parse({"proba": "true", "threshold": "0.25"}) == Options(True, 0.25)
    assert Options.parse({}) == Options(False, None)
    for query, fragment in (({"proba": "maybe"}, "proba=maybe"), ({"threshold": "x"}, "threshold=x: not a number"),
                            ({"probability": "1"}, "unknown query parameter 'probability'")):
        with pytest.raises(RequestError, match=fragment):
            Options.parse(query)
    assert media_type("application/json; charset=utf-8") == JSON and media_type("Text/CSV") == CSV
    with pytest.raises(RequestError, match="content type 'text/plain'") as caught:
        media_type("text/plain")
    assert caught.value.status == 415
    with pytest.raises(RequestError, match="content type none"):
        media_type(None)


def test_no_rows_is_an_empty_answer(models):
    model = models["iris"]
    assert answer(model, b"[]", JSON, Options(True)).body == b'{"predictions": []}'
    assert answer(model, b'{"rows": []}', JSON, Options()).rows == 0
    header = ",".join(model.preprocessor.names).encode() + b"\n"
    assert answer(model, header, CSV, Options()).body == b"species\n"  # the header, as predict writes it
