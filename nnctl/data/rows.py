"""The rows a model trains on and is scored on: one interface (`Rows`), two kinds of rows behind it.

`InMemoryRows` hold preprocessed arrays; `SpilledRows` read them back from a spill file (streaming's temporary
file, written by `nnctl.data.spill`). The training loop asks either for an epoch's `segments` and the model for
`chunks` to score; neither ever asks which kind it has.

A spill file holds one split's rows (training or validation) in blocks of `chunk_rows` rows; only the last
block may be shorter. Block j starts at byte j * chunk_rows * Layout.row_bytes and holds, one after the other
and each C-contiguous, X (m, n_inputs), Y (m, n_outputs), y (m,) and, with loss weights, w (m,) and, with
data.weight, its values r (m,) (float64). They are read
back with `readinto` into buffers allocated once — not memory-mapped, as mapped pages would count towards the
process's resident memory. The operating system's page cache keeps recently read blocks without charging them
to the process.

A spilled epoch (`SpilledRows.segments`) shuffles the order of the blocks with the run's generator, fills a
buffer of up to `shuffle_buffer` rows from consecutive blocks in that order, permutes the rows within the buffer
and hands them on in whole batches; the rows of an unfinished batch are carried into the next buffer, so an epoch
has the batches an in-memory epoch over the same rows has.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import numpy as np

from nnctl._types import Array
from nnctl.engine.metrics import squared_deviations
from nnctl.errors import OutputError
from nnctl.model.model import Chunk


def take_rows(a: np.ndarray, rows: np.ndarray, out: np.ndarray) -> np.ndarray:
    """a[rows] written into `out` (len(rows), ...). The rows are always a permutation's, never out of range, so
    mode="clip": NumPy's default mode copies through a temporary buffer first (2.5x slower for an epoch's rows,
    76 against 56 µs for a W2 batch)."""
    return np.take(a, rows, axis=0, out=out, mode="clip")


class Parts(NamedTuple):
    """A segment's rows but X: the loss's target Y (n, n_outputs), y (n,), and, when the run has them, the loss
    weights w (n,) (data.weight times class weights, average 1) and data.weight's own values r (n,), which weigh
    the metrics."""

    Y: np.ndarray
    y: np.ndarray
    w: np.ndarray | None
    r: np.ndarray | None


# Part of an epoch's rows in batch order: X (n, n_inputs) — or, when the third item `gather` (n,) is given, the
# rows X[gather[i]] — and the rest of each row in batch order.
Segment = tuple[Array, Parts, np.ndarray | None]


class Rows(Protocol):
    """Preprocessed rows: X (n, n_inputs), the loss's target Y (n, n_outputs), y (n,) (class index or value),
    for training rows with class or row weights the loss weights w (n,), and with data.weight its values r (n,)."""

    @property
    def ss_total(self) -> float:
        """Regression: the target values' sum of squared deviations (R²'s denominator), weighted by r if any."""
        ...

    @property
    def rows_in_memory(self) -> int:
        """The most rows held in memory at once while training on them."""
        ...

    def __len__(self) -> int: ...

    def segments(self, rng: np.random.Generator | None, batch: int, wide: bool) -> Iterator[Segment]:
        """One epoch's rows, every row once, in segments of whole batches (but the last); shuffled with `rng`
        (None: in order). `wide`: give X unshuffled with a `gather` order instead of a shuffled copy."""
        ...

    def chunks(self) -> Iterator[Chunk]:
        """Every row once, in order, as (X, Y, y, r) chunks (r None without data.weight); a chunk may be
        overwritten by the next."""
        ...

    def close(self) -> None:
        """Release what the rows hold outside memory; safe to call twice."""
        ...


class InMemoryRows:
    """Rows held as arrays. An epoch shuffles them into copies allocated once: one contiguous shuffled copy, so that
    batches are cheap slices; wide rows are not copied but gathered batch by batch from the `gather` order."""

    def __init__(self, X: Array, Y: Array, y: np.ndarray, w: Array | None = None,
                 r: np.ndarray | None = None) -> None:
        self.X, self.Y, self.y = X, Y, y
        self.w = w  # per-row loss weights (class and row weights), training rows only
        self.r = r  # data.weight's values (float64), which weigh the metrics
        self._copies: dict[str, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.X)

    @property
    def ss_total(self) -> float:
        return squared_deviations(self.y.astype(np.float64), self.r) if len(self) else 0.0

    @property
    def rows_in_memory(self) -> int:
        return len(self)

    def _copy(self, name: str, like: np.ndarray) -> np.ndarray:
        if name not in self._copies:
            self._copies[name] = np.empty_like(like)
        return self._copies[name]

    def segments(self, rng: np.random.Generator | None, batch: int, wide: bool) -> Iterator[Segment]:
        """The epoch as one segment: a shuffled copy of the rows (or of all but X, with the `gather` order)."""
        if rng is None:
            yield self.X, Parts(self.Y, self.y, self.w, self.r), None
            return
        order = rng.permutation(len(self))

        def shuffled(name: str, a: np.ndarray) -> np.ndarray:
            return take_rows(a, order, self._copy(name, a))

        parts = Parts(shuffled("Y", self.Y), shuffled("y", self.y), None if self.w is None else shuffled("w", self.w),
                      None if self.r is None else shuffled("r", self.r))
        if wide:
            yield self.X, parts, order
        else:
            yield shuffled("X", self.X), parts, None

    def chunks(self) -> Iterator[Chunk]:
        yield self.X, self.Y, self.y, self.r

    def close(self) -> None:
        self._copies.clear()


@dataclass(frozen=True)
class Layout:
    """What one row holds: n_inputs features and n_outputs loss targets in `dtype`, y (int64 class index or
    float64 target value), with `weights` one loss weight in `dtype`, and with `row_weights` data.weight's value
    (float64)."""

    n_inputs: int
    n_outputs: int
    dtype: np.dtype[Any]
    y_dtype: np.dtype[Any]
    weights: bool
    chunk_rows: int
    row_weights: bool = False

    def parts(self, rows: int) -> list[tuple[np.dtype[Any], tuple[int, ...]]]:
        """(dtype, shape) of X, Y, y (and w, r) for `rows` rows, in file order."""
        shapes: list[tuple[np.dtype[Any], tuple[int, ...]]] = [
            (self.dtype, (rows, self.n_inputs)), (self.dtype, (rows, self.n_outputs)), (self.y_dtype, (rows,))]
        if self.weights:
            shapes.append((self.dtype, (rows,)))
        if self.row_weights:
            shapes.append((np.dtype(np.float64), (rows,)))
        return shapes

    def named(self, buffers: list[np.ndarray]) -> Parts:
        """The Parts of [Y, y, w?, r?] in file order (the buffers but X)."""
        Y, y, *rest = buffers
        w = rest.pop(0) if self.weights else None
        return Parts(Y, y, w, rest.pop(0) if self.row_weights else None)

    @property
    def row_bytes(self) -> int:
        return sum(dtype.itemsize * math.prod(shape) for dtype, shape in self.parts(1))

    def buffers(self, rows: int) -> list[np.ndarray]:
        """Empty [X (rows, n_inputs), Y (rows, n_outputs), y (rows,), w (rows,)?, r (rows,)?]."""
        return [np.empty(shape, dtype) for dtype, shape in self.parts(rows)]


def _read_into(file: io.FileIO, array: np.ndarray, source: Path) -> None:
    view = memoryview(array.data).cast("B")
    while view:
        got = file.readinto(view)
        if not got:
            raise OutputError(f"{source}: streaming's temporary file is shorter than written; was it deleted?")
        view = view[got:]


class SpilledRows:
    """One split's preprocessed rows in a spill file. Pass 1 creates it with the row count; pass 2 writes the spill
    file and `attach`es it; epochs and scoring then read the file block by block."""

    def __init__(self, rows: int, layout: Layout, shuffle_buffer: int, ss_total: float = 0.0) -> None:
        self.rows, self.layout, self.ss_total = rows, layout, ss_total
        self.per_fill = max(1, shuffle_buffer // layout.chunk_rows)  # blocks per buffer fill
        self.rows_in_memory = min(rows, self.per_fill * layout.chunk_rows)
        self.path: Path | None = None
        self._file: io.FileIO | None = None
        self._buffers: dict[str, Any] = {}

    def __len__(self) -> int:
        return self.rows

    @property
    def blocks(self) -> int:
        return -(-self.rows // self.layout.chunk_rows)

    def attach(self, path: Path, rows: int) -> None:
        """Read from this spill file (of `rows` rows) from now on."""
        self.close()
        self.path, self.rows = path, rows
        self._file = open(path, "rb", buffering=0)  # noqa: SIM115 - closed by close()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        self._buffers.clear()

    def _read(self, block: int, into: list[np.ndarray], at: int) -> int:
        """Read block `block` into rows at.. of the buffers `into`; returns its number of rows."""
        if self._file is None or self.path is None:
            raise RuntimeError("no spill file attached")  # a bug: pass 2 has not run
        size = self.layout.chunk_rows
        rows = min(size, self.rows - block * size)
        self._file.seek(block * size * self.layout.row_bytes)
        for buffer in into:
            _read_into(self._file, buffer[at : at + rows], self.path)
        return rows

    def _buffer(self, name: str, make: Any) -> Any:
        """A buffer made once by `make()` and reused (the hot loop allocates nothing per batch)."""
        if name not in self._buffers:
            self._buffers[name] = make()
        return self._buffers[name]

    def chunks(self) -> Iterator[Chunk]:
        """The rows as (X, Y, y, r) blocks in file order; each is overwritten by the next."""
        capacity = self.layout.chunk_rows
        raw = self._buffers.get("raw")
        into = raw[1] if raw is not None else self._buffer("chunk", lambda: self.layout.buffers(capacity))
        for block in range(self.blocks):
            rows = self._read(block, into, 0)
            r = into[-1][:rows] if self.layout.row_weights else None
            yield into[0][:rows], into[1][:rows], into[2][:rows], r

    def segments(self, rng: np.random.Generator | None, batch: int, wide: bool) -> Iterator[Segment]:
        """One epoch's rows (see the module docstring): whole batches per segment, all the rest in the last."""
        capacity = self.per_fill * self.layout.chunk_rows + batch - 1  # a fill plus an unfinished batch
        raw = self._buffers.get("raw")
        if raw is None or raw[0] != capacity:
            self._buffers.clear()
            raw = self._buffers["raw"] = (capacity, self.layout.buffers(capacity))
        buffers: list[np.ndarray] = raw[1]
        order = np.arange(self.blocks) if rng is None else rng.permutation(self.blocks)
        shuffled: list[np.ndarray] = []
        index = arange = np.empty(0, np.intp)
        if rng is not None:
            # X: a shuffled copy of narrow rows; wide rows are gathered per batch (the copy holds an unfinished batch)
            shuffled = self._buffer("shuffled", lambda: [
                np.empty((batch if wide else capacity, *b.shape[1:]), b.dtype) if i == 0 else np.empty_like(b)
                for i, b in enumerate(buffers)])
            index = self._buffer("index", lambda: np.empty(capacity, np.intp))
            arange = self._buffer("arange", lambda: np.arange(capacity))
        carry = 0  # rows of an unfinished batch at the start of the buffers
        for first in range(0, self.blocks, self.per_fill):
            n = carry
            for block in order[first : first + self.per_fill]:
                n += self._read(int(block), buffers, n)
            full = n if first + self.per_fill >= self.blocks else n - n % batch
            carry = n - full
            if rng is None:
                if full:
                    yield buffers[0][:full], self.layout.named([b[:full] for b in buffers[1:]]), None
                for b in buffers:
                    b[:carry] = b[full:n]
                continue
            permutation = index[:n]
            np.copyto(permutation, arange[:n])  # from the identity each time: the draw depends on rng alone
            rng.shuffle(permutation)
            for i, (b, s) in enumerate(zip(buffers, shuffled, strict=True)):
                if not (wide and i == 0):
                    take_rows(b[:n], permutation, s[:n])
            if full:
                if wide:
                    yield buffers[0], self.layout.named([s[:full] for s in shuffled[1:]]), permutation[:full]
                else:
                    yield shuffled[0][:full], self.layout.named([s[:full] for s in shuffled[1:]]), None
            if carry:  # the unfinished batch moves to the front, to be shuffled again with the next fill
                if wide:
                    take_rows(buffers[0], permutation[full:n], shuffled[0][:carry])
                    buffers[0][:carry] = shuffled[0][:carry]
                for i, (b, s) in enumerate(zip(buffers, shuffled, strict=True)):
                    if not (wide and i == 0):
                        b[:carry] = s[full:n]
