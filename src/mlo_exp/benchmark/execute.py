"""An algorithm as a block matrix product: ``C = A @ B`` with ``R`` block products per level.

Convention (that of :mod:`mlo_exp.algorithms.tensor`): for a rank-``R`` algorithm for ``<n,m,p>``,
``A``
(``N1 x N2``) is cut into ``n x m`` blocks ``A_ij``, ``B`` (``N2 x N3``) into ``m x p`` blocks
``B_jk`` and ``C`` into ``n x p`` blocks ``C_ik``; blocks are numbered row-major
(``a = i*m + j``, ``b = j*p + k``, ``c = i*p + k``), exactly like the entries of the
factor matrices. Term ``r`` computes ``M_r = (sum_a U[a,r] A_a) @ (sum_b V[b,r] B_b)`` and
``C_c = sum_r W[c,r] M_r``. With ``levels > 1`` each block product is itself done by the
algorithm. Sizes that do not divide by ``n**levels`` (etc.) are zero-padded once at the
top and the result is cut back.

Two strategies, one code path for NumPy and CuPy (``xp``):

* ``stream`` (default on the CPU): one term at a time, with three preallocated block
  buffers per level. Operand sums are formed in place (``add(x, y, out=S)``); a sum with a
  single block is a view, not a copy, and its coefficient is folded into ``W``; zero
  coefficients are skipped. A product whose term feeds a single, still empty ``C`` block is
  written straight into it (``matmul(..., out=C_c)``); other products are accumulated in
  place (``C_c += M``). Memory traffic per level is a few block passes per term, and no
  temporary is ever allocated inside the timed loop after the first call. On the CPU the
  elementwise passes are split by rows over a small thread pool (NumPy's ufuncs are
  single-threaded; the BLAS products are already multi-threaded), and a sum of three or
  more blocks is cache-blocked (each block read once, see ``_fused_sum``).
* ``batched`` (default on the GPU): the blocks are gathered into a ``(nm, block)`` layout
  and every linear combination is one small GEMM with the factor matrices
  (``S = U^T A_blocks``), the ``R`` block products are one batched ``matmul``, and
  ``C_blocks = W M``. Fewer, larger kernels; more memory (``R`` blocks of each of S, T, M).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

from mlo_exp.algorithms.algorithm import Algorithm
from mlo_exp.benchmark.backend import Backend
from mlo_exp.config import BENCHMARK_STRATEGIES

PARALLEL_MIN_ELEMENTS = 1 << 20  # below this a thread hand-off costs more than it saves
FUSED_CHUNK_BYTES = 1 << 17  # row chunk of a CPU sum of 3+ blocks: stays in L2 while summed

Terms = tuple[tuple[int, float], ...]  # (block index, coefficient), zero coefficients dropped


@dataclass(frozen=True)
class Step:
    """One term ``r`` of the algorithm, prepared for the stream strategy."""

    a_terms: Terms  # S = sum c * A_a   (a single term always has coefficient 1: a view)
    b_terms: Terms  # T = sum c * B_b
    c_terms: Terms  # C_c += coefficient * (S @ T)


def padded_size(size: int, block: int, levels: int) -> int:
    """The smallest multiple of ``block**levels`` that is at least ``size``."""
    unit = block**levels
    return -(-size // unit) * unit


class BlockMatmul:
    """``C = A @ B`` by ``algorithm`` applied ``levels`` times (see module docstring).

    The algorithm must have been verified exactly before (the benchmark stage does); this
    class only executes it. Workspaces are kept between calls (keyed by block shape and
    dtype), so repeated timing runs measure the arithmetic, not the allocator.
    """

    parallel_min_elements = PARALLEL_MIN_ELEMENTS

    def __init__(self, algorithm: Algorithm, backend: Backend, levels: int = 1,
                 strategy: str = "auto", threads: int | None = None) -> None:
        if levels < 1:
            raise ValueError(f"levels={levels!r}; accepted: an integer >= 1")
        if strategy not in BENCHMARK_STRATEGIES:
            raise ValueError(f"strategy={strategy!r}; accepted: "
                             f"{', '.join(BENCHMARK_STRATEGIES)}")
        if algorithm.ring == "Z2":
            raise ValueError(f"{algorithm.name} is only correct modulo 2; a real-valued "
                             "product needs an algorithm over Z or Q")
        self.algorithm = algorithm
        self.backend = backend
        self.xp = backend.xp
        self.levels = int(levels)
        self.strategy = ("batched" if backend.on_gpu else "stream") if strategy == "auto" \
            else strategy
        steps = (_prepare_step(algorithm, r) for r in range(algorithm.rank))
        self.steps = tuple(step for step in steps if step.c_terms)  # zero products skipped
        # NumPy's elementwise ufuncs use one core; large ones are split by rows over a thread
        # pool (ufuncs release the GIL). CuPy kernels are parallel already.
        threads = _cpu_threads() if threads is None else int(threads)
        self._pool = ThreadPoolExecutor(threads) if threads > 1 and not backend.on_gpu \
            else None
        self._chunks = threads
        self._factors: dict[Any, tuple[Any, Any, Any]] = {}
        self._workspaces: dict[Any, dict[str, Any]] = {}

    # -- public ----------------------------------------------------------------------------
    def __call__(self, a: Any, b: Any, out: Any = None) -> Any:
        """The product of two backend matrices (``N1 x N2`` and ``N2 x N3``, same dtype),
        written into ``out`` (``N1 x N3``, same dtype) when given, else into a new array."""
        if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[0]:
            raise ValueError(f"cannot multiply shapes {a.shape} and {b.shape}")
        if a.dtype != b.dtype:
            raise ValueError(f"operands have different dtypes: {a.dtype} and {b.dtype}")
        n, m, p = self.algorithm.shape
        rows, inner, cols = a.shape[0], a.shape[1], b.shape[1]
        if out is not None and (out.shape != (rows, cols) or out.dtype != a.dtype):
            raise ValueError(f"out has shape {out.shape} and dtype {out.dtype}; accepted: "
                             f"shape {(rows, cols)} and dtype {a.dtype}")
        padded = (padded_size(rows, n, self.levels), padded_size(inner, m, self.levels),
                  padded_size(cols, p, self.levels))
        a_work = self._pad(a, padded[0], padded[1])
        b_work = self._pad(b, padded[1], padded[2])
        exact_fit = padded == (rows, inner, cols)
        direct = out if exact_fit else None  # written in place, with no final copy
        if self.strategy == "stream":
            c = self._stream(a_work, b_work, self.levels, out=direct)
        else:
            contiguous = direct is not None and direct.flags.c_contiguous
            c = self._batched(a_work[None], b_work[None], self.levels,
                              out=direct[None] if contiguous else None)[0]
        if not exact_fit:
            c = c[:rows, :cols]
        if out is None:
            return c if exact_fit else self.xp.ascontiguousarray(c)
        if c is not out:
            self.xp.copyto(out, c)
        return out

    def describe(self) -> str:
        n, m, p = self.algorithm.shape
        return (f"<{n},{m},{p}> rank {self.algorithm.rank}, {self.levels} level(s), "
                f"{self.strategy} strategy")

    # -- helpers -------------------------------------------------------------------------
    def _pad(self, x: Any, rows: int, cols: int) -> Any:
        if x.shape == (rows, cols):
            return x
        padded = self.xp.zeros((rows, cols), dtype=x.dtype)
        padded[: x.shape[0], : x.shape[1]] = x
        return padded

    def _workspace(self, level: int, shapes: tuple[tuple[int, int], ...],
                   dtype: Any) -> dict[str, Any]:
        key = (level, shapes, np.dtype(dtype).str)  # one set per recursion level
        if key not in self._workspaces:
            s_shape, t_shape, m_shape = shapes
            xp = self.xp
            self._workspaces[key] = {"S": xp.empty(s_shape, dtype), "T": xp.empty(t_shape, dtype),
                                     "M": xp.empty(m_shape, dtype)}
        return self._workspaces[key]

    # -- the stream strategy ---------------------------------------------------------------
    def _stream(self, a: Any, b: Any, level: int, out: Any = None) -> Any:
        xp = self.xp
        if level == 0:
            return xp.matmul(a, b, out=out)
        n, m, p = self.algorithm.shape
        b1, b2, b3 = a.shape[0] // n, a.shape[1] // m, b.shape[1] // p
        a_blocks = [a[i * b1:(i + 1) * b1, j * b2:(j + 1) * b2] for i in range(n)
                    for j in range(m)]
        b_blocks = [b[j * b2:(j + 1) * b2, k * b3:(k + 1) * b3] for j in range(m)
                    for k in range(p)]
        c = out if out is not None else xp.empty((n * b1, p * b3), dtype=a.dtype)
        c_blocks = [c[i * b1:(i + 1) * b1, k * b3:(k + 1) * b3] for i in range(n)
                    for k in range(p)]
        work = self._workspace(level, ((b1, b2), (b2, b3), (b1, b3)), a.dtype)
        filled = [False] * len(c_blocks)
        for step in self.steps:
            left = self._combine(a_blocks, step.a_terms, work, "S")
            right = self._combine(b_blocks, step.b_terms, work, "T")
            if len(step.c_terms) == 1 and step.c_terms[0][1] == 1.0 \
                    and not filled[step.c_terms[0][0]]:
                target = step.c_terms[0][0]
                self._stream(left, right, level - 1, out=c_blocks[target])
                filled[target] = True
                continue
            product = self._stream(left, right, level - 1, out=work["M"])
            for index, coefficient in step.c_terms:
                self._accumulate(c_blocks[index], product, coefficient, filled[index], work)
                filled[index] = True
        for index, done in enumerate(filled):
            if not done:  # a C block no term writes to (only for degenerate algorithms)
                c_blocks[index].fill(0)
        return c

    def _combine(self, blocks: list[Any], terms: Terms, work: dict[str, Any], name: str) -> Any:
        """``sum c * blocks[i]`` into ``work[name]``; a single term returns the block itself."""
        xp = self.xp
        (first, c0), rest = terms[0], terms[1:]
        if not rest:
            return blocks[first]  # coefficient 1 by construction (see _prepare_step)
        out = work[name]
        if not self.backend.on_gpu and len(terms) > 2:
            self._fused_sum(blocks, terms, out)
            return out
        (second, c1), rest = rest[0], rest[1:]
        if c0 == 1.0 and c1 in (1.0, -1.0):
            self._ufunc(xp.add if c1 == 1.0 else xp.subtract, blocks[first], blocks[second],
                        out=out)
        else:
            self._scale_into(out, blocks[first], c0)
            self._add_scaled(out, blocks[second], c1, work)
        for index, coefficient in rest:
            self._add_scaled(out, blocks[index], coefficient, work)
        return out

    def _fused_sum(self, blocks: list[Any], terms: Terms, out: Any) -> None:
        """CPU: ``out = sum c * blocks[i]`` cache-blocked by rows.

        Each chunk of ``out`` (about :data:`FUSED_CHUNK_BYTES`) stays in cache while every
        term is added to it, so a sum of ``k`` blocks reads each block once and writes
        ``out`` once (``k + 1`` block passes instead of ``3 (k - 1)`` for whole-array adds).
        Row ranges are shared out over the thread pool.
        """
        rows = out.shape[0]
        step = max(1, FUSED_CHUNK_BYTES // max(1, out.shape[1] * out.itemsize))

        def run(start: int, stop: int) -> None:
            for low in range(start, stop, step):
                high = min(low + step, stop)
                _sum_rows(blocks, terms, out[low:high], low, high)

        if self._pool is None or out.size < self.parallel_min_elements or rows < self._chunks:
            run(0, rows)
            return
        bounds = [rows * index // self._chunks for index in range(self._chunks + 1)]
        jobs = [self._pool.submit(run, start, stop)
                for start, stop in zip(bounds[:-1], bounds[1:], strict=True)]
        for job in jobs:
            job.result()

    def _accumulate(self, target: Any, product: Any, coefficient: float, filled: bool,
                    work: dict[str, Any]) -> None:
        if filled:
            self._add_scaled(target, product, coefficient, work)
        else:
            self._scale_into(target, product, coefficient)

    def _ufunc(self, ufunc: Any, *operands: Any, out: Any) -> None:
        """``ufunc(*operands, out=out)``, split over row chunks on the CPU thread pool."""
        rows = out.shape[0]
        if self._pool is None or out.size < self.parallel_min_elements or rows < self._chunks:
            ufunc(*operands, out=out)
            return
        bounds = [rows * index // self._chunks for index in range(self._chunks + 1)]
        jobs = []
        for start, stop in zip(bounds[:-1], bounds[1:], strict=True):
            parts = [x[start:stop] if hasattr(x, "shape") and x.ndim else x for x in operands]
            jobs.append(self._pool.submit(ufunc, *parts, out=out[start:stop]))
        for job in jobs:
            job.result()

    def _copy(self, x: Any, out: Any) -> None:
        self.xp.copyto(out, x)

    def _scale_into(self, out: Any, x: Any, coefficient: float) -> None:
        xp = self.xp
        if coefficient == 1.0:
            self._ufunc(self._copy, x, out=out)
        elif coefficient == -1.0:
            self._ufunc(xp.negative, x, out=out)
        else:
            self._ufunc(xp.multiply, x, coefficient, out=out)

    def _add_scaled(self, out: Any, x: Any, coefficient: float, work: dict[str, Any]) -> None:
        xp = self.xp
        if coefficient == 1.0:
            self._ufunc(xp.add, out, x, out=out)
        elif coefficient == -1.0:
            self._ufunc(xp.subtract, out, x, out=out)
        else:
            key = ("scratch", x.shape)
            if key not in work:
                work[key] = xp.empty(x.shape, x.dtype)
            scratch = work[key]
            self._ufunc(xp.multiply, x, coefficient, out=scratch)
            self._ufunc(xp.add, out, scratch, out=out)

    # -- the batched strategy --------------------------------------------------------------
    def _factor_arrays(self, dtype: Any) -> tuple[Any, Any, Any]:
        """``U^T (R, nm)``, ``V^T (R, mp)``, ``W (np, R)`` on the backend in ``dtype``."""
        key = np.dtype(dtype).str
        if key not in self._factors:
            u, v, w = self.algorithm.as_float()
            self._factors[key] = tuple(self.xp.asarray(np.ascontiguousarray(x), dtype=dtype)
                                       for x in (u.T, v.T, w))
        return self._factors[key]

    def _batched(self, a: Any, b: Any, level: int, out: Any = None) -> Any:
        """``a (batch, N1, N2) @ b (batch, N2, N3)`` with every term batched per level (into
        the contiguous ``out`` when given)."""
        xp = self.xp
        if level == 0:
            return xp.matmul(a, b, out=out)
        n, m, p = self.algorithm.shape
        rank = self.algorithm.rank
        batch, rows, inner = a.shape
        cols = b.shape[2]
        b1, b2, b3 = rows // n, inner // m, cols // p
        u_t, v_t, w = self._factor_arrays(a.dtype)
        a_blocks = a.reshape(batch, n, b1, m, b2).transpose(0, 1, 3, 2, 4)
        a_blocks = xp.ascontiguousarray(a_blocks).reshape(batch, n * m, b1 * b2)
        b_blocks = b.reshape(batch, m, b2, p, b3).transpose(0, 1, 3, 2, 4)
        b_blocks = xp.ascontiguousarray(b_blocks).reshape(batch, m * p, b2 * b3)
        left = xp.matmul(u_t, a_blocks).reshape(batch * rank, b1, b2)
        del a_blocks
        right = xp.matmul(v_t, b_blocks).reshape(batch * rank, b2, b3)
        del b_blocks
        products = self._batched(left, right, level - 1)
        del left, right
        c_blocks = xp.matmul(w, products.reshape(batch, rank, b1 * b3))
        del products
        c = c_blocks.reshape(batch, n, p, b1, b3).transpose(0, 1, 3, 2, 4)
        if out is None:
            return xp.ascontiguousarray(c).reshape(batch, rows, cols)
        out.reshape(batch, n, b1, p, b3)[...] = c
        return out


def _sum_rows(blocks: list[Any], terms: Terms, out: Any, low: int, high: int) -> None:
    """``out = sum c * blocks[i][low:high]`` with NumPy, ``out`` being one small row chunk."""
    (first, c0), (second, c1) = terms[0], terms[1]
    a, b = blocks[first][low:high], blocks[second][low:high]
    if c0 == 1.0 and c1 in (1.0, -1.0):
        (np.add if c1 == 1.0 else np.subtract)(a, b, out=out)
    else:
        np.multiply(a, c0, out=out)
        np.add(out, b * c1, out=out)
    for index, coefficient in terms[2:]:
        block = blocks[index][low:high]
        if coefficient == 1.0:
            np.add(out, block, out=out)
        elif coefficient == -1.0:
            np.subtract(out, block, out=out)
        else:
            np.add(out, block * coefficient, out=out)


def _cpu_threads() -> int:
    """Cores this process may use (its affinity mask), at most 8."""
    try:
        count = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        count = os.cpu_count() or 1
    return max(1, min(count, 8))


def _prepare_step(algorithm: Algorithm, r: int) -> Step:
    """Term ``r`` with zero coefficients dropped and scalars moved where they cost least.

    A single-block operand becomes a view with coefficient 1 (its coefficient moves into the
    ``W`` column); a sum's leading coefficient is likewise moved into ``W`` (so sums start
    with ``+1`` and need no scaling pass). A ``-1`` left on a single ``C`` target is pushed
    back into an operand sum when that sum has a ``+1`` term to start from after the sign
    flip, so the product can be written straight into ``C``.
    """
    def nonzero(column: np.ndarray) -> list[tuple[int, Fraction]]:
        return [(int(i), Fraction(x)) for i, x in enumerate(column) if Fraction(x) != 0]

    a_terms, b_terms, c_terms = (nonzero(f[:, r]) for f in (algorithm.u, algorithm.v,
                                                            algorithm.w))
    if not a_terms or not b_terms:
        c_terms = []  # the product is zero
        a_terms, b_terms = a_terms or [(0, Fraction(0))], b_terms or [(0, Fraction(0))]
    scale = a_terms[0][1] * b_terms[0][1]
    a_terms = [(i, c / a_terms[0][1]) for i, c in a_terms] if a_terms[0][1] else a_terms
    b_terms = [(i, c / b_terms[0][1]) for i, c in b_terms] if b_terms[0][1] else b_terms
    c_terms = [(i, c * scale) for i, c in c_terms if c * scale != 0]
    if len(c_terms) == 1 and c_terms[0][1] == -1:
        for side in ("a", "b"):
            terms = a_terms if side == "a" else b_terms
            flipped = _lead_with_plus_one([(i, -c) for i, c in terms])
            if len(terms) > 1 and flipped is not None:
                if side == "a":
                    a_terms = flipped
                else:
                    b_terms = flipped
                c_terms = [(c_terms[0][0], Fraction(1))]
                break
    a_terms = _lead_with_plus_one(a_terms) or a_terms
    b_terms = _lead_with_plus_one(b_terms) or b_terms

    def as_float(terms: list[tuple[int, Fraction]]) -> Terms:
        return tuple((i, float(c)) for i, c in terms)

    return Step(as_float(a_terms), as_float(b_terms), as_float(c_terms))


def _lead_with_plus_one(terms: list[tuple[int, Fraction]]) -> list[tuple[int, Fraction]] | None:
    """The same terms with a ``+1`` term first, or None when there is none."""
    for position, (_index, coefficient) in enumerate(terms):
        if coefficient == 1:
            return [terms[position], *terms[:position], *terms[position + 1:]]
    return None
