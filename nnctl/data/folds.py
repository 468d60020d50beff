"""Cross-validation folds: which rows each fold validates on, stratified by class or grouped, from one generator.

Every row is validated on exactly once per repeat. Classification folds are stratified: each class's rows, in a
shuffled order, are dealt round-robin to the folds (the class's share in every fold within one row of the
whole). Grouped folds keep a group whole: groups, in a shuffled order and then largest first, each go to the
fold with the fewest rows so far (scikit-learn's GroupKFold, with a shuffle). Otherwise rows are shuffled and
cut into K nearly equal parts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nnctl._types import IntArray
from nnctl.errors import DataError


@dataclass(frozen=True)
class Fold:
    """One fold: its number (1..K) within its repeat (1..R), and the row indices it trains and validates on."""

    repeat: int
    number: int
    train: IntArray
    validation: IntArray


def make_folds(n: int, k: int, repeats: int, rng: np.random.Generator, classes: IntArray | None = None,
               groups: np.ndarray | None = None, source: str = "<data>") -> list[Fold]:
    """K folds per repeat over `n` rows; `classes` (n,) stratifies, `groups` (n,) keeps each group in one fold.

    DataError when there are fewer rows (or groups) than folds."""
    if groups is not None:
        _, codes = np.unique(groups, return_inverse=True)
        if codes.max(initial=-1) + 1 < k:
            raise DataError(f"{source}: {codes.max(initial=-1) + 1} groups cannot fill {k} folds; lower the folds or "
                            "use smaller groups")
    elif n < k:
        raise DataError(f"{source}: {n} labelled rows cannot fill {k} folds; lower the folds")
    folds = []
    for repeat in range(1, repeats + 1):
        if groups is not None:
            assignment = _grouped(codes, k, rng)
        elif classes is not None:
            assignment = _stratified(classes, k, rng)
        else:
            assignment = rng.permutation(n) % k
        for number in range(k):
            held = assignment == number
            folds.append(Fold(repeat, number + 1, np.flatnonzero(~held), np.flatnonzero(held)))
    return folds


def _stratified(classes: IntArray, k: int, rng: np.random.Generator) -> IntArray:
    """Fold (n,) of each row: each class's rows shuffled and dealt round-robin, the deal starting where the
    previous class's ended, so the folds' sizes differ by at most one."""
    assignment = np.empty(len(classes), np.int64)
    start = 0
    for c in np.unique(classes):
        members = np.flatnonzero(classes == c)
        members = members[rng.permutation(len(members))]
        assignment[members] = (start + np.arange(len(members))) % k
        start = (start + len(members)) % k
    return assignment


def _grouped(codes: IntArray, k: int, rng: np.random.Generator) -> IntArray:
    """Fold (n,) of each row: whole groups, largest first (ties in a shuffled order), each to the smallest fold."""
    sizes = np.bincount(codes)
    order = rng.permutation(len(sizes))
    order = order[np.argsort(-sizes[order], kind="stable")]
    filled = np.zeros(k, np.int64)
    fold_of_group = np.empty(len(sizes), np.int64)
    for group in order:
        target = int(np.argmin(filled))
        fold_of_group[group] = target
        filled[target] += sizes[group]
    return fold_of_group[codes]
