"""`data.group`: the validation split holds out whole groups, the group column is no feature, and `nnctl cv` keeps
groups whole by default."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from nnctl.config.load import config_from
from nnctl.data.load import load_dataset
from nnctl.data.parse import split_rows

from conftest import DATASETS


def test_split_rows_holds_out_whole_groups_near_the_fraction():
    groups = np.random.default_rng(0).integers(0, 40, 1000).astype(str)
    train, held = split_rows(1000, 0.2, np.random.default_rng(1), groups=groups)
    assert set(groups[train]).isdisjoint(groups[held])
    assert sorted([*train, *held]) == list(range(1000))
    assert 200 <= len(held) < 200 + np.bincount(np.unique(groups, return_inverse=True)[1]).max()
    assert split_rows(10, 0.0, np.random.default_rng(1), groups=groups[:10])[1].size == 0


def _raw(csv, **data) -> dict:
    return {"seed": 0, "data": {"train": str(csv), "target": "species", "cache": False, **data},
            "model": {"layers": [{"units": 4}, {"activation": "softmax"}]}, "loss": "cross_entropy",
            "training": {"epochs": 2}}


def test_the_validation_split_keeps_groups_whole_and_the_group_is_no_feature(tmp_path):
    frame = pd.read_csv(DATASETS / "iris.csv").assign(plant=lambda f: (f.index // 5).astype(str))
    frame.to_csv(tmp_path / "g.csv", index=False)
    config = config_from(_raw(tmp_path / "g.csv", group="plant"), str(tmp_path / "c.yaml"), tmp_path)
    dataset = load_dataset(config, np.random.default_rng(0), lambda message: None)
    assert "plant" not in dataset.preprocessor.names
    assert len(dataset.validation) == 30 and len(dataset.train) == 120  # 30 groups of 5: six held out


def test_cv_keeps_each_group_in_one_fold(tmp_path):
    from nnctl.sweep.cv import cross_validate

    frame = pd.read_csv(DATASETS / "iris.csv").assign(plant=lambda f: (f.index // 10).astype(str))
    frame.to_csv(tmp_path / "g.csv", index=False)
    config = config_from(_raw(tmp_path / "g.csv", group="plant"), str(tmp_path / "c.yaml"), tmp_path)
    result = cross_validate(config, 3, predictions=True)
    out = result.predictions
    assert out is not None and all(out.fold[frame.plant == p].nunique() == 1 for p in frame.plant.unique())


def _values(rows) -> np.ndarray:
    return np.concatenate([X[:, 0].copy() for X, *_ in rows.chunks()]) if rows is not None else np.zeros(0)


@pytest.mark.parametrize("text", [False, True])
def test_streaming_holds_out_whole_groups_the_same_way_in_both_passes(tmp_path, text):
    """2,000 rows in chunks of 150, groups of 10 rows scattered over the file: pass 2 writes the split pass 1
    fitted on, and no group has rows on both sides. The group's value is the first input (no scaling), so the
    spilled rows say which group each is."""
    rng = np.random.default_rng(3)
    plant = rng.permutation(np.repeat(np.arange(200), 10))
    frame = pd.DataFrame({"plant_id": plant, "x": rng.normal(size=2000), "species": rng.choice(["a", "b"], 2000)})
    frame["plant"] = [f"p{p}" for p in plant] if text else plant
    frame.to_csv(tmp_path / "g.csv", index=False)
    raw = _raw(tmp_path / "g.csv", group="plant", streaming=True, chunk_rows=150, shuffle_buffer=150,
               scale="none", features=["plant_id", "x"], validation_split=0.25)
    dataset = load_dataset(config_from(raw, str(tmp_path / "c.yaml"), tmp_path), np.random.default_rng(0),
                           lambda message: None)
    rows = len(dataset.train), len(dataset.validation)
    dataset.open()
    try:
        train, held = _values(dataset.train), _values(dataset.validation)
    finally:
        dataset.close()
    assert (len(train), len(held)) == rows and len(train) + len(held) == 2000
    assert set(train.tolist()).isdisjoint(held.tolist())
    assert 0.15 < len(held) / 2000 < 0.35  # about a quarter of the groups

