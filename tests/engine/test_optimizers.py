import math

import numpy as np
import pytest

from nnctl.engine import optimizers
from nnctl.engine.optimizers import OPTIMIZERS, SGD, Adam, AdamW, RMSprop


def _copied(state: dict) -> dict:
    """An optimizer's state with its arrays copied (`state()` refers to the live buffers)."""
    return {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in state.items()}


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
    second.load_state(_copied(first.state()))
    for g in grads[1:]:
        second.step(g)
    np.testing.assert_array_equal(a, b)


def test_adam_loads_the_textbook_moments_of_older_checkpoints():
    """Checkpoints written before the undamped form hold m and v; resuming from them continues the same run."""
    grads = [np.array([0.3, -0.1]), np.array([-0.2, 0.4]), np.array([0.05, 0.05])]
    a, b = np.array([1.0, 2.0]), np.array([1.0, 2.0])
    straight = Adam(a, learning_rate=0.01)
    first = Adam(b, learning_rate=0.01)
    straight.step(grads[0])
    first.step(grads[0])
    old_format = {"t": 1, "m": first.m_acc * (1 - 0.9), "v": first.v_acc * (1 - 0.999)}
    second = Adam(b, learning_rate=0.01)
    second.load_state(old_format)
    for g in grads[1:]:
        straight.step(g)
        second.step(g)
    np.testing.assert_allclose(a, b, rtol=1e-14)


def test_updates_are_in_place_and_keep_dtype():
    for cls in OPTIMIZERS.values():
        params = np.ones(4, np.float32)
        cls(params).step(np.full(4, 0.5, np.float32))
        assert params.dtype == np.float32
        assert np.all(params < 1)


def test_sgd_momentum_by_hand():
    """PyTorch's rule: buf = g on the first step, then buf = mu buf + g; params -= lr buf."""
    params = np.array([1.0])
    opt = SGD(params, learning_rate=0.1, momentum=0.9)
    opt.step(np.array([1.0]))
    np.testing.assert_allclose(params, [0.9])  # buf = 1
    opt.step(np.array([0.5]))
    np.testing.assert_allclose(params, [0.9 - 0.1 * 1.4])  # buf = 0.9 * 1 + 0.5


def test_sgd_nesterov_by_hand():
    """Nesterov: the step uses g + mu buf."""
    params = np.array([1.0])
    opt = SGD(params, learning_rate=0.1, momentum=0.9, nesterov=True)
    opt.step(np.array([1.0]))
    np.testing.assert_allclose(params, [1.0 - 0.1 * 1.9])  # buf = 1, g + mu buf = 1.9
    opt.step(np.array([0.5]))
    np.testing.assert_allclose(params, [0.81 - 0.1 * (0.5 + 0.9 * 1.4)])  # buf = 1.4


def test_sgd_nesterov_needs_momentum():
    with pytest.raises(ValueError, match="momentum"):
        SGD(np.zeros(1), nesterov=True)


def test_weight_decay_is_coupled_l2_on_the_weights_only():
    params = np.array([2.0, 3.0])  # one weight, then one bias
    opt = SGD(params, learning_rate=0.5, weight_decay=0.1)
    opt.decay_size = 1
    grads = np.zeros(2)
    opt.step(grads)
    # the gradient of 0.1/2 * w^2 is 0.1 * w = 0.2; the bias is not decayed
    np.testing.assert_allclose(params, [2.0 - 0.5 * 0.2, 3.0])


def test_adam_weight_decay_enters_the_moments():
    params = np.array([1.0])
    Adam(params, learning_rate=0.1, weight_decay=0.1).step(np.array([0.0]))
    # g = 0 + 0.1 * 1 -> m_hat = 0.1, v_hat = 0.01 -> step = lr * 0.1 / (0.1 + eps)
    np.testing.assert_allclose(params, [1.0 - 0.1 * 0.1 / (0.1 + 1e-8)], rtol=1e-12)


def test_adamw_decay_is_decoupled_by_hand():
    """Loshchilov & Hutter: params *= 1 - lr * wd, then the plain Adam step on the raw gradient."""
    params = np.array([1.0, 1.0])
    opt = AdamW(params, learning_rate=0.1, weight_decay=0.1)
    opt.decay_size = 1
    opt.step(np.array([0.5, 0.5]))
    adam_step = 0.1 * 0.5 / (0.5 + 1e-8)
    np.testing.assert_allclose(params, [1.0 * (1 - 0.01) - adam_step, 1.0 - adam_step], rtol=1e-12)
    assert AdamW(np.zeros(1)).weight_decay == 0.01  # AdamW's usual default


