"""One matrix product, four ways (chapter 17): Python loops, numpy broadcasting, numpy's
einsum, and blocks (tiles) of any of them. Each returns ``a @ b`` for 2-D ``a`` (M, K) and
``b`` (K, N); they differ only in who runs the multiply-adds, and how the data moves.

* :func:`matmul_loops`: the interpreter runs every one of the M·K·N multiply-adds.
* :func:`matmul_broadcast`: one numpy expression; it builds the whole (M, K, N) array of
  products in memory before summing it, so it is limited by memory traffic.
* :func:`matmul_einsum`: numpy's own C loop over the sum, with no temporary array (numpy
  does not hand it to BLAS unless asked with ``optimize=True``).
* :func:`matmul_tiled`: splits the product into (tile × tile) blocks and multiplies block
  by block with any of the others, so each step's data fits in the cache.

``a @ b`` itself calls BLAS (OpenBLAS in numpy's wheels), which tiles for the caches and
the registers, vectorises with SIMD instructions and runs on several threads.
"""
from __future__ import annotations

import numpy as np

from ..checks import check_int

__all__ = ["matmul_loops", "matmul_broadcast", "matmul_einsum", "matmul_tiled"]


def _check_matrices(who: str, a, b) -> tuple:
    a, b = np.asarray(a), np.asarray(b)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[0]:
        raise ValueError(f"{who}: needs matrices (M, K) and (K, N); got shapes {a.shape} and "
                         f"{b.shape}")
    return a, b


def matmul_loops(a, b) -> np.ndarray:
    """``a @ b`` with three Python loops: c[i, j] = sum over k of a[i, k] * b[k, j]."""
    a, b = _check_matrices("matmul_loops", a, b)
    m, k_size = a.shape
    n = b.shape[1]
    rows, cols = a.tolist(), b.T.tolist()       # Python floats: no numpy call per element
    out = [[0.0] * n for _ in range(m)]
    for i in range(m):
        row = rows[i]
        for j in range(n):
            col = cols[j]
            total = 0.0
            for k in range(k_size):
                total += row[k] * col[k]
            out[i][j] = total
    return np.array(out, dtype=np.result_type(a, b))


def matmul_broadcast(a, b) -> np.ndarray:
    """``a @ b`` as one broadcast expression: the (M, K, N) products, summed over K."""
    a, b = _check_matrices("matmul_broadcast", a, b)
    return (a[:, :, None] * b[None, :, :]).sum(axis=1)


def matmul_einsum(a, b) -> np.ndarray:
    """``a @ b`` as ``np.einsum("ik,kj->ij", a, b)``: numpy's C loop, no temporary."""
    a, b = _check_matrices("matmul_einsum", a, b)
    return np.einsum("ik,kj->ij", a, b)


def matmul_tiled(a, b, tile: int = 64, kernel=None) -> np.ndarray:
    """``a @ b`` block by block: for every (tile × tile) block of the output, add up
    ``kernel(a block, b block)`` over the blocks of the inner dimension (``kernel`` is any
    function computing a product of two matrices; None means :func:`matmul_broadcast`).
    Edge blocks are smaller when a size is not a multiple of ``tile``."""
    a, b = _check_matrices("matmul_tiled", a, b)
    tile = check_int("matmul_tiled", "tile", tile, 1)
    kernel = matmul_broadcast if kernel is None else kernel
    m, k_size = a.shape
    n = b.shape[1]
    out = np.zeros((m, n), dtype=np.result_type(a, b))
    for i in range(0, m, tile):
        for j in range(0, n, tile):
            block = out[i:i + tile, j:j + tile]            # a view: added to in place
            for k in range(0, k_size, tile):
                block += kernel(a[i:i + tile, k:k + tile], b[k:k + tile, j:j + tile])
    return out
