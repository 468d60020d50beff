"""Loss functions: a batch-mean value, its gradient dL/dA, and the output delta dL/dZ.

Y is (n_samples, n_outputs): one-hot rows for cross_entropy, 0/1 for binary_cross_entropy, the
(possibly scaled) target for mse, mae and huber, the counts for poisson. For the matching output activation
(softmax, sigmoid, identity; exp for poisson) the output delta of cross_entropy, binary_cross_entropy, mse and
poisson collapses to a multiple of `A - Y`, which is both cheaper and numerically exact; mae and huber are not
such a multiple and take the general route (gradient, then the activation's derivative).
Optional row weights w (n_samples,) (class weights) turn the mean into mean_rows(w * row loss).

A loss's constructor keywords are its config keys (`loss: {name: huber, delta: 0.5}`); `build_loss` makes one.
"""

from __future__ import annotations

from collections.abc import Callable

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

    def __init__(self) -> None:
        """No parameters; a loss with some takes them as keyword arguments with defaults (its config keys)."""

    def options(self) -> dict[str, float]:
        """The parameters this instance was built with (`build_loss(name, **options)` makes it again)."""
        return {}

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

    def batch_values(self, A: Array, Y: Array, scratch: Array, batch: int,
                     weights: Array | None = None) -> np.ndarray:
        """The mean loss of each batch of `batch` consecutive rows of A (n, n_outputs) (the last may be shorter),
        float64 (n_batches,), each the very `value` of that batch alone: the training loop scores a segment of
        batches in one pass instead of a dozen NumPy calls per batch (an (n_batches, batch * n_outputs) row-wise
        reduction sums each batch exactly as reducing it alone does)."""
        self._terms(A, Y, scratch)
        if weights is not None:
            scratch *= weights[:, None]
        n = A.shape[0]
        full = n - n % batch
        values = np.empty(-(-n // batch))
        if full:
            head = values[: full // batch]
            np.add.reduce(scratch[:full].reshape(full // batch, -1), axis=1, dtype=np.float64, out=head)
            head /= self._norm(A[:batch])
        if full < n:
            values[-1] = float(np.add.reduce(scratch[full:], axis=None, dtype=np.float64)) / self._norm(A[full:])
        return values

    def gradient(self, A: Array, Y: Array, out: Array) -> None:
        """dL/dA for the (unweighted) batch-mean loss, written to `out`."""
        raise NotImplementedError

    def output_delta(self, A: Array, Y: Array, activation: Activation, out: Array, scratch: Array,
                     weights: Array | None = None) -> None:
        """dL/dZ of the output layer, written to `out`: `fused_scale * (A - Y)` for the matching activation (when the
        loss is `fused`), else dL/dA through the activation's derivative; times each row's weight, if given."""
        self.bind_output_delta(A, activation, out, scratch)(Y, weights)

    def fused_scale(self, A: Array) -> float:
        """dL/dZ = fused_scale * (A - Y) for the matching activation (a `fused` loss only)."""
        return 1.0 / self._norm(A)

    def bind_output_delta(self, A: Array, activation: Activation, out: Array,
                          scratch: Array) -> Callable[[Array, Array | None], None]:
        """`output_delta` for these buffers, as a call of (Y, weights): the training pass makes it once per batch size
        and calls it for every batch (the fused scale depends only on A's shape, so it is computed once)."""
        multiply = np.multiply
        if self.fused and activation.name == self.output_activation:
            # a 0-d array of A's dtype: the value NumPy would round the float to, without converting it every batch
            scale, subtract = np.array(self.fused_scale(A), A.dtype), np.subtract

            def output_delta(Y: Array, weights: Array | None) -> None:
                subtract(A, Y, out)
                multiply(out, scale, out)
                if weights is not None:
                    multiply(out, weights[:, None], out)
        else:
            def output_delta(Y: Array, weights: Array | None) -> None:
                self.gradient(A, Y, out)
                activation.backward(A, out, scratch)
                if weights is not None:
                    multiply(out, weights[:, None], out)

        return output_delta


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


class MeanAbsoluteError(Loss):
    """L = mean over rows and outputs of |A - Y|; dL/dA = sign(A - Y) / (n k), 0 where A = Y (a subgradient)."""

    name = "mae"
    task = "regression"
    output_activation = "identity"
    fused = False  # sign(A - Y) is no multiple of A - Y

    def _terms(self, A: Array, Y: Array, out: Array) -> None:
        np.subtract(A, Y, out=out)
        np.abs(out, out=out)

    def _norm(self, A: Array) -> int:
        return int(A.size)

    def gradient(self, A: Array, Y: Array, out: Array) -> None:
        np.subtract(A, Y, out=out)
        np.sign(out, out=out)
        out *= 1.0 / out.size


class Huber(Loss):
    """L = mean over rows and outputs of h(A - Y): h(r) = r²/2 where |r| <= delta, delta (|r| - delta/2) beyond;
    dL/dA = clip(A - Y, -delta, delta) / (n k). Squared error for small residuals, absolute error (times delta) for
    large ones, so outliers pull less than under mse. `delta` is in the units the loss sees (the standardised
    target under `data.target_scale: standard`)."""

    name = "huber"
    task = "regression"
    output_activation = "identity"
    fused = False  # the clipped residual is no multiple of A - Y

    def __init__(self, delta: float = 1.0) -> None:
        if not delta > 0:
            raise ValueError(f"huber's delta must be > 0, got {delta}")
        self.delta = float(delta)
        self._buffer: Array | None = None  # |A - Y| while the terms are formed, grown once to the batch

    def options(self) -> dict[str, float]:
        return {"delta": self.delta}

    def _terms(self, A: Array, Y: Array, out: Array) -> None:
        # h = m (|r| - m/2) with m = min(|r|, delta): |r| and m are both needed, so |r| goes to a kept buffer
        size = A.size
        if self._buffer is None or self._buffer.size < size or self._buffer.dtype != A.dtype:
            self._buffer = np.empty(size, A.dtype)
        residual = self._buffer[:size].reshape(A.shape)
        np.subtract(A, Y, out=residual)
        np.abs(residual, out=residual)
        np.minimum(residual, self.delta, out=out)
        out *= 0.5  # m/2
        residual -= out  # |r| - m/2
        out *= residual
        out *= 2.0

    def _norm(self, A: Array) -> int:
        return int(A.size)

    def gradient(self, A: Array, Y: Array, out: Array) -> None:
        np.subtract(A, Y, out=out)
        np.clip(out, -self.delta, self.delta, out=out)
        out *= 1.0 / out.size


_EPS = {np.dtype(t).char: np.finfo(t).eps for t in (np.float32, np.float64)}


class Poisson(Loss):
    """Half the Poisson deviance of counts Y under rates A > 0 (from an exp or softplus output):
    L = mean over rows and outputs of A - Y + Y log(Y / A), with 0 log 0 = 0; dL/dA = (1 - Y / A) / (n k).

    It is the negative log-likelihood A - Y log A + log Y! less its value at A = Y, so the gradient is the
    likelihood's and L is 0 for a perfect fit; 2 L is the mean Poisson deviance (scikit-learn's
    `mean_poisson_deviance`). Through exp, dL/dZ = (A - Y) / (n k). A is clipped below at the float's machine
    epsilon, so an output that underflowed to 0 gives a finite loss and gradient."""

    name = "poisson"
    task = "regression"
    output_activation = "exp"
    allowed_activations = ("exp", "softplus")

    def _terms(self, A: Array, Y: Array, out: Array) -> None:
        np.maximum(A, _EPS[A.dtype.char], out=out)
        np.divide(Y, out, out=out)
        np.maximum(out, _TINY[A.dtype.char], out=out)  # Y = 0: log of tiny, times Y = 0 below, is 0
        np.log(out, out=out)
        out *= Y
        out += A
        out -= Y

    def _norm(self, A: Array) -> int:
        return int(A.size)

    def gradient(self, A: Array, Y: Array, out: Array) -> None:
        np.maximum(A, _EPS[A.dtype.char], out=out)
        np.divide(Y, out, out=out)
        np.subtract(1, out, out=out)
        out *= 1.0 / out.size


LOSSES: Registry[Loss] = Registry("loss")
for _cls in (CrossEntropy, BinaryCrossEntropy, MeanSquaredError, MeanAbsoluteError, Huber, Poisson):
    LOSSES[_cls.name] = _cls()


def build_loss(name: str, **options: float) -> Loss:
    """A loss by its registered name, with its parameters (`build_loss("huber", delta=0.5)`); the registry's own
    instance when there are none to set."""
    if not options:
        return LOSSES[name]
    return type(LOSSES[name])(**options)
