"""The CLI end to end, through subprocesses (real exit codes, real stdin/stdout) and Typer's CliRunner."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from nnctl.cli import app

from conftest import CONFIGS, DATASETS, ROOT, iris_config

runner = CliRunner()


def nnctl(*args: str, stdin: str | None = None, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nnctl", *args], input=stdin, capture_output=True, text=True,
                          cwd=cwd, timeout=120)


@pytest.fixture(scope="module")
def iris_npz(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "iris.npz"
    result = nnctl("train", str(CONFIGS / "iris.yaml"), "-o", str(path), "--quiet")
    assert result.returncode == 0, result.stderr
    return path


def test_train_writes_the_model_and_a_summary(tmp_path):
    out = tmp_path / "m.npz"
    result = nnctl("train", "configs/iris.yaml", "-o", str(out), "--epochs", "20", "--seed", "3")
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""  # data only with --json
    assert "epoch 20/20" in result.stderr and "training summary" in result.stderr
    assert out.exists()


def test_train_json_summary_on_stdout(tmp_path):
    result = nnctl("train", "configs/iris.yaml", "-o", str(tmp_path / "m.npz"), "--quiet", "--json",
                   "--set", "training.epochs=3", "--set", "optimizer.learning_rate=0.05")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    summary = json.loads(result.stdout)
    assert summary["epochs"] == 3 and summary["task"] == "classification"
    assert 0 <= summary["val_accuracy"] <= 1


def test_config_output_is_relative_to_the_config(tmp_path):
    config = iris_config(output="models/out.npz")
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    result = nnctl("train", str(tmp_path / "c.yaml"), "-q", cwd=tmp_path.parent)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "models" / "out.npz").exists()


def test_predict_file_and_stdin_agree(iris_npz):
    from_file = nnctl("predict", str(iris_npz), "datasets/iris.csv")
    from_stdin = nnctl("predict", str(iris_npz), stdin=(DATASETS / "iris.csv").read_text())
    dash = nnctl("predict", str(iris_npz), "-", stdin=(DATASETS / "iris.csv").read_text())
    assert from_file.returncode == from_stdin.returncode == dash.returncode == 0
    assert from_file.stdout == from_stdin.stdout == dash.stdout
    lines = from_file.stdout.splitlines()
    assert lines[0] == "species" and len(lines) == 151
    truth = [row.split(",")[-1] for row in (DATASETS / "iris.csv").read_text().splitlines()[1:]]
    assert sum(p == t for p, t in zip(lines[1:], truth, strict=True)) >= 140
    assert from_file.stderr == ""


def test_predict_proba_jsonl_and_output_file(iris_npz, tmp_path):
    result = nnctl("predict", str(iris_npz), "datasets/iris.csv", "--proba", "--format", "jsonl")
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(records) == 150
    assert set(records[0]) == {"species", "proba_setosa", "proba_versicolor", "proba_virginica"}
    out = tmp_path / "p.csv"
    assert nnctl("predict", str(iris_npz), "datasets/iris.csv", "-o", str(out)).stdout == ""
    assert out.read_text().splitlines()[0] == "species"


def test_evaluate_table_and_json(iris_npz):
    table = nnctl("evaluate", str(iris_npz), "datasets/iris.csv")
    assert table.returncode == 0 and "accuracy" in table.stdout
    scores = json.loads(nnctl("evaluate", str(iris_npz), "datasets/iris.csv", "--json").stdout)
    assert scores["rows"] == 150 and scores["accuracy"] >= 0.93


def test_regression_end_to_end(tmp_path):
    out = tmp_path / "mpg.npz"
    result = nnctl("train", "configs/auto_mpg.yaml", "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert "warning: datasets/auto_mpg.csv: dropped 8 of 406 rows" in result.stderr
    scores = json.loads(nnctl("evaluate", str(out), "datasets/auto_mpg.csv", "--json").stdout)
    assert scores["r2"] > 0.5
    predictions = nnctl("predict", str(out), "datasets/auto_mpg.csv").stdout.splitlines()
    assert predictions[0] == "mpg" and len(predictions) == 407
    assert all(5 < float(v) < 60 for v in predictions[1:])


def _assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    for fragment in fragments:
        assert fragment in lines[0]
    assert result.stdout == ""


def test_bad_config_exits_2_with_one_line(tmp_path):
    config = iris_config()
    config["model"]["layers"][0]["activation"] = "rleu"
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    _assert_one_line_error(nnctl("train", str(tmp_path / "bad.yaml"), "-o", str(tmp_path / "x.npz")),
                           "bad.yaml:", "model.layers[0].activation", "did you mean 'relu'?")
    assert not (tmp_path / "x.npz").exists()


def test_bad_inputs_exit_2(iris_npz, tmp_path):
    _assert_one_line_error(nnctl("train", "nope.yaml"), "nope.yaml: config file not found")
    _assert_one_line_error(nnctl("train", "configs/iris.yaml", "--set", "training.epochs=-1"),
                           "--set training.epochs")
    _assert_one_line_error(nnctl("predict", "configs/iris.yaml", "datasets/iris.csv"), "not an nnctl model")
    _assert_one_line_error(nnctl("predict", str(iris_npz), "datasets/auto_mpg.csv"),
                           "none of the model's 4 feature columns (sepal_length, sepal_width, petal_length, "
                           "petal_width); is this the data the model was trained for? (columns: name, cylinders")
    wrong = "sepal_length,petal_length,petal_widht,bill\n1,2,3,4\n"
    _assert_one_line_error(nnctl("predict", str(iris_npz), stdin=wrong),
                           "<stdin>: no feature columns 'sepal_width', 'petal_width'; did you mean 'petal_widht' for "
                           "'petal_width'? (columns: sepal_length, petal_length, petal_widht, bill); the model was "
                           "trained on sepal_length, sepal_width, petal_length, petal_width")
    _assert_one_line_error(nnctl("predict", "datasets/iris.csv", str(iris_npz)),
                           f"datasets/iris.csv: not an nnctl model file (not a NumPy .npz archive); MODEL comes first: "
                           f"nnctl predict {iris_npz} datasets/iris.csv")
    _assert_one_line_error(nnctl("evaluate", "datasets/iris.csv", str(iris_npz)),
                           f"MODEL comes first: nnctl evaluate {iris_npz} datasets/iris.csv")
    _assert_one_line_error(nnctl("predict", str(iris_npz), stdin=""), "<stdin>: no data")
    _assert_one_line_error(nnctl("evaluate", str(iris_npz), "missing.csv"), "missing.csv: file not found")


def test_divergence_exits_1_and_keeps_the_model(tmp_path):
    out = tmp_path / "m.npz"
    assert nnctl("train", "configs/auto_mpg.yaml", "-o", str(out), "-q", "--epochs", "2").returncode == 0
    good = out.read_bytes()
    result = nnctl("train", "configs/auto_mpg.yaml", "-o", str(out), "-q", "--set", "optimizer.name=sgd",
                   "--set", "optimizer.learning_rate=1000", "--set", "data.target_scale=none")
    assert result.returncode == 1
    assert "diverged" in result.stderr and "Traceback" not in result.stderr
    assert out.read_bytes() == good
    # Adam's bounded steps keep the loss finite while it explodes: caught as a blow-up, not a NaN
    result = nnctl("train", "configs/auto_mpg.yaml", "-o", str(out), "-q", "--set", "loss=mse",
                   "--set", "optimizer.learning_rate=1000")
    assert result.returncode == 1
    assert "training diverged: the loss grew from" in result.stderr and "epoch 1, batch" in result.stderr
    assert out.read_bytes() == good


def test_a_file_that_is_not_a_model_is_never_overwritten(tmp_path):
    csv = tmp_path / "data.csv"
    csv.write_text("precious,data\n1,2\n")
    _assert_one_line_error(nnctl("train", "configs/iris.yaml", "-o", str(csv)),
                           "exists and is not an nnctl model; not overwriting it")
    assert csv.read_text() == "precious,data\n1,2\n"


def test_usage_mistakes_are_one_line_and_exit_2(iris_npz):
    assert runner.invoke(app, ["train", "configs/iris.yaml", "--bogus"]).exit_code == 2
    _assert_one_line_error(nnctl("train", "configs/iris.yaml", "--bogus"), "No such option: --bogus",
                           "(see 'nnctl train --help')")
    _assert_one_line_error(nnctl("trian"), "No such command 'trian'. Did you mean 'train'?")
    _assert_one_line_error(nnctl("predict"), "Missing argument 'model'")
    _assert_one_line_error(nnctl("predict", str(iris_npz), "--threshold", "3"), "'--threshold'")
    _assert_one_line_error(nnctl("train", "configs/iris.yaml", "--epochs", "many"), "'--epochs'")


def test_check_and_inspect(iris_npz):
    result = runner.invoke(app, ["check", str(CONFIGS / "auto_mpg.yaml")])
    assert result.exit_code == 0, result.output
    assert "16 × 1" in result.output and "origin=USA" in result.output
    result = runner.invoke(app, ["inspect", str(iris_npz)])
    assert result.exit_code == 0 and "setosa, versicolor, virginica" in result.output
    meta = json.loads(runner.invoke(app, ["inspect", str(iris_npz), "--json"]).output)
    assert meta["network"]["sizes"] == [4, 8, 8, 3]


def test_version_and_help():
    assert runner.invoke(app, ["--version"]).output.startswith("nnctl ")
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0 and "train" in result.output and "predict" in result.output


def test_predict_into_a_closed_pipe_ends_quietly(iris_npz, tmp_path):
    """`nnctl predict ... | head -1`: the reader leaves early; nnctl exits 0 without a traceback."""
    rows = (DATASETS / "iris.csv").read_text().splitlines()
    big = tmp_path / "big.csv"
    big.write_text("\n".join([rows[0], *(rows[1:] * 400)]) + "\n")
    proc = subprocess.Popen([sys.executable, "-m", "nnctl", "predict", str(iris_npz), str(big)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline() == "species\n"
    proc.stdout.close()
    assert proc.wait(timeout=60) == 0
    assert proc.stderr.read() == ""


def test_checkpoint_resume_and_init_from_the_command_line(tmp_path):
    config = iris_config(training={"epochs": 6, "batch_size": 16, "checkpoint_every": 2},
                         model={"layers": [{"units": 8, "dropout": 0.2}, {}]})
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    straight = nnctl("train", str(tmp_path / "c.yaml"), "-o", str(tmp_path / "straight.npz"))
    assert straight.returncode == 0, straight.stderr
    assert f"checkpoint after epoch 2: {tmp_path / 'straight.ckpt.npz'}" in straight.stderr
    assert not (tmp_path / "straight.ckpt.npz").exists()  # removed once the model is saved
    short = nnctl("train", str(tmp_path / "c.yaml"), "-o", str(tmp_path / "r.npz"), "--epochs", "3", "-q")
    assert short.returncode == 0, short.stderr
    resumed = nnctl("train", str(tmp_path / "c.yaml"), "-o", str(tmp_path / "r.npz"), "--resume",
                    str(tmp_path / "r.npz"))
    assert resumed.returncode == 0, resumed.stderr
    assert "6 epochs, resuming after epoch 3" in resumed.stderr
    a = json.loads(nnctl("inspect", str(tmp_path / "straight.npz"), "--json").stdout)
    b = json.loads(nnctl("inspect", str(tmp_path / "r.npz"), "--json").stdout)
    assert a["checksum"] == b["checksum"]  # same weights, byte for byte
    tuned = nnctl("train", str(tmp_path / "c.yaml"), "-o", str(tmp_path / "t.npz"), "--init",
                  str(tmp_path / "r.npz"), "--epochs", "1")
    assert tuned.returncode == 0, tuned.stderr
    assert f"1 epoch, starting from {tmp_path / 'r.npz'}'s weights" in tuned.stderr
    _assert_one_line_error(nnctl("train", "configs/auto_mpg.yaml", "--init", str(tmp_path / "r.npz")),
                           "differ")


def test_inspect_names_the_restored_best_epoch(tmp_path):
    out = tmp_path / "bc.npz"
    assert nnctl("train", "configs/breast_cancer.yaml", "-o", str(out), "-q").returncode == 0
    meta = json.loads(nnctl("inspect", str(out), "--json").stdout)
    best = meta["state"]["restored_best_epoch"]
    shown = nnctl("inspect", str(out)).stdout
    assert f"weights from the best epoch, {best}: val_loss" in shown


def test_evaluate_shows_the_confusion_matrix(iris_npz):
    table = nnctl("evaluate", str(iris_npz), "datasets/iris.csv")
    assert "confusion matrix (rows: true, columns: predicted)" in table.stdout
    scores = json.loads(nnctl("evaluate", str(iris_npz), "datasets/iris.csv", "--json").stdout)
    matrix = scores["confusion_matrix"]
    assert matrix["labels"] == ["setosa", "versicolor", "virginica"]
    assert sum(map(sum, matrix["counts"])) == 150
    assert {"precision", "recall", "f1"} <= set(scores)


def test_evaluate_reports_every_metric_and_the_per_class_table(iris_npz):
    """The JSON's metrics are evaluate's, by their names, with a per-class entry per label; the table shows both."""
    from nnctl.engine.metrics import CLASSIFICATION

    scores = json.loads(nnctl("evaluate", str(iris_npz), "datasets/iris.csv", "--json").stdout)
    assert list(scores)[: 2 + len(CLASSIFICATION)] == ["rows", "loss", *CLASSIFICATION]
    assert scores["roc_auc"] > 0.9 and scores["log_loss"] < 0.5 and 0 <= scores["ece"] <= 1
    per_class = scores["per_class"]
    assert list(per_class) == ["setosa", "versicolor", "virginica"]
    assert sum(row["support"] for row in per_class.values()) == 150
    assert set(per_class["setosa"]) == {"precision", "recall", "f1", "support"}
    counts = scores["confusion_matrix"]["counts"]
    assert per_class["versicolor"]["recall"] == counts[1][1] / sum(counts[1])
    table = nnctl("evaluate", str(iris_npz), "datasets/iris.csv").stdout
    assert "per class" in table and "roc_auc" in table and "support" in table


def test_check_lists_the_training_settings(tmp_path):
    config = iris_config(optimizer={"name": "sgd", "momentum": 0.9}, schedule={"name": "step", "step_size": 5},
                         training={"early_stopping": {"monitor": "val_accuracy"}})
    config["data"]["class_weight"] = "balanced"
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    result = runner.invoke(app, ["check", str(tmp_path / "c.yaml")])
    assert result.exit_code == 0, result.output
    for line in ("optimizer: sgd (learning_rate=0.01, momentum=0.9", "schedule: step (step_size=5, gamma=0.1)",
                 "early_stopping: monitor val_accuracy, patience 10", "class_weight: setosa=1"):
        assert line in result.output


def test_predict_pipeline_options_from_the_command_line(iris_npz):
    rows = "id,sepal_length,sepal_width,petal_length,petal_width\nr1,5.1,3.5,1.4,0.2\nr2,6.7,3.0,5.2,2.3\n"
    result = nnctl("predict", str(iris_npz), "-", "--keep", "id", "--format", "jsonl", stdin=rows)
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(r["id"], r["species"]) for r in records] == [("r1", "setosa"), ("r2", "virginica")]
    jsonl = "".join(json.dumps({"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4,
                                "petal_width": 0.2}) + "\n" for _ in range(3))
    result = nnctl("predict", str(iris_npz), "--input-format", "jsonl", stdin=jsonl)
    assert result.stdout.splitlines() == ["species", "setosa", "setosa", "setosa"]
    _assert_one_line_error(nnctl("predict", str(iris_npz), "--threshold", "0.5", stdin=rows),
                           "--threshold needs a model with two classes; this one has 3 classes")


def test_threshold_moves_the_decision_of_a_two_class_model(tmp_path):
    model = tmp_path / "bc.npz"
    assert nnctl("train", "configs/breast_cancer.yaml", "-o", str(model), "-q").returncode == 0
    counts = {}
    for threshold in ("0.05", "0.95"):
        out = nnctl("predict", str(model), "datasets/breast_cancer.csv", "--threshold", threshold).stdout
        counts[threshold] = out.splitlines()[1:].count("malignant")
    assert counts["0.05"] > counts["0.95"] > 0


def test_predict_output_file_is_replaced_only_on_success(iris_npz, tmp_path):
    out = tmp_path / "p.csv"
    out.write_text("previous\n")
    result = nnctl("predict", str(iris_npz), "datasets/auto_mpg.csv", "-o", str(out))
    assert result.returncode == 2 and out.read_text() == "previous\n"
    assert list(tmp_path.iterdir()) == [out]  # no temporary file left behind
    assert nnctl("predict", str(iris_npz), "datasets/iris.csv", "-o", str(out)).returncode == 0
    assert out.read_text().splitlines()[0] == "species" and len(out.read_text().splitlines()) == 151


def test_train_jsonl_log_and_fail_under(tmp_path):
    out = tmp_path / "m.npz"
    result = nnctl("train", "configs/iris.yaml", "-o", str(out), "--epochs", "5", "--log-format", "jsonl",
                   "--fail-under", "val_accuracy=0.1", "--fail-under", "val_loss=5")
    assert result.returncode == 0, result.stderr
    epochs = [json.loads(line) for line in result.stdout.splitlines()]
    assert [e["epoch"] for e in epochs] == [1, 2, 3, 4, 5]
    assert {"train_loss", "val_loss", "val_accuracy", "learning_rate", "seconds"} <= set(epochs[0])
    assert "epoch 1/5" not in result.stderr  # no text progress alongside the JSON lines
    before = out.read_bytes()
    missed = nnctl("train", "configs/iris.yaml", "-o", str(out), "--epochs", "1", "-q",
                   "--fail-under", "val_accuracy=0.999")
    assert missed.returncode == 1
    assert "misses --fail-under: val_accuracy" in missed.stderr and "m.failed.npz" in missed.stderr
    assert out.read_bytes() == before and (tmp_path / "m.failed.npz").exists()
    _assert_one_line_error(nnctl("train", "configs/iris.yaml", "--fail-under", "val_r2=0.5"),
                           "--fail-under val_r2: not a classification metric")
    _assert_one_line_error(nnctl("train", "configs/iris.yaml", "--fail-under", "val_accuracy"),
                           "expected METRIC=VALUE")


def test_fail_under_takes_the_direction_of_the_new_metrics(tmp_path):
    """log_loss is an upper limit and roc_auc a lower one: generous bars pass, impossible ones fail."""
    out = tmp_path / "m.npz"
    passed = nnctl("train", "configs/iris.yaml", "-o", str(out), "--epochs", "30", "-q", "--json",
                   "--fail-under", "val_log_loss=5", "--fail-under", "val_roc_auc=0.5", "--fail-under", "val_ece=1")
    assert passed.returncode == 0, passed.stderr
    summary = json.loads(passed.stdout)
    assert summary["val_log_loss"] < 5 and summary["train_log_loss"] < 5 and "train_roc_auc" not in summary
    missed = nnctl("train", "configs/iris.yaml", "-o", str(out), "--epochs", "1", "-q",
                   "--fail-under", "val_log_loss=0.0001", "--fail-under", "val_roc_auc=1.01")
    assert missed.returncode == 1
    assert "val_log_loss" in missed.stderr and "> 0.0001" in missed.stderr and "< 1.01" in missed.stderr


def test_init_writes_a_config_that_trains(tmp_path):
    printed = nnctl("init", "datasets/auto_mpg.csv", "--target", "mpg")
    assert printed.returncode == 0, printed.stderr
    assert "target: mpg" in printed.stdout and "origin" in printed.stdout
    config = tmp_path / "mpg.yaml"
    written = nnctl("init", str(ROOT / "datasets" / "auto_mpg.csv"), "-t", "mpg", "-o", str(config))
    assert written.returncode == 0 and f"wrote {config}" in written.stderr
    trained = nnctl("train", str(config), "-q", "--json", "-o", str(tmp_path / "mpg.npz"))  # not ./mpg.npz
    assert trained.returncode == 0, trained.stderr
    assert json.loads(trained.stdout)["val_r2"] > 0.8
    _assert_one_line_error(nnctl("init", "datasets/auto_mpg.csv", "-t", "mpg", "-o", str(config)),
                           "already exists")
    _assert_one_line_error(nnctl("init", "datasets/auto_mpg.csv", "-t", "mgp"), "did you mean 'mpg'")


def test_init_writes_a_classifier_that_stops_early_at_its_best_epoch(tmp_path):
    config = tmp_path / "wine.yaml"
    written = nnctl("init", "datasets/wine.csv", "--target", "cultivar", "-o", str(config))
    assert written.returncode == 0, written.stderr
    trained = nnctl("train", str(config), "-o", str(tmp_path / "wine.npz"), "--quiet", "--json")
    assert trained.returncode == 0, trained.stderr
    summary = json.loads(trained.stdout)
    assert summary["stopped_early"] and summary["best_epoch"] < summary["epochs"] < 500
    assert summary["val_accuracy"] >= 0.94  # 36 validation wines: at most two wrong


def test_schema_is_json_and_matches_the_shipped_copy():
    from nnctl.config.schema import json_schema

    result = nnctl("schema")
    assert result.returncode == 0
    assert json.loads(result.stdout) == json_schema()
    assert json.loads((CONFIGS / "nnctl.schema.json").read_text()) == json_schema(), \
        "configs/nnctl.schema.json is stale: run `nnctl schema > configs/nnctl.schema.json`"
    for config in CONFIGS.glob("*.yaml"):
        assert config.read_text().startswith("# yaml-language-server: $schema=nnctl.schema.json\n"), config


def test_inspect_shows_preprocessing_history_and_config(tmp_path):
    model = tmp_path / "mpg.npz"
    assert nnctl("train", "configs/auto_mpg.yaml", "-o", str(model), "-q").returncode == 0
    shown = nnctl("inspect", str(model)).stdout
    for fragment in ("features (scale: standard", "Europe, Japan, USA", "history (100 epochs)", "train_loss ",
                     "(log scale)", "trained with (resolved config):", "target: mpg"):
        assert fragment in shown, fragment
    assert any(ch in shown for ch in "▁▂▃▄▅▆▇█")


def test_completion_and_no_color():
    result = runner.invoke(app, ["--help"])
    assert "--install-completion" in result.output
    env = {**os.environ, "NO_COLOR": "1", "FORCE_COLOR": "1", "TERM": "xterm-256color"}
    shown = subprocess.run([sys.executable, "-m", "nnctl", "train", "nope.yaml"], capture_output=True, text=True,
                           env=env, cwd=ROOT, timeout=60)
    assert shown.returncode == 2 and "\x1b[3" not in shown.stderr  # no colour codes (bold may remain)


def test_training_outlives_a_reader_that_leaves(tmp_path):
    """`nnctl train ... 2>&1 | head -2` or `--log-format jsonl | head -1`: the model is still trained and saved."""
    for stream, args in (("stderr", []), ("stdout", ["--log-format", "jsonl"])):
        out = tmp_path / f"{stream}.npz"
        proc = subprocess.Popen([sys.executable, "-m", "nnctl", "train", "configs/breast_cancer.yaml", "-o", str(out),
                                 *args], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        pipe = proc.stderr if stream == "stderr" else proc.stdout
        other = proc.stdout if stream == "stderr" else proc.stderr
        assert pipe is not None and other is not None
        assert pipe.readline()
        pipe.close()
        other.read()
        assert proc.wait(timeout=120) == 0
        assert out.exists() and not (tmp_path / f"{stream}.ckpt.npz").exists()


def test_tables_into_a_closed_pipe_end_quietly(iris_npz):
    proc = subprocess.Popen([sys.executable, "-m", "nnctl", "inspect", str(iris_npz)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.readline()
    proc.stdout.close()
    assert proc.wait(timeout=60) == 0 and proc.stderr.read() == ""
