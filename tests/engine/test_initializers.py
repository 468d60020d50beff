import numpy as np
import pytest

from nnctl.engine.initializers import INITIALIZERS, default_init


@pytest.mark.parametrize(("name", "variance"), [
    ("he_normal", 2 / 400), ("he_uniform", 2 / 400),
    ("glorot_normal", 2 / 600), ("glorot_uniform", 2 / 600),
])
def test_variance_follows_the_fans(name, variance, rng):
    W = np.empty((400, 200))
    INITIALIZERS[name](W, rng)
    assert W.var() == pytest.approx(variance, rel=0.05)
    assert abs(W.mean()) < 0.01


def test_same_generator_state_same_weights():
    a, b = np.empty((5, 3)), np.empty((5, 3))
    INITIALIZERS["he_normal"](a, np.random.default_rng(7))
    INITIALIZERS["he_normal"](b, np.random.default_rng(7))
    np.testing.assert_array_equal(a, b)


def test_auto_init_by_activation():
    assert default_init("relu") == "he_normal"
    assert default_init("tanh") == "glorot_uniform"
