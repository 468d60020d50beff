"""`nnctl export`: the ONNX graph, preprocessing included, gives what `nnctl predict` gives on real rows."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from nnctl.cli import app
from nnctl.model.preprocessing import NA_VALUES

from conftest import CONFIGS, DATASETS, ROOT

runner = CliRunner()


def invoke(*args: str) -> Any:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result


def read_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    with path.open(newline="") as handle:
        header, *rows = list(csv.reader(handle))
    return header, rows


def auto_mpg_heavy() -> tuple[list[str], list[list[str]]]:
    """auto_mpg.csv with a boolean column `heavy` (weight over 3,000 lb), which nnctl one-hot encodes."""
    header, rows = read_rows(DATASETS / "auto_mpg.csv")
    weight = header.index("weight")
    return [*header, "heavy"], [[*row, str(float(row[weight]) > 3000)] for row in rows]


def write_rows(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", newline="") as handle:
        csv.writer(handle).writerows([header, *rows])
    return path


def with_extra_rows(tmp: Path) -> Path:
    """auto_mpg.csv (with `heavy`) plus copies of its first rows with an unseen origin, missing origins and
    booleans in several spellings, and missing horsepower."""
    header, rows = auto_mpg_heavy()
    origin, horsepower, heavy = header.index("origin"), header.index("horsepower"), header.index("heavy")
    extra = []
    for i, (o, h, b) in enumerate([("Mars", "130.0", "TRUE"), ("", "130.0", "false"), ("NA", "", ""),
                                   ("nan", "NA", "NA"), ("<missing>", "95", "true"), ("Japan", "", "FALSE")]):
        row = list(rows[i])
        row[origin], row[horsepower], row[heavy] = o, h, b
        extra.append(row)
    return write_rows(tmp / "auto_mpg_extra.csv", header, [*rows, *extra])


def with_gaps(tmp: Path) -> Path:
    """auto_mpg.csv (with `heavy`) with every 10th origin and every 7th `heavy` blank: the model learns a
    `<missing>` category for both."""
    header, rows = auto_mpg_heavy()
    for row in rows[::10]:
        row[header.index("origin")] = ""
    for row in rows[::7]:
        row[header.index("heavy")] = ""
    return write_rows(tmp / "auto_mpg_gaps.csv", header, rows)


# name -> (config, --set overrides, rows to predict); a config given as a dict is written as YAML
def _cases(tmp: Path) -> dict[str, tuple[Path | dict[str, Any], list[str], Path]]:
    extra = with_extra_rows(tmp)
    return {
        # multi-class softmax (tanh, relu), trained in float64
        "iris": (CONFIGS / "iris.yaml", ["training.dtype=float64"], DATASETS / "iris.csv"),
        # two classes through softmax, dropout
        "breast_cancer": (CONFIGS / "breast_cancer.yaml", [], DATASETS / "breast_cancer.csv"),
        # two classes through one sigmoid unit; leaky_relu and an identity hidden layer
        "breast_cancer_binary": ({
            "seed": 1,
            "data": {"train": str(DATASETS / "breast_cancer.csv"), "target": "diagnosis", "scale": "minmax"},
            "model": {"layers": [{"units": 12, "activation": "leaky_relu"}, {"units": 6, "activation": "identity"},
                                 {"activation": "sigmoid"}]},
            "loss": "binary_cross_entropy",
            "optimizer": {"name": "adam", "learning_rate": 0.01},
        }, [], DATASETS / "breast_cancer.csv"),
        # calibrated (a Div before the output activation) with a stored threshold, softmax and one sigmoid unit
        "breast_cancer_calibrated": (CONFIGS / "breast_cancer.yaml", ["training.calibrate=temperature",
                                                                      "training.threshold=f1"],
                                     DATASETS / "breast_cancer.csv"),
        "breast_cancer_binary_calibrated": ({
            "seed": 1,
            "data": {"train": str(DATASETS / "breast_cancer.csv"), "target": "diagnosis"},
            "model": {"layers": [{"units": 6, "activation": "tanh"}, {"activation": "sigmoid"}]},
            "loss": "binary_cross_entropy",
            "optimizer": {"name": "adam", "learning_rate": 0.01},
            "training": {"calibrate": "temperature", "threshold": "youden"},
        }, [], DATASETS / "breast_cancer.csv"),
        # regression: categorical origin, missing horsepower, target_scale standard; unseen and missing origins
        "auto_mpg": (CONFIGS / "auto_mpg.yaml", [], extra),
        # counts: poisson rates through softplus (as shipped) and exp; a missing education imputed
        "doctor_visits": (CONFIGS / "doctor_visits.yaml", [], DATASETS / "doctor_visits.csv"),
        "doctor_visits_exp": (CONFIGS / "doctor_visits.yaml", ["model.layers[2].activation=exp"],
                              DATASETS / "doctor_visits.csv"),
        # integer classes (cylinders); `<missing>` categories; a boolean column; features interleaved
        "cylinders": ({
            "seed": 2,
            "data": {"train": str(with_gaps(tmp)), "target": "cylinders",
                     "features": ["displacement", "origin", "horsepower", "heavy", "weight", "model_year"]},
            "model": {"layers": [{"units": 8, "activation": "sigmoid"}, {"activation": "softmax"}]},
            "loss": "cross_entropy",
            "optimizer": {"name": "adam", "learning_rate": 0.01},
        }, [], extra),
    }


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    """name -> (trained model, rows to check it on), each trained for a few epochs through the CLI."""
    import yaml

    tmp = tmp_path_factory.mktemp("export")
    out = {}
    for name, (config, overrides, rows) in _cases(tmp).items():
        if isinstance(config, dict):
            path = tmp / f"{name}.yaml"
            path.write_text(yaml.safe_dump(config, sort_keys=False))
            config = path
        model = tmp / f"{name}.npz"
        sets = [arg for item in overrides for arg in ("--set", item)]
        invoke("train", str(config), "-o", str(model), "--epochs", "8", "--quiet", *sets)
        out[name] = (model, rows)
    return out


def session(path: Path) -> Any:
    ort = pytest.importorskip("onnxruntime")
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # tiny graphs; leave the other cores alone
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def feeds(onnx_path: Path, rows_path: Path) -> dict[str, np.ndarray]:
    """The graph's inputs from a CSV's text: numeric columns as float32 (NaN for missing), categorical as str."""
    import onnx

    props = {p.key: p.value for p in onnx.load(str(onnx_path)).metadata_props}
    header, rows = read_rows(rows_path)
    out = {}
    numeric = json.loads(props["nnctl.numeric_columns"])
    categorical = json.loads(props["nnctl.categorical_columns"])
    if numeric:
        at = [header.index(c) for c in numeric]
        out["numeric"] = np.array([[np.nan if row[i] in NA_VALUES else float(row[i]) for i in at] for row in rows],
                                  np.float32)
    if categorical:
        at = [header.index(c) for c in categorical]
        out["categorical"] = np.array([[row[i] for i in at] for row in rows], dtype=object)
    return out


def predict_csv(model: Path, rows: Path, *args: str) -> tuple[list[str], list[list[str]]]:
    header, *lines = list(csv.reader(io.StringIO(invoke("predict", str(model), str(rows), *args).stdout)))
    return header, lines


@pytest.mark.parametrize("name", ["iris", "breast_cancer", "breast_cancer_binary", "auto_mpg", "cylinders",
                                  "doctor_visits", "doctor_visits_exp", "breast_cancer_calibrated",
                                  "breast_cancer_binary_calibrated"])
def test_the_onnx_graph_matches_predict(models, tmp_path, name):
    onnx = pytest.importorskip("onnx")
    model, rows = models[name]
    path = tmp_path / f"{name}.onnx"
    result = invoke("export", str(model), "-o", str(path))
    assert result.stdout == ""
    assert result.stderr.startswith(f"wrote {path} (inputs numeric float32[N, ")
    assert len(result.stderr.splitlines()) == 1
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)

    outputs = session(path).run(None, feeds(path, rows))
    header, predicted = predict_csv(model, rows, "--proba")
    assert len(predicted) == len(outputs[0]) == len(read_rows(rows)[1])
    if len(header) == 1:  # regression: the values, on the target's scale
        (values,) = outputs
        assert values.shape == (len(predicted),) and values.dtype == np.float32
        np.testing.assert_allclose(values, [float(r[0]) for r in predicted], rtol=1e-5)
    else:
        probabilities, labels = outputs
        assert probabilities.shape == (len(predicted), len(header) - 1)
        np.testing.assert_allclose(probabilities, [[float(v) for v in r[1:]] for r in predicted], atol=1e-5)
        assert [str(label) for label in labels] == [r[0] for r in predicted]


def test_integer_classes_are_int64_labels_and_strings_stay_strings(models, tmp_path):
    for name, kind in [("cylinders", np.int64), ("iris", object)]:
        path = tmp_path / f"{name}.onnx"
        invoke("export", str(models[name][0]), "-o", str(path))
        labels = session(path).run(["label"], feeds(path, models[name][1]))[0]
        assert labels.dtype == kind


def test_the_file_says_what_to_feed(models, tmp_path):
    onnx = pytest.importorskip("onnx")
    path = tmp_path / "cylinders.onnx"
    invoke("export", str(models["cylinders"][0]), "-o", str(path))
    proto = onnx.load(str(path))
    props = {p.key: json.loads(p.value) if p.value[:1] in "[{" else p.value for p in proto.metadata_props}
    assert props["nnctl.numeric_columns"] == ["displacement", "horsepower", "weight", "model_year"]
    assert props["nnctl.categorical_columns"] == ["origin", "heavy"]
    assert props["nnctl.categories"] == {"origin": ["<missing>", "Europe", "Japan", "USA"],
                                         "heavy": ["<missing>", "False", "True"]}
    assert props["nnctl.network_inputs"][:5] == ["displacement", "origin=<missing>", "origin=Europe", "origin=Japan",
                                                 "origin=USA"]
    assert props["nnctl.classes"] == [3, 4, 5, 6, 8]
    assert props["nnctl.task"] == "classification" and props["nnctl.target"] == "cylinders"
    assert "displacement, horsepower, weight, model_year" in proto.doc_string
    assert "3, 4, 5, 6, 8" in proto.doc_string
    inputs = {i.name: i for i in session(path).get_inputs()}
    assert inputs["numeric"].type == "tensor(float)" and inputs["numeric"].shape == ["N", 4]
    assert inputs["categorical"].type == "tensor(string)" and inputs["categorical"].shape == ["N", 2]
    # the <missing> category takes "" and pandas' markers; an unseen one encodes as zeros
    X = {"numeric": np.array([[307, 130, 3504, 1970]] * 4, np.float32),
         "categorical": np.array([["", "True"], ["NA", "TRUE"], ["<missing>", "true"], ["Mars", "True"]], dtype=object)}
    probabilities = session(path).run(["probabilities"], X)[0]
    np.testing.assert_array_equal(probabilities[0], probabilities[1])
    np.testing.assert_array_equal(probabilities[0], probabilities[2])
    assert not np.array_equal(probabilities[0], probabilities[3])


def test_without_missing_imputation_a_missing_value_gives_nan(tmp_path):
    model = tmp_path / "drop.npz"
    invoke("train", str(CONFIGS / "auto_mpg.yaml"), "-o", str(model), "--epochs", "2", "-q",
           "--set", "data.missing=drop")
    path = tmp_path / "drop.onnx"
    invoke("export", str(model), "-o", str(path))
    X = {"numeric": np.array([[8, 307, 130, 3504, 12, 1970], [8, 307, np.nan, 3504, 12, 1970],
                              [8, 307, 130, 3504, 12, 1970]], np.float32),
         "categorical": np.array([["USA"], ["USA"], [""]], dtype=object)}
    values = session(path).run(None, X)[0]
    assert np.isfinite(values[0]) and np.isnan(values[1]) and np.isnan(values[2])


def test_default_output_and_no_overwriting_other_files(models, tmp_path):
    model = tmp_path / "iris.npz"
    model.write_bytes(models["iris"][0].read_bytes())
    invoke("export", str(model))
    assert (tmp_path / "iris.onnx").exists()
    invoke("export", str(model))  # an ONNX file is replaced
    precious = tmp_path / "data.csv"
    precious.write_text("precious,data\n1,2\n")
    for target in (precious, model):
        result = runner.invoke(app, ["export", str(model), "-o", str(target)])
        assert result.exit_code == 2
        assert result.stderr == f"error: {target}: exists and is not an ONNX model; not overwriting it\n"
    assert precious.read_text() == "precious,data\n1,2\n"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary files left


def test_without_onnx_installed_exit_2_with_the_install_hint(models, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # makes `import onnx` raise ImportError
    result = runner.invoke(app, ["export", str(models["iris"][0]), "-o", str(tmp_path / "m.onnx")])
    assert result.exit_code == 2
    assert result.stderr == ("error: nnctl export needs the 'onnx' package, which is not installed; install it "
                             "with: pip install 'nnctl[onnx]'\n")
    assert not (tmp_path / "m.onnx").exists()


def test_a_file_that_is_not_a_model_exits_2_with_one_line(tmp_path):
    result = subprocess.run([sys.executable, "-m", "nnctl", "export", "datasets/iris.csv", "-o",
                             str(tmp_path / "x.onnx")], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 2
    assert result.stderr == "error: datasets/iris.csv: not an nnctl model file (not a NumPy .npz archive)\n"
    assert result.stdout == "" and not (tmp_path / "x.onnx").exists()


def test_a_calibrated_model_says_so(models, tmp_path):
    onnx = pytest.importorskip("onnx")
    path = tmp_path / "calibrated.onnx"
    invoke("export", str(models["breast_cancer_calibrated"][0]), "-o", str(path))
    proto = onnx.load(str(path))
    props = {p.key: p.value for p in proto.metadata_props}
    assert float(props["nnctl.temperature"]) > 0 and 0 < float(props["nnctl.threshold"]) < 1
    assert [node.name for node in proto.graph.node if node.op_type == "Div"][-1].startswith("calibrated")
    assert "the second class when its probability is at least" in proto.doc_string
