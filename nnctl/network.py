"""A multilayer perceptron in NumPy: forward propagation and backpropagation over dense layers.

Layer i maps A_i (n_samples, sizes[i]) to A_{i+1} = act_i(A_i @ W_i + b_i) with W_i (sizes[i], sizes[i+1]).
Every W_i, b_i is a view of one flat `params` buffer and every dW_i, db_i a view of one flat `grads`
buffer, so optimizers and serialisation see a single array each.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import numpy as np

from nnctl._types import Array
from nnctl.activations import ACTIVATIONS, Activation
from nnctl.initializers import INITIALIZERS
from nnctl.losses import Loss


def _views(flat: Array, sizes: Sequence[int]) -> tuple[list[Array], list[Array]]:
    """Split a flat buffer into [W_0, ...] (fan_in, fan_out) and [b_0, ...] (fan_out,) views."""
    Ws, bs, offset = [], [], 0
    for fan_in, fan_out in pairwise(sizes):
        Ws.append(flat[offset : offset + fan_in * fan_out].reshape(fan_in, fan_out))
        offset += fan_in * fan_out
        bs.append(flat[offset : offset + fan_out])
        offset += fan_out
    return Ws, bs


def parameter_count(sizes: Sequence[int]) -> int:
    """Number of weights and biases of a network with these layer widths."""
    return sum(i * o + o for i, o in pairwise(sizes))


class Workspace:
    """Activation, delta and scratch buffers for batches of up to `batch_size` rows, allocated once."""

    def __init__(self, sizes: Sequence[int], batch_size: int, dtype: np.dtype[np.floating]) -> None:
        self.A = [np.empty((batch_size, s), dtype) for s in sizes]  # A[0] is unused: the batch itself
        self.delta = [np.empty((batch_size, s), dtype) for s in sizes]
        self.scratch = [np.empty((batch_size, s), dtype) for s in sizes]


class Network:
    """Dense layers with the given widths `sizes` = [n_features, hidden..., n_outputs] and activations."""

    def __init__(self, sizes: Sequence[int], activations: Sequence[str], dtype: str | np.dtype = "float32") -> None:
        self.sizes = [int(s) for s in sizes]
        self.activation_names = list(activations)
        self.acts: list[Activation] = [ACTIVATIONS[a] for a in activations]
        self.dtype = np.dtype(dtype)
        n = parameter_count(self.sizes)
        self.params: Array = np.zeros(n, self.dtype)
        self.grads: Array = np.zeros(n, self.dtype)
        self.W, self.b = _views(self.params, self.sizes)
        self.dW, self.db = _views(self.grads, self.sizes)

    @property
    def n_layers(self) -> int:
        return len(self.W)

    def initialise(self, inits: Sequence[str], rng: np.random.Generator) -> None:
        """Draw every W_i from its initialiser (in layer order, from `rng`); zero the biases."""
        for W, b, init in zip(self.W, self.b, inits, strict=True):
            INITIALIZERS[init](W, rng)
            b[...] = 0

    def forward(self, X: Array) -> Array:
        """Output A_L (n_samples, n_outputs) for inputs X (n_samples, n_features); allocates per call."""
        A = X
        for W, b, act in zip(self.W, self.b, self.acts, strict=True):
            Z = A @ W
            Z += b
            A = act.forward(Z)
        return A

    def forward_train(self, ws: Workspace, X: Array) -> Array:
        """Forward pass of a batch X (m, n_features) into the workspace; returns A_L (m, n_outputs)."""
        m = X.shape[0]
        A = X
        for i, (W, b, act) in enumerate(zip(self.W, self.b, self.acts, strict=True)):
            Z = np.matmul(A, W, out=ws.A[i + 1][:m])
            Z += b
            A = act.forward(Z, ws.scratch[i + 1][:m])
        return A

    def backward(self, ws: Workspace, X: Array, Y: Array, loss: Loss) -> None:
        """Backpropagate the batch-mean `loss` of the last `forward_train(ws, X)` into `grads`."""
        m, L = X.shape[0], self.n_layers
        A = [X] + [a[:m] for a in ws.A[1:]]
        delta = ws.delta[L][:m]
        loss.output_delta(A[L], Y, self.acts[L - 1], delta, ws.scratch[L][:m])
        for i in range(L - 1, -1, -1):
            np.matmul(A[i].T, delta, out=self.dW[i])
            np.sum(delta, axis=0, out=self.db[i])
            if i > 0:
                prev = np.matmul(delta, self.W[i].T, out=ws.delta[i][:m])
                self.acts[i - 1].backward(A[i], prev, ws.scratch[i][:m])
                delta = prev
