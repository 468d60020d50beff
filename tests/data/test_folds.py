"""Cross-validation folds: a partition per repeat, stratified by class, groups kept whole, reproducible."""

from __future__ import annotations

import numpy as np
import pytest

from nnctl.data.folds import make_folds
from nnctl.errors import DataError


def _check_partition(folds, n: int, k: int, repeats: int) -> None:
    assert len(folds) == k * repeats
    for repeat in range(1, repeats + 1):
        mine = [f for f in folds if f.repeat == repeat]
        held = np.concatenate([f.validation for f in mine])
        assert sorted(held.tolist()) == list(range(n))  # every row validated exactly once per repeat
        for f in mine:
            assert np.intersect1d(f.train, f.validation).size == 0
            assert len(f.train) + len(f.validation) == n


def test_plain_folds_partition_the_rows_in_nearly_equal_parts():
    folds = make_folds(23, 5, 2, np.random.default_rng(0))
    _check_partition(folds, 23, 5, 2)
    assert {len(f.validation) for f in folds} == {4, 5}
    assert not np.array_equal(folds[0].validation, folds[5].validation)  # each repeat draws its own folds


def test_stratified_folds_keep_each_class_share_within_one_row():
    classes = np.repeat([0, 1, 2], [50, 30, 7])
    folds = make_folds(len(classes), 5, 3, np.random.default_rng(1), classes=classes)
    _check_partition(folds, len(classes), 5, 3)
    for f in folds:
        counts = np.bincount(classes[f.validation], minlength=3)
        assert np.all(np.abs(counts - np.array([10, 6, 1.4])) < 1)
    assert max(len(f.validation) for f in folds) - min(len(f.validation) for f in folds) <= 1


def test_groups_never_span_training_and_validation():
    rng = np.random.default_rng(2)
    groups = rng.integers(0, 17, 200).astype(str)
    folds = make_folds(200, 4, 2, np.random.default_rng(3), classes=rng.integers(0, 2, 200), groups=groups)
    _check_partition(folds, 200, 4, 2)
    for f in folds:
        assert set(groups[f.train]).isdisjoint(groups[f.validation])


def test_the_same_generator_gives_the_same_folds():
    a = make_folds(50, 5, 1, np.random.default_rng(9), classes=np.arange(50) % 3)
    b = make_folds(50, 5, 1, np.random.default_rng(9), classes=np.arange(50) % 3)
    assert all(np.array_equal(x.validation, y.validation) for x, y in zip(a, b, strict=True))


def test_too_few_rows_or_groups_for_the_folds():
    with pytest.raises(DataError, match="4 labelled rows cannot fill 5 folds"):
        make_folds(4, 5, 1, np.random.default_rng(0))
    with pytest.raises(DataError, match="2 groups cannot fill 3 folds"):
        make_folds(10, 3, 1, np.random.default_rng(0), groups=np.array(["a", "b"] * 5))
