import numpy as np
import pytest

from nnctl.engine.activations import ACTIVATIONS
from nnctl.engine.losses import LOSSES

from gradcheck import numerical_gradient


def _targets(name: str, rng: np.random.Generator, n: int = 6, k: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Outputs A in the loss's natural range, and matching targets Y."""
    if name == "cross_entropy":
        A = ACTIVATIONS["softmax"].forward(rng.standard_normal((n, k)))
        Y = np.eye(k)[rng.integers(0, k, n)]
    elif name == "binary_cross_entropy":
        A = ACTIVATIONS["sigmoid"].forward(rng.standard_normal((n, 1)))
        Y = rng.integers(0, 2, (n, 1)).astype(float)
    else:
        A, Y = rng.standard_normal((n, k)), rng.standard_normal((n, k))
    return A, Y


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_gradient_matches_finite_differences(name, rng):
    loss = LOSSES[name]
    A, Y = _targets(name, rng)
    expected = numerical_gradient(lambda: loss.value(A, Y, np.empty_like(A)), A)
    grad = np.empty_like(A)
    loss.gradient(A, Y, grad)
    np.testing.assert_allclose(grad, expected, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_output_delta_matches_finite_differences_through_the_activation(name, rng):
    """The fused delta (A - Y)/n must equal dL/dZ of loss(activation(Z)) computed numerically."""
    loss = LOSSES[name]
    act = ACTIVATIONS[loss.output_activation]
    _, Y = _targets(name, rng)
    Z = rng.standard_normal(Y.shape)
    expected = numerical_gradient(lambda: loss.value(act.forward(Z.copy()), Y, np.empty_like(Z)), Z)
    A = act.forward(Z.copy())
    delta = np.empty_like(A)
    loss.output_delta(A, Y, act, delta, np.empty_like(A))
    np.testing.assert_allclose(delta, expected, rtol=1e-5, atol=1e-8)


def test_mse_through_a_non_matching_activation(rng):
    """mse with a sigmoid output takes the general path: gradient, then the activation's derivative."""
    loss, act = LOSSES["mse"], ACTIVATIONS["sigmoid"]
    Y = rng.random((4, 2))
    Z = rng.standard_normal((4, 2))
    expected = numerical_gradient(lambda: loss.value(act.forward(Z.copy()), Y, np.empty_like(Z)), Z)
    A = act.forward(Z.copy())
    delta = np.empty_like(A)
    loss.output_delta(A, Y, act, delta, np.empty_like(A))
    np.testing.assert_allclose(delta, expected, rtol=1e-5, atol=1e-8)


def test_values_by_hand():
    A = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
    Y = np.array([[1.0, 0, 0], [0, 0, 1]])
    assert LOSSES["cross_entropy"].value(A, Y, np.empty_like(A)) == pytest.approx(-(np.log(0.7) + np.log(0.8)) / 2)
    p, y = np.array([[0.9], [0.2]]), np.array([[1.0], [0.0]])
    assert LOSSES["binary_cross_entropy"].value(p, y, np.empty_like(p)) == pytest.approx(
        -(np.log(0.9) + np.log(0.8)) / 2)
    assert LOSSES["mse"].value(np.array([[1.0], [3.0]]), np.array([[0.0], [1.0]]), np.empty((2, 1))) == 2.5


def test_saturated_outputs_give_finite_losses():
    A = np.array([[1.0, 0.0]], dtype=np.float32)
    Y = np.array([[0.0, 1.0]], dtype=np.float32)
    assert np.isfinite(LOSSES["cross_entropy"].value(A, Y, np.empty_like(A)))
    p, y = np.array([[1.0]], np.float32), np.array([[0.0]], np.float32)
    assert np.isfinite(LOSSES["binary_cross_entropy"].value(p, y, np.empty_like(p)))


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_row_weights_scale_each_rows_loss_and_gradient(name, rng):
    loss = LOSSES[name]
    act = ACTIVATIONS[loss.output_activation]
    _, Y = _targets(name, rng)
    w = rng.random(len(Y)) + 0.5
    Z = rng.standard_normal(Y.shape)
    expected = numerical_gradient(lambda: loss.value(act.forward(Z.copy()), Y, np.empty_like(Z), w), Z)
    A = act.forward(Z.copy())
    delta = np.empty_like(A)
    loss.output_delta(A, Y, act, delta, np.empty_like(A), w)
    np.testing.assert_allclose(delta, expected, rtol=1e-5, atol=1e-8)
    ones = loss.value(A, Y, np.empty_like(A), np.ones(len(Y)))
    assert ones == pytest.approx(loss.value(A, Y, np.empty_like(A)))
