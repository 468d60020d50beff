"""Optimizers: one small in-place update step over the flat parameter and gradient buffers.

The network keeps every W and b as a view of one flat `params` array (and every dW, db of one `grads`
array), weights first, so a step is a handful of whole-buffer NumPy operations whatever the number of
layers, and weight decay touches `params[:decay_size]` (the weights) and never the biases.

The update rules follow the published algorithms as PyTorch implements them (no dampening, the momentum
buffer starts at the first gradient); `weight_decay` is the coupled L2 penalty `g += wd * p` except in
AdamW, where it is decoupled (`p *= 1 - lr * wd`, Loshchilov & Hutter 2019).

`Optimizer.step` runs block by block: every buffer is cut into blocks of `BLOCK` entries, and all of a step's
passes (weight decay, then the optimizer's `_update`) run over one block before the next. A block of each
buffer Adam touches (params, grads, m, v, scratch: 640 KB) stays in the L2 cache between passes, where ten
passes over the whole of W2's 235,146 parameters went out to L3 for each: 375 µs a step instead of 470 µs
(measured on this 2 MB-L2 machine). Every pass is elementwise, so the results are the same bits.

A step's numbers (rates, moments' decays) reach NumPy as 0-d arrays of the parameters' dtype, filled once per step:
NumPy converts a Python float for every call (250 against 470 ns a call on this machine, and Adam makes 32 such
calls a step on W2); a float32 0-d array holds the value the Python float would have been rounded to, so the bits
are the same.

Every `FLUSH_EVERY` steps the state buffers' subnormal entries (|x| below the dtype's smallest normal, 1.2e-38 in
float32) are set to 0 (`_flush`). A unit that stops getting gradient (a dead ReLU) leaves its moments decaying
by a constant factor: Adam's first moment crosses float32's subnormal range in about 150 steps and then never
reaches 0 (0.9 times 1 to 4 of the smallest subnormal rounds back to itself). A multiply or divide with a
subnormal operand costs this CPU 35 ns a vector, 30 times a normal one, so a W2 run slowed epoch after epoch as its
units died (0.58 s an epoch to 0.86 s after 14 epochs, 16,901 subnormal entries; flushed, 0.54-0.58 s throughout).
The weights do not change: with eps 1e-8 and a learning rate up to 1, Adam's step from a subnormal first moment is
below 4e-30, which leaves any weight of magnitude above 1e-22 as it was, and the square root of a subnormal second
moment is below 1.1e-19, lost when eps is added. That W2 run's weights were bit for bit those of the unflushed run
(and the tests run both); the saved state differs in the flushed entries only, and a resumed run flushes at the
same steps.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from nnctl._types import Array
from nnctl.engine import aligned
from nnctl.registry import Registry

BLOCK = 32_768  # entries per block (128 KB of float32)
FLUSH_EVERY = 64  # steps between flushes of the state's subnormal entries: Adam's first moment (beta1 0.9) crosses
# the subnormal range in 151 steps; an entry then spends at most 64 steps there, for 2 µs a step on W2 (a flush of
# its 235,146 entries takes 125 µs)

multiply, add, subtract, divide, square, sqrt = np.multiply, np.add, np.subtract, np.divide, np.square, np.sqrt

# One block of a step: params, grads, scratch, how many of its leading entries weight decay applies to, then the
# optimizer's state buffers (views of the same entries)
Block = tuple[Array, Array, Array, int, list[Array]]


def _decay_rates(**rates: float) -> None:
    """Momentum and moving-average rates live in [0, 1)."""
    for key, value in rates.items():
        if not 0 <= value < 1:
            raise ValueError(f"{key} must be in [0, 1), not {value}")


class Optimizer:
    """Base class: `step(grads)` updates `params` in place, block by block, by the subclass's `_update` rule (with
    this step's `_scalars`); `state()` holds what an exact resume needs.

    `learning_rate` may be changed between steps (schedules do); `decay_size` is how many leading entries
    of `params` weight decay applies to (all of them unless the owner says otherwise).
    """

    name = ""

    def __init__(self, params: Array, learning_rate: float, weight_decay: float = 0.0) -> None:
        if learning_rate <= 0:
            raise ValueError(f"learning_rate must be positive, not {learning_rate}")
        if weight_decay < 0:
            raise ValueError(f"weight_decay must be 0 or more, not {weight_decay}")
        self.params = params
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.decay_size = params.size
        self.t = 0  # steps taken
        self.block = BLOCK
        self.flush_every: int | None = FLUSH_EVERY  # None: never flush subnormal state (tests compare against it)
        self._tmp = aligned.empty(min(params.size, self.block), params.dtype)
        self._small = np.empty(self._tmp.shape, bool)  # which entries of a state block `_flush` sets to 0
        self._tiny = np.finfo(params.dtype).tiny
        self._numbers: list[Array] = []  # 0-d arrays of params' dtype for this step's numbers (see `_constants`)
        self._bound: tuple[Array, int, list[Block]] | None = None  # (grads, decay size, its blocks)

    def step(self, grads: Array) -> None:
        """Update `params` from `grads` block by block: weight decay on the block's weights, then the rule, then
        (every `flush_every` steps) the flush of the block's subnormal state."""
        self.t += 1
        scalars = self._scalars()
        flush = self.flush_every is not None and self.t % self.flush_every == 0
        for p, g, tmp, decayed, state in self._blocks(grads):
            if decayed:
                self._decay(p, g, tmp, decayed)
            self._update(p, g, tmp, state, scalars)
            if flush:
                self._flush(state, tmp)

    def _scalars(self) -> tuple[Any, ...]:
        """This step's numbers (rates, moments), computed once for all blocks."""
        return ()

    def _constants(self, *values: float) -> tuple[Array, ...]:
        """`values` as 0-d arrays of the parameters' dtype, the same arrays every step: what NumPy would round each
        Python float to, without converting it again in every call."""
        numbers = self._numbers
        while len(numbers) < len(values):
            numbers.append(np.zeros((), self.params.dtype))
        for number, value in zip(numbers, values, strict=False):
            number[()] = value
        return tuple(numbers[: len(values)])

    def _flush(self, state: list[Array], tmp: Array) -> None:
        """Set the subnormal entries of a block's state buffers to 0 (zeros stay zeros; NaN and inf stay)."""
        small = self._small[: tmp.size]
        for buffer in state:
            np.absolute(buffer, tmp)
            np.less(tmp, self._tiny, small)
            np.copyto(buffer, 0, where=small)

    def _update(self, p: Array, g: Array, tmp: Array, state: list[Array], scalars: tuple[Any, ...]) -> None:
        """The optimizer's rule on one block: params p, grads g, scratch tmp, the state buffers' blocks."""
        raise NotImplementedError

    def _buffers(self) -> list[Array]:
        """The state buffers a step updates (shaped like params), in the order `_blocks` gives their blocks."""
        return []

    def _blocks(self, grads: Array) -> list[Block]:
        """Per block of `BLOCK` entries: (params, grads, scratch, decayed, [state buffers]) views, made once for this
        `grads` buffer and decay size; `decayed` is how many leading entries of the block weight decay applies to (0
        without weight decay)."""
        bound = self._bound
        if bound is None or bound[0] is not grads or bound[1] != self.decay_size:
            blocks: list[Block] = []
            n, buffers = self.params.size, self._buffers()
            for start in range(0, n, self.block):
                end = min(n, start + self.block)
                decayed = max(0, min(end, self.decay_size) - start) if self.weight_decay else 0
                blocks.append((self.params[start:end], grads[start:end], self._tmp[: end - start], decayed,
                               [b[start:end] for b in buffers]))
            bound = self._bound = (grads, self.decay_size, blocks)
        return bound[2]

    def _decay(self, p: Array, g: Array, tmp: Array, decayed: int) -> None:
        """Weight decay on a block whose first `decayed` entries are weights: coupled L2, g[:decayed] += wd *
        p[:decayed] (the derivative of wd/2 * ||W||^2); AdamW decouples it."""
        np.multiply(p[:decayed], self.weight_decay, out=tmp[:decayed])
        g[:decayed] += tmp[:decayed]

    def state(self) -> dict[str, Any]:
        """Counters and the live state arrays to save beside the weights."""
        return {"t": self.t}

    def load_state(self, state: dict[str, Any]) -> None:
        self.t = int(state["t"])


