"""The training pass, forward and backward over a batch of exactly m rows, with its NumPy calls bound once.

A W1 batch (32 rows, 20 → 64 → 64 → 3) is about 40 NumPy calls of 0.3–3 µs each. Looking up, for every call,
the workspace's views, the layer's weights, the activation's method and the loss's scale cost 11 µs a batch,
which is a sixth of the whole step (measured in-process against the NumPy floor of `make bench`). A
`TrainingPass` does those lookups once per batch size. It then makes the same calls, in the same order, on
the same buffers, so its results are bit for bit those of the plain loop. The workspace keeps one pass per
batch size it has seen: the full batches share one, and a short last batch gets its own.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from nnctl._types import Array

if TYPE_CHECKING:
    from nnctl.engine.losses import Loss
    from nnctl.engine.network import Network

matmul, add, reduce_add, less, multiply = np.matmul, np.add, np.add.reduce, np.less, np.multiply


class Workspace:
    """Activation, delta, scratch and dropout buffers for batches of up to `batch_size` rows, allocated once."""

    def __init__(self, sizes: Sequence[int], batch_size: int, dtype: np.dtype[np.floating],
                 dropout: Sequence[float] = ()) -> None:
        self.A = [np.empty((batch_size, s), dtype) for s in sizes]  # A[0] is unused: the batch itself
        self.delta = [np.empty((batch_size, s), dtype) for s in sizes]
        self.scratch = [np.empty((batch_size, s), dtype) for s in sizes]
        # mask[i + 1] and dropped[i + 1] belong to layer i's output, when it has dropout
        rates = list(dropout) + [0.0] * (len(sizes) - 1 - len(dropout))

        def buffers() -> list[Array | None]:
            return [None] + [np.empty((batch_size, s), dtype) if r > 0 else None
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


# One layer's forward: W, b, Z (its output buffer), the bound activation (returns A), and for dropout the mask
# buffer M, the dropped output buffer, the keep probability and 1 / keep (M None: no dropout).
_Forward = tuple[Array, Array, Array, Callable[[], Array], Array | None, Array | None, float, float]
# One layer's backward: received.T (None: the batch X), delta, dW, db, and for all but the first layer W.T, the
# previous delta, the dropout mask applied to it and the previous activation's bound derivative.
_Backward = tuple[Array | None, Array, Array, Array, Array | None, Array | None, Array | None,
                  Callable[[], None] | None]


class TrainingPass:
    """`forward` and `backward` of `network` for batches of m rows, in the buffers of workspace `ws`."""

    def __init__(self, network: Network, ws: Workspace, m: int) -> None:
        A, deltas, scratch, masks, dropped = ws.rows(m)
        L = network.n_layers
        self.network, self.m = network, m
        self.A_L, self.delta_L, self.scratch_L = A[L], deltas[L], scratch[L]
        self.layers: list[_Forward] = []
        for i, (W, b, act) in enumerate(zip(network.W, network.b, network.acts, strict=True)):
            keep = 1.0 - network.dropout[i]
            self.layers.append((W, b, A[i + 1], act.bind_forward(A[i + 1], scratch[i + 1]), masks[i + 1],
                                dropped[i + 1], keep, 1.0 / keep if keep > 0 else 0.0))
        # the backward steps with and without dropout: layer i received the batch, or the previous output (after
        # dropout, when the forward pass used it)
        self.steps: dict[bool, list[_Backward]] = {}
        for dropout in (False, True):
            steps: list[_Backward] = []
            for i in range(L - 1, -1, -1):
                received = None if i == 0 else (dropped[i] if dropout and dropped[i] is not None else A[i])
                step: _Backward = (None if received is None else received.T, deltas[i + 1], network.dW[i],
                                   network.db[i], None, None, None, None)
                if i > 0:
                    step = (*step[:4], network.W[i].T, deltas[i], masks[i] if dropout else None,
                            network.acts[i - 1].bind_backward(A[i], deltas[i], scratch[i]))
                steps.append(step)
            self.steps[dropout] = steps
        self._loss: Loss | None = None
        self._output_delta: Callable[[Array, Array | None], None] | None = None

    def forward(self, X: Array, rng: np.random.Generator | None = None) -> Array:
        """Forward pass of a batch X (m, n_features), with dropout when `rng` is given. Returns A_L (m, n_outputs)."""
        inputs = X
        for W, b, Z, activate, M, dropped, keep, scale in self.layers:
            matmul(inputs, W, out=Z)
            add(Z, b, out=Z)
            inputs = activate()
            if M is not None and rng is not None:
                rng.random(out=M, dtype=M.dtype.type)
                less(M, keep, out=M)
                M *= scale
                inputs = multiply(inputs, M, out=dropped)
        return inputs

    def backward(self, X: Array, Y: Array, loss: Loss, weights: Array | None = None, dropout: bool = False) -> None:
        """Backpropagate the batch-mean `loss` of the last `forward(X)` into the network's `grads`."""
        if loss is not self._loss:
            act = self.network.acts[-1]
            self._output_delta = loss.bind_output_delta(self.A_L, act, self.delta_L, self.scratch_L)
            self._loss = loss
        self._output_delta(Y, weights)  # type: ignore[misc]
        for received_T, delta, dW, db, W_T, prev, M, derivative in self.steps[dropout]:
            matmul(X.T if received_T is None else received_T, delta, out=dW)
            reduce_add(delta, axis=0, out=db)
            if W_T is not None:
                matmul(delta, W_T, out=prev)
                if M is not None:
                    multiply(prev, M, out=prev)
                derivative()  # type: ignore[misc]
