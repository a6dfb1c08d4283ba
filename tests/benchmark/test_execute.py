"""Execution of algorithms as block products: shapes, levels, padding, both strategies."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from mlo_exp.algorithms.alphatensor import default_data_dir, load_alphatensor
from mlo_exp.algorithms.library import lookup
from mlo_exp.benchmark.backend import select_backend
from mlo_exp.benchmark.execute import (
    BlockMatmul,
    compile_program,
    fused_sum_source,
    padded_size,
)

NUMPY = select_backend("numpy")


@functools.cache
def _alphatensor_all() -> dict:
    return load_alphatensor(default_data_dir() / "factorizations_r.npz", ring="Q")


def _library(name: str):
    """``lookup`` that reads AlphaTensor's file once for the whole module (it is slow)."""
    if name.startswith("alphatensor-") and not name.endswith("-z2"):
        return _alphatensor_all()[tuple(int(x) for x in name.split("-")[1].split("x"))]
    return lookup(name)


def _operands(rows: int, inner: int, cols: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((rows, inner)), rng.standard_normal((inner, cols))


@pytest.mark.parametrize("strategy", ["stream", "batched"])
@pytest.mark.parametrize(("name", "levels", "dims"), [
    ("school-2x2x2", 1, (8, 8, 8)),
    ("school-1x1x1", 3, (5, 6, 7)),          # blocks as large as the matrix at every level
    ("school-2x3x4", 1, (10, 13, 9)),       # padding on every side
    ("strassen", 1, (64, 64, 64)),
    ("strassen", 2, (37, 41, 29)),           # two levels plus padding
    ("strassen", 3, (40, 40, 40)),
    ("alphatensor-4x4x4", 1, (33, 20, 18)),  # rank 49, padded
    ("alphatensor-3x4x5", 1, (30, 40, 50)),  # coefficients +-2
    ("alphatensor-3x4x11", 1, (7, 9, 23)),   # fractions (+-1/2) in the factors, padded
    ("alphatensor-2x2x2", 2, (16, 12, 20)),
])
def test_block_product_matches_plain_product(name, levels, dims, strategy):
    algorithm = _library(name)
    a, b = _operands(*dims)
    product = BlockMatmul(algorithm, NUMPY, levels, strategy)(a, b)
    assert product.shape == (dims[0], dims[2])
    np.testing.assert_allclose(product, a @ b, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("strategy", ["stream", "batched"])
@pytest.mark.parametrize("dims", [(16, 16, 16), (13, 10, 7)])  # exact fit, then padded
def test_product_into_a_given_output(dims, strategy):
    a, b = _operands(*dims)
    out = np.full((dims[0], dims[2]), np.nan)  # stale contents must all be overwritten
    executor = BlockMatmul(lookup("strassen"), NUMPY, 2, strategy)
    assert executor(a, b, out=out) is out
    np.testing.assert_allclose(out, a @ b, rtol=1e-10, atol=1e-10)
    wide = np.full((dims[0], 2 * dims[2]), np.nan)
    executor(a, b, out=wide[:, ::2])  # a strided output is filled too
    np.testing.assert_allclose(wide[:, ::2], a @ b, rtol=1e-10, atol=1e-10)
    with pytest.raises(ValueError, match="accepted: shape"):
        executor(a, b, out=np.empty((dims[0], dims[2] + 1)))
    with pytest.raises(ValueError, match="dtype float64"):
        executor(a, b, out=np.empty((dims[0], dims[2]), dtype=np.float32))

def test_fractional_algorithm_really_has_fractions():
    u, v, w = _library("alphatensor-3x4x11").as_float()
    assert any(np.any(x != np.round(x)) for x in (u, v, w))


def test_float32_error_is_small_and_reuse_is_stable():
    executor = BlockMatmul(lookup("strassen"), NUMPY, 2)
    a, b = (x.astype(np.float32) for x in _operands(64, 64, 64))
    first = executor(a, b)
    second = executor(a, b)  # workspaces reused between calls
    assert first.dtype == np.float32
    np.testing.assert_array_equal(first, second)
    reference = a.astype(np.float64) @ b.astype(np.float64)
    assert np.linalg.norm(first - reference) / np.linalg.norm(reference) < 1e-5


def test_a_wrong_algorithm_gives_a_wrong_product():
    """The executor follows the factors: a broken factor shows up in the result."""
    algorithm = lookup("strassen")
    algorithm.w[0, 0] = 0
    a, b = _operands(8, 8, 8)
    assert not np.allclose(BlockMatmul(algorithm, NUMPY, 1)(a, b), a @ b)


@pytest.mark.parametrize("strategy", ["stream", "batched"])
@pytest.mark.parametrize("plan", ["reduced", "naive"])
@pytest.mark.parametrize(("name", "levels", "dims"), [
    ("strassen", 2, (20, 24, 28)),
    ("alphatensor-3x3x3", 1, (19, 20, 21)),   # coefficients +-2, shared sums
    ("alphatensor-4x4x4", 2, (33, 32, 35)),   # two levels, padded
    ("alphatensor-3x4x11", 1, (7, 9, 23)),    # fractions
])
def test_every_plan_and_strategy_gives_the_product(name, levels, dims, plan, strategy):
    a, b = _operands(*dims)
    executor = BlockMatmul(_library(name), NUMPY, levels, strategy, plan=plan)
    np.testing.assert_allclose(executor(a, b), a @ b, rtol=1e-10, atol=1e-10)
    out = np.full((dims[0], dims[2]), np.nan)
    executor(a, b, out=out)
    np.testing.assert_allclose(out, a @ b, rtol=1e-10, atol=1e-10)


def test_programs_reuse_slots_and_write_outputs_in_place():
    """Slots are fewer than the values they hold; each C block is written by one step."""
    executor = BlockMatmul(_library("alphatensor-4x4x4"), NUMPY, 1, "stream")
    program = executor.program
    sums = [s for s in program.instructions if s.kind == "sum"]
    assert sum(program.slots.values()) < len(sums) + len(program.products)
    written = [s.home[1] for s in program.instructions if s.home and s.home[0] == "C"]
    assert sorted(written) == list(range(16))
    assert executor.additions == sum(len(s.terms) - 1 for s in sums)
    # the batched program writes each operand into its row of the stacks
    batched = compile_program(executor.plan, "batched")
    rows = {s.home for s in batched.instructions if s.home and s.home[0] in ("S", "T")}
    assert len(rows) == 2 * len(batched.products)


def test_zero_products_are_skipped():
    algorithm = lookup("school-2x2x2")
    u = np.array(algorithm.u, dtype=object)
    u[:, 0] = 0  # product 0 vanishes; its C block must still be right (here: wrong on purpose)
    from mlo_exp.algorithms.algorithm import Algorithm

    broken = Algorithm((2, 2, 2), u, algorithm.v, algorithm.w, "Z")
    executor = BlockMatmul(broken, NUMPY, 1)
    assert 0 not in executor.program.products
    a, b = _operands(4, 4, 4)
    expected = a @ b
    expected[:2, :2] -= a[:2, :2] @ b[:2, :2]
    np.testing.assert_allclose(executor(a, b), expected, rtol=1e-10, atol=1e-10)


def test_fused_kernel_source():
    params, operation = fused_sum_source((1.0, -1.0, 0.5))
    assert params == "T x0, T x1, T x2"
    assert operation == "out = x0 - x1 + (T)(0.5) * x2"
    assert fused_sum_source((-1.0,))[1] == "out = - x0"


def test_refuses_modulo_two_algorithms_and_bad_settings():
    with pytest.raises(ValueError, match="modulo 2"):
        BlockMatmul(lookup("alphatensor-2x2x2-z2"), NUMPY)
    with pytest.raises(ValueError, match="levels"):
        BlockMatmul(lookup("strassen"), NUMPY, levels=0)
    with pytest.raises(ValueError, match="strategy"):
        BlockMatmul(lookup("strassen"), NUMPY, strategy="magic")
    with pytest.raises(ValueError, match="plan"):
        BlockMatmul(lookup("strassen"), NUMPY, plan="magic")


def test_padded_size():
    assert padded_size(8, 2, 3) == 8
    assert padded_size(9, 2, 3) == 16
    assert padded_size(1, 4, 1) == 4


@pytest.mark.parametrize("threads", [1, 3])
def test_threaded_elementwise_passes_give_the_same_product(threads):
    """The row-chunked thread-pool path (taken for large blocks) computes the same product."""
    a, b = _operands(41, 40, 39)
    executor = BlockMatmul(_library("alphatensor-3x4x11"), NUMPY, 1, "stream", threads=threads)
    executor.parallel_min_elements = 1  # every elementwise pass goes through the pool
    assert (executor._pool is None) == (threads == 1)
    np.testing.assert_allclose(executor(a, b), a @ b, rtol=1e-10, atol=1e-10)


def test_cache_blocked_sums_match_whole_array_sums():
    """Sums of 3+ blocks take the cache-blocked CPU path, with chunks of a few rows."""
    import mlo_exp.benchmark.execute as execute

    a, b = _operands(48, 44, 40)
    executor = BlockMatmul(_library("alphatensor-4x4x4"), NUMPY, 1, "stream", threads=2,
                           sums="numpy")
    executor.parallel_min_elements = 1
    chunk_bytes = execute.FUSED_CHUNK_BYTES
    try:
        execute.FUSED_CHUNK_BYTES = 8 * 11 * 2  # two rows of an 11-column float64 block
        np.testing.assert_allclose(executor(a, b), a @ b, rtol=1e-10, atol=1e-10)
    finally:
        execute.FUSED_CHUNK_BYTES = chunk_bytes


@pytest.mark.parametrize("strategy", ["stream", "batched"])
def test_an_addition_reduced_file_runs_its_own_plan(tmp_path, strategy):
    import json

    from mlo_exp.algorithms.formats import read_algorithms
    from tests.algorithms.test_readers import STRASSEN_REDUCED

    path = tmp_path / "reduced.json"
    path.write_text(json.dumps(STRASSEN_REDUCED))
    (algorithm,) = read_algorithms(path)
    executor = BlockMatmul(algorithm, NUMPY, 2, strategy, plan="file")
    assert executor.plan.from_file and executor.additions == 20
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((12, 8)), rng.standard_normal((8, 16))
    assert np.allclose(executor(a, b), a @ b)


FUSED_CASES = [
    ("strassen", 2, (36, 40, 44)),
    ("alphatensor-3x4x11", 1, (7, 9, 23)),      # fractions, padded
    ("best-4x4x4", 1, (32, 36, 40)),            # rank 49, long fused sums
    ("best-3x2x3*strassen", 1, (24, 16, 30)),   # a product of schemes
    ("school-1x1x1", 2, (9, 8, 7)),             # contiguous blocks (the NumPy fallback)
    ("school-2x3x4", 1, (10, 13, 9)),           # the classical control of a rectangle
]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(("name", "levels", "dims"), FUSED_CASES)
def test_fused_sums_give_the_numpy_sums_product_bit_for_bit(name, levels, dims, dtype):
    """One compiled pass adds in the same order as the NumPy path: the same bits."""
    from mlo_exp.benchmark.schemes import resolve_scheme

    algorithm = resolve_scheme(name) if "*" in name else _library(name)
    a, b = (x.astype(dtype) for x in _operands(*dims))
    results = {}
    for sums in ("fused", "numpy"):
        executor = BlockMatmul(algorithm, NUMPY, levels, "stream", threads=2, sums=sums)
        executor.parallel_min_elements = 1  # row ranges on the thread pool
        results[sums] = executor(a, b)
    np.testing.assert_array_equal(results["fused"], results["numpy"])
    tolerance = 1e-10 if dtype == "float64" else 1e-4
    np.testing.assert_allclose(results["fused"], a @ b, rtol=tolerance, atol=tolerance)


@pytest.mark.parametrize("name", ["strassen", "best-4x4x4", "school-4x4x4"])
def test_fused_sums_are_exact_on_integer_inputs(name):
    """Small integers: every block sum and product is exact, so is the result."""
    rng = np.random.default_rng(3)
    a = rng.integers(-4, 5, (64, 48)).astype(np.float64)
    b = rng.integers(-4, 5, (48, 56)).astype(np.float64)
    for levels in (1, 2) if name == "strassen" else (1,):
        product = BlockMatmul(_library(name), NUMPY, levels, "stream")(a, b)
        np.testing.assert_array_equal(product, a @ b)


def test_linear_combination_layouts_and_padded_workspaces():
    from mlo_exp.benchmark.fused import can_fuse, linear_combination, padded_empty

    slot = padded_empty((5, 8), np.float32)
    assert slot.shape == (5, 8) and not slot.flags.c_contiguous
    big = np.arange(200, dtype=np.float32).reshape(10, 20)
    views = [(big[:5, :8], 1.0), (big[5:, 8:16], -1.0), (big[:5, 12:], 0.5)]
    assert can_fuse(views, slot) and not can_fuse([(np.ones((5, 8), np.float32), 1.0),
                                                   views[0]], slot)
    assert not can_fuse([(big[:5, :8].astype(np.float64), 1.0), views[0]], slot)
    linear_combination(views, slot)
    expected = big[:5, :8] - big[5:, 8:16] + np.float32(0.5) * big[:5, 12:]
    np.testing.assert_array_equal(slot, expected)


def test_profiled_call_splits_time_into_sums_and_products():
    a, b = _operands(64, 64, 64)
    executor = BlockMatmul(_library("strassen"), NUMPY, 2, "stream")
    profile = executor.profile_call(a, b)
    assert profile["additions_s"] > 0 and profile["products_s"] > 0
    assert profile["additions_s"] + profile["products_s"] <= profile["total_s"]
    assert executor.profile is None  # timed calls are not instrumented
    with pytest.raises(ValueError, match="sums='magic'; accepted: fused, numpy"):
        BlockMatmul(_library("strassen"), NUMPY, sums="magic")
