import numpy as np
import pytest

from nnctl.engine.activations import ACTIVATIONS
from nnctl.engine.losses import LOSSES, build_loss

from gradcheck import numerical_gradient


def _targets(name: str, rng: np.random.Generator, n: int = 6, k: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Outputs A in the loss's natural range, and matching targets Y."""
    if name == "cross_entropy":
        A = ACTIVATIONS["softmax"].forward(rng.standard_normal((n, k)))
        Y = np.eye(k)[rng.integers(0, k, n)]
    elif name == "binary_cross_entropy":
        A = ACTIVATIONS["sigmoid"].forward(rng.standard_normal((n, 1)))
        Y = rng.integers(0, 2, (n, 1)).astype(float)
    elif name == "poisson":  # rates > 0 and counts, zeros included
        A = ACTIVATIONS["exp"].forward(rng.standard_normal((n, k)))
        Y = rng.poisson(1.5, (n, k)).astype(float)
    elif name in ("mae", "huber"):  # residuals away from the kinks (0; ±delta), where the gradient jumps
        A = rng.standard_normal((n, k))
        sign = rng.choice([-1.0, 1.0], (n, k))
        Y = A + sign * rng.choice([0.3, 0.7, 2.5], (n, k))
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
    A, Y = np.array([[1.0, -2.0], [0.5, 4.0]]), np.array([[0.0, 1.0], [0.5, 0.0]])
    assert LOSSES["mae"].value(A, Y, np.empty_like(A)) == (1 + 3 + 0 + 4) / 4
    # residuals 1, -3, 0, 4 with delta 1.5: 1²/2, 1.5 (3 - 0.75), 0, 1.5 (4 - 0.75)
    huber = build_loss("huber", delta=1.5)
    assert huber.value(A, Y, np.empty_like(A)) == pytest.approx((0.5 + 1.5 * 2.25 + 0 + 1.5 * 3.25) / 4)
    assert LOSSES["huber"].value(A, Y, np.empty_like(A)) == pytest.approx((0.5 + 2.5 + 0 + 3.5) / 4)  # delta 1
    # half the Poisson deviance: rate 2 for a count of 3, rate 0.5 for a count of 0 (0 log 0 = 0)
    rate, count = np.array([[2.0], [0.5]]), np.array([[3.0], [0.0]])
    assert LOSSES["poisson"].value(rate, count, np.empty_like(rate)) == pytest.approx(
        ((2 - 3 + 3 * np.log(3 / 2)) + 0.5) / 2)


def test_poisson_is_half_the_deviance_and_zero_for_a_perfect_fit(rng):
    """2 L is scikit-learn's mean_poisson_deviance: 2 mean(y log(y / mu) - y + mu); 0 when the rates are the counts."""
    counts = rng.poisson(3.0, (50, 1)).astype(float)
    rates = rng.gamma(2.0, 1.5, (50, 1))
    safe = np.where(counts > 0, counts, 1.0)
    deviance = 2 * np.mean(np.where(counts > 0, counts * np.log(safe / rates), 0.0) - counts + rates)
    assert 2 * LOSSES["poisson"].value(rates, counts, np.empty_like(rates)) == pytest.approx(deviance)
    positive = counts + 1
    assert LOSSES["poisson"].value(positive, positive, np.empty_like(positive)) == pytest.approx(0, abs=1e-12)


def test_mae_subgradient_is_zero_where_the_residual_is():
    A, Y = np.array([[1.0, 2.0, 3.0]]), np.array([[1.0, 0.0, 5.0]])
    grad = np.empty_like(A)
    LOSSES["mae"].gradient(A, Y, grad)
    np.testing.assert_array_equal(grad, [[0.0, 1 / 3, -1 / 3]])


def test_huber_is_mse_for_small_residuals_and_mae_for_large_ones(rng):
    A = rng.standard_normal((5, 2)) * 0.1
    Y = np.zeros_like(A)
    huber = build_loss("huber", delta=1.0)
    assert huber.value(A, Y, np.empty_like(A)) == pytest.approx(LOSSES["mse"].value(A, Y, np.empty_like(A)) / 2)
    far = A + 100 * np.sign(A)
    # delta (|r| - delta/2) = mae - 1/2 when every |r| > 1
    assert huber.value(far, Y, np.empty_like(A)) == pytest.approx(LOSSES["mae"].value(far, Y, np.empty_like(A)) - 0.5)
    with pytest.raises(ValueError, match="delta must be > 0"):
        build_loss("huber", delta=0.0)


@pytest.mark.parametrize("delta", [0.2, 1.0, 3.0])
def test_huber_gradient_for_each_delta(delta, rng):
    loss = build_loss("huber", delta=delta)
    A = rng.standard_normal((6, 2)) * 2
    Y = A + rng.choice([-1.0, 1.0], A.shape) * rng.choice([0.5 * delta, 1.5 * delta], A.shape)
    expected = numerical_gradient(lambda: loss.value(A, Y, np.empty_like(A)), A)
    grad = np.empty_like(A)
    loss.gradient(A, Y, grad)
    np.testing.assert_allclose(grad, expected, rtol=1e-5, atol=1e-8)


def test_poisson_through_softplus_takes_the_general_route(rng):
    """poisson's other allowed output: dL/dA through softplus' derivative, against finite differences."""
    loss, act = LOSSES["poisson"], ACTIVATIONS["softplus"]
    Y = rng.poisson(2.0, (6, 1)).astype(float)
    Z = rng.standard_normal(Y.shape) * 2
    expected = numerical_gradient(lambda: loss.value(act.forward(Z.copy()), Y, np.empty_like(Z)), Z)
    A = act.forward(Z.copy())
    delta = np.empty_like(A)
    loss.output_delta(A, Y, act, delta, np.empty_like(A))
    np.testing.assert_allclose(delta, expected, rtol=1e-5, atol=1e-8)


def test_saturated_outputs_give_finite_losses():
    A = np.array([[1.0, 0.0]], dtype=np.float32)
    Y = np.array([[0.0, 1.0]], dtype=np.float32)
    assert np.isfinite(LOSSES["cross_entropy"].value(A, Y, np.empty_like(A)))
    p, y = np.array([[1.0]], np.float32), np.array([[0.0]], np.float32)
    assert np.isfinite(LOSSES["binary_cross_entropy"].value(p, y, np.empty_like(p)))
    # a rate that underflowed to 0 (softplus of a very negative Z): finite loss and finite delta
    rate, count = np.array([[0.0], [1e30]], np.float32), np.array([[4.0], [0.0]], np.float32)
    poisson = LOSSES["poisson"]
    assert np.isfinite(poisson.value(rate, count, np.empty_like(rate)))
    delta = np.empty_like(rate)
    poisson.output_delta(rate, count, ACTIVATIONS["softplus"], delta, np.empty_like(rate))
    assert np.all(np.isfinite(delta))


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
