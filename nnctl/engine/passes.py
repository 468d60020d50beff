"""The training pass, forward and backward over a batch of exactly m rows, with its NumPy calls bound once.

A W1 batch (32 rows, 20 → 64 → 64 → 3) is about 40 NumPy calls of 0.3 to 3 µs each. Looking up, for every call,
the workspace's views, the layer's weights, the activation's method and the loss's scale cost 11 µs a batch,
which is a sixth of the whole step (measured in-process against the NumPy floor of `make bench`). A
`TrainingPass` does those lookups once per batch size. It then makes the same calls, in the same order, on
the same buffers, so its results are bit for bit those of the plain loop. The workspace keeps one pass per
batch size it has seen: the full batches share one, and a short last batch gets its own.

The order of the calls is chosen for the cache. A W2 GEMM (128 x 784 x 256) evicts what NumPy's next call
needs, and OpenBLAS's second thread writes half of its output in the other core's cache: the first elementwise
call after it costs 7 to 25 µs more than the same call on data in cache. So the work on a delta happens while the
call that wrote it is still in cache: each bias gradient is taken as soon as its delta is final, before the
GEMMs that read the delta (not after them), and ReLU's mask is made in the forward pass, from A in cache, not
from A after the backward GEMMs (`engine/activations.py`). Measured in-process, interleaved epochs against the
previous order (medians of 8): W2 1,542 µs a batch before, 1,503 after; W1 59.2 µs before, 58.4 after; the same
bits.

Each product goes through `np.dot` or `np.matmul` by the size of its output (`product`). Both call the same
sgemm on these buffers, so the bits are the same, but `np.dot` first zero-fills its output (NumPy's
`cblas_matrixproduct` memsets it before the BLAS call), a wasted pass that costs more than matmul's slower
dispatch once the output reaches 32 KB: W2's 784 x 256 weight gradient took 224 µs through `np.dot` and 183 µs
through `np.matmul`. A hand-unrolled W2 loop got 7% faster and nnctl's W2 epoch 5% (in processes of their own,
interleaved, medians of 8 and 6 rounds).
W1's outputs are at most 16 KB, so all its products stay with `np.dot`.

The hot calls here and in the bound activations, losses and Adam's update pass their output positionally
(`add(Z, b, Z)`, not `out=Z`): NumPy parses a keyword argument for 30-80 ns a call, and a W1 batch makes about 40
calls. In-process A/B, interleaved epochs: W1 1.3-2.6% faster (medians of 16 and 20 rounds). `np.maximum` keeps
the keyword, which it requires.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

import numpy as np

from nnctl._types import Array
from nnctl.engine import aligned
from nnctl.engine.activations import Activation

if TYPE_CHECKING:
    from nnctl.engine.losses import Loss


class Network(Protocol):
    """What a pass reads of `nnctl.engine.network.Network` (which builds its passes through a `Workspace`)."""

    W: list[Array]
    b: list[Array]
    dW: list[Array]  # noqa: N815 (the math's name)
    db: list[Array]
    acts: list[Activation]
    dropout: list[float]
    dtype: np.dtype[np.floating]

    @property
    def n_layers(self) -> int: ...

dot, matmul, add, less, multiply = np.dot, np.matmul, np.add, np.less, np.multiply
MATMUL_FROM = 32 * 1024  # bytes of output from which a product goes through np.matmul (see the module docstring)

# A product of two matrices into a buffer: product(A, B, C) computes C = A @ B
Product = Callable[..., Array]


def product(out: Array) -> Product:
    """The BLAS entry for a product into `out`: np.dot for small outputs (0.3-0.5 µs less dispatch), np.matmul from
    `MATMUL_FROM` bytes (np.dot zero-fills its output before the sgemm). The same sgemm, the same bits."""
    return matmul if out.nbytes >= MATMUL_FROM else dot


class Workspace:
    """Activation, delta, scratch and dropout buffers for batches of up to `batch_size` rows, allocated once."""

    def __init__(self, sizes: Sequence[int], batch_size: int, dtype: np.dtype[np.floating],
                 dropout: Sequence[float] = ()) -> None:
        self.A = [aligned.empty((batch_size, s), dtype) for s in sizes]  # A[0] is unused: the batch itself
        self.delta = [aligned.empty((batch_size, s), dtype) for s in sizes]
        self.scratch = [aligned.empty((batch_size, s), dtype) for s in sizes]
        # mask[i + 1] and dropped[i + 1] belong to layer i's output, when it has dropout
        rates = list(dropout) + [0.0] * (len(sizes) - 1 - len(dropout))

        def buffers() -> list[Array | None]:
            return [None] + [aligned.empty((batch_size, s), dtype) if r > 0 else None
                             for s, r in zip(sizes[1:], rates, strict=True)]

        self.mask, self.dropped = buffers(), buffers()
        self.views: dict[int, tuple[list[Array], list[Array], list[Array], list[Array | None], list[Array | None]]] = {}
        self.passes: dict[int, TrainingPass] = {}

    def rows(self, m: int) -> tuple[list[Array], list[Array], list[Array], list[Array | None], list[Array | None]]:
        """The first m rows of every buffer (A, delta, scratch, mask, dropped), made once per batch size."""
        views = self.views.get(m)
        if views is None:
            views = ([a[:m] for a in self.A], [d[:m] for d in self.delta], [s[:m] for s in self.scratch],
                     [None if k is None else k[:m] for k in self.mask],
                     [None if k is None else k[:m] for k in self.dropped])
            self.views[m] = views
        return views

    def training_pass(self, network: Network, m: int) -> TrainingPass:
        """The pass of `network` over batches of m rows in this workspace, bound on first use."""
        found = self.passes.get(m)
        if found is None or found.network is not network:
            found = self.passes[m] = TrainingPass(network, self, m)
        return found


# A hidden or output layer's forward: W, b, Z (its output buffer), the activation bound to Z (returns A) and the
# product into Z.
_Forward = tuple[Array, Array, Array, Callable[[], Array], Product]
# Dropout after a layer's activation: its mask buffer M, the dropped output, the keep probability and 1 / keep (0-d
# arrays of the dtype, which NumPy need not convert in every call as it does a Python float: `engine/optimizers.py`).
_Dropout = tuple[Array, Array, Array, Array]
# Backward through layer i > 0: A_i.T (what it received), delta_{i+1}, dW_i and the product into it, W_i.T,
# delta_i and the product into it, the dropout mask on delta_i (or None), the previous activation's derivative
# bound to delta_i, and db_{i-1} (from delta_i).
_Backward = tuple[Array, Array, Array, Product, Array, Array, Product, Array | None, Callable[[], None], Array]


class TrainingPass:
    """`forward` and `backward` of `network` for batches of m rows, in the buffers of workspace `ws`."""

    def __init__(self, network: Network, ws: Workspace, m: int) -> None:
        A, deltas, scratch, masks, dropped = ws.rows(m)
        L = network.n_layers
        self.network, self.m = network, m
        self.A_L, self.delta_L, self.scratch_L = A[L], deltas[L], scratch[L]
        self.layers: list[_Forward] = [(W, b, A[i + 1], act.bind_forward(A[i + 1], scratch[i + 1]), product(A[i + 1]))
                                       for i, (W, b, act) in enumerate(zip(network.W, network.b, network.acts,
                                                                           strict=True))]
        self.dropout: list[_Dropout | None] = []
        for i, rate in enumerate(network.dropout):
            M, out = masks[i + 1], dropped[i + 1]
            if M is None or out is None:
                self.dropout.append(None)
            else:
                keep = 1.0 - rate
                self.dropout.append((M, out, np.array(keep, network.dtype), np.array(1.0 / keep, network.dtype)))
        # layers L-1 ... 1, without and with dropout: layer i received A_i, or A_i after dropout when the forward
        # pass used it; layer 0 received the batch, which is new each time
        self.steps: dict[bool, list[_Backward]] = {}
        for with_dropout in (False, True):
            steps: list[_Backward] = []
            for i in range(L - 1, 0, -1):
                M, out = (masks[i], dropped[i]) if with_dropout else (None, None)
                received = out if M is not None and out is not None else A[i]
                dW, prev = network.dW[i], deltas[i]
                steps.append((received.T, deltas[i + 1], dW, product(dW), network.W[i].T, prev, product(prev), M,
                              network.acts[i - 1].bind_backward(A[i], prev, scratch[i]), network.db[i - 1][None, :]))
            self.steps[with_dropout] = steps
        self.db_L = network.db[L - 1][None, :]
        self.first = (deltas[1], network.dW[0], product(network.dW[0]))
        self.ones = np.ones((1, m), network.dtype)
        self._loss: Loss | None = None
        self._output_delta: Callable[[Array, Array | None], None] | None = None

    def forward(self, X: Array, rng: np.random.Generator | None = None) -> Array:
        """Forward pass of a batch X (m, n_features), with dropout when `rng` is given. Returns A_L (m, n_outputs)."""
        if rng is not None:
            return self._forward_dropout(X, rng)
        inputs = X
        for W, b, Z, activate, into_Z in self.layers:
            into_Z(inputs, W, Z)
            add(Z, b, Z)
            inputs = activate()
        return inputs

    def _forward_dropout(self, X: Array, rng: np.random.Generator) -> Array:
        inputs = X
        for (W, b, Z, activate, into_Z), dropout in zip(self.layers, self.dropout, strict=True):
            into_Z(inputs, W, Z)
            add(Z, b, Z)
            inputs = activate()
            if dropout is not None:  # inverted dropout: keep each unit with probability `keep`, scaled by 1 / keep
                M, dropped, keep, scale = dropout
                rng.random(out=M, dtype=M.dtype.type)
                less(M, keep, M)
                multiply(M, scale, M)
                inputs = multiply(inputs, M, dropped)
        return inputs

    def backward(self, X: Array, Y: Array, loss: Loss, weights: Array | None = None, dropout: bool = False) -> None:
        """Backpropagate the batch-mean `loss` of the last `forward(X)` into the network's `grads`; `dropout` says
        whether that forward pass used dropout."""
        if loss is not self._loss:
            act = self.network.acts[-1]
            self._output_delta = loss.bind_output_delta(self.A_L, act, self.delta_L, self.scratch_L)
            self._loss = loss
        self._output_delta(Y, weights)  # type: ignore[misc]
        ones = self.ones
        dot(ones, self.delta_L, self.db_L)
        for received_T, delta, dW, into_dW, W_T, prev, into_prev, M, derivative, db in self.steps[dropout]:
            into_dW(received_T, delta, dW)
            into_prev(delta, W_T, prev)
            if M is not None:
                multiply(prev, M, prev)
            derivative()
            dot(ones, prev, db)
        delta, dW, into_dW = self.first
        into_dW(X.T, delta, dW)
