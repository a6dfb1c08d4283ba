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

Evaluation plan (:mod:`mlo_exp.algorithms.additions`): the operand sums ``S_r``, ``T_r`` and the
output sums ``C_c`` are evaluated by straight-line programs that share common
subexpressions (and, where one is known, on an exactly verified equivalent scheme with fewer
additions, e.g. Strassen in Winograd's form: 15 block additions instead of 18).
``plan="naive"`` sums term by term. Both strategies run the same compiled program per
level; temporaries live in workspace slots reused after their last use (allocated once,
kept between calls), and a value that is a ``C`` block is computed straight into it.
:meth:`BlockMatmul.profile_call` times one call split into block sums and block products.

Two strategies, one code path for NumPy and CuPy (``xp``):

* ``stream`` (default on the CPU): one product at a time; the sums it needs are formed
  just before it (a single block is a view, never a copy), the product goes into a slot
  or straight into its ``C`` block, and every output sum whose terms are ready runs right
  after. Every sum is one fused linear combination ``out = c0*x0 + c1*x1 + ...``, one pass
  over memory, on both backends: on the GPU a CuPy elementwise kernel; on the CPU
  (``sums="fused"``, the default) a sum of :data:`FUSED_MIN_TERMS` or more blocks is a
  compiled numba loop (:mod:`mlo_exp.benchmark.fused`) whose rows are split over a small
  thread pool (the BLAS products are multi-threaded already), and one of one or two blocks
  a NumPy ufunc with ``out=`` (as few passes, and vectorised); workspace slots are strided
  views with padded rows, like the blocks they meet. ``sums="numpy"`` keeps NumPy for
  every sum (``add(x, y, out=slot)`` split by rows over the pool; three or more blocks
  cache-blocked, see ``_fused_sum``), which is also the fallback where blocks of both
  layouts meet.
* ``batched`` (default on the GPU): all operand sums are written into one ``(R, block)``
  stack per side, the ``R`` block products are one batched ``matmul`` (recursively at
  every level), then the output sums run. Fewer, larger kernels; more memory (``R``
  blocks of each of S, T, M).

Length: about 700 lines: the stream and batched executors share the block layout, the
padding, the plans and the split of time into sums and products; apart, each would import
most of the other.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlo_exp.algorithms.additions import SchemePlan, plan_scheme
from mlo_exp.algorithms.algorithm import Algorithm
from mlo_exp.benchmark.backend import Backend
from mlo_exp.benchmark.fused import can_fuse, linear_combination, padded_empty
from mlo_exp.config import BENCHMARK_PLANS, BENCHMARK_STRATEGIES

SUMS = ("fused", "numpy")  # CPU block sums: one compiled pass, or NumPy ufuncs (the old way)
# CPU sums of this many blocks or more take the compiled pass; one or two blocks take NumPy's
# ufuncs, which are vectorised and already make the fewest passes. Measured on the shared
# 2-core CPU (loaded, minima): 2 blocks of 512x512 0.13 ms NumPy vs 0.23 ms compiled; the
# 26 output sums of 3-7 blocks of best-4x4x4 at N=4096: 200 ms NumPy vs 156 ms compiled,
# at N=8192 704 vs 484 ms.
FUSED_MIN_TERMS = 3
PARALLEL_MIN_ELEMENTS = 1 << 20  # below this a thread hand-off costs more than it saves
FUSED_CHUNK_BYTES = 1 << 17  # row chunk of a CPU sum of 3+ blocks: stays in L2 while summed

Value = tuple[str, int]  # ("A", i) / ("B", j) input blocks, ("a"|"b"|"c", k) sums, ("M", r)
Terms = tuple[tuple[Value, float], ...]


@dataclass(frozen=True)
class Instruction:
    """One step of a level's program. ``kind``: ``sum`` (``dest = sum c * src``), ``mul``
    (``dest = left @ right``, recursively), ``out`` (``C_c = c * src``), ``zero``."""

    kind: str
    dest: Value | None
    terms: Terms = ()
    home: tuple[str, int] | None = None  # ("C", c) output block, ("S"|"T", k) stack row,
    slot: tuple[str, int] | None = None  # or a workspace slot (class, index)


@dataclass(frozen=True)
class Program:
    """A level's instructions for one strategy, and the workspace slots per class
    (``A``: operand-of-A blocks, ``B``, ``C``: product/output blocks)."""

    instructions: tuple[Instruction, ...]
    slots: dict[str, int]
    products: tuple[int, ...]  # the products computed (zero products skipped), in order


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
                 strategy: str = "auto", threads: int | None = None,
                 plan: str = "reduced", sums: str = "fused") -> None:
        if levels < 1:
            raise ValueError(f"levels={levels!r}; accepted: an integer >= 1")
        if strategy not in BENCHMARK_STRATEGIES:
            raise ValueError(f"strategy={strategy!r}; accepted: "
                             f"{', '.join(BENCHMARK_STRATEGIES)}")
        if plan not in BENCHMARK_PLANS:
            raise ValueError(f"plan={plan!r}; accepted: {', '.join(BENCHMARK_PLANS)}")
        if sums not in SUMS:
            raise ValueError(f"sums={sums!r}; accepted: {', '.join(SUMS)}")
        if algorithm.ring == "Z2":
            raise ValueError(f"{algorithm.name} is only correct modulo 2; a real-valued "
                             "product needs an algorithm over Z or Q")
        self.algorithm = algorithm
        self.backend = backend
        self.xp = backend.xp
        self.levels = int(levels)
        self.strategy = ("batched" if backend.on_gpu else "stream") if strategy == "auto" \
            else strategy
        self.plan: SchemePlan = plan_scheme(algorithm, plan=plan)
        self.program = compile_program(self.plan, self.strategy)
        self.sums = sums
        self._fuse_cpu = sums == "fused" and not backend.on_gpu
        # NumPy's elementwise ufuncs use one core; large ones are split by rows over a thread
        # pool (ufuncs release the GIL). CuPy kernels are parallel already.
        threads = _cpu_threads() if threads is None else int(threads)
        self._pool = ThreadPoolExecutor(threads) if threads > 1 and not backend.on_gpu \
            else None
        self._chunks = threads
        self._workspaces: dict[Any, dict[Any, Any]] = {}
        self._kernels: dict[Any, Any] = {}
        self.profile: dict[str, float] | None = None  # see profile_call
        self._compiled: set[Any] = set()  # dtypes whose fused-sum kernels are compiled

    def _compile(self, dtype: Any) -> None:
        """Compile (or load from numba's cache) the fused-sum kernels this program uses for
        ``dtype`` on tiny blocks, so that no timed call, not even the first, compiles."""
        counts = {len(step.terms) for step in self.program.instructions
                  if step.kind == "sum" and len(step.terms) >= FUSED_MIN_TERMS}
        for count in sorted(counts):
            terms = [(padded_empty((2, 2), dtype), 1.0) for _ in range(count)]
            for x, _ in terms:
                x.fill(0)
            linear_combination(terms, padded_empty((2, 2), dtype))
        self._compiled.add(dtype)

    def profile_call(self, a: Any, b: Any, out: Any = None) -> dict[str, float]:
        """One call of the product with its time split (seconds): ``additions_s`` (every
        block sum, copy and zeroing at every level), ``products_s`` (the block products at
        the bottom level), ``total_s`` (the whole call; the rest is padding and Python).
        The device is synchronised around each timed part, so this call is slower than a
        timed one: use its shares, not its total, next to the benchmark's times."""
        self.profile = {"additions_s": 0.0, "products_s": 0.0}
        try:
            self.backend.sync()
            started = time.perf_counter()
            self(a, b, out=out)
            self.backend.sync()
            self.profile["total_s"] = time.perf_counter() - started
            return dict(self.profile)
        finally:
            self.profile = None

    def _timed(self, part: str, call: Any, *args: Any, **kwargs: Any) -> Any:
        """``call(*args, **kwargs)``, its time added to ``profile[part]`` when profiling."""
        if self.profile is None:
            return call(*args, **kwargs)
        self.backend.sync()
        started = time.perf_counter()
        result = call(*args, **kwargs)
        self.backend.sync()
        self.profile[part] += time.perf_counter() - started
        return result

    @property
    def additions(self) -> int:
        """Block additions per level of the plan in use."""
        return self.plan.additions

    # -- public ----------------------------------------------------------------------------
    def __call__(self, a: Any, b: Any, out: Any = None) -> Any:
        """The product of two backend matrices (``N1 x N2`` and ``N2 x N3``, same dtype),
        written into ``out`` (``N1 x N3``, same dtype) when given, else into a new array."""
        if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[0]:
            raise ValueError(f"cannot multiply shapes {a.shape} and {b.shape}")
        if a.dtype != b.dtype:
            raise ValueError(f"operands have different dtypes: {a.dtype} and {b.dtype}")
        if self._fuse_cpu and a.dtype not in self._compiled:
            self._compile(a.dtype)
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
            c = self._batched(a_work[None], b_work[None], self.levels,
                              out=direct[None] if direct is not None else None)[0]
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
                f"{self.strategy} strategy, {self.plan.additions} additions per level, "
                f"{self.sums} sums")

    # -- helpers -------------------------------------------------------------------------
    def _pad(self, x: Any, rows: int, cols: int) -> Any:
        if x.shape == (rows, cols):
            return x
        padded = self.xp.zeros((rows, cols), dtype=x.dtype)
        padded[: x.shape[0], : x.shape[1]] = x
        return padded

    def _buffers(self, level: int, shapes: dict[str, tuple[int, ...]], dtype: Any,
                 extra: dict[str, tuple[int, ...]] | None = None) -> dict[Any, Any]:
        """The workspace of one level: ``slots[class]`` arrays per class, plus ``extra``
        named arrays; allocated once per (level, shapes, dtype)."""
        key = (level, tuple(sorted(shapes.items())), tuple(sorted((extra or {}).items())),
               np.dtype(dtype).str)
        if key not in self._workspaces:
            xp = self.xp
            work: dict[Any, Any] = {}
            # CPU slots for fused sums are strided views, like the blocks they meet
            # (see mlo_exp.benchmark.fused); batched stacks are reshaped, so stay contiguous.
            empty = padded_empty if self._fuse_cpu and len(shapes["A"]) == 2 else xp.empty
            for kind, count in self.program.slots.items():
                for index in range(count):
                    work[(kind, index)] = empty(shapes[kind], dtype)
            for name, shape in (extra or {}).items():
                work[name] = xp.empty(shape, dtype)
            self._workspaces[key] = work
        return self._workspaces[key]

    def _run(self, values: dict[Value, Any], homes: dict[str, Any], work: dict[Any, Any],
             multiply: Any) -> None:
        """Execute the level's program; ``multiply(left, right, out)`` does one product."""
        for step in self.program.instructions:
            if step.kind == "zero":
                self._timed("additions_s", homes["C"](step.home[1]).fill, 0)
                continue
            target = homes[step.home[0]](step.home[1]) if step.home is not None \
                else work[step.slot] if step.slot is not None else None
            if step.kind == "sum":
                self._sum([(values[v], c) for v, c in step.terms], target)
                values[step.dest] = target
            elif step.kind == "mul":
                (left, _), (right, _) = step.terms
                values[step.dest] = multiply(values[left], values[right], target)
            else:  # "out"
                ((source, coefficient),) = step.terms
                self._sum([(values[source], coefficient)], target)

    # -- the stream strategy ---------------------------------------------------------------
    def _stream(self, a: Any, b: Any, level: int, out: Any = None) -> Any:
        xp = self.xp
        if level == 0:
            if out is not None and self.backend.on_gpu and not out.flags.c_contiguous:
                out[...] = self._timed("products_s", xp.matmul, a, b)  # CuPy's out= wants
                return out  # contiguity, and a C block view is not
            return self._timed("products_s", xp.matmul, a, b, out=out)
        n, m, p = self.algorithm.shape
        b1, b2, b3 = a.shape[0] // n, a.shape[1] // m, b.shape[1] // p
        values: dict[Value, Any] = {}
        for i in range(n):
            for j in range(m):
                values[("A", i * m + j)] = a[i * b1:(i + 1) * b1, j * b2:(j + 1) * b2]
        for j in range(m):
            for k in range(p):
                values[("B", j * p + k)] = b[j * b2:(j + 1) * b2, k * b3:(k + 1) * b3]
        c = out if out is not None else xp.empty((n * b1, p * b3), dtype=a.dtype)

        def c_block(index: int) -> Any:
            i, k = divmod(index, p)
            return c[i * b1:(i + 1) * b1, k * b3:(k + 1) * b3]

        work = self._buffers(level, {"A": (b1, b2), "B": (b2, b3), "C": (b1, b3)}, a.dtype)
        self._run(values, {"C": c_block}, work,
                  lambda left, right, target: self._stream(left, right, level - 1, out=target))
        return c

    # -- the batched strategy --------------------------------------------------------------
    def _batched(self, a: Any, b: Any, level: int, out: Any = None) -> Any:
        """``a (batch, N1, N2) @ b (batch, N2, N3)`` with every product of a level in one
        batched call (into ``out`` when given)."""
        xp = self.xp
        if level == 0:
            return self._timed("products_s", xp.matmul, a, b, out=out)
        n, m, p = self.algorithm.shape
        batch, rows, inner = a.shape
        cols = b.shape[2]
        b1, b2, b3 = rows // n, inner // m, cols // p
        count = len(self.program.products)
        values: dict[Value, Any] = {}
        for i in range(n):
            for j in range(m):
                values[("A", i * m + j)] = a[:, i * b1:(i + 1) * b1, j * b2:(j + 1) * b2]
        for j in range(m):
            for k in range(p):
                values[("B", j * p + k)] = b[:, j * b2:(j + 1) * b2, k * b3:(k + 1) * b3]
        c = out if out is not None else xp.empty((batch, n * b1, p * b3), dtype=a.dtype)
        work = self._buffers(level, {"A": (batch, b1, b2), "B": (batch, b2, b3),
                                     "C": (batch, b1, b3)}, a.dtype,
                             {"S": (batch, count, b1, b2), "T": (batch, count, b2, b3),
                              "M": (batch * count, b1, b3)})
        stacks = {"S": work["S"], "T": work["T"]}
        products = work["M"].reshape(batch, count, b1, b3)

        def c_block(index: int) -> Any:
            i, k = divmod(index, p)
            return c[:, i * b1:(i + 1) * b1, k * b3:(k + 1) * b3]

        def multiply_all(_left: Any, _right: Any, _target: Any) -> Any:
            left = stacks["S"].reshape(batch * count, b1, b2)
            right = stacks["T"].reshape(batch * count, b2, b3)
            self._batched(left, right, level - 1, out=work["M"])
            return products

        homes = {"C": c_block, "S": lambda k: stacks["S"][:, k], "T": lambda k: stacks["T"][:, k],
                 "M": lambda k: products[:, k]}
        self._run_batched(values, homes, work, multiply_all)
        return c

    def _run_batched(self, values: dict[Value, Any], homes: dict[str, Any],
                     work: dict[Any, Any], multiply_all: Any) -> None:
        """Like :meth:`_run`; ``mul`` instructions of the batched program are one call for
        all products, after which each ``("M", r)`` is a row of the product stack."""
        done = False
        for step in self.program.instructions:
            if step.kind == "mul":
                if not done:
                    multiply_all(None, None, None)
                    done = True
                values[step.dest] = homes["M"](step.home[1])
                continue
            if step.kind == "zero":
                self._timed("additions_s", homes["C"](step.home[1]).fill, 0)
                continue
            target = homes[step.home[0]](step.home[1]) if step.home is not None \
                else work[step.slot]
            if step.kind == "sum":
                self._sum([(values[v], c) for v, c in step.terms], target)
                values[step.dest] = target
            else:
                ((source, coefficient),) = step.terms
                self._sum([(values[source], coefficient)], target)

    # -- block sums --------------------------------------------------------------------------
    def _sum(self, terms: list[tuple[Any, float]], out: Any) -> None:
        """``out = sum c * x`` over ``terms`` (``out`` never aliases a term)."""
        if self.profile is not None:
            self._timed("additions_s", self._sum_now, terms, out)
        else:
            self._sum_now(terms, out)

    def _sum_now(self, terms: list[tuple[Any, float]], out: Any) -> None:
        xp = self.xp
        if self._fuse_cpu and len(terms) >= FUSED_MIN_TERMS and can_fuse(terms, out):
            parallel = self._pool is not None and out.size >= self.parallel_min_elements
            linear_combination(terms, out, self._pool if parallel else None, self._chunks)
            return
        if self.backend.on_gpu:
            self._fused_kernel(tuple(c for _, c in terms), out.dtype)(
                *(x for x, _ in terms), out)
            return
        if len(terms) == 1:
            self._scale_into(out, terms[0][0], terms[0][1])
            return
        (x, c0), (y, c1) = terms[0], terms[1]
        if len(terms) == 2 and c0 == 1.0 and c1 in (1.0, -1.0):
            self._ufunc(xp.add if c1 == 1.0 else xp.subtract, x, y, out=out)
            return
        self._fused_sum(terms, out)

    def _fused_kernel(self, coefficients: tuple[float, ...], dtype: Any) -> Any:
        """A CuPy elementwise kernel ``out = c0*x0 + c1*x1 + ...`` (cached): one pass."""
        key = (coefficients, np.dtype(dtype).str)
        if key not in self._kernels:
            params, operation = fused_sum_source(coefficients)
            self._kernels[key] = self.xp.ElementwiseKernel(
                params, "T out", operation, f"mlo_block_sum_{len(coefficients)}")
        return self._kernels[key]

    def _fused_sum(self, terms: list[tuple[Any, float]], out: Any) -> None:
        """CPU: ``out = sum c * x`` cache-blocked along the first axis.

        Each chunk of ``out`` (about :data:`FUSED_CHUNK_BYTES`) stays in cache while every
        term is added to it, so a sum of ``k`` blocks reads each block once and writes
        ``out`` once (``k + 1`` block passes instead of ``3 (k - 1)`` for whole-array adds).
        Ranges are shared out over the thread pool.
        """
        rows = out.shape[0]
        row_bytes = max(1, out.size // max(1, rows) * out.itemsize)
        step = max(1, FUSED_CHUNK_BYTES // row_bytes)

        def run(start: int, stop: int) -> None:
            for low in range(start, stop, step):
                high = min(low + step, stop)
                _sum_rows(terms, out[low:high], low, high)

        if self._pool is None or out.size < self.parallel_min_elements or rows < self._chunks:
            run(0, rows)
            return
        bounds = [rows * index // self._chunks for index in range(self._chunks + 1)]
        jobs = [self._pool.submit(run, start, stop)
                for start, stop in zip(bounds[:-1], bounds[1:], strict=True)]
        for job in jobs:
            job.result()

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


def fused_sum_source(coefficients: tuple[float, ...]) -> tuple[str, str]:
    """The parameters and operation of the CuPy kernel ``out = c0*x0 + c1*x1 + ...``
    (coefficients +-1 need no multiplication)."""
    params = ", ".join(f"T x{i}" for i in range(len(coefficients)))
    parts = []
    for i, c in enumerate(coefficients):
        if c == 1.0:
            parts.append(f"+ x{i}")
        elif c == -1.0:
            parts.append(f"- x{i}")
        else:
            parts.append(f"+ (T)({float(c)!r}) * x{i}")
    operation = "out = " + " ".join(parts).lstrip("+ ")
    return params, operation


def _sum_rows(terms: list[tuple[Any, float]], out: Any, low: int, high: int) -> None:
    """``out = sum c * x[low:high]`` with NumPy, ``out`` being one small chunk."""
    (x, c0), rest = terms[0], terms[1:]
    first = x[low:high]
    if c0 == 1.0:
        np.copyto(out, first)
    elif c0 == -1.0:
        np.negative(first, out=out)
    else:
        np.multiply(first, c0, out=out)
    for y, coefficient in rest:
        block = y[low:high]
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


# --- compiling a plan into a level's program ---------------------------------------------
def compile_program(plan: SchemePlan, strategy: str) -> Program:
    """The instructions of one level (same at every level) for ``strategy``.

    Values: the input blocks, the plan's sums, the products. Stream order: for each
    product, the operand sums it needs (each once, when first needed), the product, then
    every output sum whose terms exist. Batched order: all operand sums (each product's
    operand written into its row of the S/T stack), all products, all output sums. A value
    whose only use is output ``c`` with coefficient 1 is computed into ``C_c``; every other
    sum or product gets a workspace slot of its class, reused after the value's last use.
    """
    rank = plan.algorithm.rank
    nm, mp = plan.a.inputs, plan.b.inputs

    def operand(side: str, r: int) -> Value | None:
        linear = plan.a if side == "a" else plan.b
        output = linear.outputs[r]
        if output is None:
            return None
        inputs = nm if side == "a" else mp
        return _value(side, output[0], inputs)

    referenced: set[int] = set()  # products some output depends on
    pending = [o[0] for o in plan.c.outputs if o is not None]
    seen: set[int] = set()
    while pending:
        v = pending.pop()
        if v in seen:
            continue
        seen.add(v)
        if v < rank:
            referenced.add(v)
        else:
            pending.extend(t for t, _ in plan.c.ops[v - rank])
    products = tuple(r for r in range(rank) if r in referenced
                     and operand("a", r) is not None and operand("b", r) is not None)
    definitions: dict[Value, Terms] = {}
    for side, linear, inputs in (("a", plan.a, nm), ("b", plan.b, mp), ("c", plan.c, rank)):
        for k, op in enumerate(linear.ops):
            definitions[(side, k)] = tuple((_value(side, v, inputs), float(c)) for v, c in op)
    # Output sums fold their scale into their terms when they are used nowhere else.
    uses: dict[Value, int] = {}
    for terms in definitions.values():
        for v, _ in terms:
            uses[v] = uses.get(v, 0) + 1
    outputs: list[tuple[Value, float] | None] = []
    for output in plan.c.outputs:
        if output is None:
            outputs.append(None)
            continue
        value, scale = _value("c", output[0], rank), float(output[1])
        if scale != 1.0 and value[0] == "c" and uses.get(value, 0) == 0 \
                and sum(1 for o in plan.c.outputs if o is not None and o[0] == output[0]) == 1:
            definitions[value] = tuple((v, c * scale) for v, c in definitions[value])
            scale = 1.0
        outputs.append((value, scale))
    homes: dict[Value, tuple[str, int]] = {}
    for c_index, output in enumerate(outputs):
        if output is not None and output[1] == 1.0 and output[0][0] in ("c", "M") \
                and output[0] not in homes:
            homes[output[0]] = ("C", c_index)

    order: list[tuple[str, Value, Terms]] = []
    emitted: set[Value] = set()

    def need(value: Value) -> None:
        if value in emitted or value[0] in ("A", "B"):
            return
        for v, _ in definitions[value]:
            need(v)
        order.append(("sum", value, definitions[value]))
        emitted.add(value)

    c_ops = [("c", k) for k in range(len(plan.c.ops))]

    def ready_outputs() -> None:
        progress = True
        while progress:
            progress = False
            for value in c_ops:
                if value not in emitted and all(v in emitted for v, _ in definitions[value]):
                    order.append(("sum", value, definitions[value]))
                    emitted.add(value)
                    progress = True

    stack_rows: dict[tuple[str, int], Value] = {}
    if strategy == "stream":
        for r in products:
            left, right = operand("a", r), operand("b", r)
            need(left)
            need(right)
            order.append(("mul", ("M", r), ((left, 1.0), (right, 1.0))))
            emitted.add(("M", r))
            ready_outputs()
    else:
        for side, stack in (("a", "S"), ("b", "T")):
            for position, r in enumerate(products):
                value = operand(side, r)
                need(value)
                stack_rows[(stack, position)] = value
        for position, r in enumerate(products):
            order.append(("mul", ("M", r), ()))
            emitted.add(("M", r))
            homes[("M", r)] = ("M", position)  # a row of the product stack
        ready_outputs()
    instructions = _allocate(order, outputs, homes, stack_rows, strategy)
    return Program(instructions[0], instructions[1], products)


def _value(side: str, index: int, inputs: int) -> Value:
    if index < inputs:
        return ({"a": "A", "b": "B", "c": "M"}[side], index)
    return (side, index - inputs)


def _slot_class(value: Value) -> str:
    return {"a": "A", "b": "B"}.get(value[0], "C")


def _allocate(order: list[tuple[str, Value, Terms]], outputs: list[tuple[Value, float] | None],
              homes: dict[Value, tuple[str, int]], stack_rows: dict[tuple[str, int], Value],
              strategy: str) -> tuple[tuple[Instruction, ...], dict[str, int]]:
    """Workspace slots by liveness: a slot is free again after its value's last use."""
    steps: list[tuple[str, Value | None, Terms, tuple[str, int] | None]] = []
    for kind, dest, terms in order:
        steps.append((kind, dest, terms, homes.get(dest)))
    if strategy == "batched":
        # each operand goes into its stack row: computed there when the row is its only use
        row_uses: dict[Value, int] = {}
        for value in stack_rows.values():
            row_uses[value] = row_uses.get(value, 0) + 1
        term_uses: dict[Value, int] = {}
        for _, _, terms, _ in steps:
            for v, _ in terms:
                term_uses[v] = term_uses.get(v, 0) + 1
        placed: dict[Value, tuple[str, int]] = {}
        copies: list[tuple[str, Value | None, Terms, tuple[str, int] | None]] = []
        for row, value in stack_rows.items():
            if value[0] in ("a", "b") and row_uses[value] == 1 and not term_uses.get(value) \
                    and value not in placed:
                placed[value] = row
            else:
                copies.append(("out", None, ((value, 1.0),), row))
        steps = [(k, d, t, placed.get(d, h)) for k, d, t, h in steps]
        first_mul = next(i for i, s in enumerate(steps) if s[0] == "mul") if any(
            s[0] == "mul" for s in steps) else len(steps)
        steps[first_mul:first_mul] = copies
    for c_index, output in enumerate(outputs):
        if output is None:
            steps.append(("zero", None, (), ("C", c_index)))
        elif homes.get(output[0]) != ("C", c_index) or output[1] != 1.0:
            steps.append(("out", None, ((output[0], output[1]),), ("C", c_index)))
    last_use: dict[Value, int] = {}
    for index, (_, _, terms, _) in enumerate(steps):
        for v, _ in terms:
            last_use[v] = index
    free: dict[str, list[int]] = {"A": [], "B": [], "C": []}
    counts = {"A": 0, "B": 0, "C": 0}
    slot_of: dict[Value, tuple[str, int]] = {}
    instructions = []
    for index, (kind, dest, terms, home) in enumerate(steps):
        slot = None
        if dest is not None and home is None:
            kind_class = _slot_class(dest)
            if free[kind_class]:
                slot = (kind_class, free[kind_class].pop())
            else:
                slot = (kind_class, counts[kind_class])
                counts[kind_class] += 1
            slot_of[dest] = slot
        instructions.append(Instruction(kind, dest, terms, home, slot))
        for v, _ in terms:  # freed after the step: a slot never aliases an operand
            if last_use.get(v) == index and v in slot_of:
                released = slot_of.pop(v)
                free[released[0]].append(released[1])
    return tuple(instructions), {k: c for k, c in counts.items() if c}
