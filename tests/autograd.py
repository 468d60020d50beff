"""A tiny reverse-mode autograd on NumPy arrays (micrograd's idea, on matrices), independent of nnctl's engine: a
reference for the gradients `nnctl explain` shows.

Each `Tensor` remembers the tensors it was made from and how to pass its gradient back to them; `backward()` walks
the graph in reverse topological order. Every derivative here is written from the forward formula in terms of the
*input* (the engine writes its derivatives in terms of the output, and fuses the loss with the last activation).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


class Tensor:
    """A float64 array, its gradient after `backward()`, and the way back to its parents."""

    def __init__(self, value: np.ndarray, parents: tuple[Tensor, ...] = (),
                 back: Callable[[np.ndarray], None] | None = None) -> None:
        self.value = np.asarray(value, np.float64)
        self.grad = np.zeros_like(self.value)
        self.parents, self._back = parents, back

    def __matmul__(self, other: Tensor) -> Tensor:
        def back(g: np.ndarray) -> None:
            self.grad += g @ other.value.T
            other.grad += self.value.T @ g
        return Tensor(self.value @ other.value, (self, other), back)

    def __add__(self, other: Tensor) -> Tensor:
        """Broadcast addition of a (k,) bias to an (n, k) matrix, or of same shapes."""
        def back(g: np.ndarray) -> None:
            self.grad += g.reshape(-1, *self.value.shape).sum(axis=0) if g.shape != self.value.shape else g
            other.grad += g.reshape(-1, *other.value.shape).sum(axis=0) if g.shape != other.value.shape else g
        return Tensor(self.value + other.value, (self, other), back)

    def scale(self, c: float) -> Tensor:
        def back(g: np.ndarray) -> None:
            self.grad += g * c
        return Tensor(self.value * c, (self,), back)

    def elementwise(self, f: Callable[[np.ndarray], np.ndarray], df: Callable[[np.ndarray], np.ndarray]) -> Tensor:
        """f applied entrywise, with its derivative df at the input."""
        z = self.value

        def back(g: np.ndarray) -> None:
            self.grad += g * df(z)
        return Tensor(f(z), (self,), back)

    def softmax(self) -> Tensor:
        """Per row: s_j = exp(z_j) / sum_k exp(z_k); the vector-Jacobian product g -> s * (g - <g, s>)."""
        e = np.exp(self.value - self.value.max(axis=1, keepdims=True))
        s = e / e.sum(axis=1, keepdims=True)

        def back(g: np.ndarray) -> None:
            self.grad += s * (g - (g * s).sum(axis=1, keepdims=True))
        return Tensor(s, (self,), back)

    def reduce(self, f: Callable[[np.ndarray], float], df: Callable[[np.ndarray], np.ndarray]) -> Tensor:
        """A scalar f of the whole array, with its gradient df."""
        a = self.value

        def back(g: np.ndarray) -> None:
            self.grad += g * df(a)
        return Tensor(np.array(f(a)), (self,), back)

    def backward(self) -> None:
        order: list[Tensor] = []
        seen: set[int] = set()

        def visit(t: Tensor) -> None:
            if id(t) not in seen:
                seen.add(id(t))
                for p in t.parents:
                    visit(p)
                order.append(t)
        visit(self)
        self.grad = np.ones_like(self.value)
        for t in reversed(order):
            if t._back is not None:
                t._back(t.grad)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-z))


def activate(t: Tensor, name: str) -> Tensor:
    if name == "softmax":
        return t.softmax()
    f, df = {
        "identity": (lambda z: z, np.ones_like),
        "relu": (lambda z: np.maximum(z, 0), lambda z: (z > 0).astype(np.float64)),
        "leaky_relu": (lambda z: np.where(z > 0, z, 0.01 * z), lambda z: np.where(z > 0, 1.0, 0.01)),
        "tanh": (np.tanh, lambda z: 1 / np.cosh(z) ** 2),
        "sigmoid": (_sigmoid, lambda z: np.exp(-z) / (1 + np.exp(-z)) ** 2),
        "exp": (np.exp, np.exp),
        "softplus": (lambda z: np.log1p(np.exp(z)), _sigmoid),
    }[name]
    return t.elementwise(f, df)


def loss(A: Tensor, Y: np.ndarray, name: str, delta: float = 1.0) -> Tensor:
    """The mean loss over the rows (and, for the regression losses, the outputs), as docs/how-it-works.md §4 writes
    it."""
    n, size = A.value.shape[0], A.value.size
    if name == "cross_entropy":
        return A.reduce(lambda a: -(Y * np.log(a)).sum() / n, lambda a: -Y / a / n)
    if name == "binary_cross_entropy":
        return A.reduce(lambda a: -(Y * np.log(a) + (1 - Y) * np.log(1 - a)).sum() / n,
                        lambda a: (-(Y / a) + (1 - Y) / (1 - a)) / n)
    if name == "mse":
        return A.reduce(lambda a: ((a - Y) ** 2).sum() / size, lambda a: 2 * (a - Y) / size)
    if name == "mae":
        return A.reduce(lambda a: np.abs(a - Y).sum() / size, lambda a: np.sign(a - Y) / size)
    if name == "huber":
        def h(a: np.ndarray) -> float:
            r = np.abs(a - Y)
            return float(np.where(r <= delta, r * r / 2, delta * (r - delta / 2)).sum() / size)
        return A.reduce(h, lambda a: np.clip(a - Y, -delta, delta) / size)
    if name == "poisson":
        return A.reduce(lambda a: (a - Y + np.where(Y > 0, Y * np.log(np.where(Y > 0, Y, 1) / a), 0)).sum() / size,
                        lambda a: (1 - Y / a) / size)
    raise KeyError(name)


def gradients(Ws: list[np.ndarray], bs: list[np.ndarray], activations: list[str], X: np.ndarray, Y: np.ndarray,
              loss_name: str, **options: float) -> tuple[float, list[np.ndarray], list[np.ndarray]]:
    """The loss of a dense network on X (n, n_inputs) with targets Y, and its dW, db per layer."""
    W = [Tensor(w) for w in Ws]
    b = [Tensor(v) for v in bs]
    A = Tensor(X)
    for Wi, bi, act in zip(W, b, activations, strict=True):
        A = activate(A @ Wi + bi, act)
    L = loss(A, Y, loss_name, **options)
    L.backward()
    return float(L.value), [w.grad for w in W], [v.grad for v in b]
