"""One row through a network, every intermediate kept, in float64: what `nnctl explain` shows.

Forward: Z_i = A_i W_i + b_i (1, sizes[i+1]) and A_{i+1} = f_i(Z_i), with the output layer's Z divided by the
model's temperature T when it is calibrated (`Network.forward(X, T)`). Backward, for the row's target Y: the
loss, delta_i = dL/dZ_i and dW_i = A_i^T delta_i, db_i = delta_i for that one row's loss. The gradients are those
of the *training* loss, which is uncalibrated (T = 1): what a training step on this row would do. They come
from the engine's own `Network.forward_train` and `Network.backward` on a float64 copy of the weights, so the
trace shows exactly the arithmetic training runs, without its float32 rounding.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nnctl._types import Array
from nnctl.engine.losses import Loss
from nnctl.engine.network import Network


@dataclass
class Backward:
    """The row's loss and, per layer i (first to last), delta_i (sizes[i+1],), dW_i (sizes[i], sizes[i+1]) and
    db_i (sizes[i+1],): the gradients of the uncalibrated training loss."""

    loss: float
    Y: Array  # (n_outputs,) the loss's target for the row
    delta: list[Array]
    dW: list[Array]  # noqa: N815 - the docs' name
    db: list[Array]


@dataclass
class Trace:
    """One row's forward pass: x (n_inputs,), per layer i Z_i and A_{i+1} (sizes[i+1],), the output (n_outputs,)
    with the temperature applied, and the backward pass when the row has a target."""

    x: Array
    Z: list[Array]  # the output layer's Z is divided by the temperature, as `predict` computes it
    A: list[Array]  # A[i] is layer i's output, f_i(Z[i]); A[-1] is the output
    W: list[Array]  # the float64 weights, (sizes[i], sizes[i+1]) per layer
    temperature: float | None
    backward: Backward | None

    @property
    def output(self) -> Array:
        return self.A[-1]

    def inputs(self, i: int) -> Array:
        """What layer i reads: x for the first layer, the previous layer's output after it."""
        return self.x if i == 0 else self.A[i - 1]

    def contributions(self, i: int) -> Array:
        """The terms of layer i's weighted sums, (sizes[i], sizes[i+1]): entry [k, j] is x_k W_i[k, j], so column j
        plus b_i[j] is Z_i[j] (before the temperature)."""
        return self.inputs(i)[:, None] * self.W[i]


def float64_copy(network: Network) -> Network:
    """The same network with its weights in float64 (no dropout: a trace is of one deterministic pass)."""
    copy = Network(network.sizes, network.activation_names, "float64")
    copy.params[...] = network.params
    return copy


def forward(network: Network, x: Array, temperature: float | None = None) -> tuple[list[Array], list[Array]]:
    """Z_i and A_{i+1} (sizes[i+1],) per layer for one row x (n_inputs,) in the network's dtype; the output
    layer's Z divided by `temperature`, as `Network.forward` does it."""
    A = x.reshape(1, -1)
    Zs, As = [], []
    last = network.n_layers - 1
    for i, (W, b, act) in enumerate(zip(network.W, network.b, network.acts, strict=True)):
        Z = A @ W + b
        if i == last and temperature is not None:
            Z /= Z.dtype.type(temperature)
        Zs.append(Z[0].copy())
        A = act.forward(Z)  # overwrites Z: that is why Z was copied first
        As.append(A[0].copy())
    return Zs, As


def backward(network: Network, x: Array, Y: Array, loss: Loss) -> Backward:
    """The uncalibrated loss of one row x (n_inputs,) with target Y (n_outputs,), and its gradients, by the
    engine's backpropagation (`Network.backward`) on a one-row workspace."""
    ws = network.workspace(1)
    X, Yrow = x.reshape(1, -1), Y.reshape(1, -1).astype(network.dtype)
    A_L = network.forward_train(ws, X)
    value = loss.value(A_L, Yrow, np.empty_like(A_L))
    network.backward(ws, X, Yrow, loss)
    deltas = ws.rows(1)[1]
    return Backward(value, Yrow[0].copy(), [deltas[i + 1][0].copy() for i in range(network.n_layers)],
                    [dW.copy() for dW in network.dW], [db.copy() for db in network.db])


def trace(network: Network, x: Array, loss: Loss, Y: Array | None = None,
          temperature: float | None = None) -> Trace:
    """The trace of one preprocessed row x (n_inputs,) in float64; with its target Y (n_outputs,), the loss and
    the gradients too (of the uncalibrated loss, as training computes them)."""
    net = float64_copy(network)
    x64 = np.asarray(x, np.float64).reshape(-1)
    Zs, As = forward(net, x64, temperature)
    grads = None if Y is None else backward(net, x64, np.asarray(Y), loss)
    return Trace(x64, Zs, As, [W.copy() for W in net.W], temperature, grads)
