"""Loss functions: a batch-mean value, its gradient dL/dA, and the output delta dL/dZ.

Y is (n_samples, n_outputs): one-hot rows for cross_entropy, 0/1 for binary_cross_entropy, the
(possibly scaled) target for mse. For the matching output activation (softmax, sigmoid, identity)
the output delta collapses to a multiple of `A - Y`, which is both cheaper and numerically exact.
Optional row weights w (n_samples,) (class weights) turn the mean into mean_rows(w * row loss).
"""

from __future__ import annotations

import numpy as np

from nnctl._types import Array
from nnctl.engine.activations import Activation
from nnctl.registry import Registry


class Loss:
    """Base: subclasses write per-element loss terms, the gradient, and name their matching activation."""

    name = ""
    task = ""  # "classification" or "regression"
    output_activation = ""  # the matching activation, also the default for the output layer
    allowed_activations: tuple[str, ...] = ()  # empty: any
    binary = False  # classification with two classes in one output unit (P of the second class), not one per class
    fused = True  # through `output_activation`, dL/dZ = fused_scale(A) * (A - Y): no gradient, no activation backward

    def _terms(self, A: Array, Y: Array, out: Array) -> None:
        """Per-element loss terms whose sum over a row is that row's loss, written to `out`."""
        raise NotImplementedError

    def _norm(self, A: Array) -> int:
        """What the summed terms are divided by: the number of rows."""
        return int(A.shape[0])

    def value(self, A: Array, Y: Array, scratch: Array, weights: Array | None = None) -> float:
        """Mean loss over the batch's rows (weighted by `weights` (n,) when given)."""
        self._terms(A, Y, scratch)
        if weights is not None:
            scratch *= weights[:, None]
        return float(np.add.reduce(scratch, axis=None, dtype=np.float64)) / self._norm(A)

    def gradient(self, A: Array, Y: Array, out: Array) -> None:
        """dL/dA for the (unweighted) batch-mean loss, written to `out`."""
        raise NotImplementedError

    def output_delta(self, A: Array, Y: Array, activation: Activation, out: Array, scratch: Array,
                     weights: Array | None = None) -> None:
        """dL/dZ of the output layer, written to `out`: `fused_scale * (A - Y)` for the matching activation (when the
        loss is `fused`), else dL/dA through the activation's derivative."""
        if self.fused and activation.name == self.output_activation:
            np.subtract(A, Y, out=out)
            out *= self.fused_scale(A)
        else:
            self.gradient(A, Y, out)
            activation.backward(A, out, scratch)
        if weights is not None:
            out *= weights[:, None]

    def fused_scale(self, A: Array) -> float:
        """dL/dZ = fused_scale * (A - Y) for the matching activation (a `fused` loss only)."""
        return 1.0 / self._norm(A)


_TINY = {np.dtype(t).char: np.finfo(t).tiny for t in (np.float32, np.float64)}  # looked up once per batch


class CrossEntropy(Loss):
    """L = -mean_rows sum_j Y_j log A_j, with A from a softmax."""

    name = "cross_entropy"
    task = "classification"
    output_activation = "softmax"
    allowed_activations = ("softmax",)

    def _terms(self, A: Array, Y: Array, out: Array) -> None:
        # A can underflow to exactly 0 in float32; clip so the value stays finite.
        np.maximum(A, _TINY[A.dtype.char], out=out)
        np.log(out, out=out)
        out *= Y
        np.negative(out, out=out)

    def gradient(self, A: Array, Y: Array, out: Array) -> None:
        np.divide(Y, A, out=out)
        out *= -1.0 / A.shape[0]


class BinaryCrossEntropy(Loss):
    """L = -mean_rows sum_j [Y_j log A_j + (1 - Y_j) log(1 - A_j)], with A from a sigmoid."""

    name = "binary_cross_entropy"
    task = "classification"
    output_activation = "sigmoid"
    allowed_activations = ("sigmoid",)
    binary = True

    def _terms(self, A: Array, Y: Array, out: Array) -> None:
        # Y is 0 or 1, so the likelihood is A where Y = 1 and 1 - A where Y = 0: one log instead of two.
        np.subtract(1, A, out=out)
        np.copyto(out, A, where=Y > 0.5)
        np.clip(out, np.finfo(A.dtype).eps, None, out=out)
        np.log(out, out=out)
        np.negative(out, out=out)

    def gradient(self, A: Array, Y: Array, out: Array) -> None:
        # d/dA = (A - Y) / (A (1 - A)) / n
        np.subtract(A, Y, out=out)
        out /= A * (1 - A)
        out /= A.shape[0]


class MeanSquaredError(Loss):
    """L = mean over rows and outputs of (A - Y)^2."""

    name = "mse"
    task = "regression"
    output_activation = "identity"

    def _terms(self, A: Array, Y: Array, out: Array) -> None:
        np.subtract(A, Y, out=out)
        np.square(out, out=out)

    def _norm(self, A: Array) -> int:
        return int(A.size)

    def gradient(self, A: Array, Y: Array, out: Array) -> None:
        np.subtract(A, Y, out=out)
        out *= 2.0 / out.size

    def fused_scale(self, A: Array) -> float:
        return 2.0 / A.size


LOSSES: Registry[Loss] = Registry("loss")
for _cls in (CrossEntropy, BinaryCrossEntropy, MeanSquaredError):
    LOSSES[_cls.name] = _cls()
