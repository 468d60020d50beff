"""`nnctl sweep`: the sweep file's validation, grid and random plans, and real sweeps on Dask distributed.

One LocalCluster serves the module's library tests and `--scheduler`; the embedded-cluster path is run
through the CLI (the shipped example) and by the Ctrl-C test.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from nnctl.cli import app
from nnctl.errors import ConfigError
from nnctl.model.model import load_model
from nnctl.sweep import trials as sweeps
from nnctl.sweep.plan import Range, load_sweep, trial_overrides
from nnctl.sweep.trials import run_sweep, run_trial

from conftest import CONFIGS, DATASETS, ROOT, iris_config

distributed = pytest.importorskip("distributed")
runner = CliRunner()
# with a relu hidden layer, plain SGD at a learning rate of 1000 diverges in the first epoch
RELU = {"layers": [{"units": 8, "activation": "relu"}, {"activation": "softmax"}]}


def nnctl(*args: str, cwd: Path = ROOT, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nnctl", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=timeout)


@pytest.fixture(scope="module")
def cluster():
    """One local Dask cluster (2 worker processes) for the module; yields its scheduler's address."""
    import logging

    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=logging.CRITICAL) as local:
        yield local.scheduler_address


def write_sweep(folder: Path, space: dict, base: dict | None = None, **keys: object) -> Path:
    """A base config (iris, 20 epochs) and a sweep file over it in `folder`."""
    config = base or iris_config(training={"epochs": 20, "batch_size": 16})
    (folder / "base.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    sweep = {"base": "base.yaml", "metric": "val_accuracy", **keys, "space": space}
    path = folder / "sweep.yaml"
    path.write_text(yaml.safe_dump(sweep, sort_keys=False))
    return path


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


# --- plans ---------------------------------------------------------------------------------------------


def test_grid_runs_every_point_first_key_slowest(tmp_path):
    sweep = load_sweep(write_sweep(tmp_path, {"optimizer.learning_rate": [0.01, 0.1],
                                              "model.layers[0].units": [4, 8, 16]}))
    assert sweep.method == "grid" and sweep.mode == "max" and sweep.task == "classification"
    assert sweep.plan == [{"optimizer.learning_rate": lr, "model.layers[0].units": u}
                          for lr in (0.01, 0.1) for u in (4, 8, 16)]
    assert trial_overrides(sweep.plan[0])[-2:] == ["optimizer.learning_rate=0.01", "model.layers[0].units=4"]
    assert "training.threads=1" in trial_overrides(sweep.plan[0])


def test_a_grid_over_budget_runs_a_seeded_subset_and_says_so(tmp_path):
    warnings: list[str] = []
    space = {"optimizer.learning_rate": [0.001, 0.01, 0.1], "model.layers[0].units": [4, 8, 16]}
    sweep = load_sweep(write_sweep(tmp_path, space, trials=4, seed=1), warnings.append)
    assert len(sweep.plan) == 4 and len({json.dumps(p) for p in sweep.plan}) == 4
    assert any("9 points" in w and "running 4" in w for w in warnings)
    assert load_sweep(write_sweep(tmp_path, space, trials=4, seed=1)).plan == sweep.plan


def test_random_draws_follow_the_seed_and_stay_in_their_ranges(tmp_path):
    space = {"optimizer.learning_rate": {"low": 1e-4, "high": 1e-1, "log": True},
             "optimizer.beta1": {"low": 0.8, "high": 0.95},
             "model.layers[0].units": {"low": 2, "high": 64, "log": True, "integer": True},
             "model.layers[0].activation": ["tanh", "relu"]}
    first = load_sweep(write_sweep(tmp_path, space, method="random", trials=40, seed=3))
    again = load_sweep(write_sweep(tmp_path, space, method="random", trials=40, seed=3))
    other = load_sweep(write_sweep(tmp_path, space, method="random", trials=40, seed=4))
    assert first.plan == again.plan != other.plan
    rates = [p["optimizer.learning_rate"] for p in first.plan]
    assert all(1e-4 <= r <= 1e-1 for r in rates)
    assert all(float(f"{r:.4g}") == r for r in rates)  # 4 significant digits: readable, and exact as --set
    # log-uniform: about as many draws in each decade
    decades = np.histogram(np.log10(rates), bins=[-4, -3, -2, -1])[0]
    assert decades.min() >= 5
    units = [p["model.layers[0].units"] for p in first.plan]
    assert all(isinstance(u, int) and 2 <= u <= 64 for u in units)
    assert all(0.8 <= p["optimizer.beta1"] <= 0.95 for p in first.plan)
    assert {p["model.layers[0].activation"] for p in first.plan} == {"tanh", "relu"}


def test_random_over_lists_draws_distinct_points(tmp_path):
    warnings: list[str] = []
    space = {"optimizer.learning_rate": [0.001, 0.01], "model.layers[0].units": [4, 8]}
    sweep = load_sweep(write_sweep(tmp_path, space, method="random", trials=10), warnings.append)
    assert sorted(json.dumps(p, sort_keys=True) for p in sweep.plan) == sorted(
        json.dumps({"model.layers[0].units": u, "optimizer.learning_rate": lr}, sort_keys=True)
        for lr in (0.001, 0.01) for u in (4, 8))
    assert any("only 4 distinct points" in w for w in warnings)


def test_a_choice_can_be_any_yaml_value(tmp_path):
    wide = [{"units": 16, "activation": "relu"}, {"units": 8, "activation": "tanh"}, {"activation": "softmax"}]
    narrow = [{"units": 4, "activation": "tanh"}, {"activation": "softmax"}]
    sweep = load_sweep(write_sweep(tmp_path, {"model.layers": [narrow, wide], "optimizer.weight_decay": [1e-05]}))
    assert sweep.plan[1]["model.layers"] == wide
    assert trial_overrides(sweep.plan[0])[-1] == "optimizer.weight_decay=1.0e-05"  # YAML reads 1e-05 as text


# --- validation ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("change", "message"), [
    ({"metirc": "val_loss"}, "sweep.yaml:8: metirc: unknown key; did you mean 'metric'?"),
    ({"method": "gird"}, "method: unknown method 'gird'; did you mean 'grid'?"),
    ({"space": {}}, "space: expected a mapping of dotted config keys"),
    ({"space": {"optimizer.learning_rate": []}}, "space: optimizer.learning_rate: an empty list of values"),
    ({"space": {"optimizer.learning_rate": {"low": 0.001, "high": 0.1}}},
     "space: optimizer.learning_rate: a range needs method: random"),
    ({"method": "random", "trials": 3, "space": {"optimizer.learning_rate": {"low": 0.0, "high": 0.1, "log": True}}},
     "a log range needs low > 0, got 0.0"),
    ({"method": "random", "trials": 3, "space": {"optimizer.learning_rate": {"low": 0.1, "hi": 0.2}}},
     "unknown range key 'hi'; did you mean 'high'?"),
    ({"method": "random"}, "method: random search needs a budget: trials: N"),
    ({"trials": 0}, "trials: expected a whole number of trials >= 1, got 0"),
    ({"space": {"optimizer.learnin_rate": [0.1]}}, "space: optimizer.learnin_rate: 0.1 is rejected by the base "
                                                   "config"),
    ({"space": {"optimizer.learnin_rate": [0.1]}}, "unknown key; did you mean 'learning_rate'?"),
    ({"space": {"model.layers[0].units": [8, 0]}}, "greater than or equal to 1"),
    ({"space": {"model.layers[5].units": [8]}}, "model.layers[5] does not exist (2 entries)"),
    ({"space": {"model..units": [8]}}, "space: model..units: not a dotted config key"),
    ({"space": {"optimizer.learning_rate": [0.1, 0.1]}}, "the value 0.1 is listed twice"),
    ({"metric": "val_acuracy"}, "metric: cannot rank trials by 'val_acuracy': not a classification metric; did "
                                "you mean 'val_accuracy'?"),
    ({"base": "nope.yaml"}, "nope.yaml: config file not found"),
    ({"method": "random", "trials": 2, "space": {"model.layers[0].units": {"low": 4, "high": 64}}},
     "expected an integer, got float 4.0; for whole numbers, add integer: true to the range"),
    ({"space": {f"optimizer.{k}": [0.1 * i for i in range(1, 11)] for k in ("learning_rate", "beta1", "beta2",
                                                                             "eps", "weight_decay")}},
     "sweep.yaml:4: space: the grid has 100,000 points; set trials: N"),
])
def test_a_bad_sweep_file_is_one_line_naming_file_and_key(tmp_path, change, message):
    sweep = {"base": "base.yaml", "metric": "val_accuracy", "method": "grid",
             "space": {"optimizer.learning_rate": [0.01, 0.1]}, **change}
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(iris_config()))
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(sweep, sort_keys=False))
    with pytest.raises(ConfigError) as info:
        load_sweep(path)
    text = str(info.value)
    assert "\n" not in text and text.startswith(str(path)) and message in text, text


