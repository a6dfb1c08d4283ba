"""The CuPy code paths, run on the CPU through a NumPy stand-in (tests/benchmark/fake_cupy.py):
fused elementwise kernels, the batched strategy at several levels, event timing with chained
calls, and the TF32 math mode applied to every GEMM (batched ones of level >= 2 included)
inside the measurement and restored after it."""

from __future__ import annotations

import os

import numpy as np
import pytest

from mlo_exp.algorithms.library import lookup
from mlo_exp.benchmark.backend import BackendError, cuda_available, select_backend
from mlo_exp.benchmark.execute import BlockMatmul
from mlo_exp.benchmark.measure import Identity, benchmark_algorithm
from tests.benchmark.fake_cupy import ElementwiseKernel, fake_cupy_backend


@pytest.mark.parametrize("strategy", ["stream", "batched"])
@pytest.mark.parametrize(("name", "levels", "dims"), [
    ("strassen", 2, (36, 40, 44)),
    ("alphatensor-3x3x3", 1, (19, 20, 21)),   # multi-term sums with coefficients +-2
    ("alphatensor-4x4x4", 2, (32, 32, 32)),
])
def test_gpu_code_path_gives_the_product(name, levels, dims, strategy):
    backend = fake_cupy_backend()
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(dims[:2]), rng.standard_normal(dims[1:])
    before = ElementwiseKernel.calls
    executor = BlockMatmul(lookup(name), backend, levels, strategy)
    assert executor._pool is None  # no CPU thread pool on the GPU
    product = backend.to_host(executor(backend.asarray(a), backend.asarray(b)))
    np.testing.assert_allclose(product, a @ b, rtol=1e-10, atol=1e-10)
    assert ElementwiseKernel.calls > before  # every block sum is one fused kernel


def test_auto_strategy_is_batched_on_the_gpu():
    assert BlockMatmul(lookup("strassen"), fake_cupy_backend()).strategy == "batched"


@pytest.mark.parametrize("allow_tf32", [False, True])
def test_math_mode_holds_for_every_gemm_and_is_restored(allow_tf32, monkeypatch):
    monkeypatch.setenv("CUPY_TF32", "previous")
    backend = fake_cupy_backend(allow_tf32)
    records = backend.xp.matmul_records
    rows = benchmark_algorithm(lookup("strassen"), backend, Identity("b", "b", None), [64],
                               "float32", levels=2, warmup=1, repeats=2, strategy="batched",
                               chain=3)
    wanted = (7, "1") if allow_tf32 else (1, "0")
    assert records and set(records) == {wanted}  # baseline, checks, batched GEMMs, level 2
    assert os.environ["CUPY_TF32"] == "previous"  # scoped: restored after the measurement
    assert backend.xp._core._routines_linalg.get_compute_type(np.float32) == 1
    assert ("TF32 allowed" in backend.math_mode) == allow_tf32
    assert rows[0]["math_mode"] == backend.math_mode and rows[0]["chain"] == 3
    assert rows[0]["median_s"] > 0


def test_math_scope_removes_a_variable_that_was_unset(monkeypatch):
    monkeypatch.delenv("CUPY_TF32", raising=False)
    backend = fake_cupy_backend(True)
    with backend.math_scope():
        assert os.environ["CUPY_TF32"] == "1"
    assert "CUPY_TF32" not in os.environ


def test_chained_timing_divides_by_the_chain():
    backend = fake_cupy_backend()
    calls = []
    seconds, result = backend.time(lambda: calls.append(1) or len(calls), chain=4)
    assert len(calls) == 4 and result == 4 and seconds >= 0


def test_device_facts_sizes_and_memory_on_the_gpu_path():
    from mlo_exp.benchmark.backend import _cupy_backend
    from mlo_exp.benchmark.measure import default_sizes
    from tests.benchmark.fake_cupy import make_fake_cupy

    backend = _cupy_backend(make_fake_cupy(), allow_tf32=True)
    assert backend.device["device"] == "GPU 0: Fake H200"
    assert backend.device["driver_version"] == "12.4" and backend.device["cupy_version"]
    assert backend.device["compute_capability"] == "9.0" and backend.allow_tf32
    assert "COMPUTE_TYPE_TF32" in backend.math_mode
    assert backend.free_memory_bytes() == 8 << 30
    sizes = default_sizes(backend, lookup("alphatensor-4x4x4"), 1, "float32")
    assert 4096 in sizes and 16384 not in sizes  # 8 GiB free: the largest does not fit
    backend.release()
    backend.sync()


def test_tf32_on_numpy_is_refused():
    with pytest.raises(BackendError, match="allow_tf32 needs CuPy"):
        select_backend("numpy", allow_tf32=True)


needs_cuda = pytest.mark.skipif(not cuda_available(), reason="needs CuPy and a CUDA device")


@pytest.mark.cuda
@needs_cuda
@pytest.mark.parametrize("strategy", ["stream", "batched"])
@pytest.mark.parametrize("plan", ["reduced", "naive"])
def test_real_gpu_products_for_every_plan_and_strategy(strategy, plan):
    backend = select_backend("cupy")
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((70, 66)), rng.standard_normal((66, 75))
    for name, levels in (("strassen", 2), ("alphatensor-4x4x4", 2), ("alphatensor-3x3x3", 1)):
        executor = BlockMatmul(lookup(name), backend, levels, strategy, plan=plan)
        product = backend.to_host(executor(backend.asarray(a), backend.asarray(b)))
        np.testing.assert_allclose(product, a @ b, rtol=1e-10, atol=1e-10)


@pytest.mark.cuda
@needs_cuda
@pytest.mark.parametrize("allow_tf32", [False, True])
def test_real_gpu_math_scope_sets_and_restores_the_compute_type(allow_tf32):
    from cupy._core import _routines_linalg as linalg

    backend = select_backend("cupy", allow_tf32=allow_tf32)
    before = linalg.get_compute_type(np.float32)
    with backend.math_scope():
        inside = linalg.get_compute_type(np.float32)
    assert inside == (linalg.COMPUTE_TYPE_TF32 if allow_tf32 else linalg.COMPUTE_TYPE_DEFAULT)
    assert linalg.get_compute_type(np.float32) == before
    rows = benchmark_algorithm(lookup("alphatensor-4x4x4"), backend, Identity("b", "b", None),
                               [1024], "float32", levels=2, warmup=1, repeats=3,
                               strategy="batched")
    tolerance = 1e-2 if allow_tf32 else 1e-4
    assert rows[0]["relative_error"] < tolerance and rows[0]["chain"] == 10
