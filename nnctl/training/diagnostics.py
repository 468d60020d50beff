"""Recording what `nnctl doctor` reads (`training.diagnostics`): the data checks before the first epoch, and a
`Recorder` the loop feeds batch by batch.

The hot loop pays for it on at most `SAMPLES` batches an epoch (every k-th batch, k = ceil(batches / SAMPLES), the
first batch included): one `vdot` per layer for the gradient norm, and two reductions per watched hidden layer
for its units' activity, into buffers allocated once. The update/weight ratio costs one copy of the parameters
per epoch, into a buffer allocated once. So a unit counted dead was never > 0 on the sampled batches' rows: on an
epoch of at most 4 batches, that is every row; on a longer one, at least a quarter of them.
"""

from __future__ import annotations

import math

import numpy as np

from nnctl._types import Array
from nnctl.data.rows import Rows
from nnctl.engine.network import Network, Workspace
from nnctl.model.diagnostics import DataChecks, EpochRecord
from nnctl.model.preprocessing import Preprocessor

SAMPLES = 4  # batches recorded per epoch, at most
CHECK_ROWS = 4096  # rows per block of the data checks
SATURATED = 0.99  # tanh: |a| above this; sigmoid: a below 1 - this or above this (|a - 0.5| > this - 0.5)


def data_checks(rows: Rows, preprocessor: Preprocessor, n_classes: int) -> DataChecks:
    """Per input (after preprocessing) the standard deviation and the largest |x| over the training rows, the
    raw features constant on them and, with `n_classes` > 0, the most frequent class's share (one pass over the
    rows' chunks, in float64)."""
    n = preprocessor.n_inputs
    total, squares = np.zeros(n), np.zeros(n)
    low, high = np.full(n, np.inf), np.full(n, -np.inf)
    count = 0
    classes = np.zeros(n_classes)
    buffer: Array | None = None
    for X, _, y, _ in rows.chunks():
        if n_classes:
            classes += np.bincount(y.astype(np.int64), minlength=n_classes)[:n_classes]
        # in blocks of rows, in the rows' own dtype (min and max are exact in it; the sums accumulate in float64):
        # a float64 copy of 60,000 x 784 inputs cost 2 s before the first epoch
        for start in range(0, len(X), CHECK_ROWS):
            block = X[start : start + CHECK_ROWS]
            if buffer is None or buffer.shape[0] < len(block) or buffer.dtype != block.dtype:
                buffer = np.empty((min(CHECK_ROWS, len(X)), n), block.dtype)
            with np.errstate(over="ignore"):  # an input past sqrt(float max): its std is inf, which is the finding
                squared = np.square(block, out=buffer[: len(block)])
            total += np.add.reduce(block, axis=0, dtype=np.float64)
            squares += np.add.reduce(squared, axis=0, dtype=np.float64)
            np.minimum(low, np.minimum.reduce(block, axis=0, initial=np.inf), out=low)
            np.maximum(high, np.maximum.reduce(block, axis=0, initial=-np.inf), out=high)
        count += len(X)
    count = max(count, 1)
    mean = total / count
    std = np.sqrt(np.maximum(squares / count - mean**2, 0.0))
    std[high == low] = 0.0  # exactly constant, whatever the rounding of the sums
    max_abs = np.maximum(np.abs(low), np.abs(high))
    constant: dict[str, float] = {}
    features = preprocessor.features
    widths = np.fromiter((spec.width for spec in features), np.intp, len(features))
    starts = np.cumsum(widths) - widths
    flat = np.ones(len(features), dtype=bool)  # every input of the feature constant (an empty block: vacuously)
    wide = widths > 0
    if count > 1 and wide.any():  # one reduction for every feature: wide data has 100,000 of them
        flat[wide] = np.logical_and.reduceat(high == low, starts[wide])
    for i in np.flatnonzero(flat).tolist() if count > 1 else []:
        spec, start = features[i], int(starts[i])
        constant[spec.name] = (float(low[start]) * spec.scale + spec.center if spec.kind == "numeric"
                               else float("nan"))
    finite = np.isfinite(max_abs)
    return DataChecks(preprocessor.input_names, [float(v) for v in std],
                      [float(v) if f else 0.0 for v, f in zip(max_abs, finite, strict=True)], constant,
                      float(classes.max() / count) if n_classes else None)


