"""`data.group`: the validation split holds out whole groups, the group column is no feature, and `nnctl cv` keeps
groups whole by default."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from nnctl.config.load import config_from
from nnctl.data.load import load_dataset
from nnctl.data.memory import split_rows
from nnctl.errors import ConfigError

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


def test_cv_and_streaming_with_a_group(tmp_path):
    from nnctl.sweep.cv import cross_validate

    frame = pd.read_csv(DATASETS / "iris.csv").assign(plant=lambda f: (f.index // 10).astype(str))
    frame.to_csv(tmp_path / "g.csv", index=False)
    config = config_from(_raw(tmp_path / "g.csv", group="plant"), str(tmp_path / "c.yaml"), tmp_path)
    result = cross_validate(config, 3, predictions=True)
    out = result.predictions
    assert out is not None and all(out.fold[frame.plant == p].nunique() == 1 for p in frame.plant.unique())
    streamed = config_from(_raw(tmp_path / "g.csv", group="plant", streaming=True), str(tmp_path / "c.yaml"),
                           tmp_path)
    with pytest.raises(ConfigError, match=r"data\.group does not work with data\.streaming yet"):
        load_dataset(streamed, np.random.default_rng(0), lambda message: None)
