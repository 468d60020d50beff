import numpy as np
import pytest

from nnctl.engine.losses import LOSSES
from nnctl.engine.network import Network, Workspace, parameter_count
from nnctl.engine.optimizers import SGD

from gradcheck import numerical_gradient

CASES = [
    ("cross_entropy", ["relu", "tanh", "softmax"], 3),
    ("binary_cross_entropy", ["leaky_relu", "sigmoid"], 1),
    ("mse", ["tanh", "sigmoid", "identity"], 2),
    ("mse", ["sigmoid", "relu", "sigmoid"], 2),  # mse through a non-matching output activation
    ("mae", ["softplus", "identity"], 2),
    ("huber", ["tanh", "exp", "identity"], 2),
    ("poisson", ["relu", "tanh", "exp"], 1),  # fused: (A - Y) / n
    ("poisson", ["softplus", "softplus"], 2),  # through softplus' derivative
]


def _data(loss: str, n_out: int, rng: np.random.Generator, n: int = 7) -> tuple[np.ndarray, np.ndarray]:
    X = rng.standard_normal((n, 4))
    if loss == "cross_entropy":
        return X, np.eye(n_out)[rng.integers(0, n_out, n)]
    if loss == "binary_cross_entropy":
        return X, rng.integers(0, 2, (n, 1)).astype(float)
    if loss == "poisson":
        return X, rng.poisson(2.0, (n, n_out)).astype(float)
    return X, rng.standard_normal((n, n_out))


@pytest.mark.parametrize(("loss_name", "activations", "n_out"), CASES)
def test_backprop_matches_finite_differences(loss_name, activations, n_out, rng):
    """Every dW and db of a whole multi-layer network against central differences (float64)."""
    sizes = [4] + [5] * (len(activations) - 1) + [n_out]
    net = Network(sizes, activations, "float64")
    net.initialise(["glorot_normal"] * len(activations), rng)
    net.params[:] += rng.standard_normal(net.params.size) * 0.1  # non-zero biases too
    loss = LOSSES[loss_name]
    X, Y = _data(loss_name, n_out, rng)

    def objective() -> float:
        A = net.forward(X)
        return loss.value(A, Y, np.empty_like(A))

    expected = numerical_gradient(objective, net.params)
    ws = Workspace(net.sizes, len(X), net.dtype)
    net.forward_train(ws, X)
    net.backward(ws, X, Y, loss)
    np.testing.assert_allclose(net.grads, expected, rtol=1e-5, atol=1e-8)


def test_forward_train_equals_forward_and_reuses_buffers(rng):
    net = Network([3, 6, 2], ["relu", "softmax"], "float32")
    net.initialise(["he_normal", "glorot_uniform"], rng)
    X = rng.standard_normal((10, 3)).astype(np.float32)
    ws = Workspace(net.sizes, 16, net.dtype)
    out = net.forward_train(ws, X)
    np.testing.assert_allclose(out, net.forward(X), rtol=1e-6)
    assert np.shares_memory(out, ws.A[2])  # written into the workspace, not a fresh array


def test_params_are_views_of_one_flat_buffer():
    net = Network([3, 4, 2], ["relu", "identity"])
    assert net.params.size == parameter_count([3, 4, 2]) == 3 * 4 + 4 + 4 * 2 + 2
    net.W[1][0, 0] = 7.0
    assert 7.0 in net.params
    assert all(np.shares_memory(g, net.grads) for g in net.dW + net.db)


