"""`nnctl lr-find`: the text (a sparkline with the suggestion marked, in 80 columns), --json, --plot, bad input."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from nnctl.cli import app
from nnctl.cli.lr_find import SPARK_WIDTH, marker_column

from conftest import CONFIGS

runner = CliRunner()
IRIS = str(CONFIGS / "iris.yaml")


def cli(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def iris_json() -> dict:
    code, out, err = cli("lr-find", IRIS, "--json")
    assert code == 0, err
    return json.loads(out)


def test_json_holds_the_rates_the_losses_and_the_suggestion(iris_json):
    assert {"suggested", "rates", "losses", "smoothed"} <= set(iris_json)
    rates, losses = iris_json["rates"], iris_json["losses"]
    assert 5 <= len(rates) == len(losses) == len(iris_json["smoothed"]) <= 200
    assert rates[0] == 1e-7 and rates == sorted(rates)
    assert rates[0] < iris_json["suggested"] < rates[-1]
    assert all(isinstance(v, float) for v in losses)


def test_json_is_the_same_every_time(iris_json):
    code, out, _ = cli("lr-find", IRIS, "--json")
    assert code == 0 and json.loads(out) == iris_json


def test_the_text_is_a_sparkline_with_the_suggestion_marked_in_80_columns(iris_json):
    code, out, _ = cli("lr-find", IRIS, "--set", "training.batch_size=16", "--set", "optimizer.learning_rate=0.003")
    assert code == 0
    lines = out.splitlines()
    assert all(len(line) <= 80 for line in lines[:-1]), max(lines, key=len)  # the last: the command to copy
    spark = next(i for i, line in enumerate(lines) if line.startswith("1e-07 "))
    first, last = lines[spark].split(" ")[0], lines[spark].split(" ")[-1]
    assert (first, float(last)) == ("1e-07", pytest.approx(iris_json["rates"][-1], rel=0.05))
    bars = lines[spark].split(" ")[1]
    assert len(bars) == min(SPARK_WIDTH, len(iris_json["rates"])) and set(bars) <= set("▁▂▃▄▅▆▇█")
    suggested = f"{iris_json['suggested']:.2g}"
    marker = lines[spark + 1]
    assert marker.strip() in (f"▲ {suggested}", f"{suggested} ▲")
    index = min(range(len(iris_json["rates"])), key=lambda i: abs(iris_json["rates"][i] - iris_json["suggested"]))
    assert marker.index("▲") == len("1e-07 ") + marker_column(index, len(iris_json["rates"]), SPARK_WIDTH)
    assert f"suggested learning rate: {suggested} (the config's: 0.003)" in out
    assert lines[-2:] == ["train with:", f"  nnctl train {IRIS} --set training.batch_size=16 "  # the rate: once
                                         f"--set optimizer.learning_rate={suggested}"]


def test_marker_columns_follow_the_sparklines_resampling():
    assert marker_column(7, 40, 56) == 7  # fewer points than columns: one column each
    assert marker_column(0, 200, 56) == 0 and marker_column(199, 200, 56) == 55


def test_plot_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    from nnctl.extras.plot import PNG_SIGNATURE

    path = tmp_path / "lr.png"
    code, out, err = cli("lr-find", IRIS, "--steps", "60", "--plot", str(path))
    assert code == 0, err
    assert path.read_bytes().startswith(PNG_SIGNATURE)
    assert f"wrote {path}" in err and "suggested learning rate" in out
    assert cli("lr-find", IRIS, "--plot", str(tmp_path / "lr.jpg"))[0] == 2  # not a PNG name


def test_bad_input_exits_2_with_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: {train: nowhere.csv, target: y}\nmodel: {layers: [{}]}\n")
    for args, fragment in [(("lr-find", str(bad)), "nowhere.csv"),
                           (("lr-find", str(tmp_path / "missing.yaml")), "missing.yaml"),
                           (("lr-find", IRIS, "--start", "0"), "--start 0"),
                           (("lr-find", IRIS, "--end", "1e-8"), "--end 1e-08"),
                           (("lr-find", IRIS, "--steps", "3"), "--steps 3"),
                           (("lr-find", IRIS, "--set", "optimizer.name=sgdd"), "sgdd")]:
        code, out, err = cli(*args)
        assert code == 2 and out == "", (args, err)
        errors = [line for line in err.splitlines() if line.strip()]
        assert len(errors) == 1 and errors[0].startswith("error: ") and fragment in errors[0], (args, err)
        assert not re.search(r"Traceback", err)
