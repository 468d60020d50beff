"""Activation functions, applied in place, with derivatives expressed through their output.

`forward(Z, scratch)` overwrites Z (n_samples, units) with A = f(Z).
`backward(A, delta, scratch)` turns delta = dL/dA into dL/dZ in place, using only A: that is why
forward may discard Z. `scratch` is a caller-owned buffer shaped like A, so the hot loop allocates nothing.
`bind_forward` and `bind_backward` return those calls bound to one batch's buffers (`engine/passes.py` calls
them for every batch). A bound backward runs after the bound forward of the same buffers, so a forward may leave
in scratch what its derivative needs: ReLU's bound forward writes its mask (A > 0 as 0 or 1) there while A is
in cache, and its bound backward is one multiply. Its bound calls compare with a zero array of A's shape, which
NumPy does in half the time of a scalar 0 (no broadcast), with the same results.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import numpy as np

from nnctl._types import Array
from nnctl.registry import Registry


class Activation:
    """Identity: A = Z, dA/dZ = 1."""

    name = "identity"
    relu_like = False  # He initialisation suits it (`init: auto`); Glorot suits the rest

    def forward(self, Z: Array, scratch: Array | None = None) -> Array:
        return Z

    def backward(self, A: Array, delta: Array, scratch: Array) -> None:
        return None

    def bind_forward(self, Z: Array, scratch: Array) -> Callable[[], Array]:
        """`forward(Z, scratch)` as a call without arguments, for a buffer Z the caller fills again and again."""
        return partial(self.forward, Z, scratch)

    def bind_backward(self, A: Array, delta: Array, scratch: Array) -> Callable[[], None]:
        """`backward(A, delta, scratch)` as a call without arguments, made after `bind_forward(A, scratch)`'s call
        on the same batch (an activation may keep in scratch what its derivative needs)."""
        return partial(self.backward, A, delta, scratch)


class ReLU(Activation):
    """A = max(Z, 0); dA/dZ = 1 where A > 0."""

    name = "relu"
    relu_like = True

    def forward(self, Z: Array, scratch: Array | None = None) -> Array:
        return np.maximum(Z, 0, out=Z)

    def backward(self, A: Array, delta: Array, scratch: Array) -> None:
        np.greater(A, 0, out=scratch)
        delta *= scratch

    def bind_forward(self, Z: Array, scratch: Array) -> Callable[[], Array]:
        # The derivative's mask (A > 0 as 0 or 1) goes into scratch here, while A is in cache: the bound backward is
        # then one multiply on a delta a GEMM has just written.
        zeros, maximum, greater = np.zeros_like(Z), np.maximum, np.greater

        def forward() -> Array:
            maximum(Z, zeros, out=Z)
            greater(Z, zeros, scratch)
            return Z

        return forward

    def bind_backward(self, A: Array, delta: Array, scratch: Array) -> Callable[[], None]:
        return partial(np.multiply, delta, scratch, delta)


class LeakyReLU(Activation):
    """A = Z where Z > 0, alpha * Z elsewhere; A keeps Z's sign, so the slope follows from A."""

    name = "leaky_relu"
    relu_like = True
    alpha = 0.01

    def forward(self, Z: Array, scratch: Array | None = None) -> Array:
        if scratch is None:
            scratch = np.empty_like(Z)
        np.multiply(Z, self.alpha, out=scratch)
        return np.maximum(Z, scratch, out=Z)

    def backward(self, A: Array, delta: Array, scratch: Array) -> None:
        np.greater(A, 0, out=scratch)
        scratch *= 1.0 - self.alpha
        scratch += self.alpha
        delta *= scratch


class Sigmoid(Activation):
    """A = 1 / (1 + exp(-Z)); dA/dZ = A (1 - A)."""

    name = "sigmoid"

    def forward(self, Z: Array, scratch: Array | None = None) -> Array:
        # exp(-Z) overflows to inf for very negative Z; 1 / inf = 0 is the right limit.
        with np.errstate(over="ignore"):
            np.negative(Z, out=Z)
            np.exp(Z, out=Z)
        Z += 1
        return np.reciprocal(Z, out=Z)

    def backward(self, A: Array, delta: Array, scratch: Array) -> None:
        np.subtract(1, A, out=scratch)
        scratch *= A
        delta *= scratch


