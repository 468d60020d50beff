"""Loss functions: a batch-mean value, its gradient dL/dA, and the output delta dL/dZ.

Y is (n_samples, n_outputs): one-hot rows for cross_entropy, 0/1 for binary_cross_entropy, the
(possibly scaled) target for mse. For the matching output activation (softmax, sigmoid, identity)
the output delta collapses to a multiple of `A - Y`, which is both cheaper and numerically exact.
"""

from __future__ import annotations

import numpy as np

from nnctl._types import Array
from nnctl.activations import Activation
from nnctl.registry import Registry


class Loss:
    """Base: subclasses give `value`, `gradient` and, for their matching activation, a fused delta."""

    name = ""
    task = ""  # "classification" or "regression"
    output_activation = ""  # the matching activation, also the default for the output layer
    allowed_activations: tuple[str, ...] = ()  # empty: any

    def value(self, A: Array, Y: Array, scratch: Array) -> float:
        """Mean loss over the batch's rows."""
        raise NotImplementedError

    def gradient(self, A: Array, Y: Array, out: Array) -> None:
        """dL/dA for the batch-mean loss, written to `out`."""
        raise NotImplementedError

    def output_delta(self, A: Array, Y: Array, activation: Activation, out: Array, scratch: Array) -> None:
        """dL/dZ of the output layer, written to `out`: `(A - Y) / n` for the matching activation."""
        if activation.name == self.output_activation:
            np.subtract(A, Y, out=out)
            out *= self._fused_scale(A)
        else:
            self.gradient(A, Y, out)
            activation.backward(A, out, scratch)

    def _fused_scale(self, A: Array) -> float:
        return 1.0 / int(A.shape[0])


class CrossEntropy(Loss):
    """L = -mean_rows sum_j Y_j log A_j, with A from a softmax."""

    name = "cross_entropy"
    task = "classification"
    output_activation = "softmax"
    allowed_activations = ("softmax",)

    def value(self, A: Array, Y: Array, scratch: Array) -> float:
        # A can underflow to exactly 0 in float32; clip so the value stays finite.
        np.clip(A, np.finfo(A.dtype).tiny, None, out=scratch)
        np.log(scratch, out=scratch)
        scratch *= Y
        return float(-scratch.sum(dtype=np.float64) / A.shape[0])

    def gradient(self, A: Array, Y: Array, out: Array) -> None:
        np.divide(Y, A, out=out)
        out *= -1.0 / A.shape[0]


class BinaryCrossEntropy(Loss):
    """L = -mean_rows sum_j [Y_j log A_j + (1 - Y_j) log(1 - A_j)], with A from a sigmoid."""

    name = "binary_cross_entropy"
    task = "classification"
    output_activation = "sigmoid"
    allowed_activations = ("sigmoid",)

    def value(self, A: Array, Y: Array, scratch: Array) -> float:
        eps = np.finfo(A.dtype).eps
        # Y is 0 or 1, so the log-likelihood is log of A where Y = 1 and of 1 - A where Y = 0.
        np.subtract(1, A, out=scratch)
        np.copyto(scratch, A, where=Y > 0.5)
        np.clip(scratch, eps, None, out=scratch)
        np.log(scratch, out=scratch)
        return float(-scratch.sum(dtype=np.float64) / A.shape[0])

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

    def value(self, A: Array, Y: Array, scratch: Array) -> float:
        np.subtract(A, Y, out=scratch)
        return float(np.vdot(scratch, scratch) / scratch.size)

    def gradient(self, A: Array, Y: Array, out: Array) -> None:
        np.subtract(A, Y, out=out)
        out *= 2.0 / out.size

    def _fused_scale(self, A: Array) -> float:
        return 2.0 / A.size


LOSSES: Registry[Loss] = Registry("loss")
for _cls in (CrossEntropy, BinaryCrossEntropy, MeanSquaredError):
    LOSSES[_cls.name] = _cls()