def test_rmsprop_two_steps_by_hand():
    lr, rho, eps = 0.01, 0.9, 1e-8
    params = np.array([1.0])
    opt = RMSprop(params, learning_rate=lr, rho=rho, eps=eps)
    opt.step(np.array([2.0]))
    expected = 1.0 - lr * 2.0 / (math.sqrt(0.4) + eps)  # v = 0.1 * 4
    np.testing.assert_allclose(params, [expected], rtol=1e-12)
    opt.step(np.array([-1.0]))
    expected += lr * 1.0 / (math.sqrt(0.9 * 0.4 + 0.1) + eps)  # v = 0.46
    np.testing.assert_allclose(params, [expected], rtol=1e-12)


def test_rmsprop_momentum_by_hand():
    lr, eps = 0.01, 1e-8
    params = np.array([1.0])
    opt = RMSprop(params, learning_rate=lr, momentum=0.5, eps=eps)
    opt.step(np.array([2.0]))
    s1 = 2.0 / (math.sqrt(0.4) + eps)
    opt.step(np.array([-1.0]))
    s2 = -1.0 / (math.sqrt(0.46) + eps)
    np.testing.assert_allclose(params, [1.0 - lr * s1 - lr * (0.5 * s1 + s2)], rtol=1e-12)


@pytest.mark.parametrize(("name", "kwargs"), [("sgd", {"momentum": 0.9, "nesterov": True}), ("adam", {}),
                                              ("adamw", {}), ("rmsprop", {"momentum": 0.5}), ("sgd", {})])
def test_every_optimizer_resumes_identically(name, kwargs):
    rng = np.random.default_rng(0)
    grads = [rng.standard_normal(3) for _ in range(4)]
    a = np.ones(3)
    straight = OPTIMIZERS[name](a, learning_rate=0.05, **kwargs)
    for g in grads:
        straight.step(g.copy())
    b = np.ones(3)
    first = OPTIMIZERS[name](b, learning_rate=0.05, **kwargs)
    for g in grads[:2]:
        first.step(g.copy())
    second = OPTIMIZERS[name](b, learning_rate=0.05, **kwargs)
    second.load_state(_copied(first.state()))
    for g in grads[2:]:
        second.step(g.copy())
    np.testing.assert_array_equal(a, b)


def test_invalid_hyperparameters_raise_value_error():
    for build in (lambda: Adam(np.zeros(1), beta1=1.0), lambda: RMSprop(np.zeros(1), rho=1.5),
                  lambda: SGD(np.zeros(1), learning_rate=0), lambda: SGD(np.zeros(1), weight_decay=-1)):
        with pytest.raises(ValueError):
            build()


@pytest.mark.parametrize(("name", "kwargs"), [("sgd", {"momentum": 0.9, "nesterov": True, "weight_decay": 0.1}),
                                              ("adam", {"weight_decay": 0.1}), ("adamw", {"weight_decay": 0.1}),
                                              ("rmsprop", {"momentum": 0.5, "weight_decay": 0.1}), ("sgd", {})])
def test_a_step_block_by_block_is_the_whole_buffer_step_bit_for_bit(name, kwargs, monkeypatch):
    """Blocks of 7 entries over 50 parameters, weight decay on the first 23 (inside the fourth block), against one
    block of all 50: every update is elementwise, so the bits are the same."""
    rng = np.random.default_rng(0)
    start = rng.standard_normal(50).astype(np.float32)
    grads = [rng.standard_normal(50).astype(np.float32) for _ in range(3)]
    results = []
    for block in (7, 10**9):
        monkeypatch.setattr(optimizers, "BLOCK", block)
        params = start.copy()
        opt = OPTIMIZERS[name](params, learning_rate=0.05, **kwargs)
        opt.decay_size = 23
        g = np.empty_like(params)
        for step in grads:
            g[...] = step  # one grads buffer, as the training loop has
            opt.step(g)
        results.append((params.tobytes(), *(v.tobytes() for v in opt.state().values() if isinstance(v, np.ndarray))))
    assert results[0] == results[1]


