"""Hostile input through the real CLI: mutated configs, junk CSVs, damaged model files.

Every case must end with exit 0 or 2 (1 only for a run that diverged, saying so), at most one short line on
stderr, no traceback, no hang, and no stray files. Cases run in-process through Typer's CliRunner, so a
few hundred of them take well under a minute.
"""

from __future__ import annotations

import copy
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from nnctl.cli import app

from conftest import DATASETS, ROOT, iris_config
from hostile import FUZZ, _check, _fresh, hostile_csv, runner

# numpy's warnings would reach a user's terminal as extra lines; here they fail the case instead
pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")
@pytest.fixture(scope="module")
def iris_model(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("model")
    config = folder / "c.yaml"
    config.write_text(yaml.safe_dump(iris_config(training={"epochs": 20})))
    result = runner.invoke(app, ["train", str(config), "-o", str(folder / "iris.npz"), "-q"])
    assert result.exit_code == 0, result.stderr
    return folder / "iris.npz"


@FUZZ
@given(data=hostile_csv(), policy=st.sampled_from(["impute", "drop", "error"]),
       split=st.sampled_from([0.0, 0.25, 0.5]), target_index=st.integers(0, 3))
def test_training_on_hostile_csvs(tmp_path, data, policy, split, target_index):
    folder = _fresh(tmp_path)
    content, header = data
    (folder / "data.csv").write_bytes(content)
    config = {"data": {"train": "data.csv", "target": header[target_index % len(header)], "missing": policy,
                       "validation_split": split},
              "model": {"layers": [{"units": 3}, {}]}, "training": {"epochs": 2, "batch_size": 4}}
    (folder / "c.yaml").write_text(yaml.safe_dump(config))
    result = runner.invoke(app, ["train", str(folder / "c.yaml"), "-o", str(folder / "m.npz"), "-q"])
    _check(result, folder, {"data.csv", "c.yaml", "m.npz"})


@FUZZ
@given(data=hostile_csv())
def test_predicting_hostile_csvs(tmp_path, iris_model, data):
    folder = _fresh(tmp_path)
    content, _ = data
    # half the cases: hostile values under the right header, so they reach the preprocessing
    if random.Random(content).random() < 0.5 and not content.startswith(b"\xff"):
        text = content.decode("utf-8", errors="replace").split("\n", 1)
        content = ("sepal_length,sepal_width,petal_length,petal_width\n" + (text[1] if len(text) > 1 else "")).encode()
    (folder / "in.csv").write_bytes(content)
    result = runner.invoke(app, ["predict", str(iris_model), str(folder / "in.csv"), "-o", str(folder / "p.csv")])
    _check(result, folder, {"in.csv", "p.csv"})
    assert (result.exit_code == 0) == (folder / "p.csv").exists()


VALUES = st.one_of(st.none(), st.booleans(), st.integers(-5, 10**6), st.floats(allow_nan=True, allow_infinity=True),
                   st.text(max_size=8), st.lists(st.integers(0, 5), max_size=3), st.dictionaries(
                       st.text(max_size=3), st.integers(0, 3), max_size=2),
                   st.sampled_from(["relu", "softmax", "adam", "sgd", "cosine", "val_loss", "balanced", "he_normal"]))


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += _paths(value, (*prefix, i))
    return found


@FUZZ
@given(choices=st.lists(st.tuples(st.integers(0, 10**6), st.sampled_from(["set", "delete", "add"]), VALUES),
                        min_size=1, max_size=4))
def test_mutated_configs(tmp_path, choices):
    folder = _fresh(tmp_path)
    config: dict[str, Any] = copy.deepcopy(iris_config(
        optimizer={"name": "sgd", "learning_rate": 0.05, "momentum": 0.9},
        schedule={"name": "step", "step_size": 2},
        training={"epochs": 2, "early_stopping": {"monitor": "val_loss", "patience": 3}}))
    config["data"]["train"] = str(DATASETS / "iris.csv")
    for pick, action, value in choices:
        paths = _paths(config)
        path = paths[pick % len(paths)]
        parent: Any = config
        for key in path[:-1]:
            parent = parent[key]
        if action == "delete" and isinstance(parent, dict):
            del parent[path[-1]]
        elif action == "add" and isinstance(parent, dict):
            parent[f"{path[-1]}x"] = value
        else:
            parent[path[-1]] = value
    (folder / "c.yaml").write_text(yaml.safe_dump(config))
    result = runner.invoke(app, ["check", str(folder / "c.yaml")])
    _check(result, folder, {"c.yaml"})
    if result.exit_code == 0:  # a valid mutation must also train (briefly) without surprises
        result = runner.invoke(app, ["train", str(folder / "c.yaml"), "-o", str(folder / "m.npz"), "-q",
                                     "--epochs", "1"])
        _check(result, folder, {"c.yaml", "m.npz"})


@FUZZ
@given(text=st.one_of(st.text(max_size=80), st.binary(max_size=80).map(lambda b: b.decode("latin-1"))))
def test_junk_config_text(tmp_path, text):
    folder = _fresh(tmp_path)
    (folder / "c.yaml").write_text(text, encoding="utf-8", errors="surrogateescape")
    result = runner.invoke(app, ["check", str(folder / "c.yaml")])
    _check(result, folder, {"c.yaml"})
    assert result.exit_code == 2


@FUZZ
@given(cut=st.floats(0, 1), flips=st.lists(st.tuples(st.floats(0, 1), st.integers(1, 255)), max_size=3),
       junk=st.binary(max_size=64), mode=st.sampled_from(["truncate", "flip", "append", "random"]))
def test_damaged_model_files(tmp_path, iris_model, cut, flips, junk, mode):
    folder = _fresh(tmp_path)
    raw = bytearray(iris_model.read_bytes())
    if mode == "truncate":
        raw = raw[: int(cut * len(raw))]
    elif mode == "flip":
        for where, bits in flips or [(cut, 1)]:
            raw[min(int(where * len(raw)), len(raw) - 1)] ^= bits
    elif mode == "append":
        raw += junk
    else:
        raw = bytearray(junk)
    (folder / "m.npz").write_bytes(bytes(raw))
    for args in (["inspect", str(folder / "m.npz")],
                 ["predict", str(folder / "m.npz"), str(DATASETS / "iris.csv"), "-o", str(folder / "p.csv")]):
        result = runner.invoke(app, args)
        _check(result, folder, {"m.npz", "p.csv"})


@pytest.mark.parametrize("case", ["huge", "constant", "one_per_class", "huge_unscaled", "tiny"])
def test_numerically_hostile_but_valid_data(tmp_path, case):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(40)
    columns = {"huge": (x * 1e30, x), "constant": (np.full(40, 7.0), x), "huge_unscaled": (x * 1e30, x),
               "one_per_class": (x[:3], x[:3]), "tiny": (x * 1e-30, x * 1e-300)}[case]
    labels = ["p", "q", "r"] if case == "one_per_class" else ["p" if v > 0 else "q" for v in x]
    lines = ["a,b,y", *(f"{a!r},{b!r},{y}" for a, b, y in zip(*columns, labels, strict=False))]
    (tmp_path / "d.csv").write_text("\n".join(lines) + "\n")
    config = {"data": {"train": "d.csv", "target": "y", "scale": "none" if case == "huge_unscaled" else "standard"},
              "model": {"layers": [{"units": 4}, {}]}, "training": {"epochs": 5}}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    result = runner.invoke(app, ["train", str(tmp_path / "c.yaml"), "-o", str(tmp_path / "m.npz"), "-q"])
    _check(result, tmp_path, {"d.csv", "c.yaml", "m.npz"})
    if case in ("huge", "constant", "tiny", "one_per_class"):
        assert result.exit_code == 0, result.stderr


# --- hostile config files: refused while loading, at once -------------------------------------------------

_BOMB = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{c}: &{c} [{','.join(['*' + p] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True))
HOSTILE_CONFIGS = {
    "bomb": (_BOMB, ":5: aliases expand to more than 10,000 values (limit 10,000)"),
    "aliases": ("a: &a 1\nb: [" + ",".join(["*a"] * 200) + "]\n", ":2: too many aliases (limit 100)"),
    "deep": ("[" * 5000 + "]" * 5000 + "\n", ":1: nested more than 64 levels deep (limit 64)"),
    "deep_block": ("data:\n" + "".join(" " * i + "- \n" for i in range(1, 200)), ":65: nested more than 64 levels"),
    "recursive": ("data: &d {train: *d}\n", ":1: the alias *d is inside the collection it refers to"),
    "huge": ("# padding\n" * 30_000, ": the config file is larger than 256 KiB (the limit)"),
    "values": ("data: {features: [" + ",".join(["x"] * 30_000) + "]}\n", ":1: more than 10,000 values"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_CONFIGS))
def test_hostile_configs_are_refused_at_once(tmp_path, case):
    """An alias bomb hung `check` past 20 s, and deep nesting ended in RecursionError: now exit 2, one line."""
    text, fragment = HOSTILE_CONFIGS[case]
    path = tmp_path / f"{case}.yaml"
    path.write_text(text)
    for args in (["check", str(path)], ["train", str(path), "-o", str(tmp_path / "m.npz")]):
        started = time.perf_counter()
        result = runner.invoke(app, args)
        seconds = time.perf_counter() - started
        _check(result, tmp_path, {path.name})
        assert result.exit_code == 2 and result.stderr.startswith(f"error: {path}{fragment}"), result.stderr
        assert seconds < 5, seconds  # at most ~0.5 s (10,000 values); generous for a loaded machine


@pytest.mark.parametrize("case", ["bomb", "deep"])
def test_hostile_configs_in_a_real_process(tmp_path, case):
    """The whole process: exit 2, one line on stderr, no traceback, no hang."""
    text, fragment = HOSTILE_CONFIGS[case]
    path = tmp_path / f"{case}.yaml"
    path.write_text(text)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "nnctl", "check", str(path)], capture_output=True, text=True,
                          cwd=ROOT, timeout=60)
    seconds = time.perf_counter() - started
    assert done.returncode == 2 and done.stdout == "", done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {path}{fragment}"), done.stderr
    assert seconds < 10, seconds  # ~0.5 s, nearly all of it Python's and NumPy's start


def test_hostile_sweep_files_and_overrides_are_refused(tmp_path):
    from nnctl.config.load import load_config
    from nnctl.errors import ConfigError
    from nnctl.sweep.plan import load_sweep

    (tmp_path / "sweep.yaml").write_text(f"base: c.yaml\nmetric: val_accuracy\n{_BOMB}")
    with pytest.raises(ConfigError, match=r"sweep\.yaml:7: aliases expand to more than 10,000 values"):
        load_sweep(tmp_path / "sweep.yaml")
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(iris_config()))
    with pytest.raises(ConfigError, match=r"^overrides data.features=\[\[\[.*: nested more than 64 levels deep"):
        load_config(tmp_path / "c.yaml", ["data.features=" + "[" * 1000])
