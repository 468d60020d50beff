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
from nnctl.engine import aligned
from nnctl.engine.activations import ACTIVATIONS, Activation
from nnctl.engine.initializers import INITIALIZERS
from nnctl.engine.losses import Loss
from nnctl.engine.passes import Workspace

__all__ = ["Network", "Workspace", "parameter_count", "training_bytes"]


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
        self.params: Array = aligned.zeros(n, self.dtype)
        self.grads: Array = aligned.zeros(n, self.dtype)
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

        Returns A_L (m, n_outputs). The work is the workspace's `TrainingPass` for m rows (`engine/passes.py`)."""
        return ws.training_pass(self, X.shape[0]).forward(X, rng)

    def backward(self, ws: Workspace, X: Array, Y: Array, loss: Loss, weights: Array | None = None,
                 dropout: bool = False) -> None:
        """Backpropagate the batch-mean `loss` of the last `forward_train(ws, X)` into `grads`.

        `weights` (m,) weighs each row's loss; `dropout` says whether that forward pass used dropout."""
        ws.training_pass(self, X.shape[0]).backward(X, Y, loss, weights, dropout)
