"""`nnctl plot` and `nnctl evaluate --plot`: the PNGs are written, and the figures show the model's own numbers."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from nnctl.cli import app
from nnctl.extras.plot import (
    CLASSIFICATION_SIZE,
    CONFUSION_SIZE,
    CURVES_SIZE,
    DPI,
    PNG_SIGNATURE,
    SCATTER_SIZE,
    confusion_figure,
    curves_figure,
    evaluation_figure,
    reliability_figure,
)
from nnctl.inference.predict import evaluation
from nnctl.model.model import load_model

from conftest import CONFIGS, DATASETS, ROOT

pytest.importorskip("matplotlib")

runner = CliRunner()


def cli(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def train(config: str, out: Path, *settings: str) -> Path:
    code, _, err = cli("train", str(CONFIGS / config), "-o", str(out), "-q", *settings)
    assert code == 0, err
    return out


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("plot")
    return {
        "iris": train("iris.yaml", folder / "iris.npz", "--epochs", "12"),
        "auto_mpg": train("auto_mpg.yaml", folder / "auto_mpg.npz", "--epochs", "8"),
        # early stopping on val_f1 with a short patience: stops well before 60 epochs, keeps the best epoch
        "breast_cancer": train("breast_cancer.yaml", folder / "bc.npz", "--epochs", "60",
                               "--set", "training.early_stopping.patience=4"),
    }


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    assert data[12:16] == b"IHDR"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def pixels(size: tuple[float, float]) -> tuple[int, int]:
    return round(size[0] * DPI), round(size[1] * DPI)


def lines_by_label(ax: Any) -> dict[str, tuple[list[float], list[float]]]:
    return {str(line.get_label()): (list(line.get_xdata()), list(line.get_ydata())) for line in ax.get_lines()}


# --- nnctl plot ------------------------------------------------------------------------------------------


def test_plot_writes_the_curves_png_beside_the_model(models: dict[str, Path]) -> None:
    code, out, err = cli("plot", str(models["iris"]))
    path = models["iris"].with_name("iris.curves.png")
    assert code == 0, err
    assert out == ""
    assert err.strip() == f"wrote {path} (training curves)"
    assert png_size(path) == pixels(CURVES_SIZE)


def test_plot_output_option(models: dict[str, Path], tmp_path: Path) -> None:
    path = tmp_path / "curves.png"
    code, _, err = cli("plot", str(models["auto_mpg"]), "-o", str(path))
    assert code == 0, err
    assert png_size(path) == pixels(CURVES_SIZE)
    assert not list(tmp_path.glob(".*.tmp"))


def test_curves_show_the_history_per_epoch(models: dict[str, Path]) -> None:
    model = load_model(models["iris"])
    figure = curves_figure(model, "iris.npz")
    loss_ax, metric_ax = figure.axes
    epochs = [row["epoch"] for row in model.history]
    assert epochs == list(range(1, 13))
    for ax, key in ((loss_ax, "loss"), (metric_ax, "accuracy")):
        lines = lines_by_label(ax)
        assert lines["training"] == (epochs, [row[f"train_{key}"] for row in model.history])
        assert lines["validation"] == (epochs, [row[f"val_{key}"] for row in model.history])
    assert metric_ax.get_title() == "accuracy"
    assert "iris.npz" in figure.get_suptitle() and "species" in figure.get_suptitle()


def test_regression_curves_show_rmse_in_the_target_units(models: dict[str, Path]) -> None:
    model = load_model(models["auto_mpg"])
    loss_ax, metric_ax = curves_figure(model, "auto_mpg.npz").axes
    assert metric_ax.get_title().startswith("RMSE (mpg")
    lines = lines_by_label(metric_ax)
    assert lines["training"][1] == [row["train_rmse"] for row in model.history]
    assert lines["validation"][1] == [row["val_rmse"] for row in model.history]
    assert lines_by_label(loss_ax)["validation"][1] == [row["val_loss"] for row in model.history]


def test_curves_mark_the_best_epoch_of_early_stopping(models: dict[str, Path]) -> None:
    model = load_model(models["breast_cancer"])
    best = model.provenance.restored_best_epoch
    assert best < len(model.history) < 60  # it did stop early
    figure = curves_figure(model, "bc.npz")
    for ax in figure.axes:
        marks = [line for line in ax.get_lines() if str(line.get_label()).startswith(f"best epoch {best} (val_f1")]
        assert len(marks) == 1 and np.asarray(marks[0].get_xdata()).tolist() == [best, best]
    f1 = lines_by_label(figure.axes[1])["validation F1"][1]
    assert f1 == [row["val_f1"] for row in model.history]
    assert f"stopped early after epoch {len(model.history)} of 60" in figure.get_suptitle()


def test_loss_axis_turns_logarithmic_beyond_two_decades(models: dict[str, Path]) -> None:
    model = load_model(models["iris"])
    assert curves_figure(model, "m").axes[0].get_yscale() == "linear"  # 12 epochs: well under 100x
    model.history = [dict(row, train_loss=row["train_loss"] / 10**i) for i, row in enumerate(model.history)]
    loss_ax = curves_figure(model, "m").axes[0]
    assert loss_ax.get_yscale() == "log" and "log scale" in loss_ax.get_title()


# --- nnctl evaluate --plot -------------------------------------------------------------------------------


def test_evaluate_plot_draws_the_confusion_matrix_and_the_reliability_diagram(models: dict[str, Path],
                                                                               tmp_path: Path) -> None:
    path = tmp_path / "cm.png"
    code, out, err = cli("evaluate", str(models["iris"]), str(DATASETS / "iris.csv"), "--json", "--plot", str(path))
    assert code == 0, err
    assert err.strip() == f"wrote {path} (confusion matrix and reliability diagram)"
    scores = json.loads(out)  # stdout is unchanged: the same JSON as without --plot
    assert scores == json.loads(cli("evaluate", str(models["iris"]), str(DATASETS / "iris.csv"), "--json")[1])
    assert png_size(path) == pixels(CLASSIFICATION_SIZE)

    model = load_model(models["iris"])
    result = evaluation(model, DATASETS / "iris.csv")
    figure = evaluation_figure(model, result, "iris.npz", "iris.csv")
    # the confusion matrix, the reliability diagram's two panels, the matrix's colour bar
    ax, top, bottom, colorbar = figure.axes
    assert colorbar.get_ylabel() == "rows"
    counts = scores["confusion_matrix"]["counts"]
    assert np.asarray(ax.images[0].get_array()).tolist() == counts
    cells = {(round(t.get_position()[1]), round(t.get_position()[0])): int(t.get_text()) for t in ax.texts}
    assert cells == {(i, j): counts[i][j] for i in range(3) for j in range(3)}
    assert [t.get_text() for t in ax.get_xticklabels()] == ["setosa", "versicolor", "virginica"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["setosa", "versicolor", "virginica"]
    # the reliability panels hold the very bars `reliability_figure` draws for the same evaluation
    alone_top, alone_bottom = reliability_figure(result, "iris").axes
    for panel, alone in ((top, alone_top), (bottom, alone_bottom)):
        assert [(p.get_x(), p.get_height()) for p in panel.patches] == [(p.get_x(), p.get_height())
                                                                          for p in alone.patches]
    assert sum(p.get_height() for p in bottom.patches) == scores["rows"]
    assert top.get_ylabel() == "share predicted right"
    assert f"ECE {scores['ece']:.4f}" in figure.get_suptitle()


def test_confusion_cells_are_true_class_down_predicted_across() -> None:
    counts = [[5, 1, 0], [0, 7, 2], [3, 0, 9]]  # not symmetric: a transposed picture would show
    figure = confusion_figure(["a", "b", "c"], counts, "y", "t")
    assert tuple(figure.get_size_inches()) == CONFUSION_SIZE
    ax = figure.axes[0]
    cells = {(round(t.get_position()[1]), round(t.get_position()[0])): int(t.get_text()) for t in ax.texts}
    assert cells == {(i, j): counts[i][j] for i in range(3) for j in range(3)}
    assert ax.get_ylabel() == "true y" and ax.get_xlabel() == "predicted y"


def test_evaluate_plot_draws_predicted_against_actual(models: dict[str, Path], tmp_path: Path) -> None:
    path = tmp_path / "scatter.png"
    code, out, err = cli("evaluate", str(models["auto_mpg"]), str(DATASETS / "auto_mpg.csv"), "--plot", str(path))
    assert code == 0, err
    assert "r2" in out and err.strip() == f"wrote {path} (predicted against actual values)"
    assert png_size(path) == pixels(SCATTER_SIZE)

    model = load_model(models["auto_mpg"])
    result = evaluation(model, DATASETS / "auto_mpg.csv")
    figure = evaluation_figure(model, result, "auto_mpg.npz", "auto_mpg.csv")
    points = np.asarray(figure.axes[0].collections[0].get_offsets(), dtype=np.float64)
    with (DATASETS / "auto_mpg.csv").open(newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row["mpg"] != ""]
    # x: the CSV's targets; y: what `nnctl predict` says for the same rows (it prints 6 significant digits)
    assert np.array_equal(points[:, 0], [float(row["mpg"]) for row in rows])
    code, predicted, _ = cli("predict", str(models["auto_mpg"]), str(DATASETS / "auto_mpg.csv"))
    all_rows = list(csv.DictReader((DATASETS / "auto_mpg.csv").open(newline="")))
    wanted = [float(p) for p, row in zip(predicted.splitlines()[1:], all_rows, strict=True) if row["mpg"] != ""]
    np.testing.assert_allclose(points[:, 1], wanted, rtol=1e-5)
    assert f"R² {result.scores['r2']:.4f}" in figure.get_suptitle()


# --- failures --------------------------------------------------------------------------------------------


def test_missing_matplotlib_is_exit_2_with_the_install_hint(models: dict[str, Path], tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    for args in (["plot", str(models["iris"]), "-o", str(tmp_path / "a.png")],
                 ["evaluate", str(models["iris"]), str(DATASETS / "iris.csv"), "--plot", str(tmp_path / "b.png")]):
        code, out, err = cli(*args)
        assert code == 2
        assert out == ""
        assert err.count("\n") == 1 and "pip install 'nnctl[plot]'" in err and "matplotlib" in err
    assert list(tmp_path.iterdir()) == []
    assert cli("evaluate", str(models["iris"]), str(DATASETS / "iris.csv"), "--json")[0] == 0  # no --plot: fine


def test_bad_model_file_is_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    code, _, err = cli("plot", str(bad))
    assert code == 2 and err.startswith("error: ") and "not a valid nnctl model file" in err
    assert cli("plot", str(tmp_path / "missing.npz"))[0] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.npz"]


def test_an_untrained_model_has_nothing_to_plot(tmp_path: Path) -> None:
    model = train("iris.yaml", tmp_path / "zero.npz", "--epochs", "0")
    code, _, err = cli("plot", str(model))
    assert code == 2 and "no training history" in err


def test_never_overwrites_what_is_not_a_png(models: dict[str, Path], tmp_path: Path) -> None:
    keep = tmp_path / "notes.png"
    keep.write_text("not a picture")
    code, _, err = cli("plot", str(models["iris"]), "-o", str(keep))
    assert code == 2 and "is not a PNG image; not overwriting it" in err
    assert keep.read_text() == "not a picture"
    code, _, err = cli("plot", str(models["iris"]), "-o", str(models["iris"]))  # the model itself
    assert code == 2 and "ending in .png" in err
    assert load_model(models["iris"]).history
    code, _, err = cli("evaluate", str(models["iris"]), str(DATASETS / "iris.csv"), "--plot", str(tmp_path / "x.jpg"))
    assert code == 2 and "ending in .png" in err


def test_a_real_process_and_no_matplotlib_at_start_up(models: dict[str, Path], tmp_path: Path) -> None:
    path = tmp_path / "c.png"
    result = subprocess.run([sys.executable, "-m", "nnctl", "plot", str(models["iris"]), "-o", str(path)],
                            capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and result.stderr == f"wrote {path} (training curves)\n"
    assert png_size(path) == pixels(CURVES_SIZE)
    # the CLI (and the plot module itself) imports matplotlib only when a picture is drawn
    code = "import sys, nnctl.cli, nnctl.extras.plot, nnctl.inference.predict; print('matplotlib' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60).stdout.strip() == "False"


# --- the reliability diagram -----------------------------------------------------------------------------


def test_the_reliability_diagram_shows_each_bins_share_predicted_right(models):
    from nnctl.extras.plot import RELIABILITY_SIZE, reliability_figure

    model = load_model(models["iris"])
    result = evaluation(model, DATASETS / "iris.csv")
    figure = reliability_figure(result, "iris")
    top, bottom = figure.axes
    P = result.probabilities
    assert P is not None
    confidence = P[np.arange(len(P)), result.predicted]
    right = result.predicted == result.truth
    bins = np.clip(np.ceil(confidence * 15).astype(int) - 1, 0, 14)  # (lower, upper] bins of width 1/15
    expected = {b: right[bins == b].mean() for b in np.unique(bins)}
    heights = {round(p.get_x() * 15): p.get_height() for p in top.patches}
    assert heights.keys() == expected.keys()
    for b, share in expected.items():
        assert heights[b] == pytest.approx(share)
    assert sum(p.get_height() for p in bottom.patches) == len(P)  # every row in one bin
    assert tuple(figure.get_size_inches()) == RELIABILITY_SIZE


def test_cli_plot_calibration_writes_the_png_and_refuses_a_regression(models, tmp_path):
    from nnctl.extras.plot import RELIABILITY_SIZE

    out = tmp_path / "rel.png"
    code, _, err = cli("plot", str(models["breast_cancer"]), "--calibration", str(DATASETS / "breast_cancer.csv"),
                       "-o", str(out))
    assert code == 0, err
    assert f"wrote {out} (reliability diagram)" in err and png_size(out) == pixels(RELIABILITY_SIZE)
    code, _, err = cli("plot", str(models["auto_mpg"]), "--calibration", str(DATASETS / "auto_mpg.csv"),
                       "-o", str(tmp_path / "no.png"))
    assert code == 2 and "is a regression model; a reliability diagram needs class probabilities" in err
    assert not (tmp_path / "no.png").exists()
