"""Fused block sums on the CPU: ``out = c0*x0 + c1*x1 + ...`` in one pass over memory.

The CPU counterpart of the CuPy kernel in :mod:`mlo_exp.benchmark.execute`
(``fused_sum_source``): one compiled loop (numba, ``nogil``) reads every term once and
writes ``out`` once; the executor splits the rows over its thread pool. NumPy's ufuncs
would need ``3 (k - 1)`` block passes for a sum of ``k`` blocks done pairwise. Not numba's
``parallel=True``: its worker threads spin after each region and take the cores from the
BLAS threads of the next block product (measured: 5x slower overall on 2 cores).

Exactness: the terms are added left to right, each multiplied by its coefficient in the
blocks' own dtype (``acc = c0*x0; acc += c1*x1; ...``), with no fast-math (no reassociation,
no fused multiply-add), so the result is the one NumPy gives for
``out = c0*x0; out += c1*x1; ...``: bit for bit, and exact for integer-valued inputs whose
sums are representable.

Layouts: numba types a C-contiguous array differently from a strided view, and the terms
travel as one homogeneous tuple; :func:`can_fuse` says when they do (all views or all
contiguous, one dtype). The executor allocates its workspace slots as strided views (rows
padded), so in its programs they always do except for schemes with a side of 1.
Compiled code is cached on disk (``cache=True``), one version per term count, dtype and
layout.
"""

from __future__ import annotations

from concurrent.futures import Executor
from typing import Any

import numpy as np
from numba import njit

ROW_PADDING_BYTES = 64  # workspace rows are padded by this much: strided views, and no
# cache-set aliasing between rows whose length is a power of two


@njit(nogil=True, cache=True)
def _linear_combination(out, terms, coefficients, start, stop):  # noqa: ANN001, ANN202
    cols = out.shape[1]
    count = len(terms)
    for i in range(start, stop):
        for j in range(cols):
            acc = coefficients[0] * terms[0][i, j]
            for t in range(1, count):
                acc += coefficients[t] * terms[t][i, j]
            out[i, j] = acc


def can_fuse(terms: list[tuple[Any, float]], out: Any) -> bool:
    """True when :func:`linear_combination` takes these NumPy blocks (module docstring)."""
    first = terms[0][0]
    if not isinstance(first, np.ndarray) or out.dtype != first.dtype or out.ndim != 2:
        return False
    contiguous = first.flags.c_contiguous
    return all(isinstance(x, np.ndarray) and x.dtype == first.dtype and x.ndim == 2
               and x.flags.c_contiguous == contiguous for x, _ in terms)


def linear_combination(terms: list[tuple[Any, float]], out: np.ndarray,
                       pool: Executor | None = None, chunks: int = 1) -> None:
    """``out = sum c * x`` over ``terms`` in one pass (``out`` never aliases a term); rows
    split into ``chunks`` ranges run on ``pool`` when given (the kernel releases the GIL)."""
    coefficients = np.array([c for _, c in terms], dtype=out.dtype)
    blocks = tuple(x for x, _ in terms)
    rows = out.shape[0]
    if pool is None or chunks < 2 or rows < chunks:
        _linear_combination(out, blocks, coefficients, 0, rows)
        return
    bounds = [rows * index // chunks for index in range(chunks + 1)]
    jobs = [pool.submit(_linear_combination, out, blocks, coefficients, start, stop)
            for start, stop in zip(bounds[:-1], bounds[1:], strict=True)]
    for job in jobs:
        job.result()


def padded_empty(shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """An uninitialised array of ``shape`` whose rows are padded (a strided view)."""
    itemsize = np.dtype(dtype).itemsize
    pad = max(1, ROW_PADDING_BYTES // itemsize)
    base = np.empty((*shape[:-1], shape[-1] + pad), dtype=dtype)
    return base[..., : shape[-1]]
