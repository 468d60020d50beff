"""Streaming training (`data.streaming: true`): the chunked fit equals the in-memory one, training from the spill
comes close to training in memory, every row is seen once per epoch, runs are reproducible and resumable, the
temporary files go away, and peak memory does not grow with the file."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from nnctl.cli import app
from nnctl.config.load import load_config
from nnctl.data import chunks, streaming
from nnctl.data.fit import fit_preprocessor
from nnctl.data.load import load_dataset
from nnctl.data.reader import read_csv
from nnctl.data.rows import Layout, SpilledRows
from nnctl.data.spill import SpillWriter
from nnctl.errors import ConfigError
from nnctl.model.model import load_model
from nnctl.model.preprocessing import Preprocessor, TargetEncoder
from nnctl.training.events import Callback
from nnctl.training.run import train

from conftest import CONFIGS, DATASETS, RESUMABLE, ROOT, _same_history, iris_config
from hostile import FUZZ, _check, _fresh, hostile_csv, runner

pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")  # as in test_fuzz: a warning is a failure

STREAM = ["data.streaming=true", "data.chunk_rows=37", "data.shuffle_buffer=74"]  # many chunks, a small buffer


def _assert_same_fit(memory: Preprocessor, streamed: Preprocessor) -> None:
    assert [(s.name, s.kind, s.categories, s.order, s.parts, s.indicator) for s in memory.features] == \
           [(s.name, s.kind, s.categories, s.order, s.parts, s.indicator) for s in streamed.features]
    for a, b in zip(memory.features, streamed.features, strict=True):
        for field in ("center", "scale", "fill"):
            assert getattr(b, field) == pytest.approx(getattr(a, field), rel=1e-9, abs=1e-12), (a.name, field)


def _assert_same_target(memory: TargetEncoder, streamed: TargetEncoder) -> None:
    assert (memory.name, memory.task, memory.classes, memory.binary) == \
           (streamed.name, streamed.task, streamed.classes, streamed.binary)
    assert streamed.center == pytest.approx(memory.center, rel=1e-9)
    assert streamed.scale == pytest.approx(memory.scale, rel=1e-9)


@pytest.mark.parametrize(("name", "extra"), [
    ("iris", []), ("breast_cancer", []), ("auto_mpg", []),
    ("auto_mpg", ["data.features=null", "data.scale=minmax"]),  # + the free-text 'name' column, min-max scaling
    ("auto_mpg", ["data.missing=drop"]),
    ("auto_mpg", ["data.missing_indicators=true"]),  # horsepower has gaps: one more input
    ("seattle_weather", []),  # a date column
])
def test_the_chunked_fit_equals_the_in_memory_fit(name, extra):
    """With every row in training (no split), both paths fit on the same rows: same numbers to 1e-9."""
    overrides = ["data.validation_split=0", "data.cache=false", *extra]
    memory_warnings: list[str] = []
    memory = load_dataset(load_config(CONFIGS / f"{name}.yaml", overrides), np.random.default_rng(0),
                          memory_warnings.append)
    streamed_warnings: list[str] = []
    streamed = streaming.load(load_config(CONFIGS / f"{name}.yaml", overrides + STREAM), np.random.default_rng(0),
                               streamed_warnings.append)
    _assert_same_fit(memory.preprocessor, streamed.preprocessor)
    _assert_same_target(memory.target, streamed.target)
    assert streamed_warnings == memory_warnings  # e.g. auto_mpg's 8 rows without a target
    assert len(streamed.train) == len(memory.train) and streamed.loss == memory.loss


@pytest.mark.parametrize("name", ["iris", "breast_cancer", "auto_mpg"])
def test_the_split_fits_on_the_training_rows_only_and_has_the_in_memory_totals(name, monkeypatch):
    """Record which rows pass 1 holds out; the fit must equal an in-memory fit on exactly the other rows."""
    usable: list[np.ndarray] = []
    held: list[np.ndarray] = []
    clean, held_out = streaming.clean, chunks.Splitter.held_out

    def record_clean(frame, *args):
        result = clean(frame, *args)
        if len(result[0]):
            usable.append(result[0].index.to_numpy())
        return result

    def record_held(self, *args):
        mask = held_out(self, *args)
        held.append(mask)
        return mask

    monkeypatch.setattr(streaming, "clean", record_clean)
    monkeypatch.setattr(chunks.Splitter, "held_out", record_held)
    config = load_config(CONFIGS / f"{name}.yaml", STREAM)
    streamed = streaming.load(config, np.random.default_rng(config.seed), lambda message: None)
    rows = np.concatenate(usable)
    mask = np.concatenate(held)
    training = rows[~mask]
    frame = read_csv(DATASETS / f"{name}.csv")
    features = streamed.preprocessor.names
    expected = fit_preprocessor(frame.loc[training], features, config.data)
    _assert_same_fit(expected, streamed.preprocessor)
    # the same number of validation rows as the in-memory split (per class for classification)
    memory = load_dataset(load_config(CONFIGS / f"{name}.yaml", ["data.cache=false"]),
                          np.random.default_rng(config.seed), lambda message: None)
    assert (len(streamed.train), len(streamed.validation)) == (len(memory.train), len(memory.validation))
    assert set(training).isdisjoint(rows[mask])


@pytest.fixture(scope="module")
def split_files(tmp_path_factory) -> dict[str, tuple[Path, Path]]:
    """Each dataset cut once into a training and a validation file: both paths see the same rows."""
    folder = tmp_path_factory.mktemp("split")
    files = {}
    for name in ("iris", "breast_cancer", "auto_mpg"):
        frame = pd.read_csv(DATASETS / f"{name}.csv")
        held = np.random.default_rng(123).random(len(frame)) < 0.25
        files[name] = (folder / f"{name}_train.csv", folder / f"{name}_val.csv")
        frame[~held].to_csv(files[name][0], index=False)
        frame[held].to_csv(files[name][1], index=False)
    return files


@pytest.mark.parametrize(("name", "metric", "tolerance"), [
    ("iris", "accuracy", 0.05),  # 43 validation flowers: 2 flowers
    ("breast_cancer", "accuracy", 0.02),  # 142 tumours: 2 tumours
    ("auto_mpg", "r2", 0.02),
])
def test_streamed_training_comes_close_to_training_in_memory(split_files, name, metric, tolerance):
    """Same rows, same preprocessing: only the order of the rows differs (shuffled chunks of 37 in a buffer of 74
    rows, instead of the whole file). Over seeds 0-4 the largest gaps were 0.023, 0, and 0.005."""
    train_csv, val_csv = split_files[name]
    base = [f"data.train={train_csv}", f"data.validation={val_csv}", "data.cache=false"]
    memory = train(load_config(CONFIGS / f"{name}.yaml", base), save=False)
    streamed = train(load_config(CONFIGS / f"{name}.yaml", base + STREAM), save=False)
    assert streamed.final["validation"][metric] == pytest.approx(memory.final["validation"][metric], abs=tolerance)
    assert streamed.final["validation"]["loss"] == pytest.approx(memory.final["validation"]["loss"], abs=0.05)
    _assert_same_fit(memory.model.preprocessor, streamed.model.preprocessor)
    assert streamed.model.provenance.streaming.chunk_rows == 37


def test_without_shuffling_a_streamed_epoch_has_the_in_memory_batches(split_files):
    """training.shuffle: false on the same rows: the spill is read in file order and an unfinished batch is carried
    into the next buffer, so every batch is the in-memory one (the weights came out bit for bit the same)."""
    train_csv, val_csv = split_files["breast_cancer"]
    base = [f"data.train={train_csv}", f"data.validation={val_csv}", "data.cache=false", "training.shuffle=false",
            "training.epochs=20"]
    memory = train(load_config(CONFIGS / "breast_cancer.yaml", base), save=False).model
    streamed = train(load_config(CONFIGS / "breast_cancer.yaml", base + STREAM), save=False).model
    assert memory.training.optimizer.values["t"] == streamed.training.optimizer.values["t"]  # as many steps
    np.testing.assert_allclose(streamed.network.params, memory.network.params, atol=1e-6)
    # validation read back in chunks of 37 rows: the ranking metrics still see every row's probabilities
    for key in ("val_roc_auc", "val_pr_auc", "val_log_loss", "val_brier", "val_ece", "val_mcc"):
        assert streamed.history[-1][key] == pytest.approx(memory.history[-1][key], abs=1e-4), key


def test_wide_rows_gathered_per_batch_train_exactly_like_a_shuffled_copy(monkeypatch):
    import nnctl.training.loop

    config = load_config(CONFIGS / "breast_cancer.yaml", [*STREAM, "training.epochs=5"])
    copied = train(config, save=False).model.network.params.tobytes()
    monkeypatch.setattr(nnctl.training.loop, "WIDE_ROW_BYTES", 1)  # every row "wide": gathered batch by batch
    assert train(config, save=False).model.network.params.tobytes() == copied


def _spill(tmp_path: Path, rows: int, chunk_rows: int, buffer: int) -> SpilledRows:
    """A spill whose row i holds X = (i, -i) and y = i: where every row went is visible."""
    layout = Layout(2, 1, np.dtype(np.float32), np.dtype(np.float64), False, chunk_rows)
    writer = SpillWriter(tmp_path / "rows.bin", layout)
    ids = np.arange(rows, dtype=np.float64)
    for start in range(0, rows, 5):  # appended in pieces that do not line up with the blocks
        part = ids[start : start + 5]
        writer.append([np.column_stack([part, -part]).astype(np.float32), part[:, None].astype(np.float32), part])
    spilled = SpilledRows(rows, layout, buffer)
    spilled.attach(writer.path, writer.close())
    return spilled


@pytest.mark.parametrize("wide", [False, True])
def test_every_row_once_per_epoch_in_whole_batches(tmp_path, wide):
    spilled = _spill(tmp_path, rows=103, chunk_rows=7, buffer=20)
    rng = np.random.default_rng(0)
    epochs = []
    for _ in range(2):
        seen, sizes = [], []
        for X, (Y, y, _, _), gather in spilled.segments(rng, 4, wide):
            rows = X[gather] if gather is not None else X
            assert (gather is not None) == wide and len(rows) == len(y)
            np.testing.assert_array_equal(rows[:, 0], y)  # a row's X, Y and y stay together
            np.testing.assert_array_equal(rows[:, 1], -y)
            np.testing.assert_array_equal(Y[:, 0], y)
            seen.append(y.copy())
            sizes.append(len(y))
        order = np.concatenate(seen)
        assert sorted(order.tolist()) == list(range(103))  # every row exactly once
        assert all(size % 4 == 0 for size in sizes[:-1])  # whole batches: 26 steps, as in memory
        assert order.tolist() != list(range(103))
        epochs.append(order)
    assert epochs[0].tolist() != epochs[1].tolist()  # reshuffled every epoch
    in_order = np.concatenate([y.copy() for _, (_, y, _, _), _ in spilled.segments(None, 4, wide)])
    assert in_order.tolist() == list(range(103))  # training.shuffle: false reads the file in order
    chunks = list(spilled.chunks())
    assert [len(y) for _, _, y, _ in chunks] == [7] * 14 + [5]
    spilled.close()


def test_same_seed_same_bytes(write_config, tmp_path):
    config = iris_config(model={"layers": [{"units": 8, "dropout": 0.2}, {}]}, training={"epochs": 4})
    path = write_config(config)
    a = train(load_config(path, STREAM), output=tmp_path / "a.npz").model
    b = train(load_config(path, STREAM), output=tmp_path / "b.npz").model
    assert a.history[-1]["val_loss"] == b.history[-1]["val_loss"]
    for key, value in a.arrays().items():
        assert value.tobytes() == b.arrays()[key].tobytes(), key
    c = train(load_config(path, [*STREAM, "seed=1"]), save=False).model
    assert c.network.params.tobytes() != a.network.params.tobytes()


def test_both_passes_report_their_progress(write_config, monkeypatch):
    """A big file takes a while before the first epoch: the callback hears from each pass as it reads."""
    monkeypatch.setattr(chunks, "STATUS_SECONDS", 0.0)

    class Record(Callback):
        def __init__(self) -> None:
            self.status: list[str] = []

        def on_status(self, message: str) -> None:
            self.status.append(message)

    record = Record()
    train(load_config(write_config(iris_config(training={"epochs": 1})), STREAM), save=False, callback=record)
    first = [m for m in record.status if m.startswith("pass 1 of 2 (fitting the preprocessing): ")]
    second = [m for m in record.status if m.startswith("pass 2 of 2 (writing the preprocessed rows): ")]
    assert first[0].startswith("pass 1 of 2 (fitting the preprocessing): 37 rows of ")
    assert first[-1].startswith("pass 1 of 2 (fitting the preprocessing): 150 rows of ")
    assert len(first) == len(second) == 5  # 150 rows in chunks of 37


def test_an_interrupted_streamed_run_resumes_bit_exactly_and_leaves_no_temporary_files(write_config, tmp_path,
                                                                                       _private_cache):
    config = load_config(write_config(iris_config(**RESUMABLE)), STREAM)
    straight = train(config, output=tmp_path / "straight.npz")

    class Interrupt(Callback):
        def on_epoch(self, stats):
            assert list((_private_cache / "spill").iterdir())  # the spill exists while training
            if stats.epoch == 4:
                raise KeyboardInterrupt

    out = tmp_path / "run.npz"
    with pytest.raises(KeyboardInterrupt):
        train(config, output=out, callback=Interrupt())
    assert not list((_private_cache / "spill").iterdir())  # deleted on the interrupt too
    resumed = train(config, output=out, resume=tmp_path / "run.ckpt.npz")  # re-runs both passes
    for key, value in straight.model.arrays().items():
        assert resumed.model.arrays()[key].tobytes() == value.tobytes(), key
    _same_history(resumed.model.history, straight.model.history)
    assert not list((_private_cache / "spill").iterdir())


def test_balanced_class_weights_come_from_the_first_pass_counts(write_config):
    config = {**iris_config(), "data": {"train": str(DATASETS / "breast_cancer.csv"), "target": "diagnosis",
                                        "class_weight": "balanced", "validation_split": 0, "cache": False}}
    path = write_config(config)
    memory = load_dataset(load_config(path), np.random.default_rng(0), lambda message: None)
    streamed = streaming.load(load_config(path, STREAM), np.random.default_rng(0), lambda message: None)
    assert streamed.sources.class_weight == pytest.approx(memory.sources.class_weight, rel=1e-12)


def test_a_column_read_as_numbers_in_one_chunk_and_text_in_another_is_text_throughout(tmp_path, write_config):
    """pandas infers each chunk's types on its own; pass 1 starts again reading such a column as text, so the
    categories are the ones a whole read gives ("1.50" stays "1.50", not 1.5)."""
    lines = ["code,size,label"] + [f"{1 + i % 3}.50,{i},{'ab'[i % 2]}" for i in range(60)] + ["x7,60,a", "NA,61,b"]
    csv = tmp_path / "mixed.csv"
    csv.write_text("\n".join(lines) + "\n")
    config = {"data": {"train": str(csv), "target": "label", "validation_split": 0, "cache": False},
              "model": {"layers": [{"units": 4}, {}]}, "training": {"epochs": 2}}
    path = write_config(config)
    memory = load_dataset(load_config(path), np.random.default_rng(0), lambda message: None)
    streamed = streaming.load(load_config(path, ["data.streaming=true", "data.chunk_rows=20",
                                                   "data.shuffle_buffer=40"]), np.random.default_rng(0),
                                lambda message: None)
    assert memory.preprocessor.features[0].categories == ["1.50", "2.50", "3.50", "<missing>", "x7"]
    _assert_same_fit(memory.preprocessor, streamed.preprocessor)
    assert streamed.sources.streaming.text_columns == ["code"]


def test_config_checks():
    with pytest.raises(ConfigError, match=r"data\.shuffle_buffer: must be at least data\.chunk_rows \(100\), got 50"):
        load_config(CONFIGS / "iris.yaml", ["data.streaming=true", "data.chunk_rows=100", "data.shuffle_buffer=50"])
    load_config(CONFIGS / "iris.yaml", ["data.chunk_rows=100", "data.shuffle_buffer=50"])  # not streaming: unused


@FUZZ
@given(data=hostile_csv(), policy=st.sampled_from(["impute", "drop", "error"]),
       split=st.sampled_from([0.0, 0.25, 0.5]), target_index=st.integers(0, 3), chunk_rows=st.integers(1, 4))
def test_streaming_hostile_csvs_in_tiny_chunks(tmp_path, _private_cache, data, policy, split, target_index,
                                               chunk_rows):
    """test_fuzz's hostile CSVs, streamed 1 to 4 rows per chunk (column types change between chunks): exit 0 or 2
    with one line, no traceback, no warning, and no temporary files left behind."""
    folder = _fresh(tmp_path)
    content, header = data
    (folder / "data.csv").write_bytes(content)
    config = {"data": {"train": "data.csv", "target": header[target_index % len(header)], "missing": policy,
                       "validation_split": split, "streaming": True, "chunk_rows": chunk_rows, "shuffle_buffer": 5},
              "model": {"layers": [{"units": 3}, {}]}, "training": {"epochs": 2, "batch_size": 4}}
    (folder / "c.yaml").write_text(yaml.safe_dump(config))
    result = runner.invoke(app, ["train", str(folder / "c.yaml"), "-o", str(folder / "m.npz"), "-q"])
    _check(result, folder, {"data.csv", "c.yaml", "m.npz"})
    assert not list((_private_cache / "spill").glob("*"))


def _nnctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nnctl", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=120)


def test_cli_train_and_check_a_streamed_config(tmp_path, _private_cache):
    out = tmp_path / "mpg.npz"
    result = _nnctl("train", "configs/auto_mpg.yaml", "-o", str(out), "--json", "--epochs", "20",
                    "--set", "data.streaming=true", "--set", "data.chunk_rows=50", "--set", "data.shuffle_buffer=100")
    assert result.returncode == 0, result.stderr
    assert "dropped 8 of 406 rows whose target 'mpg' is missing" in result.stderr
    summary = json.loads(result.stdout)
    assert summary["epochs"] == 20 and summary["val_r2"] > 0.5
    state = load_model(out).provenance.streaming
    assert state.spill_bytes > 0 and state.chunk_rows == 50
    assert not list((_private_cache / "spill").iterdir())
    check = _nnctl("check", "configs/auto_mpg.yaml", "--set", "data.streaming=true")
    assert check.returncode == 0, check.stderr
    assert "rows: 318 training, 80 validation" in check.stdout  # pass 1 counts; the in-memory split's totals
    assert "streaming: chunks of 50,000 rows, shuffle buffer 200,000 rows; 19 KiB of preprocessed rows" in check.stdout


def _csv(path: Path, rows: int) -> None:
    """`rows` rows of 20 random numbers and a 3-class label, written fast: one block of 10,000 rows, repeated."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((10_000, 20))
    label = (X[:, 0] + X[:, 1] > 0).astype(int) + (X[:, 2] > 1)
    text = io.StringIO()
    np.savetxt(text, np.column_stack([X, label]), fmt=["%.5f"] * 20 + ["%d"], delimiter=",")
    block = text.getvalue()
    with path.open("w") as out:
        out.write(",".join([*(f"x{i}" for i in range(20)), "y"]) + "\n")
        for _ in range(rows // 10_000):
            out.write(block)


def test_peak_memory_does_not_grow_with_the_file(tmp_path, write_config):
    config = write_config({"data": {"train": "data.csv", "target": "y", "cache": False, "chunk_rows": 10_000,
                                    "shuffle_buffer": 20_000},
                           "loss": "cross_entropy", "model": {"layers": [{"units": 16}, {}]},
                           "training": {"epochs": 1, "batch_size": 256}})

    def peak(rows: int, streamed: bool) -> int:
        _csv(tmp_path / "data.csv", rows)
        command = ["train", str(config), "-o", str(tmp_path / "m.npz"), "-q", "--set",
                   f"data.streaming={str(streamed).lower()}"]
        result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "peak_memory.py"), *command],
                                capture_output=True, text=True, cwd=ROOT, timeout=300)
        assert result.returncode == 0, result.stderr
        return int(result.stderr.strip().splitlines()[-1].split()[0].split("=")[1])

    small, large = peak(150_000, True), peak(600_000, True)  # 26 MB and 103 MB of CSV
    small_memory, large_memory = peak(150_000, False), peak(600_000, False)
    # 450,000 more rows: about +1 MB streamed (measured), +210 MB in memory (a float64 frame, float32 arrays, copies)
    assert large - small < 15_000, f"streaming: peak RSS grew from {small} kB to {large} kB"
    assert large_memory - small_memory > 100_000, (small_memory, large_memory)
    assert large < large_memory - 200_000