class Recorder:
    """Per epoch and layer: gradient norms, update/weight ratios, dead and saturated units (see the module)."""

    def __init__(self, network: Network, batches: int) -> None:
        """`batches`: how many batches an epoch has."""
        self.network = network
        self.every = max(1, math.ceil(batches / SAMPLES))
        self.squares = [0.0] * network.n_layers  # Σ ‖dW_i‖² over the recorded batches
        self.recorded = 0
        # the flat dW_i inside `grads` (weights come first, layer by layer): a vdot of one contiguous slice each
        self.flat_dW, offset = [], 0
        for W in network.W:
            self.flat_dW.append(network.grads[offset: offset + W.size])
            offset += W.size
        self.offsets = np.cumsum([0] + [W.size for W in network.W[:-1]])  # where each W_i starts in `params`
        self.before = network.params.copy()  # the parameters when the epoch started
        self.difference = np.empty_like(network.params)
        # hidden layers whose activity is watched: their index, kind, and per recorded batch a row of each unit's
        # extreme output (ReLU: the largest; sigmoid, tanh: the smallest distance from the middle of the range)
        self.watched: list[tuple[int, str, Array]] = []
        for i, name in enumerate(network.activation_names[:-1]):
            if name in ("relu", "sigmoid", "tanh"):
                self.watched.append((i, name, np.empty((SAMPLES, network.sizes[i + 1]), network.dtype)))

    def start_epoch(self) -> None:
        np.copyto(self.before, self.network.params)
        self.squares = [0.0] * len(self.squares)
        self.recorded = 0

    def batch(self, ws: Workspace, m: int) -> None:
        """Record the batch of `m` rows whose forward and backward pass just ran in `ws` (gradients not clipped)."""
        k = self.recorded
        if k >= SAMPLES:  # never, while an epoch has the batches the constructor was told
            return
        self.recorded += 1
        squares = self.squares
        for i, dW in enumerate(self.flat_dW):
            squares[i] += float(np.vdot(dW, dW))
        if not self.watched:
            return
        A, _, scratch, _, _ = ws.rows(m)  # A[i + 1]: layer i's output; scratch is free after backward
        for i, kind, extremes in self.watched:
            if kind == "relu":  # dead while the largest output stays <= 0
                np.maximum.reduce(A[i + 1], axis=0, out=extremes[k])
                continue
            # the output's distance from the middle of its range; saturated while it stays above the bar
            distance = scratch[i + 1]
            if kind == "sigmoid":
                np.subtract(A[i + 1], 0.5, out=distance)
                np.abs(distance, out=distance)
            else:
                np.abs(A[i + 1], out=distance)
            np.minimum.reduce(distance, axis=0, out=extremes[k])

    def end_epoch(self, epoch: int) -> EpochRecord:
        network = self.network
        recorded = max(self.recorded, 1)
        grad_norm = [math.sqrt(s / recorded) for s in self.squares]
        # ‖ΔW_i‖² and ‖W_i‖² per layer: squares summed over each layer's slice of the weights (`before` is scratch
        # until the next epoch starts)
        weights = slice(0, network.n_weights)
        np.subtract(network.params, self.before, out=self.difference)
        np.square(self.difference, out=self.difference)
        np.square(self.before, out=self.before)
        change = np.add.reduceat(self.difference[weights], self.offsets, dtype=np.float64).tolist()
        before = np.add.reduceat(self.before[weights], self.offsets, dtype=np.float64).tolist()
        ratio = [math.sqrt(c / b) if b > 0 else (0.0 if c == 0 else math.inf) for c, b in zip(change, before,
                                                                                              strict=True)]
        dead: list[float | None] = [None] * network.n_layers
        saturated: list[float | None] = [None] * network.n_layers
        rows = slice(0, self.recorded)
        for i, kind, extremes in self.watched:
            units = extremes.shape[1]
            if not self.recorded:
                continue
            if kind == "relu":
                dead[i] = int(np.count_nonzero(np.maximum.reduce(extremes[rows], axis=0) <= 0)) / units
            else:
                bar = SATURATED if kind == "tanh" else SATURATED - 0.5
                saturated[i] = int(np.count_nonzero(np.minimum.reduce(extremes[rows], axis=0) > bar)) / units
        return EpochRecord(epoch, grad_norm, ratio, dead, saturated)

