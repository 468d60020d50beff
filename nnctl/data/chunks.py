"""What both streaming passes do to a CSV read chunk by chunk: report progress, draw the train/validation split
chunk by chunk (pass 2 replays pass 1's draws), and turn a chunk's target into class keys.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Hashable, Iterator
from typing import Any

import numpy as np
import pandas as pd

from nnctl.data.fit import is_numeric
from nnctl.data.reader import read_csv_chunks
from nnctl.dialect import Dialect

STATUS_SECONDS = 2.0  # how often the passes report their progress


def read_with_status(path: str, rows: int, dtypes: dict[str, Any], status: Callable[[str], None],
                     what: str, dialect: Dialect) -> Iterator[pd.DataFrame]:
    """`read_csv_chunks` (in `dialect`), saying every few seconds how many rows `what` has read."""
    done, last = 0, time.perf_counter()
    for frame in read_csv_chunks(path, rows, dtypes, dialect):
        yield frame
        done += len(frame)
        if time.perf_counter() - last >= STATUS_SECONDS:
            status(f"{what}: {done:,} rows of {path} read")
            last = time.perf_counter()


def target_codes(series: pd.Series) -> tuple[np.ndarray, list[Hashable]]:
    """A chunk's labelled targets as codes (m,) into class keys: floats for a numeric column, else text."""
    codes, uniques = pd.factorize(series)
    keys: list[Hashable] = [float(u) for u in uniques] if is_numeric(series) else [str(u) for u in uniques]
    return codes.astype(np.intp), keys


def key_label(key: Hashable, integral: bool) -> Any:
    """The class label of a key, as `nnctl.data.fit.labels_of` gives it: ints for whole numbers (when every
    label is one), else text."""
    if not isinstance(key, float):
        return key
    return int(key) if integral and key.is_integer() else str(np.float64(key))


class Splitter:
    """Holds out round(fraction * rows seen) rows per class (regression: of all rows) after every chunk; which
    rows of a chunk is a uniform draw from `rng`. No draws when `fraction` is 0.

    With `group` (data.group), whole groups instead: a group is held out when a keyed hash of its value is below
    `fraction` (the key is drawn from `rng` once), so it is on the same side in every chunk and both passes, and
    about `fraction` of the groups (not exactly of the rows) are held out."""

    def __init__(self, fraction: float, rng: np.random.Generator, group: str | None = None) -> None:
        self.fraction, self.rng, self.group = fraction, rng, group
        self.seen: dict[Hashable, int] = {}
        self.held: dict[Hashable, int] = {}
        self.salt = rng.bytes(16) if group and fraction else b""

    def held_out(self, frame: pd.DataFrame, codes: np.ndarray | None, keys: list[Hashable]) -> np.ndarray:
        """Mask (m,) of the chunk's rows that go to validation; `codes` (m,) index `keys` (classification)."""
        m = len(frame)
        mask = np.zeros(m, bool)
        if not self.fraction or not m:
            return mask
        if self.group:
            return self._groups(frame[self.group])
        order = self.rng.permutation(m)
        if codes is None:
            groups: list[tuple[Hashable, np.ndarray]] = [(None, order)]
        else:
            ranked = order[np.argsort(codes[order], kind="stable")]  # by class, each in the drawn order
            bounds = np.concatenate([[0], np.cumsum(np.bincount(codes, minlength=len(keys)))])
            groups = [(key, ranked[bounds[c] : bounds[c + 1]]) for c, key in enumerate(keys)]
        for key, members in groups:
            seen = self.seen.get(key, 0) + len(members)
            goal = round(self.fraction * seen)
            mask[members[: goal - self.held.get(key, 0)]] = True
            self.seen[key], self.held[key] = seen, goal
        return mask

    def _groups(self, series: pd.Series) -> np.ndarray:
        codes, uniques = pd.factorize(series.astype(str))  # text, as the in-memory split compares groups
        held = np.array([int.from_bytes(hashlib.blake2b(str(u).encode(), digest_size=8, key=self.salt).digest(),
                                        "little") / 2.0**64 < self.fraction for u in uniques], bool)
        return held[codes] if len(held) else np.zeros(len(series), bool)

