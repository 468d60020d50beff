"""`nnctl explain MODEL DATA`: the text view fits 80 columns and cites docs/how-it-works.md by its section names;
--json has the documented keys; a bad --row is one line and exit 2; a row without its target still shows the
forward pass."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from nnctl.cli import app
from nnctl.config.load import load_config
from nnctl.training.run import train

from conftest import CONFIGS, DATASETS, ROOT

runner = CliRunner()
QUICK = ["training.epochs=3", "training.early_stopping=null", "training.checkpoint_every=null"]
IRIS = str(DATASETS / "iris.csv")


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("explain-cli")
    train(load_config(CONFIGS / "iris.yaml", QUICK), output=folder / "iris.npz")
    train(load_config(CONFIGS / "breast_cancer.yaml", [*QUICK, "training.calibrate=temperature",
                                                       "training.threshold=f1"]), output=folder / "cancer.npz")
    train(load_config(CONFIGS / "auto_mpg.yaml", QUICK), output=folder / "mpg.npz")
    return folder


def _run(*args: str) -> str:
    result = runner.invoke(app, ["explain", *args])
    assert result.exit_code == 0, result.output
    return result.stdout


def _sections() -> dict[str, str]:
    """docs/how-it-works.md's numbered sections: number -> title."""
    text = (ROOT / "docs" / "how-it-works.md").read_text()
    return dict(re.findall(r"^## (\d+)\. (.+)$", text, re.M))


def test_the_text_view_fits_80_columns_and_names_the_sections_it_illustrates(models):
    out = _run(str(models / "iris.npz"), IRIS, "--row", "51")
    assert max(map(len, out.splitlines())) <= 80
    sections = _sections()
    for number in "12345":
        title = sections[number].split(":")[0].split(",")[0].replace("$", "")
        assert f"§{number} {title}" in out, (number, title)
    assert "Row 51 of" in out and "(line 52)" in out
    assert "petal_length = 4.7: (4.7 - " in out  # the column, its value and its scaling
    assert "Prediction: " in out and "loss cross_entropy = " in out
    assert re.search(r"Layer 0: dW_0 \(4, 8\) norm [\d.]+, db_0 \(8,\) norm [\d.]+\n    largest: dW_0\[", out)


def test_a_calibrated_model_shows_its_temperature_and_threshold(models):
    out = _run(str(models / "cancer.npz"), str(DATASETS / "breast_cancer.csv"), "--row", "5")
    assert max(map(len, out.splitlines())) <= 80
    assert "/ T" in out and "§9 After training: calibration" in out
    assert "32 units; showing the 5 most active (largest |z|)" in out
    assert ">= threshold" in out and "without T" in out


def test_top_k_inputs_per_unit(models):
    one = _run(str(models / "iris.npz"), IRIS, "--top", "1", "--json")
    assert json.loads(one) == json.loads(_run(str(models / "iris.npz"), IRIS, "--json"))  # --top is the text's
    for k in (1, 4):
        terms = _unit_terms(_run(str(models / "iris.npz"), IRIS, "--top", str(k)))
        assert len(terms) == 5 and all(len(t) == k for t in terms)  # 5 of the 8 units, k inputs each
        assert {name for t in terms for name in t} <= {"sepal_length", "sepal_width", "petal_length", "petal_width"}
    result = runner.invoke(app, ["explain", str(models / "iris.npz"), IRIS, "--top", "0"])
    assert result.exit_code == 2 and "--top must be at least 1" in result.stderr


def _unit_terms(text: str) -> list[list[str]]:
    """The inputs named after each first-layer unit's numbers, wrapped lines joined."""
    units: list[str] = []
    for line in text.splitlines():
        if line.startswith("  h1["):
            units.append(line)
        elif units and line.startswith(" " * 10) and not units[-1].endswith("\n"):
            units[-1] += " " + line.strip()
        elif units:
            units[-1] += "\n"
    return [re.findall(r"(\w+) [+-][\d.e-]+", u.split("  ", 5)[-1]) for u in units if not u.startswith("  h1[0] z")]


