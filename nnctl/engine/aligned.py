"""Buffers whose data starts on a 64-byte boundary (a cache line, one AVX-512 register), big ones on a huge page.

NumPy aligns its data to 16 bytes only, and where a buffer lands decides how fast the hot loop runs. A buffer of
128 KB or more comes from glibc's mmap (until frees raise glibc's threshold), a 16-byte header past a page
boundary, so it starts 16 bytes past a cache line: W2's flat parameters (235,146 float32) did in each `nnctl train`
run we checked, and an epoch took 0.55 s where a process whose parameters happened to start on a line took 0.50 s.
Measured as whole `nnctl train` processes against the previous code (W2 784 -> 256 -> 128 -> 10, batch 128, 8
epochs, history epochs, medians of 5-6 interleaved rounds): the parameters and gradients aligned, 0.93x the epoch;
every buffer below aligned, 0.88x; W1 (100k x 20 -> 64 -> 64 -> 3, batch 32) 0.97x. So the network (params, grads),
the optimizers (their state and scratch), the workspace and the loop's batch buffer allocate here; the activations'
own small buffers stay NumPy's (aligning them measured nothing).

A buffer of 256 KB or more also starts on a 2 MB boundary, inside an allocation of at least 4 MB, which NumPy
advises the kernel to back with transparent huge pages: W2's parameters, gradients, Adam's moments and the batch of
wide rows then take a TLB entry each instead of hundreds. W2's epoch 0.974x (whole processes 0.981x) against
64-byte alignment alone, 6 interleaved rounds; it costs address space (up to 6 MB a buffer, untouched pages cost no
memory) and rounds each such buffer up to whole 2 MB pages of memory. Where the kernel has transparent huge pages
off, the buffers are only aligned.

Every operation on these buffers is elementwise or a BLAS product whose result does not depend on the address: the
same bits: the weights of W1, W2 and iris runs were identical, byte for byte, before and after this module, and
with every buffer 16 to 48 bytes past a line.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

ALIGN = 64  # bytes
HUGE_FROM = 256 << 10  # buffers of at least this many bytes start on a huge page
HUGE_PAGE = 2 << 20  # x86-64's transparent huge page
NUMPY_HUGE = 4 << 20  # NumPy advises the kernel (madvise) to back allocations this big with huge pages

Shape = int | tuple[int, ...]


def empty(shape: Shape, dtype: Any) -> np.ndarray:
    """An uninitialised C-contiguous array of `shape` whose data starts on an `ALIGN`-byte boundary."""
    return _aligned(shape, np.dtype(dtype), np.empty)


def zeros(shape: Shape, dtype: Any) -> np.ndarray:
    """Zeros, as `empty`; the raw buffer comes from np.zeros, so large ones are the kernel's lazily zeroed pages."""
    return _aligned(shape, np.dtype(dtype), np.zeros)


def zeros_like(a: np.ndarray) -> np.ndarray:
    """Zeros shaped and typed like `a`, as `zeros`."""
    return zeros(a.shape, a.dtype)


def _aligned(shape: Shape, dtype: np.dtype[Any], allocate: Any) -> np.ndarray:
    dims = (shape,) if isinstance(shape, int) else tuple(shape)
    nbytes = math.prod(dims) * dtype.itemsize
    if nbytes >= HUGE_FROM:  # a raw allocation NumPy advises for huge pages, the buffer on a huge page inside it
        boundary, size = HUGE_PAGE, max(nbytes, NUMPY_HUGE) + HUGE_PAGE
    else:
        boundary, size = ALIGN, nbytes + ALIGN
    raw: np.ndarray = allocate(size, np.uint8)
    start = -raw.__array_interface__["data"][0] % boundary  # not `.ctypes`, which imports ctypes
    out: np.ndarray = raw[start:start + nbytes].view(dtype).reshape(dims)
    return out