def test_a_combination_the_config_rejects_fails_before_any_trial(tmp_path):
    """Each value is fine alone; together (sgd has no beta1) they are not."""
    path = write_sweep(tmp_path, {"optimizer.name": ["adam", "sgd"], "optimizer.beta1": [0.9]})
    with pytest.raises(ConfigError, match=r"trial 2 \(optimizer.name=sgd, optimizer.beta1=0.9\) is not a valid "
                                          r"config: .*beta1"):
        load_sweep(path)


def test_a_validation_metric_needs_validation_data(tmp_path):
    base = iris_config()
    base["data"]["validation_split"] = 0
    path = write_sweep(tmp_path, {"optimizer.learning_rate": [0.01]}, base=base)
    with pytest.raises(ConfigError, match="the base config has no validation data"):
        load_sweep(path)


def test_cli_bad_sweep_exits_2_with_one_line(tmp_path):
    path = write_sweep(tmp_path, {"optimizer.learning_rate": {"low": 0.001, "high": 0.1}})
    result = runner.invoke(app, ["sweep", str(path), "-o", str(tmp_path / "out")])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "a range needs method: random" in lines[0]
    assert not (tmp_path / "out").exists()


def test_missing_distributed_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)
    result = runner.invoke(app, ["sweep", str(write_sweep(tmp_path, {"optimizer.learning_rate": [0.01]}))])
    assert result.exit_code == 2
    assert result.output.strip() == ("error: nnctl sweep needs the 'distributed' package, which is not installed; "
                                     "install it with: pip install 'nnctl[sweep]'")


