import math

import numpy as np

from nnctl.optimizers import OPTIMIZERS, SGD, Adam


def test_sgd_step():
    params = np.array([1.0, -2.0])
    SGD(params, learning_rate=0.5).step(np.array([0.2, -0.4]))
    np.testing.assert_allclose(params, [0.9, -1.8])


def test_adam_two_steps_by_hand():
    """Kingma & Ba's Algorithm 1, computed by hand for one parameter and gradients 0.5 then -1."""
    lr, b1, b2, eps = 0.1, 0.9, 0.999, 1e-8
    params = np.array([1.0])
    opt = Adam(params, learning_rate=lr, beta1=b1, beta2=b2, eps=eps)
    opt.step(np.array([0.5]))
    # m = 0.05, v = 0.00025; m_hat = 0.5, v_hat = 0.25 -> step = 0.1 * 0.5 / (0.5 + eps)
    expected = 1.0 - lr * 0.5 / (0.5 + eps)
    np.testing.assert_allclose(params, [expected], rtol=1e-12)
    opt.step(np.array([-1.0]))
    m = 0.9 * 0.05 + 0.1 * -1.0
    v = 0.999 * 0.00025 + 0.001 * 1.0
    m_hat, v_hat = m / (1 - b1**2), v / (1 - b2**2)
    expected -= lr * m_hat / (math.sqrt(v_hat) + eps)
    np.testing.assert_allclose(params, [expected], rtol=1e-12)
    assert opt.t == 2


def test_state_round_trip_continues_identically():
    grads = [np.array([0.3, -0.1]), np.array([-0.2, 0.4]), np.array([0.05, 0.05])]
    a = np.array([1.0, 2.0])
    straight = Adam(a, learning_rate=0.01)
    for g in grads:
        straight.step(g)
    b = np.array([1.0, 2.0])
    first = Adam(b, learning_rate=0.01)
    first.step(grads[0])
    second = Adam(b, learning_rate=0.01)
    second.load_state({k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in first.state().items()})
    for g in grads[1:]:
        second.step(g)
    np.testing.assert_array_equal(a, b)


def test_updates_are_in_place_and_keep_dtype():
    for cls in OPTIMIZERS.values():
        params = np.ones(4, np.float32)
        cls(params).step(np.full(4, 0.5, np.float32))
        assert params.dtype == np.float32
        assert np.all(params < 1)
