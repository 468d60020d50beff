"""`explanation`: one row of a CSV through a trained model gives predict's output and prediction, the inputs
predict computes, and (with its target) the loss evaluate computes for that row."""

from __future__ import annotations

import io

import numpy as np
import pytest

from nnctl.config.load import load_config
from nnctl.engine.trace import float64_copy
from nnctl.errors import InputError
from nnctl.inference.explain import explanation
from nnctl.inference.predict import predict_chunk
from nnctl.inference.reader import read_chunks
from nnctl.training.run import train

from conftest import CONFIGS, DATASETS

QUICK = ["training.epochs=4", "training.early_stopping=null", "training.checkpoint_every=null"]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Iris (softmax), breast cancer calibrated with a stored threshold, auto_mpg (standardised target)."""
    folder = tmp_path_factory.mktemp("explain")
    made = {}
    for name, extra in (("iris", []), ("breast_cancer", ["training.calibrate=temperature", "training.threshold=f1"]),
                        ("auto_mpg", ["data.target_scale=standard"])):
        config = load_config(CONFIGS / f"{name}.yaml", [*QUICK, *extra])
        made[name] = train(config, output=folder / f"{name}.npz").model
    assert made["breast_cancer"].temperature is not None and made["breast_cancer"].threshold is not None
    return folder, made


def _predicted(model, path, rows: list[int]) -> tuple[list, np.ndarray]:
    """predict's labels (or values) and probabilities for data rows `rows` (1-based) of `path`."""
    names = model.preprocessor.names
    numeric = [s.name for s in model.preprocessor.features if s.kind == "numeric"]
    chunk = next(read_chunks(io.BytesIO(path.read_bytes()), str(path), names, chunk_rows=10_000, numeric=numeric))
    columns = predict_chunk(model, chunk, str(path), proba=True)
    picked = [r - 1 for r in rows]
    return [columns[0][i] for i in picked], np.array([[c[i] for c in columns[1:]] for i in picked])


@pytest.mark.parametrize("name", ["iris", "breast_cancer", "auto_mpg"])
def test_output_and_prediction_equal_predicts(models, name):
    _, made = models
    model, path = made[name], DATASETS / f"{name}.csv"
    rows = [1, 2, 17, 60, 84, 140] + ([224, 255] if name != "iris" else [])
    labels, P = _predicted(model, path, rows)
    for k, row in enumerate(rows):
        e = explanation(model, path, row)
        # predict writes 6 significant digits: explain's prediction is that number
        assert e.prediction == (labels[k] if model.task == "classification" else float(f"{labels[k]:.6g}"))
        if model.task == "classification":
            assert list(e.output) == [str(c) for c in model.target.classes]
            np.testing.assert_allclose(list(e.output.values()), P[k], atol=1e-6)
        else:
            assert e.output[model.target.name] == pytest.approx(labels[k], rel=1e-6)


def test_a_calibrated_model_shows_its_temperature_and_gradients_without_it(models):
    _, made = models
    model = made["breast_cancer"]
    e = explanation(model, DATASETS / "breast_cancer.csv", 3)
    assert e.trace.temperature == model.temperature
    assert e.trace.backward is not None
    # the loss is the training loss: the uncalibrated output's
    A = float64_copy(model.network).forward(e.trace.x.reshape(1, -1))
    Y = e.trace.backward.Y.reshape(1, -1)
    assert e.trace.backward.loss == pytest.approx(model.loss_function.value(A, Y, np.empty_like(A)), rel=1e-12)
    assert e.trace.backward.loss != pytest.approx(-np.log(e.output[str(e.target)]), rel=1e-3)


def test_each_column_is_mapped_to_its_inputs_with_its_rule(models):
    _, made = models
    model = made["auto_mpg"]
    e = explanation(model, DATASETS / "auto_mpg.csv", 39)  # line 40: horsepower is missing
    by_name = {c.name: c for c in e.columns}
    assert [n for c in e.columns for n in c.inputs] == model.preprocessor.input_names
    assert np.concatenate([c.x for c in e.columns]).tolist() == e.trace.x.tolist()
    spec = next(s for s in model.preprocessor.features if s.name == "weight")
    weight = by_name["weight"]
    assert weight.x[0] == pytest.approx((weight.raw - spec.center) / spec.scale)
    assert weight.rule == f"({weight.raw:.4g} - {spec.center:.4g}) / {spec.scale:.4g} = {weight.x[0]:.4g}"
    assert by_name["horsepower"].raw is None and by_name["horsepower"].rule.startswith("missing -> mean")
    origin = by_name["origin"]
    assert origin.rule.startswith(f"one-hot: origin={origin.raw} is 1")
    assert sum(origin.x) == 1


def test_json_has_the_full_arrays(models):
    _, made = models
    model = made["iris"]
    out = explanation(model, DATASETS / "iris.csv", 51).to_json()
    assert list(out) == ["row", "input", "x", "layers", "output", "prediction", "loss", "gradients"]
    assert out["row"] == 51 and out["input"] == {"sepal_length": 7.0, "sepal_width": 3.2, "petal_length": 4.7,
                                                 "petal_width": 1.4}
    sizes = model.network.sizes
    assert [len(layer["z"]) for layer in out["layers"]] == sizes[1:]
    assert [layer["activation"] for layer in out["layers"]] == model.network.activation_names
    assert [np.shape(g["dW"]) for g in out["gradients"]] == [W.shape for W in model.network.W]
    assert sum(out["output"].values()) == pytest.approx(1.0)
    assert out["loss"] == pytest.approx(-np.log(out["output"]["versicolor"]), rel=1e-9)


@pytest.mark.parametrize("row", [0, -1, 151])
def test_a_row_out_of_range_is_an_input_error_naming_the_row_count(models, row):
    _, made = models
    with pytest.raises(InputError, match=rf"iris.csv: row {row} is out of range: the file has 150 data rows"):
        explanation(made["iris"], DATASETS / "iris.csv", row)


def test_a_row_without_its_target_has_no_backward_pass(models, tmp_path):
    _, made = models
    path = tmp_path / "rows.csv"
    path.write_text("sepal_length,sepal_width,petal_length,petal_width,species\n5.1,3.5,1.4,0.2,\n")
    e = explanation(made["iris"], path)
    assert e.target is None and e.trace.backward is None
    assert e.to_json()["loss"] is None and e.to_json()["gradients"] is None
    (tmp_path / "features.csv").write_text("sepal_length,sepal_width,petal_length,petal_width\n5.1,3.5,1.4,0.2\n")
    assert explanation(made["iris"], tmp_path / "features.csv").output == e.output
