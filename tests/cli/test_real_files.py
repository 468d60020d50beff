"""Files as people have them, end to end through the CLI: date columns, gaps with indicators, `init` then `train`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from nnctl.model.model import load_model

from conftest import CONFIGS, DATASETS, ROOT, iris_config


def nnctl(*args: str, cwd: Path = ROOT, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nnctl", *args], capture_output=True, text=True, cwd=cwd,
                          input=stdin, timeout=120)


@pytest.fixture(scope="module")
def weather(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("weather") / "weather.npz"
    result = nnctl("train", str(CONFIGS / "seattle_weather.yaml"), "-o", str(path), "-q", "--epochs", "20")
    assert result.returncode == 0, result.stderr
    return path


def test_a_date_column_trains_as_dates_and_predicts_from_the_same_text(weather):
    model = load_model(weather)
    date = model.preprocessor.features[0]
    assert (date.name, date.kind, date.order) == ("date", "date", "iso")
    assert model.preprocessor.n_inputs == 4 + 7  # four numbers; the year and three sine/cosine pairs
    rows = (DATASETS / "seattle_weather.csv").read_text().splitlines()
    sample = "\n".join([rows[0], *rows[1:400:37]]) + "\n"
    predicted = nnctl("predict", str(weather), "-", "--proba", stdin=sample)
    assert predicted.returncode == 0, predicted.stderr
    # the same rows with the dates written day first (a model fixed the order at training: it refuses them)
    swapped = "\n".join([rows[0], *(f"{r[8:10]}/{r[5:7]}/{r[:4]}{r[10:]}" for r in rows[1:400:37])]) + "\n"
    refused = nnctl("predict", str(weather), "-", stdin=swapped)
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1
    assert "column 'date' line 2: '01/01/2012' is not a date like the training ones" in refused.stderr


def test_evaluate_on_the_dated_rows_matches_training_accuracy_closely(weather):
    result = nnctl("evaluate", str(weather), str(DATASETS / "seattle_weather.csv"), "--json")
    assert result.returncode == 0, result.stderr
    assert '"accuracy": 0.7' in result.stdout or '"accuracy": 0.8' in result.stdout


def test_streaming_fits_a_date_column_as_the_in_memory_load_does(tmp_path):
    """Every row in training (no split), so both loaders fit the same rows."""
    specs = []
    for name, extra in (("memory", []), ("streamed", ["data.streaming=true", "data.chunk_rows=100",
                                                       "data.shuffle_buffer=300"])):
        settings = [arg for setting in ["data.validation_split=0", "data.cache=false", *extra]
                    for arg in ("--set", setting)]
        result = nnctl("train", str(CONFIGS / "seattle_weather.yaml"), "-o", str(tmp_path / f"{name}.npz"), "-q",
                       "--epochs", "1", *settings)
        assert result.returncode == 0, result.stderr
        specs.append(load_model(tmp_path / f"{name}.npz").preprocessor.features[0])
    a, b = specs
    assert (a.kind, a.order, a.parts) == (b.kind, b.order, b.parts) == ("date", "iso", ["year", "month", "weekday",
                                                                                       "yearday"])
    for field in ("center", "scale", "fill"):
        assert getattr(b, field) == pytest.approx(getattr(a, field), rel=1e-12), field


def test_export_refuses_a_date_model_in_one_line(weather, tmp_path):
    pytest.importorskip("onnx")
    result = nnctl("export", str(weather), "-o", str(tmp_path / "w.onnx"))
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "column 'date' is a date, and ONNX export has no date parsing yet" in result.stderr


def test_missing_indicators_flag_the_gaps_of_auto_mpg(tmp_path):
    out = tmp_path / "mpg.npz"
    result = nnctl("train", str(CONFIGS / "auto_mpg.yaml"), "-o", str(out), "-q", "--epochs", "3",
                   "--set", "data.missing_indicators=true")
    assert result.returncode == 0, result.stderr
    pre = load_model(out).preprocessor
    assert [s.name for s in pre.features if s.indicator] == ["horsepower"]  # the one column with gaps
    assert "horsepower.missing" in pre.input_names
    row = {"cylinders": "8", "displacement": "350", "horsepower": "", "weight": "3000", "acceleration": "12",
           "model_year": "1975", "origin": "USA"}
    X = pre.transform_columns({name: [row[name]] for name in pre.names}, 1, np.float64, "row")
    assert X[0, pre.input_names.index("horsepower.missing")] == 1


def test_missing_indicators_need_impute(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(iris_config(data={"train": str(DATASETS / "iris.csv"), "target": "species",
                                                       "missing": "drop", "missing_indicators": True})))
    result = nnctl("check", str(config))
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "missing_indicators" in result.stderr and "needs data.missing: impute" in result.stderr


def test_init_then_train_names_the_model_after_the_config(tmp_path):
    written = nnctl("init", str(DATASETS / "iris.csv"), "--target", "species", "-o", "flowers.yaml", cwd=tmp_path)
    assert written.returncode == 0, written.stderr
    trained = nnctl("train", "flowers.yaml", "-q", "--epochs", "2", cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["flowers.npz", "flowers.yaml"]  # not iris.npz


MPG_HEADER = "cylinders,displacement,horsepower,weight,acceleration,model_year,origin"


@pytest.fixture(scope="module")
def mpg(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("mpg") / "mpg.npz"
    result = nnctl("train", str(CONFIGS / "auto_mpg.yaml"), "-o", str(path), "-q", "--epochs", "3")
    assert result.returncode == 0, result.stderr
    return path


def test_unseen_categories_warn_once_per_column_with_counts_and_strict_refuses_them(mpg, tmp_path):
    rows = [MPG_HEADER, "8,307,130,3504,12,1970,USA", "8,307,130,3504,12,1970,Mars", "8,307,,3504,12,1970,Mars",
            "4,97,88,2130,14.5,1970,Venus"]
    data = "\n".join(rows) + "\n"
    result = nnctl("predict", str(mpg), "-", stdin=data)
    assert result.returncode == 0 and len(result.stdout.splitlines()) == 5
    assert result.stderr == ("warning: <stdin>: column 'origin': 3 rows with categories the model has never seen "
                             "('Mars' 2, 'Venus' 1); they are encoded as all zeros\n")
    strict = nnctl("predict", str(mpg), "-", "--strict", stdin=data)
    assert strict.returncode == 2 and strict.stdout.count("\n") <= 1  # the header at most: the first chunk fails
    assert strict.stderr == ("error: <stdin>: column 'origin' line 3: category 'Mars' was not in the training data "
                             "(Europe, Japan, USA); without --strict it is encoded as all zeros\n")
    labelled = tmp_path / "labelled.csv"
    labelled.write_text("\n".join([f"{MPG_HEADER},mpg", *(f"{r},20" for r in rows[1:])]) + "\n")
    evaluated = nnctl("evaluate", str(mpg), str(labelled), "--json")
    assert evaluated.returncode == 0 and "3 rows with categories the model has never seen" in evaluated.stderr
    assert nnctl("evaluate", str(mpg), str(labelled), "--strict").returncode == 2


def test_known_categories_say_nothing(mpg):
    result = nnctl("predict", str(mpg), "-", stdin=f"{MPG_HEADER}\n8,307,130,3504,12,1970,Japan\n")
    assert result.returncode == 0 and result.stderr == ""
