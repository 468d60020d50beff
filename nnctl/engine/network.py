"""A multilayer perceptron in NumPy: forward propagation and backpropagation over dense layers.

Layer i maps A_i (n_samples, sizes[i]) to A_{i+1} = act_i(A_i @ W_i + b_i) with W_i (sizes[i], sizes[i+1]).
Every W_i, b_i is a view of one flat `params` buffer (all weights first, then all biases, so weight decay is
one slice) and every dW_i, db_i a view of one flat `grads` buffer: optimizers and serialisation see a
single array each.

Dropout (inverted) after layer i's activation multiplies its output by a mask M_i of 0 and 1/keep during
training only, so the expected activation is unchanged and inference needs no rescaling.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import numpy as np

from nnctl._types import Array
from nnctl.engine.activations import ACTIVATIONS, Activation
from nnctl.engine.initializers import INITIALIZERS
from nnctl.engine.losses import Loss


def _views(flat: Array, sizes: Sequence[int]) -> tuple[list[Array], list[Array]]:
    """Split a flat buffer into [W_0, ...] (fan_in, fan_out) views, then [b_0, ...] (fan_out,) views."""
    Ws, bs, offset = [], [], 0
    for fan_in, fan_out in pairwise(sizes):
        Ws.append(flat[offset : offset + fan_in * fan_out].reshape(fan_in, fan_out))
        offset += fan_in * fan_out
    for fan_out in sizes[1:]:
        bs.append(flat[offset : offset + fan_out])
        offset += fan_out
    return Ws, bs


def parameter_count(sizes: Sequence[int]) -> int:
    """Number of weights and biases of a network with these layer widths."""
    return sum(i * o + o for i, o in pairwise(sizes))


def training_bytes(sizes: Sequence[int], itemsize: int, batch_size: int, rows: int) -> int:
    """Memory a training run needs, roughly: params, grads and up to 4 optimizer/scratch copies of them;
    5 per-layer batch buffers (A, delta, scratch, dropout mask and output); the shuffled copy of the rows."""
    return itemsize * (6 * parameter_count(sizes) + 5 * batch_size * sum(sizes) + 2 * rows * (sizes[0] + sizes[-1]))


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

    def rows(self, m: int) -> tuple[list[Array], list[Array], list[Array], list[Array | None], list[Array | None]]:
        """The first m rows of every buffer (A, delta, scratch, mask, dropped), made once per batch size:
        slicing a dozen views per batch costs more than the small layers' arithmetic."""
        views = self.views.get(m)
        if views is None:
            views = ([a[:m] for a in self.A], [d[:m] for d in self.delta], [s[:m] for s in self.scratch],
                     [None if k is None else k[:m] for k in self.mask],
                     [None if k is None else k[:m] for k in self.dropped])
            self.views[m] = views
        return views


class Network:
    """Dense layers with the given widths `sizes` = [n_features, hidden..., n_outputs] and activations."""

    def __init__(self, sizes: Sequence[int], activations: Sequence[str], dtype: str | np.dtype = "float32",
                 dropout: Sequence[float] | None = None) -> None:
        self.sizes = [int(s) for s in sizes]
        self.activation_names = list(activations)
        self.acts: list[Activation] = [ACTIVATIONS[a] for a in activations]
        self.dropout = [float(r) for r in dropout] if dropout else [0.0] * len(self.acts)
        self.dtype = np.dtype(dtype)
        n = parameter_count(self.sizes)
        self.params: Array = np.zeros(n, self.dtype)
        self.grads: Array = np.zeros(n, self.dtype)
        self.W, self.b = _views(self.params, self.sizes)
        self.dW, self.db = _views(self.grads, self.sizes)

    @property
    def n_layers(self) -> int:
        return len(self.W)

    @property
    def n_weights(self) -> int:
        """The weights come first in `params`: `params[:n_weights]` are all W_i, the rest are biases."""
        return sum(W.size for W in self.W)

    def workspace(self, batch_size: int) -> Workspace:
        return Workspace(self.sizes, batch_size, self.dtype, self.dropout)

    def initialise(self, inits: Sequence[str], rng: np.random.Generator) -> None:
        """Draw every W_i from its initialiser (in layer order, from `rng`); zero the biases."""
        for W, b, init in zip(self.W, self.b, inits, strict=True):
            INITIALIZERS[init](W, rng)
            b[...] = 0

    def forward(self, X: Array, temperature: float | None = None) -> Array:
        """Output A_L (n_samples, n_outputs) for inputs X (n_samples, n_features); no dropout; allocates.

        With a `temperature` T, the output layer's Z is divided by T (in place) before its activation."""
        A = X
        last = self.n_layers - 1
        for i, (W, b, act) in enumerate(zip(self.W, self.b, self.acts, strict=True)):
            Z = A @ W
            Z += b
            if i == last and temperature is not None:
                Z /= Z.dtype.type(temperature)
            A = act.forward(Z)
        return A

    def logits(self, X: Array) -> Array:
        """The output layer's pre-activation Z_L (n_samples, n_outputs) for inputs X; no dropout; allocates."""
        A = X
        for i, (W, b, act) in enumerate(zip(self.W, self.b, self.acts, strict=True)):
            Z = A @ W
            Z += b
            if i == self.n_layers - 1:
                return Z
            A = act.forward(Z)
        return A

    def forward_train(self, ws: Workspace, X: Array, rng: np.random.Generator | None = None) -> Array:
        """Forward pass of a batch X (m, n_features) into the workspace, with dropout when `rng` is given.

        Returns A_L (m, n_outputs)."""
        A, _, scratch, masks, dropped = ws.rows(X.shape[0])
        inputs = X
        for i, (W, b, act) in enumerate(zip(self.W, self.b, self.acts, strict=True)):
            Z = np.matmul(inputs, W, out=A[i + 1])
            Z += b
            inputs = act.forward(Z, scratch[i + 1])
            M = masks[i + 1]
            if M is not None and rng is not None:
                keep = 1.0 - self.dropout[i]
                rng.random(out=M, dtype=M.dtype.type)
                np.less(M, keep, out=M)
                M *= 1.0 / keep
                inputs = np.multiply(inputs, M, out=dropped[i + 1])
        return inputs

    def backward(self, ws: Workspace, X: Array, Y: Array, loss: Loss, weights: Array | None = None,
                 dropout: bool = False) -> None:
        """Backpropagate the batch-mean `loss` of the last `forward_train(ws, X)` into `grads`.

        `weights` (m,) weighs each row's loss; `dropout` says whether that forward pass used dropout."""
        L = self.n_layers
        A, deltas, scratch, masks, dropped = ws.rows(X.shape[0])
        delta = deltas[L]
        loss.output_delta(A[L], Y, self.acts[L - 1], delta, scratch[L], weights)
        for i in range(L - 1, -1, -1):
            # what layer i actually received: the batch, or the previous output after dropout
            received = X if i == 0 else (dropped[i] if dropout and dropped[i] is not None else A[i])
            np.matmul(received.T, delta, out=self.dW[i])  # type: ignore[union-attr]
            np.add.reduce(delta, axis=0, out=self.db[i])
            if i > 0:
                prev = np.matmul(delta, self.W[i].T, out=deltas[i])
                if dropout and masks[i] is not None:
                    prev *= masks[i]
                self.acts[i - 1].backward(A[i], prev, scratch[i])
                delta = prev
