"""64-byte-aligned buffers: the allocator, and every hot buffer of the network, the optimizers and the workspace."""

import numpy as np
import pytest

from nnctl.engine import aligned
from nnctl.engine.network import Network
from nnctl.engine.optimizers import OPTIMIZERS


def address(a: np.ndarray) -> int:
    return int(a.__array_interface__["data"][0])


@pytest.mark.parametrize("shape", [1, 7, 235_146, (3, 5), (128, 784), (1, 1, 3)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
def test_empty_and_zeros_start_on_a_64_byte_boundary(shape, dtype):
    for make in (aligned.empty, aligned.zeros):
        a = make(shape, dtype)
        assert address(a) % aligned.ALIGN == 0
        assert a.shape == ((shape,) if isinstance(shape, int) else shape)
        assert a.dtype == dtype
        assert a.flags.c_contiguous and a.flags.writeable
        a[...] = 1  # the whole extent is writable memory of its own
        assert a.sum() == a.size


def test_zeros_are_zero_and_zeros_like_copies_the_shape_and_dtype():
    a = aligned.zeros((64, 33), np.float32)
    assert not a.any()
    b = aligned.zeros_like(np.ones((4, 6), np.float64))
    assert b.shape == (4, 6) and b.dtype == np.float64 and not b.any()
    assert address(b) % aligned.ALIGN == 0


def test_empty_shapes_work():
    assert aligned.empty(0, np.float32).shape == (0,)
    assert aligned.zeros((0, 3), np.float32).shape == (0, 3)


def test_many_allocations_are_all_aligned():
    """glibc hands out 16-byte-aligned blocks: 16, 32 and 48 bytes past a line come up among these sizes."""
    arrays = [aligned.empty(n, np.float32) for n in range(1, 200)]
    assert all(address(a) % aligned.ALIGN == 0 for a in arrays)


def test_network_optimizer_and_workspace_buffers_are_aligned():
    net = Network([784, 256, 128, 10], ["relu", "relu", "softmax"], dtype=np.float32, dropout=[0.2, 0.0, 0.0])
    assert address(net.params) % 64 == 0 and address(net.grads) % 64 == 0
    assert address(net.W[0]) % 64 == 0  # the first layer's weights, the biggest GEMM operand, start the buffer
    ws = net.workspace(128)
    buffers = [*ws.A, *ws.delta, *ws.scratch, *(m for m in ws.mask if m is not None),
               *(d for d in ws.dropped if d is not None)]
    assert all(address(b) % 64 == 0 for b in buffers)
    for name in ("adam", "adamw", "sgd", "rmsprop"):
        options = {"momentum": 0.9} if name in ("sgd", "rmsprop") else {}
        optimizer = OPTIMIZERS[name](net.params, **options)
        state = [a for a in optimizer.state().values() if isinstance(a, np.ndarray)]
        assert state, name
        assert all(address(a) % 64 == 0 for a in [*state, optimizer._tmp]), name


def test_views_of_the_aligned_parameters_still_share_its_memory():
    net = Network([5, 4, 3], ["relu", "softmax"], dtype=np.float32)
    net.W[0][...] = 2.0
    net.b[1][...] = 3.0
    assert np.shares_memory(net.W[0], net.params) and np.shares_memory(net.db[0], net.grads)
    assert (net.params[: net.W[0].size] == 2.0).all()
    assert (net.params[-3:] == 3.0).all()


def test_big_buffers_start_on_a_huge_page_inside_an_allocation_numpy_advises_for_huge_pages():
    big = aligned.empty(aligned.HUGE_FROM // 4, np.float32)
    assert address(big) % aligned.HUGE_PAGE == 0
    assert big.base is not None and big.base.nbytes >= aligned.NUMPY_HUGE
    small = aligned.zeros(aligned.HUGE_FROM // 4 - 1, np.float32)
    assert small.base is not None and small.base.nbytes < aligned.HUGE_FROM + aligned.ALIGN
    net = Network([784, 256, 128, 10], ["relu", "relu", "softmax"], dtype=np.float32)
    assert address(net.params) % aligned.HUGE_PAGE == 0 and address(net.grads) % aligned.HUGE_PAGE == 0
