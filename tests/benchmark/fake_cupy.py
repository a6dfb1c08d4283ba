"""A stand-in for CuPy built on NumPy, so the GPU code paths run (and are checked) on a CPU.

``fake_cupy_backend()`` returns a :class:`Backend` named ``cupy`` whose ``xp`` has what the
benchmark uses of CuPy: the NumPy array API, ``asnumpy``, ``cuda`` (streams, events,
runtime), ``get_default_memory_pool``, ``ElementwiseKernel`` (the operation string
evaluated with NumPy) and ``_core._routines_linalg`` (the float32 compute type). Every
``matmul`` records the compute type and ``CUPY_TF32`` in force when it ran.

``_core._routines_linalg`` is private to CuPy, and it is here only because the backend itself
must use it: CuPy reads ``CUPY_TF32`` once, at import, and has no public setter of the
compute type. What this stand-in cannot show, that the installed CuPy still has that module
and that it governs cuBLAS, is checked on a real device by
``test_real_gpu_math_scope_sets_and_restores_the_compute_type`` (skipped without CUDA).
"""

from __future__ import annotations

import os
import re
import time
import types
from typing import Any

import numpy as np

from mlo_exp.benchmark.backend import Backend, _describe_cupy_math_mode


class _Event:
    def __init__(self) -> None:
        self.at = 0.0

    def record(self) -> None:
        self.at = time.perf_counter()

    def synchronize(self) -> None:
        pass


class _Linalg:
    COMPUTE_TYPE_DEFAULT = 1
    COMPUTE_TYPE_TF32 = 7

    def __init__(self) -> None:
        self.types = {np.dtype(np.float32).str: 1}

    def set_compute_type(self, dtype: Any, value: int) -> None:
        self.types[np.dtype(dtype).str] = int(value)

    def get_compute_type(self, dtype: Any) -> int:
        return self.types[np.dtype(dtype).str]


class ElementwiseKernel:
    """``out = <expression of x0, x1, ...>`` evaluated with NumPy (``(T)(c)`` casts)."""

    calls = 0

    def __init__(self, in_params: str, out_params: str, operation: str, name: str) -> None:
        assert out_params == "T out" and operation.startswith("out = ")
        self.inputs = [p.split()[1] for p in in_params.split(", ")]
        self.expression = re.sub(r"\(T\)\(([^)]*)\)", r"\1", operation[len("out = "):])
        self.name = name

    def __call__(self, *arrays: Any) -> Any:
        *inputs, out = arrays
        assert len(inputs) == len(self.inputs)
        ElementwiseKernel.calls += 1
        value = eval(self.expression, {}, dict(zip(self.inputs, inputs, strict=True)))  # noqa: S307
        np.copyto(out, value, casting="same_kind")
        return out


def make_fake_cupy() -> types.SimpleNamespace:
    linalg = _Linalg()
    records: list[tuple[int, str | None]] = []

    def matmul(a: Any, b: Any, out: Any = None) -> Any:
        records.append((linalg.get_compute_type(np.float32), os.environ.get("CUPY_TF32")))
        return np.matmul(a, b, out=out)

    namespace = {name: getattr(np, name) for name in dir(np) if not name.startswith("__")}
    fake = types.SimpleNamespace(**namespace)
    fake.__name__ = "fake_cupy"
    fake.matmul = matmul
    fake.matmul_records = records
    fake.asnumpy = np.asarray
    fake.ElementwiseKernel = ElementwiseKernel
    fake._core = types.SimpleNamespace(_routines_linalg=linalg)
    pool = types.SimpleNamespace(free_all_blocks=lambda: None)
    fake.get_default_memory_pool = lambda: pool
    fake.cuda = types.SimpleNamespace(
        Stream=types.SimpleNamespace(null=types.SimpleNamespace(synchronize=lambda: None)),
        Event=_Event,
        get_elapsed_time=lambda start, end: (end.at - start.at) * 1000.0,
        runtime=types.SimpleNamespace(
            memGetInfo=lambda: (8 << 30, 16 << 30), getDevice=lambda: 0,
            getDeviceCount=lambda: 1, driverGetVersion=lambda: 12040,
            runtimeGetVersion=lambda: 12040,
            getDeviceProperties=lambda device: {"name": b"Fake H200", "major": 9, "minor": 0}),
    )
    fake.__version__ = "13.0.0-fake"
    return fake


def fake_cupy_backend(allow_tf32: bool = False) -> Backend:
    fake = make_fake_cupy()
    info = {"backend": "cupy", "device": "GPU 0: fake (NumPy)", "device_name": "fake",
            "compute_capability": "9.0", "memory_bytes": 16 << 30, "driver_version": "12.4",
            "cuda_runtime_version": "12.4", "cupy_version": "fake", "numpy_version":
            np.__version__, "host_cpu": "test"}
    return Backend("cupy", fake, info, _describe_cupy_math_mode(fake, allow_tf32),
                   allow_tf32=allow_tf32)