class Tanh(Activation):
    """A = tanh(Z); dA/dZ = 1 - A^2."""

    name = "tanh"

    def forward(self, Z: Array, scratch: Array | None = None) -> Array:
        return np.tanh(Z, out=Z)

    def backward(self, A: Array, delta: Array, scratch: Array) -> None:
        np.square(A, out=scratch)
        np.subtract(1, scratch, out=scratch)
        delta *= scratch


class Softmax(Activation):
    """A_j = exp(Z_j) / sum_k exp(Z_k) per row; dL/dZ = A * (dL/dA - sum_k dL/dA_k A_k)."""

    name = "softmax"

    def forward(self, Z: Array, scratch: Array | None = None) -> Array:
        return self.bind_forward(Z, np.empty_like(Z[:, :1]) if scratch is None else scratch)()

    def backward(self, A: Array, delta: Array, scratch: Array) -> None:
        np.multiply(delta, A, out=scratch)
        delta -= np.add.reduce(scratch, axis=1, keepdims=True)
        delta *= A

    def bind_forward(self, Z: Array, scratch: Array) -> Callable[[], Array]:
        # Shifting by the row max leaves softmax unchanged and keeps exp from overflowing. The max runs down the
        # columns of a transposed copy: a max over a few contiguous entries per row costs NumPy 8 µs for 128 rows of
        # 10, a max across 10 rows of 128 one µs, and a max is exact in any order. The ufunc reductions (not Z.max)
        # skip NumPy's Python wrappers: this runs once per batch.
        column, row_max, row_sum = scratch[:, :1], np.maximum.reduce, np.add.reduce
        subtract, exp, divide, copyto = np.subtract, np.exp, np.divide, np.copyto
        Z_T, peak = np.empty(Z.shape[::-1], Z.dtype), np.empty((Z.shape[0], 1), Z.dtype)

        def forward() -> Array:
            copyto(Z_T, Z.T)
            row_max(Z_T, axis=0, out=peak[:, 0])
            subtract(Z, peak, Z)
            exp(Z, Z)
            return divide(Z, row_sum(Z, axis=1, keepdims=True, out=column), Z)

        return forward


class Exp(Activation):
    """A = exp(min(Z, limit)); dA/dZ = A. Positive outputs: the rate of a count (loss: poisson).

    Z is clipped at `limit` (30: e^30 ~ 1e13) so A stays finite in float32; the derivative ignores the clip (it is
    A there too), so a unit pushed past the limit still gets a gradient back down."""

    name = "exp"
    limit = 30.0

    def forward(self, Z: Array, scratch: Array | None = None) -> Array:
        np.minimum(Z, self.limit, out=Z)
        return np.exp(Z, out=Z)

    def backward(self, A: Array, delta: Array, scratch: Array) -> None:
        delta *= A


class Softplus(Activation):
    """A = log(1 + exp(Z)), computed as max(Z, 0) + log1p(exp(-|Z|)) so it never overflows; dA/dZ = sigmoid(Z)
    = 1 - exp(-A). Positive outputs that grow linearly, not exponentially (loss: poisson)."""

    name = "softplus"

    def forward(self, Z: Array, scratch: Array | None = None) -> Array:
        if scratch is None:
            scratch = np.empty_like(Z)
        np.abs(Z, out=scratch)
        np.negative(scratch, out=scratch)
        np.exp(scratch, out=scratch)
        np.log1p(scratch, out=scratch)
        np.maximum(Z, 0, out=Z)
        Z += scratch
        return Z

    def backward(self, A: Array, delta: Array, scratch: Array) -> None:
        # 1 - exp(-A) = -expm1(-A), exact also where A is tiny (Z very negative)
        np.negative(A, out=scratch)
        np.expm1(scratch, out=scratch)
        np.negative(scratch, out=scratch)
        delta *= scratch


ACTIVATIONS: Registry[Activation] = Registry("activation")
for _cls in (Activation, ReLU, LeakyReLU, Sigmoid, Tanh, Softmax, Exp, Softplus):
    ACTIVATIONS[_cls.name] = _cls()