def test_json_has_the_documented_keys_and_full_arrays(models):
    out = json.loads(_run(str(models / "iris.npz"), IRIS, "--row", "150", "--json"))
    assert list(out) == ["row", "input", "x", "layers", "output", "prediction", "loss", "gradients"]
    assert out["row"] == 150 and out["input"] == {"sepal_length": 5.9, "sepal_width": 3.0, "petal_length": 5.1,
                                                  "petal_width": 1.8}
    assert len(out["x"]) == 4 and [len(layer["a"]) for layer in out["layers"]] == [8, 8, 3]
    assert set(out["output"]) == {"setosa", "versicolor", "virginica"}
    assert out["prediction"] in out["output"]
    assert [len(g["dW"]) for g in out["gradients"]] == [4, 8, 8] and len(out["gradients"][0]["db"]) == 8


@pytest.mark.parametrize("row", ["0", "151"])
def test_a_row_out_of_range_exits_2_with_one_line(models, row):
    result = runner.invoke(app, ["explain", str(models / "iris.npz"), IRIS, "--row", row])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert f"--row {row} is out of range: the file has 150 data rows" in lines[0]
    assert result.stdout == ""


def test_a_row_without_its_target_still_explains_the_forward_pass(models, tmp_path):
    path = tmp_path / "rows.csv"
    path.write_text("sepal_length,sepal_width,petal_length,petal_width,species\n5.1,3.5,1.4,0.2,\n")
    out = _run(str(models / "iris.npz"), str(path))
    assert "Layer 1: Z_1 = A_1 W_1 + b_1" in out and "Prediction: " in out
    assert "No target in this row: no loss and no gradients" in out and "§5" not in out
    data = json.loads(_run(str(models / "iris.npz"), str(path), "--json"))
    assert data["loss"] is None and data["gradients"] is None and len(data["layers"]) == 3


def test_a_regression_row_shows_the_target_scaling_and_the_imputed_value(models):
    out = _run(str(models / "mpg.npz"), str(DATASETS / "auto_mpg.csv"), "--row", "39")  # horsepower is missing
    assert max(map(len, out.splitlines())) <= 80
    assert "horsepower = (missing): missing -> mean " in out
    assert "origin = USA: one-hot: origin=USA is 1, the other 2 are 0" in out
    assert re.search(r"  mpg = a \* [\d.]+ \+ [\d.]+ \(a: the standardised target\)", out)
    assert "loss mse = " in out and "(Y is the target standardised, as the loss sees it)" in out
    assert "identity + mse fused" in out


def test_a_file_without_rows_says_so(models, tmp_path):
    (tmp_path / "empty.csv").write_text("sepal_length,sepal_width,petal_length,petal_width\n")
    result = runner.invoke(app, ["explain", str(models / "iris.npz"), str(tmp_path / "empty.csv")])
    assert result.exit_code == 2 and "--row 1 is out of range: the file has no data rows" in result.stderr


def test_an_unseen_category_is_a_warning_or_with_strict_an_error(models, tmp_path):
    path = tmp_path / "cars.csv"
    path.write_text("cylinders,displacement,horsepower,weight,acceleration,model_year,origin,mpg\n"
                    "4,120,88,2500,15,1982,Mars,30\n")
    result = runner.invoke(app, ["explain", str(models / "mpg.npz"), str(path)])
    assert result.exit_code == 0
    assert "'Mars' was never seen in training: all 3 one-hot inputs are 0" in result.stdout
    assert "warning:" in result.stderr and "'Mars' 1" in result.stderr
    strict = runner.invoke(app, ["explain", str(models / "mpg.npz"), str(path), "--strict"])
    assert strict.exit_code == 2 and "category 'Mars' was not in the training data" in strict.stderr