def test_scheduler_addresses_that_cannot_work_exit_2(tmp_path, monkeypatch):
    path = write_sweep(tmp_path, {"optimizer.learning_rate": [0.01]})
    result = runner.invoke(app, ["sweep", str(path), "--scheduler", "http://localhost:8786"])
    assert result.exit_code == 2 and "not a scheduler address" in result.output
    monkeypatch.setattr(sweeps, "CONNECT_TIMEOUT", 0.5)
    started = time.perf_counter()
    result = runner.invoke(app, ["sweep", str(path), "--scheduler", "tcp://127.0.0.1:9", "-o", str(tmp_path / "o")])
    assert result.exit_code == 2, result.output
    assert result.output.count("\n") == 1 and "no Dask scheduler answered within 0.5 s" in result.output
    assert time.perf_counter() - started < 10
    result = runner.invoke(app, ["sweep", str(path), "--scheduler", "tcp://127.0.0.1:9", "--workers", "2"])
    assert result.exit_code == 2 and "--workers" in result.output


# --- running trials ------------------------------------------------------------------------------------


def test_run_trial_returns_metrics_and_the_model_as_bytes(tmp_path):
    text = yaml.safe_dump(iris_config(training={"epochs": 5}))
    outcome = run_trial(text, trial_overrides({"optimizer.learning_rate": 0.02}), str(tmp_path), "base.yaml")
    assert outcome["summary"]["epochs"] == 5 and 0 <= outcome["summary"]["val_accuracy"] <= 1
    assert outcome["seconds"] > 0
    (tmp_path / "m.npz").write_bytes(outcome["model"])
    model = load_model(tmp_path / "m.npz")
    assert model.config["optimizer"]["learning_rate"] == 0.02 and model.config["training"]["threads"] == 1