def _dying_run(name: str, kwargs: dict, flush_every: int | None) -> tuple[np.ndarray, list[np.ndarray]]:
    """40 float32 parameters with gradient throughout, and 10 more (a unit that died) with gradient of 1e-25 for 10
    steps and none after: their state decays into the subnormal range within 500 steps. Runs 10 flush periods."""
    rng = np.random.default_rng(1)
    params = rng.standard_normal(50).astype(np.float32)
    opt = OPTIMIZERS[name](params, learning_rate=0.01, **kwargs)
    opt.flush_every = flush_every
    g = np.empty_like(params)
    for t in range(10 * optimizers.FLUSH_EVERY):
        g[...] = rng.standard_normal(50).astype(np.float32) * np.float32(1e-3)
        g[40:] = np.float32(1e-25) if t < 10 else 0
        opt.step(g)
    return params, [v for v in opt.state().values() if isinstance(v, np.ndarray)]


def _subnormal(a: np.ndarray) -> int:
    return int(((a != 0) & (np.abs(a) < np.finfo(a.dtype).tiny)).sum())


@pytest.mark.parametrize(("name", "kwargs"), [("adam", {}), ("adamw", {}), ("rmsprop", {"momentum": 0.9}),
                                              ("sgd", {"momentum": 0.9})])
def test_subnormal_state_is_flushed_and_the_weights_are_those_of_the_unflushed_run(name, kwargs):
    """Without the flush the dead entries' state sticks in the subnormal range (0.9 x 1-4 of the smallest subnormal
    rounds back to itself), where a multiply costs 30 times a normal one; with it they are 0 after each flush, and
    the weights are bit for bit those of the run that kept them."""
    kept, unflushed = _dying_run(name, kwargs, None)
    params, flushed = _dying_run(name, kwargs, optimizers.FLUSH_EVERY)
    assert sum(_subnormal(v) for v in unflushed) > 0
    assert sum(_subnormal(v) for v in flushed) == 0
    np.testing.assert_array_equal(params, kept)


def test_the_flush_keeps_zeros_nan_inf_and_normal_values():
    params = np.zeros(6, np.float32)
    opt = Adam(params)
    tiny = np.finfo(np.float32).tiny
    values = np.array([0.0, tiny, tiny / 8, -tiny / 1024, np.nan, -np.inf], np.float32)
    opt.m_acc[...] = values
    opt._flush([opt.m_acc], opt._tmp[:6])
    np.testing.assert_array_equal(opt.m_acc, [0.0, tiny, 0.0, 0.0, np.nan, -np.inf])


def test_step_numbers_reach_numpy_as_the_floats_rounded_to_the_dtype():
    """0-d arrays of the parameters' dtype hold what NumPy would round each Python float to: the same bits as the
    textbook in-place update with Python floats."""
    rng = np.random.default_rng(2)
    for dtype in (np.float32, np.float64):
        params = rng.standard_normal(40).astype(dtype)
        p, m, v = params.copy(), np.zeros_like(params), np.zeros_like(params)
        opt = Adam(params, learning_rate=0.003)
        for t in range(1, 6):
            g = rng.standard_normal(40).astype(dtype)
            opt.step(g.copy())
            s = math.sqrt((1 - 0.999) / (1 - 0.999**t))
            m *= 0.9
            m += g
            v *= 0.999
            v += g * g
            step = m / (np.sqrt(v) + 1e-8 / s)
            step *= 0.003 * (1 - 0.9) / ((1 - 0.9**t) * s)
            p -= step
        np.testing.assert_array_equal(params, p)


def test_a_resume_across_flushes_continues_identically():
    """The flush happens at steps counted by `t`, which the state keeps: a run resumed between two flushes makes the
    same ones. Gradients of 1e-30 for 10 steps, then none: the first moment is subnormal from about step 200."""
    rng = np.random.default_rng(3)
    grads = [rng.standard_normal(8).astype(np.float32) * np.float32(1e-30 if t < 10 else 0)
             for t in range(6 * optimizers.FLUSH_EVERY)]
    a, b = np.ones(8, np.float32), np.ones(8, np.float32)
    straight, first = Adam(a), Adam(b)
    for g in grads:
        straight.step(g.copy())
    resume_at = 4 * optimizers.FLUSH_EVERY - 6
    for g in grads[:resume_at]:
        first.step(g.copy())
    assert _subnormal(first.m_acc) > 0  # resumed with subnormal state, which the next flush clears
    second = Adam(b)
    second.load_state(_copied(first.state()))
    for g in grads[resume_at:]:
        second.step(g.copy())
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(straight.m_acc, second.m_acc)
    np.testing.assert_array_equal(straight.v_acc, second.v_acc)
