"""Rows in memory: an epoch is a shuffled copy (or, for wide rows, a gather order), every row once."""

import numpy as np

from nnctl.data.rows import InMemoryRows


def _rows() -> InMemoryRows:
    X = np.arange(20, dtype=np.float32).reshape(10, 2)
    return InMemoryRows(X, X[:, :1] * 10, np.arange(10), np.linspace(1, 2, 10, dtype=np.float32))


def test_an_epoch_shuffles_every_part_alike_and_reuses_its_copies():
    rows = _rows()
    [(X, (Y, y, w, _), gather)] = list(rows.segments(np.random.default_rng(0), 4, wide=False))
    assert gather is None and sorted(y.tolist()) == list(range(10)) and y.tolist() != list(range(10))
    np.testing.assert_array_equal(X[:, 0], 2 * y)  # X, Y, y and w stay together
    np.testing.assert_array_equal(Y[:, 0], 20 * y)
    np.testing.assert_array_equal(w, rows.w[y])
    [(X2, _, _)] = list(rows.segments(np.random.default_rng(1), 4, wide=False))
    assert X2 is X  # the copy is made once and refilled


def test_wide_rows_are_not_copied_but_gathered_and_unshuffled_rows_come_in_order():
    rows = _rows()
    [(X, (_, y, _, _), gather)] = list(rows.segments(np.random.default_rng(0), 4, wide=True))
    assert X is rows.X and gather is not None
    np.testing.assert_array_equal(y, gather)  # row i of the epoch is X[gather[i]]
    [(X, (Y, y, _, _), gather)] = list(rows.segments(None, 4, wide=False))
    assert X is rows.X and Y is rows.Y and gather is None
    [(cx, cY, cy, cr)] = list(rows.chunks())
    assert (cx, cY, cy, cr) == (rows.X, rows.Y, rows.y, None) and len(rows) == rows.rows_in_memory == 10
