"""Recording what `nnctl doctor` reads (`training.diagnostics`): the data checks before the first epoch, and a
`Recorder` the loop feeds batch by batch.

The hot loop pays for it on at most `SAMPLES` batches an epoch (every k-th batch, k = ceil(batches / SAMPLES), the
first batch included): one `vdot` per layer for the gradient norm, and two reductions per watched hidden layer
for its units' activity, into buffers allocated once. The update/weight ratio costs one copy of the parameters
per epoch, into a buffer allocated once. So a unit counted dead was never > 0 on the sampled batches' rows: on an
epoch of at most 16 batches, that is every row.
"""

from __future__ import annotations

import math

import numpy as np

from nnctl._types import Array
from nnctl.data.rows import Rows
from nnctl.engine.network import Network, Workspace
from nnctl.model.diagnostics import DataChecks, EpochRecord
from nnctl.model.preprocessing import Preprocessor

SAMPLES = 16  # batches recorded per epoch, at most
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
    for X, _, y, _ in rows.chunks():
        if n_classes:
            classes += np.bincount(y.astype(np.int64), minlength=n_classes)[:n_classes]
        X64 = X.astype(np.float64)
        total += X64.sum(axis=0)
        squares += np.square(X64).sum(axis=0)
        np.minimum(low, X64.min(axis=0, initial=np.inf), out=low)
        np.maximum(high, X64.max(axis=0, initial=-np.inf), out=high)
        count += len(X64)
    count = max(count, 1)
    mean = total / count
    std = np.sqrt(np.maximum(squares / count - mean**2, 0.0))
    std[high == low] = 0.0  # exactly constant, whatever the rounding of the sums
    max_abs = np.maximum(np.abs(low), np.abs(high))
    constant: dict[str, float] = {}
    start = 0
    for spec in preprocessor.features:
        stop = start + spec.width
        if count > 1 and bool(np.all(high[start:stop] == low[start:stop])):
            constant[spec.name] = (float(low[start]) * spec.scale + spec.center if spec.kind == "numeric"
                                   else float("nan"))
        start = stop
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
        self.squares = np.zeros(network.n_layers)
        self.recorded = 0
        # the flat dW_i inside `grads` (weights come first, layer by layer): a vdot of one contiguous slice each
        self.flat_dW, offset = [], 0
        for W in network.W:
            self.flat_dW.append(network.grads[offset: offset + W.size])
            offset += W.size
        self.before = network.params.copy()  # the parameters when the epoch started
        self.difference = np.empty_like(network.params)
        # hidden layers whose activity is watched: their index, kind, per-unit extreme so far and one batch's
        self.watched: list[tuple[int, str, Array, Array]] = []
        for i, name in enumerate(network.activation_names[:-1]):
            if name in ("relu", "sigmoid", "tanh"):
                units = network.sizes[i + 1]
                self.watched.append((i, name, np.empty(units, network.dtype), np.empty(units, network.dtype)))

    def start_epoch(self) -> None:
        np.copyto(self.before, self.network.params)
        self.squares[:] = 0.0
        self.recorded = 0
        for _, kind, extreme, _ in self.watched:
            extreme.fill(-np.inf if kind == "relu" else np.inf)

    def wants(self, batch: int) -> bool:
        """Whether batch number `batch` (counted from 0 in the epoch) is recorded."""
        return batch % self.every == 0

    def batch(self, ws: Workspace, m: int) -> None:
        """Record the batch of `m` rows whose forward and backward pass just ran in `ws` (gradients not clipped)."""
        self.recorded += 1
        for i, dW in enumerate(self.flat_dW):
            self.squares[i] += float(np.vdot(dW, dW))
        if not self.watched:
            return
        A, _, scratch, _, _ = ws.rows(m)  # A[i + 1]: layer i's output; scratch is free after backward
        for i, kind, extreme, column in self.watched:
            if kind == "relu":  # the largest output of each unit: dead while it stays <= 0
                np.maximum.reduce(A[i + 1], axis=0, out=column)
                np.maximum(extreme, column, out=extreme)
                continue
            # the output's distance from the middle of its range; saturated while it stays above the bar
            distance = scratch[i + 1]
            if kind == "sigmoid":
                np.subtract(A[i + 1], 0.5, out=distance)
                np.abs(distance, out=distance)
            else:
                np.abs(A[i + 1], out=distance)
            np.minimum.reduce(distance, axis=0, out=column)
            np.minimum(extreme, column, out=extreme)

    def end_epoch(self, epoch: int) -> EpochRecord:
        network = self.network
        grad_norm = [math.sqrt(s / max(self.recorded, 1)) for s in self.squares]
        np.subtract(network.params, self.before, out=self.difference)
        change, _ = _layer_norms(self.difference, network)
        before, _ = _layer_norms(self.before, network)
        ratio = [c / b if b > 0 else (0.0 if c == 0 else math.inf) for c, b in zip(change, before, strict=True)]
        dead: list[float | None] = [None] * network.n_layers
        saturated: list[float | None] = [None] * network.n_layers
        for i, kind, extreme, _ in self.watched:
            if kind == "relu":
                dead[i] = float(np.mean(extreme <= 0))
            else:
                bar = SATURATED if kind == "tanh" else SATURATED - 0.5
                saturated[i] = float(np.mean(extreme > bar))
        return EpochRecord(epoch, grad_norm, ratio, dead, saturated)


def _layer_norms(flat: Array, network: Network) -> tuple[list[float], int]:
    """‖W_i‖ of each layer's weights inside a flat parameter-shaped buffer."""
    norms, offset = [], 0
    for W in network.W:
        part = flat[offset: offset + W.size]
        norms.append(math.sqrt(float(np.vdot(part, part))))
        offset += W.size
    return norms, offset