def test_a_failing_trial_is_recorded_and_the_others_finish(tmp_path, cluster):
    """A learning rate of 1000 passes validation and diverges in training."""
    base = iris_config(optimizer={"name": "sgd", "learning_rate": 0.1}, training={"epochs": 30, "batch_size": 16},
                       model=RELU)
    path = write_sweep(tmp_path, {"optimizer.learning_rate": [0.05, 1000.0, 0.2]}, base=base, metric="val_loss")
    seen: list[tuple[int, str]] = []

    class Record(sweeps.SweepCallback):
        def on_trial(self, trial, best):
            seen.append((trial.number, trial.status))

    result = run_sweep(load_sweep(path), tmp_path / "out", scheduler=cluster, callback=Record())
    status = {t.number: t.status for t in result.trials}
    assert status == {1: "done", 2: "failed", 3: "done"}
    assert "training diverged" in (result.trials[1].error or "")
    assert {(1, "done"), (2, "failed"), (3, "done")} <= set(seen)
    table = rows(tmp_path / "out" / "results.csv")
    assert [r["status"] for r in table] == ["done", "failed", "done"]
    assert table[1]["val_loss"] == "" and "training diverged" in table[1]["error"]
    losses = {int(r["trial"]): float(r["val_loss"]) for r in table if r["status"] == "done"}
    assert result.best is not None and result.best.number == min(losses, key=lambda n: losses[n])  # minimised
    saved = json.loads((tmp_path / "out" / "results.json").read_text())
    assert saved["best"]["trial"] == result.best.number and saved["sweep"]["mode"] == "min"
    assert saved["counts"] == {"done": 2, "failed": 1} and not saved["interrupted"]
    assert load_model(tmp_path / "out" / "best.npz").config["optimizer"]["learning_rate"] == result.best.values[
        "optimizer.learning_rate"]


def test_a_perfect_tie_goes_to_the_lower_trial(tmp_path, cluster):
    path = write_sweep(tmp_path, {"output": ["a.npz", "b.npz", "c.npz"]})  # trials do not save: the same run 3x
    with distributed.Client(cluster, set_as_default=False) as client:  # a client of the caller's, left open
        result = run_sweep(load_sweep(path), tmp_path / "out", client=client)
        assert client.status == "running"
    assert result.best is not None and result.best.number == 1
    first, *others = ({k: v for k, v in t.summary.items() if k != "seconds"} for t in result.trials)
    assert others == [first, first]


def test_cli_sweep_on_an_existing_cluster(tmp_path, cluster):
    path = write_sweep(tmp_path, {"optimizer.learning_rate": [0.003, 0.03]}, output="results")
    result = nnctl("sweep", str(path), "--scheduler", cluster, "--json")
    assert result.returncode == 0, result.stderr
    saved = json.loads(result.stdout)
    assert saved["counts"] == {"done": 2} and saved["cluster"].startswith(f"the cluster at {cluster}")
    assert saved["output"]["folder"] == str(tmp_path / "results")  # `output` is relative to the sweep file
    assert len(rows(tmp_path / "results" / "results.csv")) == 2
    assert f"the cluster at {cluster} (2 workers)" in result.stderr


