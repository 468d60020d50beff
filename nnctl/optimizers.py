"""Optimizers: one small in-place update step over the flat parameter and gradient buffers.

The network keeps every W and b as a view of one flat `params` array (and every dW, db of one `grads`
array), so a step is a handful of whole-buffer NumPy operations, whatever the number of layers.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from nnctl._types import Array
from nnctl.registry import Registry


class Optimizer:
    """Base class: `step(grads)` updates `params` in place; `state()` holds what an exact resume needs."""

    name = ""

    def __init__(self, params: Array, learning_rate: float) -> None:
        self.params = params
        self.learning_rate = learning_rate
        self.t = 0  # steps taken

    def step(self, grads: Array) -> None:
        raise NotImplementedError

    def state(self) -> dict[str, Any]:
        """Arrays and counters to save beside the weights."""
        return {"t": self.t}

    def load_state(self, state: dict[str, Any]) -> None:
        self.t = int(state["t"])


class SGD(Optimizer):
    """params -= learning_rate * grads."""

    name = "sgd"

    def __init__(self, params: Array, learning_rate: float = 0.01) -> None:
        super().__init__(params, learning_rate)
        self._tmp = np.empty_like(params)

    def step(self, grads: Array) -> None:
        self.t += 1
        np.multiply(grads, self.learning_rate, out=self._tmp)
        self.params -= self._tmp


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015, Algorithm 1):
    m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
    params -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps).
    """

    name = "adam"

    def __init__(
        self,
        params: Array,
        learning_rate: float = 0.001,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
    ) -> None:
        super().__init__(params, learning_rate)
        self.beta1, self.beta2, self.eps = beta1, beta2, eps
        self.m = np.zeros_like(params)
        self.v = np.zeros_like(params)
        self._tmp = np.empty_like(params)

    def step(self, grads: Array) -> None:
        self.t += 1
        b1, b2, tmp = self.beta1, self.beta2, self._tmp
        self.m *= b1
        np.multiply(grads, 1 - b1, out=tmp)
        self.m += tmp
        self.v *= b2
        np.square(grads, out=tmp)
        tmp *= 1 - b2
        self.v += tmp
        # tmp = sqrt(v_hat) + eps, then the step lr * m_hat / tmp
        np.sqrt(self.v, out=tmp)
        tmp *= 1 / math.sqrt(1 - b2**self.t)
        tmp += self.eps
        np.divide(self.m, tmp, out=tmp)
        tmp *= self.learning_rate / (1 - b1**self.t)
        self.params -= tmp

    def state(self) -> dict[str, Any]:
        return {"t": self.t, "m": self.m, "v": self.v}

    def load_state(self, state: dict[str, Any]) -> None:
        super().load_state(state)
        self.m[...] = state["m"]
        self.v[...] = state["v"]


OPTIMIZERS: Registry[type[Optimizer]] = Registry("optimizer")
for _cls in (SGD, Adam):
    OPTIMIZERS[_cls.name] = _cls
