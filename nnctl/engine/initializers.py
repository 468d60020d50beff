"""Weight initialisations: each fills W (fan_in, fan_out) from the given generator.

He scales the variance by 2 / fan_in (for ReLU-like layers), Glorot by 2 / (fan_in + fan_out).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from nnctl._types import Array
from nnctl.engine.activations import ACTIVATIONS
from nnctl.registry import Registry

Initializer = Callable[[Array, np.random.Generator], None]
INITIALIZERS: Registry[Initializer] = Registry("init")


def _normal(W: Array, rng: np.random.Generator, std: float) -> None:
    W[...] = rng.standard_normal(W.shape) * std


def _uniform(W: Array, rng: np.random.Generator, limit: float) -> None:
    W[...] = rng.uniform(-limit, limit, W.shape)


@INITIALIZERS.register("he_normal")
def he_normal(W: Array, rng: np.random.Generator) -> None:
    _normal(W, rng, np.sqrt(2.0 / W.shape[0]))


@INITIALIZERS.register("he_uniform")
def he_uniform(W: Array, rng: np.random.Generator) -> None:
    _uniform(W, rng, np.sqrt(6.0 / W.shape[0]))


@INITIALIZERS.register("glorot_normal")
def glorot_normal(W: Array, rng: np.random.Generator) -> None:
    _normal(W, rng, np.sqrt(2.0 / (W.shape[0] + W.shape[1])))


@INITIALIZERS.register("glorot_uniform")
def glorot_uniform(W: Array, rng: np.random.Generator) -> None:
    _uniform(W, rng, np.sqrt(6.0 / (W.shape[0] + W.shape[1])))


def default_init(activation: str) -> str:
    """`init: auto`: He for ReLU-like layers, Glorot for the rest (as Keras and PyTorch advise)."""
    return "he_normal" if ACTIVATIONS[activation].relu_like else "glorot_uniform"