def test_cli_exits_1_when_no_trial_succeeds(tmp_path, cluster):
    base = iris_config(optimizer={"name": "sgd", "learning_rate": 1e6}, training={"epochs": 5}, model=RELU)
    path = write_sweep(tmp_path, {"optimizer.momentum": [0.0, 0.5]}, base=base)
    result = runner.invoke(app, ["sweep", str(path), "--scheduler", cluster, "-o", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1].startswith("error: no trial succeeded (2 failed); trial 1: "
                                                             "training diverged")
    assert [r["status"] for r in rows(tmp_path / "out" / "results.csv")] == ["failed", "failed"]
    assert not (tmp_path / "out" / "best.npz").exists()


def test_the_shipped_example_on_an_embedded_cluster(tmp_path):
    """The example sweep, as a user runs it: embedded LocalCluster with 2 workers, then predict with best.npz."""
    out = tmp_path / "iris"
    result = nnctl("sweep", str(CONFIGS / "sweeps" / "iris.yaml"), "-o", str(out), "--workers", "2")
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert "a local cluster of 2 worker processes" in result.stderr
    assert f"model saved to {out}/best.npz" in result.stderr
    table = rows(out / "results.csv")
    sweep = load_sweep(CONFIGS / "sweeps" / "iris.yaml")
    assert len(table) == len(sweep.plan) and {r["status"] for r in table} == {"done"}
    best = json.loads((out / "results.json").read_text())["best"]
    assert float(next(r for r in table if int(r["trial"]) == best["trial"])["val_accuracy"]) == max(
        float(r["val_accuracy"]) for r in table)
    model = load_model(out / "best.npz")
    assert model.config["optimizer"]["learning_rate"] == best["values"]["optimizer.learning_rate"]
    assert model.config["model"]["layers"][0]["units"] == best["values"]["model.layers[0].units"]
    predicted = nnctl("predict", str(out / "best.npz"), str(DATASETS / "iris.csv"))
    assert predicted.returncode == 0, predicted.stderr
    assert len(predicted.stdout.splitlines()) == 151


def _children(pid: int) -> list[int]:
    tasks = Path(f"/proc/{pid}/task")
    return [int(c) for task in tasks.iterdir() for c in (task / "children").read_text().split()]


def _running(pid: int) -> bool:
    try:
        state = next(line for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                     if line.startswith("State:"))
    except (FileNotFoundError, ProcessLookupError, StopIteration):
        return False
    return "zombie" not in state


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs /proc to find the worker processes")
def test_ctrl_c_cancels_the_rest_and_keeps_the_finished_trials(tmp_path):
    """SIGINT to the whole process group, as a terminal's Ctrl-C: exit 130, finished trials in the results,
    the others cancelled, no worker left running and no traceback."""
    base = iris_config(training={"epochs": 3000, "batch_size": 16})
    path = write_sweep(tmp_path, {"optimizer.learning_rate": [0.001, 0.002, 0.003, 0.004, 0.005, 0.006]},
                       base=base, output="out")
    process = subprocess.Popen([sys.executable, "-m", "nnctl", "sweep", str(path), "--workers", "2"], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    results = tmp_path / "out" / "results.csv"
    deadline = time.monotonic() + 60
    try:
        while not (results.exists() and len(rows(results)) >= 1):
            assert process.poll() is None and time.monotonic() < deadline, process.communicate()[1]
            time.sleep(0.05)
        workers = _children(process.pid)
        os.killpg(process.pid, signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert stderr.strip().splitlines()[-1].startswith("interrupted after ")
    table = rows(results)
    assert len(table) == 6
    assert {r["status"] for r in table} <= {"done", "failed", "cancelled"} and "cancelled" in {r["status"]
                                                                                              for r in table}
    assert any(r["status"] == "done" for r in table)
    assert json.loads((tmp_path / "out" / "results.json").read_text())["interrupted"] is True
    deadline = time.monotonic() + 10
    while any(_running(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in workers if _running(pid)]


def test_range_draws_round_and_clamp():
    rng = np.random.default_rng(0)
    assert all(0.1 <= Range(0.1, 0.2).draw(rng) <= 0.2 for _ in range(200))
    assert {Range(1, 2, integer=True).draw(rng) for _ in range(200)} == {1, 2}


# --- cross-validated trials ------------------------------------------------------------------------------


def test_cv_ranks_trials_by_the_folds_mean_even_without_a_validation_split(tmp_path, cluster):
    base = iris_config(training={"epochs": 10, "batch_size": 16})
    base["data"]["validation_split"] = 0
    path = write_sweep(tmp_path, {"optimizer.learning_rate": [0.003, 0.03]}, base=base, cv=3, output="results")
    sweep = load_sweep(path)
    assert sweep.cv == 3 and "val_accuracy" in sweep.metrics and sweep.definition()["cv"] == 3
    result = nnctl("sweep", str(path), "--scheduler", cluster, "--json")
    assert result.returncode == 0, result.stderr
    saved = rows(tmp_path / "results" / "results.csv")
    assert len(saved) == 2 and all(0 < float(r["val_accuracy"]) <= 1 for r in saved)
    from nnctl.config.load import load_config
    from nnctl.sweep.cv import cross_validate

    expected = cross_validate(load_config(tmp_path / "base.yaml", ["optimizer.learning_rate=0.03",
                                                                   "training.threads=1"]), 3).mean
    trial = next(r for r in saved if float(r["optimizer.learning_rate"]) == 0.03)
    assert float(trial["val_accuracy"]) == pytest.approx(expected["val_accuracy"])


def test_cv_must_be_two_folds_or_more(tmp_path):
    path = write_sweep(tmp_path, {"optimizer.learning_rate": [0.01]}, cv=1)
    with pytest.raises(ConfigError, match=r"sweep.yaml:\d+: cv: expected a whole number of folds >= 2, got 1"):
        load_sweep(path)
