"""The bound training pass (engine/passes.py) against the unbound activations and losses it binds, and its caching."""

import numpy as np
import pytest

from nnctl.engine import passes
from nnctl.engine.activations import ACTIVATIONS
from nnctl.engine.losses import LOSSES
from nnctl.engine.network import Network, Workspace
from nnctl.engine.passes import product

OUTPUTS = {"cross_entropy": "softmax", "binary_cross_entropy": "sigmoid", "mse": "identity", "poisson": "exp"}


def _activated(name: str, rng: np.random.Generator, shape: tuple[int, int] = (9, 4)) -> tuple[np.ndarray, np.ndarray]:
    """A pre-activation Z with zeros, negative zeros and large values in it, and its activation A (float32)."""
    Z = (rng.standard_normal(shape) * 3).astype(np.float32)
    Z[0, :2] = 0.0
    Z[1, :2] = -0.0
    Z[2, 0] = 60.0
    return Z, ACTIVATIONS[name].forward(Z.copy(), np.empty_like(Z))


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_bound_forward_is_forward_bit_for_bit(name, rng):
    act = ACTIVATIONS[name]
    Z, expected = _activated(name, rng)
    buffer, scratch = Z.copy(), np.empty_like(Z)
    bound = act.bind_forward(buffer, scratch)
    for _ in range(2):  # bound once, called again and again on new contents
        buffer[...] = Z
        out = bound()
        assert out is buffer
        assert out.tobytes() == expected.tobytes()


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_bound_backward_is_backward_bit_for_bit(name, rng):
    """The bound backward runs after the bound forward on the same buffers (ReLU's forward leaves its mask in
    scratch): with the scratch overwritten in between by anything else, and for two batches in a row."""
    act = ACTIVATIONS[name]
    Z_buffer, scratch = np.empty((9, 4), np.float32), np.empty((9, 4), np.float32)
    delta_buffer = np.empty_like(Z_buffer)
    forward, backward = act.bind_forward(Z_buffer, scratch), act.bind_backward(Z_buffer, delta_buffer, scratch)
    for _ in range(2):
        Z, A = _activated(name, rng)
        delta = rng.standard_normal(A.shape).astype(np.float32)
        expected = delta.copy()
        act.backward(A, expected, np.empty_like(A))
        Z_buffer[...] = Z
        forward()
        delta_buffer[...] = delta
        backward()
        assert delta_buffer.tobytes() == expected.tobytes()
        scratch[...] = np.nan  # whatever used scratch since: the next forward makes what its backward needs


@pytest.mark.parametrize("loss_name", sorted(LOSSES))
@pytest.mark.parametrize("weighted", [False, True])
def test_bound_output_delta_is_output_delta_bit_for_bit(loss_name, weighted, rng):
    """Fused losses through their matching activation, and every loss through a non-matching one."""
    loss = LOSSES[loss_name]
    for act_name in {OUTPUTS.get(loss_name, "identity"), "sigmoid"}:
        act = ACTIVATIONS[act_name]
        if loss.allowed_activations and act_name not in loss.allowed_activations:
            continue
        _, A = _activated(act_name, rng, (8, 1 if loss.binary else 3))
        Y = (rng.random(A.shape) < 0.5).astype(np.float32) if loss.task == "classification" else \
            rng.poisson(2.0, A.shape).astype(np.float32)
        w = rng.random(len(A)).astype(np.float32) if weighted else None
        expected = np.empty_like(A)
        loss.output_delta(A, Y, act, expected, np.empty_like(A), w)
        out = np.empty_like(A)
        bound = loss.bind_output_delta(A, act, out, np.empty_like(A))
        bound(Y, w)
        assert out.tobytes() == expected.tobytes(), (loss_name, act_name)


def test_a_pass_per_batch_size_and_network(rng):
    net = Network([3, 5, 2], ["relu", "softmax"], "float32")
    net.initialise(["he_normal", "glorot_uniform"], rng)
    ws = Workspace(net.sizes, 8, net.dtype)
    full, short = ws.training_pass(net, 8), ws.training_pass(net, 3)
    assert ws.training_pass(net, 8) is full and short is not full and short.m == 3
    other = Network([3, 5, 2], ["relu", "softmax"], "float32")
    assert ws.training_pass(other, 8).network is other  # never a pass bound to another network's weights


def test_a_short_batch_after_full_ones_gets_its_own_gradients(rng):
    """A full batch, then the short last batch: each pass's gradients equal a fresh workspace's for its rows."""
    net = Network([4, 6, 3], ["tanh", "softmax"], "float64")
    net.initialise(["glorot_normal"] * 2, rng)
    loss = LOSSES["cross_entropy"]
    X = rng.standard_normal((11, 4))
    Y = np.eye(3)[rng.integers(0, 3, 11)]
    ws = Workspace(net.sizes, 8, net.dtype)
    for rows in (slice(0, 8), slice(8, 11)):
        net.forward_train(ws, X[rows])
        net.backward(ws, X[rows], Y[rows], loss)
        got = net.grads.copy()
        fresh = Workspace(net.sizes, 8, net.dtype)
        net.forward_train(fresh, X[rows])
        net.backward(fresh, X[rows], Y[rows], loss)
        np.testing.assert_array_equal(got, net.grads)
        # and the bias gradient (ones @ delta, a BLAS sum) is the column sum of the output delta
        delta = (net.forward(X[rows]) - Y[rows]) / (rows.stop - rows.start)
        np.testing.assert_allclose(net.db[-1], delta.sum(axis=0), rtol=1e-12, atol=1e-15)


def test_products_go_through_matmul_from_32_kb_of_output():
    """np.dot zero-fills its output before the sgemm: from 32 KB of output the pass uses np.matmul instead."""
    assert product(np.empty((64, 128), np.float32)) is np.matmul  # 32 KB
    assert product(np.empty((64, 127), np.float32)) is np.dot
    assert product(np.empty((64, 64), np.float64)) is np.matmul
    assert product(np.empty((32, 64), np.float32)) is np.dot  # a W1 hidden layer


@pytest.mark.parametrize("dropout", [False, True])
def test_matmul_products_give_the_bits_of_dot(dropout, rng, monkeypatch):
    """A network whose big products go through np.matmul computes the same outputs and gradients, bit for bit, as
    the same pass with every product through np.dot (a float32 W2-like shape: the same sgemm either way)."""
    rates = [0.2, 0.1, 0.0] if dropout else None
    net = Network([300, 256, 64, 10], ["relu", "relu", "softmax"], "float32", dropout=rates)
    net.initialise(["he_normal", "he_normal", "glorot_uniform"], rng)
    loss = LOSSES["cross_entropy"]
    X = rng.standard_normal((128, 300), dtype=np.float32)
    Y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, 128)]

    def run(seed: int) -> tuple[bytes, bytes]:
        ws = Workspace(net.sizes, 128, net.dtype, net.dropout)
        A = net.forward_train(ws, X, np.random.default_rng(seed) if dropout else None)
        net.backward(ws, X, Y, loss, dropout=dropout)
        return A.tobytes(), net.grads.tobytes()

    step = Workspace(net.sizes, 128, net.dtype, net.dropout).training_pass(net, 128)
    assert {p for *_, p in step.layers} == {np.matmul, np.dot}  # the hidden layers' outputs are 32 KB or more
    with_matmul = run(7)
    monkeypatch.setattr(passes, "MATMUL_FROM", 1 << 62)
    assert run(7) == with_matmul