class SGD(Optimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum mu:
    buf = mu buf + g  (buf = g on the first step);  g = g + mu buf if nesterov else buf;  p -= lr g.
    """

    name = "sgd"

    def __init__(self, params: Array, learning_rate: float = 0.01, momentum: float = 0.0,
                 nesterov: bool = False, weight_decay: float = 0.0) -> None:
        super().__init__(params, learning_rate, weight_decay)
        _decay_rates(momentum=momentum)
        if nesterov and momentum == 0:
            raise ValueError("nesterov needs momentum > 0 (e.g. momentum: 0.9)")
        self.momentum, self.nesterov = momentum, nesterov
        self.buf = aligned.zeros_like(params) if momentum else None

    def _buffers(self) -> list[Array]:
        return [] if self.buf is None else [self.buf]

    def _scalars(self) -> tuple[Any, ...]:
        return (*self._constants(self.momentum, self.learning_rate), self.t == 1)

    def _update(self, p: Array, g: Array, tmp: Array, state: list[Array], scalars: tuple[Any, ...]) -> None:
        momentum, rate, first = scalars
        if state:
            (buf,) = state
            if first:
                buf[...] = g
            else:
                multiply(buf, momentum, buf)
                add(buf, g, buf)
            if self.nesterov:
                multiply(buf, momentum, tmp)
                add(tmp, g, tmp)
                g = tmp
            else:
                g = buf
        multiply(g, rate, tmp)
        subtract(p, tmp, p)

    def state(self) -> dict[str, Any]:
        return {"t": self.t} if self.buf is None else {"t": self.t, "buf": self.buf}

    def load_state(self, state: dict[str, Any]) -> None:
        super().load_state(state)
        if self.buf is not None:
            self.buf[...] = state["buf"]


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015, Algorithm 1):
    m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
    params -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps).

    The moments are kept undamped, `m_acc` = m / (1 - b1) and `v_acc` = v / (1 - b2), so each update is
    `m_acc = b1 m_acc + g`: two whole-buffer passes fewer per step than the textbook form.
    """

    name = "adam"

    def __init__(self, params: Array, learning_rate: float = 0.001, beta1: float = 0.9, beta2: float = 0.999,
                 eps: float = 1e-8, weight_decay: float = 0.0) -> None:
        super().__init__(params, learning_rate, weight_decay)
        _decay_rates(beta1=beta1, beta2=beta2)
        self.beta1, self.beta2, self.eps = beta1, beta2, eps
        self.m_acc = aligned.zeros_like(params)
        self.v_acc = aligned.zeros_like(params)

    def _buffers(self) -> list[Array]:
        return [self.m_acc, self.v_acc]

    def _scalars(self) -> tuple[Any, ...]:
        b1, b2 = self.beta1, self.beta2
        # With s = sqrt((1 - b2) / (1 - b2^t)): lr m_hat / (sqrt(v_hat) + eps)
        #   = lr (1 - b1) / ((1 - b1^t) s) * m_acc / (sqrt(v_acc) + eps / s), the scalars computed once.
        s = math.sqrt((1 - b2) / (1 - b2**self.t))
        return self._constants(b1, b2, self.eps / s, self.learning_rate * (1 - b1) / ((1 - b1**self.t) * s))

    def _update(self, p: Array, g: Array, tmp: Array, state: list[Array], scalars: tuple[Any, ...]) -> None:
        b1, b2, eps, rate = scalars
        m, v = state
        multiply(m, b1, m)
        add(m, g, m)
        multiply(v, b2, v)
        square(g, tmp)
        add(v, tmp, v)
        sqrt(v, tmp)
        add(tmp, eps, tmp)
        divide(m, tmp, tmp)
        multiply(tmp, rate, tmp)
        subtract(p, tmp, p)

    def state(self) -> dict[str, Any]:
        return {"t": self.t, "m_acc": self.m_acc, "v_acc": self.v_acc}

    def load_state(self, state: dict[str, Any]) -> None:
        super().load_state(state)
        if "m_acc" in state:
            self.m_acc[...] = state["m_acc"]
            self.v_acc[...] = state["v_acc"]
        else:  # a checkpoint from before the undamped form holds m and v: rescale them (exact up to rounding)
            self.m_acc[...] = state["m"] / (1 - self.beta1)
            self.v_acc[...] = state["v"] / (1 - self.beta2)


class AdamW(Adam):
    """Adam with decoupled weight decay: params[:n] *= 1 - lr * wd before the Adam step."""

    name = "adamw"

    def __init__(self, params: Array, learning_rate: float = 0.001, beta1: float = 0.9, beta2: float = 0.999,
                 eps: float = 1e-8, weight_decay: float = 0.01) -> None:
        super().__init__(params, learning_rate, beta1, beta2, eps, weight_decay)

    def _decay(self, p: Array, g: Array, tmp: Array, decayed: int) -> None:
        p[:decayed] *= 1 - self.learning_rate * self.weight_decay


class RMSprop(Optimizer):
    """RMSprop (Hinton 2012): v = rho v + (1 - rho) g^2;  step = g / (sqrt(v) + eps);
    with momentum mu: buf = mu buf + step, params -= lr buf; else params -= lr step.
    """

    name = "rmsprop"

    def __init__(self, params: Array, learning_rate: float = 0.001, rho: float = 0.9, eps: float = 1e-8,
                 momentum: float = 0.0, weight_decay: float = 0.0) -> None:
        super().__init__(params, learning_rate, weight_decay)
        _decay_rates(rho=rho, momentum=momentum)
        self.rho, self.eps, self.momentum = rho, eps, momentum
        self.v = aligned.zeros_like(params)
        self.buf = aligned.zeros_like(params) if momentum else None

    def _buffers(self) -> list[Array]:
        return [self.v] if self.buf is None else [self.v, self.buf]

    def _scalars(self) -> tuple[Any, ...]:
        return self._constants(self.rho, 1 - self.rho, self.eps, self.momentum, self.learning_rate)

    def _update(self, p: Array, g: Array, tmp: Array, state: list[Array], scalars: tuple[Any, ...]) -> None:
        rho, one_minus_rho, eps, momentum, rate = scalars
        v = state[0]
        multiply(v, rho, v)
        square(g, tmp)
        multiply(tmp, one_minus_rho, tmp)
        add(v, tmp, v)
        sqrt(v, tmp)
        add(tmp, eps, tmp)
        divide(g, tmp, tmp)
        if len(state) > 1:
            buf = state[1]
            multiply(buf, momentum, buf)
            add(buf, tmp, buf)
            multiply(buf, rate, tmp)
        else:
            multiply(tmp, rate, tmp)
        subtract(p, tmp, p)

    def state(self) -> dict[str, Any]:
        state: dict[str, Any] = {"t": self.t, "v": self.v}
        if self.buf is not None:
            state["buf"] = self.buf
        return state

    def load_state(self, state: dict[str, Any]) -> None:
        super().load_state(state)
        self.v[...] = state["v"]
        if self.buf is not None:
            self.buf[...] = state["buf"]


OPTIMIZERS: Registry[type[Optimizer]] = Registry("optimizer")
for _cls in (SGD, Adam, AdamW, RMSprop):
    OPTIMIZERS[_cls.name] = _cls
