"""Backend selection, device facts and timers (CUDA parts skip without CuPy and a device)."""

from __future__ import annotations

import numpy as np
import pytest

from mlo_exp.algorithms.library import lookup
from mlo_exp.benchmark.backend import BackendError, cuda_available, select_backend
from mlo_exp.benchmark.execute import BlockMatmul

needs_cuda = pytest.mark.skipif(not cuda_available(), reason="needs CuPy and a CUDA device")


def test_numpy_backend_describes_the_host_cpu():
    backend = select_backend("numpy")
    assert backend.name == "numpy" and backend.xp is np and not backend.on_gpu
    assert backend.device["device"].startswith("CPU: ")
    assert backend.device["numpy_version"] == np.__version__
    assert backend.device["compute_capability"] is None
    seconds, value = backend.time(lambda: 41 + 1)
    assert value == 42 and seconds >= 0


def test_auto_picks_what_is_there():
    backend = select_backend("auto")
    assert backend.name == ("cupy" if cuda_available() else "numpy")


@pytest.mark.skipif(cuda_available(), reason="this machine has a CUDA device")
def test_cupy_without_a_device_is_a_clear_error():
    with pytest.raises(BackendError, match="benchmark.backend=cupy but .*accepted here"):
        select_backend("cupy")


def test_unknown_backend_is_refused():
    with pytest.raises(BackendError, match="accepted: auto, cupy, numpy"):
        select_backend("opencl")


@pytest.mark.cuda
@needs_cuda
def test_cupy_backend_runs_the_same_code_on_the_gpu():
    backend = select_backend("cupy")
    assert backend.device["compute_capability"] and backend.device["cupy_version"]
    assert "TF32 off" in backend.math_mode
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((40, 36)), rng.standard_normal((36, 44))
    for strategy in ("stream", "batched"):
        executor = BlockMatmul(lookup("strassen"), backend, 2, strategy)
        product = backend.to_host(executor(backend.asarray(a), backend.asarray(b)))
        np.testing.assert_allclose(product, a @ b, rtol=1e-10, atol=1e-10)
    seconds, _ = backend.time(lambda: backend.xp.matmul(backend.asarray(a), backend.asarray(b)))
    assert seconds > 0


@pytest.mark.cuda
@needs_cuda
def test_gpu_rows_say_gpu_and_are_timed_with_events():
    from mlo_exp.benchmark.measure import Identity, benchmark_algorithm

    backend = select_backend("cupy")
    rows = benchmark_algorithm(lookup("strassen"), backend, Identity("b", "b", None), [256],
                               "float32", warmup=1, repeats=2)
    assert rows[0]["backend"] == "cupy" and rows[0]["device"].startswith("GPU")
    assert rows[0]["relative_error"] < 1e-5 and rows[0]["median_s"] > 0
