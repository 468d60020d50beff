"""`nnctl importance` at the command line: the table on stdout, --json, --plot, the seed, and bad input as exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nnctl.cli import app
from nnctl.extras.importance_plot import importance_figure
from nnctl.extras.plot import PNG_SIGNATURE
from nnctl.inference.importance import importance
from nnctl.model.model import load_model

from conftest import CONFIGS, DATASETS

runner = CliRunner()


def cli(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("importance")
    made = {}
    for name, epochs in (("iris", "30"), ("auto_mpg", "10")):
        made[name] = folder / f"{name}.npz"
        code, _, err = cli("train", str(CONFIGS / f"{name}.yaml"), "-o", str(made[name]), "-q", "--epochs", epochs)
        assert code == 0, err
    return made


def test_the_table_lists_every_column_once_most_important_first(models: dict[str, Path]) -> None:
    code, out, err = cli("importance", str(models["auto_mpg"]), str(DATASETS / "auto_mpg.csv"), "--repeats", "2")
    assert code == 0, err
    assert out.startswith("r2 drop when a column is shuffled (baseline ")
    model = load_model(models["auto_mpg"])
    rows = [line.split("│")[1].strip() for line in out.splitlines() if line.startswith("│")]
    assert sorted(rows) == sorted(model.preprocessor.names)  # origin's one-hot group is one row
    assert "categorical (3 inputs)" in out
    means = [float(line.split("│")[3]) for line in out.splitlines() if line.startswith("│")]
    assert means == sorted(means, reverse=True)
    assert f"{1 + 2 * len(rows)} forward passes over " in err


def test_json_is_metric_baseline_and_importance_per_column(models: dict[str, Path]) -> None:
    data = str(DATASETS / "iris.csv")
    code, out, err = cli("importance", str(models["iris"]), data, "--json", "--metric", "log_loss", "--seed", "5")
    assert code == 0, err
    document = json.loads(out)
    assert set(document) == {"metric", "baseline", "importance"} and document["metric"] == "log_loss"
    expected = importance(load_model(models["iris"]), data, metric="log_loss", seed=5).to_json()
    assert document == expected
    assert set(document["importance"]) == {"sepal_length", "sepal_width", "petal_length", "petal_width"}
    assert all(set(entry) == {"mean", "std"} for entry in document["importance"].values())
    again = cli("importance", str(models["iris"]), data, "--json", "--metric", "log_loss", "--seed", "5")[1]
    assert again == out
    other = cli("importance", str(models["iris"]), data, "--json", "--metric", "log_loss", "--seed", "6")[1]
    assert other != out


def test_plot_draws_a_bar_per_column_with_sd_error_bars(models: dict[str, Path], tmp_path: Path) -> None:
    png = tmp_path / "importance.png"
    code, _, err = cli("importance", str(models["iris"]), str(DATASETS / "iris.csv"), "--plot", str(png))
    assert code == 0, err
    assert png.read_bytes().startswith(PNG_SIGNATURE)
    assert f"wrote {png} (importance bar chart)" in err
    result = importance(load_model(models["iris"]), DATASETS / "iris.csv")
    ax = importance_figure(result, "iris").axes[0]
    bars = sorted(ax.patches, key=lambda bar: -bar.get_y())  # the top bar first
    assert [bar.get_width() for bar in bars] == pytest.approx([c.mean for c in result.columns])
    labels = sorted(zip(ax.get_yticks(), (t.get_text() for t in ax.get_yticklabels()), strict=True), reverse=True)
    assert [label for _, label in labels] == [c.name for c in result.columns]
    from matplotlib.container import ErrorbarContainer

    errorbars = next(c for c in ax.containers if isinstance(c, ErrorbarContainer))
    segments = sorted(errorbars.lines[2][0].get_segments(), key=lambda s: -s[0][1])  # the top one first
    spans = [(s[1][0] - s[0][0]) / 2 for s in segments]  # each bar's mean ± sd
    assert spans == pytest.approx([c.std for c in result.columns])


def test_a_bad_metric_is_exit_2_naming_the_valid_ones(models: dict[str, Path]) -> None:
    code, out, err = cli("importance", str(models["iris"]), str(DATASETS / "iris.csv"), "--metric", "acuracy")
    assert code == 2 and out == ""
    assert "error: --metric acuracy: not a classification metric; did you mean 'accuracy'?" in err
    assert "log_loss" in err and "roc_auc" in err and len(err.strip().splitlines()) == 1
    code, _, err = cli("importance", str(models["iris"]), str(DATASETS / "iris.csv"), "--metric", "r2")
    assert code == 2 and "not a classification metric" in err


def test_data_without_the_target_is_exit_2(models: dict[str, Path], tmp_path: Path) -> None:
    features = tmp_path / "features.csv"
    features.write_text("sepal_length,sepal_width,petal_length,petal_width\n5.1,3.5,1.4,0.2\n")
    code, _, err = cli("importance", str(models["iris"]), str(features))
    assert code == 2 and "no target column 'species'" in err


def test_unseen_categories_warn_once_per_column_or_fail_with_strict(models: dict[str, Path], tmp_path: Path) -> None:
    lines = (DATASETS / "auto_mpg.csv").read_text().splitlines()
    lines[1] = lines[1].replace(",USA,", ",Mars,")
    data = tmp_path / "mars.csv"
    data.write_text("\n".join(lines) + "\n")
    code, out, err = cli("importance", str(models["auto_mpg"]), str(data), "--repeats", "1", "--json")
    assert code == 0, err
    assert err.count("warning:") == 1 and "'Mars' 1" in err and json.loads(out)["metric"] == "r2"
    code, _, err = cli("importance", str(models["auto_mpg"]), str(data), "--strict")
    assert code == 2 and "category 'Mars' was not in the training data" in err and "--strict" in err
