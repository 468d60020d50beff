"""Numeric columns scaled as one block: wide data (thousands of columns) costs a few NumPy calls per slab of
columns instead of several per column, so preprocessing grows linearly with the number of columns, with a small
constant.

The arithmetic is the per-column path's, element by element (fill the gaps with the training mean, subtract the
centre, divide by the scale, in float64, then cast to the network's dtype), so both give the same bits. A column
that fails a check (infinite, a gap under `missing: error`, too large after scaling) is only flagged here: the
caller runs the per-column path on it, which raises the error naming its line, in feature order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from nnctl._types import Array

SLAB = 2048  # columns scaled per pass: temporaries stay small (n x SLAB) however wide the data


@dataclass
class NumericBlock:
    """Numeric columns already parsed as numbers: `values[:, index[name]]` is column `name` (values (n, q) float64,
    NaN for a gap). The caller's array is never written to."""

    values: np.ndarray
    index: Mapping[str, int]


class Spec(Protocol):
    """What scaling reads of a `FeatureSpec` (`nnctl.model.preprocessing`, which imports this module)."""

    name: str
    kind: str
    center: float
    scale: float
    fill: float
    indicator: bool

    @property
    def width(self) -> int: ...


def scale_block(X: Array, features: Sequence[Spec], block: NumericBlock, impute: bool) -> set[str]:
    """Scale the numeric `features` that `block` holds into X (n, n_inputs), whose columns follow `features`; the
    names of those done (a column failing a check is left to the per-column path, which names its line)."""
    chosen: list[Spec] = []
    take: list[int] = []
    cols: list[int] = []
    indicators: list[tuple[int, int]] = []
    col = 0
    for spec in features:
        j = block.index.get(spec.name) if spec.kind == "numeric" else None
        if j is not None:
            if spec.indicator:
                indicators.append((col + 1, len(take)))
            chosen.append(spec)
            take.append(j)
            cols.append(col)
        col += spec.width
    if not take:
        return set()
    q = len(chosen)
    place = Placement(np.array(take, np.intp), np.array(cols, np.intp),
                      np.fromiter((s.center for s in chosen), np.float64, q),
                      np.fromiter((s.scale for s in chosen), np.float64, q),
                      np.fromiter((s.fill for s in chosen), np.float64, q),
                      np.array([c for c, _ in indicators], np.intp), np.array([k for _, k in indicators], np.intp))
    bad = scale_into(X, block, place, impute)
    return {spec.name for spec, failed in zip(chosen, bad.tolist(), strict=True) if not failed}


@dataclass
class Placement:
    """Where the block's columns go: block column `take[k]` becomes input column `cols[k]` of X, scaled by
    `center[k]`, `scale[k]` (gaps filled with `fill[k]`); input `indicator_cols[m]` is 1 where block column
    `take[indicator_of[m]]` had a gap."""

    take: np.ndarray  # (q,) intp
    cols: np.ndarray  # (q,) intp
    center: np.ndarray  # (q,) float64
    scale: np.ndarray  # (q,) float64
    fill: np.ndarray  # (q,) float64
    indicator_cols: np.ndarray  # (m,) intp
    indicator_of: np.ndarray  # (m,) intp, positions in take


def scale_into(X: Array, block: NumericBlock, place: Placement, impute: bool) -> np.ndarray:
    """Write the scaled block columns into X (n, n_inputs) as `place` says; (q,) bool: the columns that fail a
    check (their X columns are then not to be trusted: the caller raises for the first)."""
    q = len(place.take)
    bad = np.zeros(q, dtype=bool)
    largest = float(np.finfo(X.dtype).max)
    indicator_at = np.full(q, -1, dtype=np.intp)
    indicator_at[place.indicator_of] = place.indicator_cols
    for start in range(0, q, SLAB):
        part = slice(start, min(start + SLAB, q))
        values = block.values[:, place.take[part]]  # a copy (n, k): the caller's block stays as it was
        missing = np.isnan(values)
        gaps = missing.any(axis=0)
        bad[part] |= np.isinf(values).any(axis=0)
        if gaps.any():
            if not impute:
                bad[part] |= gaps
            values[missing] = np.broadcast_to(place.fill[part], values.shape)[missing]
        with np.errstate(over="ignore", invalid="ignore"):
            values -= place.center[part]
            values /= place.scale[part]
            bad[part] |= (np.abs(values) > largest).any(axis=0)
            X[:, place.cols[part]] = values  # a column too large for X's dtype is flagged: its cast may overflow
        flagged = indicator_at[part] >= 0
        if flagged.any():
            X[:, indicator_at[part][flagged]] = missing[:, flagged]
    return bad
