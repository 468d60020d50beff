import io

import numpy as np
import pandas as pd
import pytest

from nnctl.config.load import load_config
from nnctl.data.fit import transform
from nnctl.errors import DataError
from nnctl.inference.predict import evaluate, predict
from nnctl.training.run import train

from conftest import DATASETS, iris_config


@pytest.fixture(scope="module")
def iris_model(tmp_path_factory):
    import yaml

    folder = tmp_path_factory.mktemp("iris")
    (folder / "c.yaml").write_text(yaml.safe_dump(iris_config(training={"epochs": 60, "batch_size": 16})))
    return train(load_config(folder / "c.yaml"), save=False).model


def _predict(model, text: str, **options) -> list[str]:
    out = io.StringIO()
    predict(model, io.BytesIO(text.encode()), out, **options)
    return out.getvalue().splitlines()


def test_predict_gives_labels_and_probabilities(iris_model):
    text = (DATASETS / "iris.csv").read_text()
    lines = _predict(iris_model, text, proba=True)
    assert lines[0] == "species,proba_setosa,proba_versicolor,proba_virginica"
    frame = pd.read_csv(io.StringIO("\n".join(lines)))
    np.testing.assert_allclose(frame.iloc[:, 1:].sum(axis=1), 1, rtol=1e-4)
    truth = pd.read_csv(DATASETS / "iris.csv")["species"]
    assert (frame["species"] == truth).mean() > 0.9


def test_predict_reads_text_streams_too(iris_model):
    text = (DATASETS / "iris.csv").read_text()
    out = io.StringIO()
    predict(iris_model, io.StringIO(text), out)
    assert out.getvalue().splitlines() == _predict(iris_model, text)


def test_pandas_and_streaming_paths_agree_on_tricky_values(write_config, tmp_path):
    """Training parses with pandas, predict with the csv module: missing markers, booleans, quoting, BOM."""
    csv = tmp_path / "t.csv"
    rows = ["x,flag,colour,y"] + [f"{i % 7},{'true' if i % 3 else 'FALSE'},{['red', 'NA', 'blue, dark'][i % 3]},"
                                  f"{'a' if i % 2 else 'b'}" for i in range(60)]
    csv.write_text("\n".join(rows).replace("blue, dark", '"blue, dark"') + "\n")
    config = {"data": {"train": str(csv), "target": "y", "validation_split": 0},
              "model": {"layers": [{"units": 4}, {}]}, "training": {"epochs": 3}}
    model = train(load_config(write_config(config)), save=False).model
    flag = next(f for f in model.preprocessor.features if f.name == "flag")
    assert flag.categories == ["False", "True"]  # pandas read the column as booleans
    frame = pd.read_csv(csv)
    expected = model.output(transform(model.preprocessor, frame, model.network.dtype, "t.csv"))
    text = "\ufeff" + csv.read_text().replace("\n", "\r\n")  # a BOM and Windows line ends, too
    out = io.StringIO()
    predict(model, io.BytesIO(text.encode()), out, proba=True)
    got = pd.read_csv(io.StringIO(out.getvalue()))
    np.testing.assert_allclose(got[["proba_a", "proba_b"]].to_numpy(), expected, atol=1e-5)


def test_keep_passes_columns_through_and_renames_a_clash(iris_model):
    text = "id,sepal_length,sepal_width,petal_length,petal_width,species\nA7,5.1,3.5,1.4,0.2,setosa\n"
    lines = _predict(iris_model, text, keep=["id", "species"])
    assert lines == ["id,input_species,species", "A7,setosa,setosa"]
    with pytest.raises(DataError, match="no input column 'ID'; did you mean 'id'"):
        _predict(iris_model, text, keep=["ID"])


def test_jsonl_input_and_output(iris_model):
    text = ('{"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2, "id": 1}\n'
            '\n{"sepal_length": "6.7", "sepal_width": 3.0, "petal_length": 5.2, "petal_width": 2.3, "id": 2}\n')
    import json

    records = [json.loads(line) for line in _predict(iris_model, text, input_format="jsonl", fmt="jsonl",
                                                     keep=["id"])]
    assert [r["id"] for r in records] == [1, 2]
    assert [r["species"] for r in records] == ["setosa", "virginica"]
    message = r"<stdin>: line 3: no key 'petal_width'; did you mean 'sepal_width'\? \(keys: sepal_length"
    with pytest.raises(DataError, match=message):
        _predict(iris_model, text.replace(', "petal_width": 2.3', ""), input_format="jsonl")
    with pytest.raises(DataError, match=r"line 1: not valid JSON"):
        _predict(iris_model, "{oops\n", input_format="jsonl")


def test_header_only_input_writes_the_header(iris_model):
    assert _predict(iris_model, "sepal_length,sepal_width,petal_length,petal_width\n", proba=True) == [
        "species,proba_setosa,proba_versicolor,proba_virginica"]


def test_bad_rows_name_the_line(iris_model):
    text = "sepal_length,sepal_width,petal_length,petal_width\n5,3,1,0.2\n5,3,1,0.2,9\n"
    with pytest.raises(DataError, match=r"line 3: 5 fields, but the header has 4"):
        _predict(iris_model, text)
    with pytest.raises(DataError, match=r"column 'sepal_width' line 3: 'wide' is not a number"):
        _predict(iris_model, "sepal_length,sepal_width,petal_length,petal_width\n5,3,1,0.2\n5,wide,1,0.2\n")
    with pytest.raises(DataError, match="not UTF-8"):
        predict(iris_model, io.BytesIO(b"sepal_length\n\xff\xfe\n"), io.StringIO())


def test_streaming_predict_matches_the_whole_frame(iris_model, monkeypatch):
    import nnctl.inference.predict

    text = (DATASETS / "iris.csv").read_text()
    whole = io.StringIO()
    predict(iris_model, io.StringIO(text), whole)
    monkeypatch.setattr(nnctl.inference.predict, "CHUNK_ROWS", 7)
    chunked = io.StringIO()
    rows = predict(iris_model, io.StringIO(text), chunked)
    assert rows == 150
    assert chunked.getvalue() == whole.getvalue()
    assert whole.getvalue().splitlines()[0] == "species"


def test_evaluate_on_labelled_rows(iris_model):
    scores = evaluate(iris_model, DATASETS / "iris.csv")
    assert scores["rows"] == 150 and scores["accuracy"] > 0.9 and scores["loss"] > 0


def test_evaluate_needs_the_target(iris_model, tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("sepal_length,sepal_width,petal_length,petal_width\n1,2,3,4\n")
    with pytest.raises(DataError, match="no target column 'species'"):
        evaluate(iris_model, path)


def test_regression_predictions_are_on_the_target_scale(write_config):
    config = {"data": {"train": str(DATASETS / "auto_mpg.csv"), "target": "mpg",
                       "features": ["weight", "horsepower", "origin"], "target_scale": "standard"},
              "model": {"layers": [{"units": 8}, {}]}, "optimizer": {"learning_rate": 0.01},
              "training": {"epochs": 30}}
    model = train(load_config(write_config(config)), save=False).model
    out = io.StringIO()
    predict(model, (DATASETS / "auto_mpg.csv").open("rb"), out)
    out = pd.read_csv(io.StringIO(out.getvalue()))
    assert list(out.columns) == ["mpg"] and len(out) == 406
    assert 15 < out["mpg"].mean() < 32
    scores = evaluate(model, DATASETS / "auto_mpg.csv")
    assert scores["r2"] > 0.5 and set(scores) == {"rows", "loss", "mae", "rmse", "r2", "mape", "median_ae"}
