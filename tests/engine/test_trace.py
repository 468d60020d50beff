"""One row's trace (`nnctl explain`): its forward pass equals the network's, and its dW, db equal central finite
differences of the row's loss and an independent reverse-mode autograd (tests/autograd.py), in float64."""

from __future__ import annotations

import numpy as np
import pytest

from nnctl.engine.losses import build_loss
from nnctl.engine.network import Network
from nnctl.engine.trace import trace

import autograd
from gradcheck import numerical_gradient

CASES = [
    ("cross_entropy", ["relu", "tanh", "softmax"], 3),  # fused: A - Y
    ("binary_cross_entropy", ["tanh", "sigmoid"], 1),  # fused
    ("mse", ["sigmoid", "identity"], 2),  # fused: 2 (A - Y) / k
    ("mse", ["tanh", "relu", "sigmoid"], 2),  # the general route: dL/dA through sigmoid's derivative
    ("huber", ["relu", "tanh", "identity"], 2),  # never fused
    ("mae", ["leaky_relu", "identity"], 2),
    ("poisson", ["softplus", "exp"], 1),
]


def _network(activations: list[str], n_out: int, rng: np.random.Generator, dtype: str = "float32") -> Network:
    sizes = [4] + [5] * (len(activations) - 1) + [n_out]
    net = Network(sizes, activations, dtype)
    net.initialise(["glorot_normal"] * len(activations), rng)
    net.params[:] += (rng.standard_normal(net.params.size) * 0.3).astype(dtype)  # non-zero biases too
    return net


def _target(loss: str, n_out: int, rng: np.random.Generator) -> np.ndarray:
    if loss == "cross_entropy":
        return np.eye(n_out)[rng.integers(0, n_out)]
    if loss == "binary_cross_entropy":
        return np.array([1.0])
    if loss == "poisson":
        return np.array([3.0])
    return rng.standard_normal(n_out) * 2  # beyond huber's delta for some outputs, within it for others


def _options(loss_name: str) -> dict[str, float]:
    return {"delta": 0.7} if loss_name == "huber" else {}


@pytest.mark.parametrize(("loss_name", "activations", "n_out"), CASES)
def test_gradients_equal_finite_differences_of_the_rows_loss(loss_name, activations, n_out, rng):
    net = _network(activations, n_out, rng)
    x, Y = rng.standard_normal(4), _target(loss_name, n_out, rng)
    loss = build_loss(loss_name, **_options(loss_name))
    result = trace(net, x, loss, Y)
    assert result.backward is not None
    copy = Network(net.sizes, activations, "float64")
    copy.params[...] = net.params

    def objective() -> float:
        A = copy.forward(x.reshape(1, -1))
        return loss.value(A, Y.reshape(1, -1), np.empty_like(A))

    assert result.backward.loss == pytest.approx(objective(), rel=1e-12)
    expected = numerical_gradient(objective, copy.params)
    got = np.concatenate([g.ravel() for g in result.backward.dW] + [g.ravel() for g in result.backward.db])
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-9)
    assert np.abs(got).max() > 1e-3  # a gradient to compare, not zeros


@pytest.mark.parametrize(("loss_name", "activations", "n_out"), CASES)
def test_gradients_equal_an_independent_autograd(loss_name, activations, n_out, rng):
    net = _network(activations, n_out, rng, "float64")
    x, Y = rng.standard_normal(4), _target(loss_name, n_out, rng)
    result = trace(net, x, build_loss(loss_name, **_options(loss_name)), Y)
    assert result.backward is not None
    value, dW, db = autograd.gradients([W.copy() for W in net.W], [b.copy() for b in net.b], activations,
                                       x.reshape(1, -1), Y.reshape(1, -1), loss_name, **_options(loss_name))
    assert result.backward.loss == pytest.approx(value, rel=1e-10)
    for mine, reference in zip(result.backward.dW + result.backward.db, dW + db, strict=True):
        np.testing.assert_allclose(mine, reference, rtol=1e-10, atol=1e-12)


def test_the_output_delta_is_dl_dz_of_the_last_layer(rng):
    """delta_(L-1) of softmax + cross_entropy on one row is A - Y (docs/how-it-works.md §4), and db = delta."""
    net = _network(["tanh", "softmax"], 3, rng)
    Y = np.array([0.0, 1.0, 0.0])
    result = trace(net, rng.standard_normal(4), build_loss("cross_entropy"), Y)
    assert result.backward is not None
    np.testing.assert_allclose(result.backward.delta[-1], result.output - Y, rtol=1e-12)
    for delta, db in zip(result.backward.delta, result.backward.db, strict=True):
        np.testing.assert_array_equal(delta, db)


def test_forward_is_the_networks_with_the_temperature_and_contributions_sum_to_z(rng):
    net = _network(["relu", "tanh", "softmax"], 3, rng)
    x = rng.standard_normal(4)
    result = trace(net, x, build_loss("cross_entropy"), temperature=2.5)
    assert result.backward is None  # no target, no backward pass
    assert result.x.dtype == np.float64 and all(A.dtype == np.float64 for A in result.A)
    np.testing.assert_allclose(result.output, net.forward(x.reshape(1, -1).astype(np.float32), 2.5)[0], atol=1e-6)
    plain = trace(net, x, build_loss("cross_entropy"))
    assert not np.allclose(plain.output, result.output)
    for i in range(net.n_layers):
        z = result.contributions(i).sum(axis=0) + net.b[i]
        T = 2.5 if i == net.n_layers - 1 else 1.0
        np.testing.assert_allclose(z / T, result.Z[i], rtol=1e-12, atol=1e-12)


def test_the_gradients_of_a_calibrated_model_are_the_uncalibrated_training_loss(rng):
    net = _network(["tanh", "softmax"], 3, rng)
    x, Y = rng.standard_normal(4), np.array([1.0, 0.0, 0.0])
    calibrated = trace(net, x, build_loss("cross_entropy"), Y, temperature=3.0)
    plain = trace(net, x, build_loss("cross_entropy"), Y)
    assert calibrated.backward is not None and plain.backward is not None
    assert calibrated.backward.loss == plain.backward.loss
    for a, b in zip(calibrated.backward.dW, plain.backward.dW, strict=True):
        np.testing.assert_array_equal(a, b)