def test_one_sgd_step_by_hand():
    """A 1-input, 1-hidden-unit, 1-output network with identity activations and mse, worked by hand.

    x = 2, y = 1, w1 = 0.5, b1 = 0, w2 = 3, b2 = 1:
      z1 = 1, a1 = 1, z2 = 4, loss = (4 - 1)^2 = 9
      dL/dz2 = 2 (4 - 1) = 6 -> dw2 = a1 * 6 = 6, db2 = 6
      dL/da1 = 6 * w2 = 18 -> dw1 = x * 18 = 36, db1 = 18
    With learning rate 0.1: w1 = 0.5 - 3.6 = -3.1, b1 = -1.8, w2 = 3 - 0.6 = 2.4, b2 = 1 - 0.6 = 0.4.
    """
    net = Network([1, 1, 1], ["identity", "identity"], "float64")
    net.W[0][0, 0], net.b[0][0], net.W[1][0, 0], net.b[1][0] = 0.5, 0.0, 3.0, 1.0
    X, Y = np.array([[2.0]]), np.array([[1.0]])
    ws = Workspace(net.sizes, 1, net.dtype)
    A = net.forward_train(ws, X)
    assert LOSSES["mse"].value(A, Y, np.empty_like(A)) == 9.0
    net.backward(ws, X, Y, LOSSES["mse"])
    assert (net.dW[0][0, 0], net.db[0][0], net.dW[1][0, 0], net.db[1][0]) == (36.0, 18.0, 6.0, 6.0)
    SGD(net.params, learning_rate=0.1).step(net.grads)
    np.testing.assert_allclose([net.W[0][0, 0], net.b[0][0], net.W[1][0, 0], net.b[1][0]],
                               [-3.1, -1.8, 2.4, 0.4])


def test_partial_last_batch_uses_buffer_prefix(rng):
    """A batch smaller than the workspace gives the same gradients as a workspace of its exact size."""
    net = Network([3, 5, 2], ["tanh", "softmax"], "float64")
    net.initialise(["glorot_uniform"] * 2, rng)
    X, Y = rng.standard_normal((3, 3)), np.eye(2)[[0, 1, 1]]
    grads = []
    for capacity in (3, 8):
        ws = Workspace(net.sizes, capacity, net.dtype)
        net.forward_train(ws, X)
        net.backward(ws, X, Y, LOSSES["cross_entropy"])
        grads.append(net.grads.copy())
    np.testing.assert_array_equal(grads[0], grads[1])


def test_backprop_through_dropout_and_row_weights_matches_finite_differences(rng):
    """With the same dropout masks (same generator seed) the loss is a smooth function of the parameters."""
    net = Network([4, 6, 5, 3], ["tanh", "relu", "softmax"], "float64", dropout=[0.5, 0.25, 0.0])
    net.initialise(["glorot_normal"] * 3, rng)
    net.params[:] += rng.standard_normal(net.params.size) * 0.1
    X, Y = rng.standard_normal((9, 4)), np.eye(3)[rng.integers(0, 3, 9)]
    w = rng.random(9) + 0.5
    loss = LOSSES["cross_entropy"]
    ws = net.workspace(9)

    def objective() -> float:
        A = net.forward_train(ws, X, np.random.default_rng(5))
        return loss.value(A, Y, np.empty_like(A), w)

    expected = numerical_gradient(objective, net.params)
    net.forward_train(ws, X, np.random.default_rng(5))
    net.backward(ws, X, Y, loss, w, dropout=True)
    np.testing.assert_allclose(net.grads, expected, rtol=1e-5, atol=1e-8)
    assert ws.mask[1] is not None and (ws.mask[1][:9] == 0).any()  # some units really were dropped


def test_dropout_is_inverted_and_training_only(rng):
    net = Network([50, 400, 2], ["relu", "softmax"], "float64", dropout=[0.3, 0.0])
    net.initialise(["he_normal", "glorot_uniform"], rng)
    X = np.abs(rng.standard_normal((200, 50)))
    ws = net.workspace(200)
    net.forward_train(ws, X, rng)
    mask = ws.mask[1][:200]
    assert set(np.unique(mask)) == {0.0, 1 / 0.7}
    assert abs((mask == 0).mean() - 0.3) < 0.01
    np.testing.assert_allclose(net.forward_train(ws, X), net.forward(X))  # no rng: no dropout


def test_weights_come_first_in_the_flat_buffer():
    net = Network([3, 4, 2], ["relu", "identity"])
    assert net.n_weights == 3 * 4 + 4 * 2
    assert all(np.shares_memory(W, net.params[: net.n_weights]) for W in net.W)
    assert not any(np.shares_memory(b, net.params[: net.n_weights]) for b in net.b)
