import numpy as np
import pytest

from nnctl.engine.activations import ACTIVATIONS

from gradcheck import numerical_gradient


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_backward_matches_finite_differences(name, rng):
    """backward(A, dL/dA) must equal d(sum(G * f(Z)))/dZ computed numerically, for a random G."""
    act = ACTIVATIONS[name]
    Z = rng.standard_normal((5, 4)) * 2
    Z[np.abs(Z) < 1e-3] = 0.5  # keep away from ReLU's kink, where the derivative is undefined
    G = rng.standard_normal((5, 4))

    def objective() -> float:
        return float(np.sum(G * act.forward(Z.copy())))

    expected = numerical_gradient(objective, Z)
    A = act.forward(Z.copy())
    delta = G.copy()
    act.backward(A, delta, np.empty_like(A))
    np.testing.assert_allclose(delta, expected, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_forward_is_in_place_and_keeps_dtype(name, rng):
    act = ACTIVATIONS[name]
    Z = rng.standard_normal((3, 4)).astype(np.float32)
    A = act.forward(Z, np.empty_like(Z))
    assert A.dtype == np.float32
    assert np.shares_memory(A, Z)


def test_known_values():
    Z = np.array([[-2.0, 0.0, 3.0]])
    np.testing.assert_allclose(ACTIVATIONS["relu"].forward(Z.copy()), [[0, 0, 3]])
    np.testing.assert_allclose(ACTIVATIONS["leaky_relu"].forward(Z.copy()), [[-0.02, 0, 3]])
    np.testing.assert_allclose(ACTIVATIONS["sigmoid"].forward(Z.copy()), 1 / (1 + np.exp(-Z)))
    np.testing.assert_allclose(ACTIVATIONS["tanh"].forward(Z.copy()), np.tanh(Z))
    np.testing.assert_allclose(ACTIVATIONS["softmax"].forward(Z.copy()), np.exp(Z) / np.exp(Z).sum())
    np.testing.assert_allclose(ACTIVATIONS["exp"].forward(Z.copy()), [[np.exp(-2), 1, np.exp(3)]])
    np.testing.assert_allclose(ACTIVATIONS["softplus"].forward(Z.copy()), np.log1p(np.exp(Z)))
    np.testing.assert_allclose(ACTIVATIONS["softplus"].forward(Z.copy()), [[0.126928011, np.log(2), 3.048587352]])


def test_extreme_inputs_stay_finite():
    Z = np.array([[-1000.0, 0.0, 1000.0]], dtype=np.float32)
    for name in ("sigmoid", "softmax", "tanh", "exp", "softplus"):
        A = ACTIVATIONS[name].forward(Z.copy())
        assert np.all(np.isfinite(A)), name
        delta = np.ones_like(A)
        ACTIVATIONS[name].backward(A, delta, np.empty_like(A))
        assert np.all(np.isfinite(delta)), name
    np.testing.assert_array_equal(ACTIVATIONS["softmax"].forward(Z.copy()), [[0, 0, 1]])
    # exp clips Z at its limit; softplus is Z itself for large Z and 0 (not NaN) for very negative Z
    np.testing.assert_allclose(ACTIVATIONS["exp"].forward(Z.copy()), [[0, 1, np.exp(np.float32(30))]], rtol=1e-6)
    np.testing.assert_allclose(ACTIVATIONS["softplus"].forward(Z.copy()), [[0, np.log(2), 1000]], rtol=1e-6)


@pytest.mark.parametrize("name", ["exp", "softplus"])
def test_positive_outputs_for_counts(name, rng):
    """The outputs poisson needs: positive rates, in float32 too, wherever Z is."""
    Z = (rng.standard_normal((50, 3)) * 20).astype(np.float32)
    A = ACTIVATIONS[name].forward(Z.copy(), np.empty_like(Z))
    assert np.all(A >= 0) and np.all(np.isfinite(A))
    assert np.all(A[Z > -80] > 0)  # exp(-80), softplus(-80) ~ 1.8e-35: still a positive float32
