"""The array backend of a benchmark: CuPy on a CUDA device, NumPy on the CPU.

Everything that runs a product goes through :class:`Backend`: ``xp`` is the array module
(``cupy`` or ``numpy``) so the execution code is written once; ``sync`` waits for queued
device work; :meth:`Backend.time` measures one call (CUDA events on the GPU, bracketed by a
synchronisation; ``time.perf_counter`` on the CPU). Times are in seconds.

Selection (``benchmark.backend``): ``auto`` takes CuPy when it imports and sees a CUDA
device, else NumPy; ``cupy`` without CuPy or without a device is a :class:`BackendError`,
never a silent fallback; ``numpy`` always runs on the host CPU.

Math mode: fp32 products run in full fp32 unless ``allow_tf32`` is set (CuPy's compute type
for float32, also what ``CUPY_TF32=1`` selects). The mode is applied only inside
:meth:`Backend.math_scope` (the measurement enters it around every size, so every GEMM of
every level, batched ones included, and the baseline run under it) and restored on exit:
``CUPY_TF32`` and CuPy's compute type are process-wide, and nothing else in the process
should inherit them. NumPy has no reduced-precision mode: ``allow_tf32`` with NumPy is
refused (:class:`BackendError`), never silently ignored. The mode is reported in
:attr:`Backend.math_mode`.

Timing (:meth:`Backend.time`): ``chain`` consecutive calls per sample, divided by
``chain`` (short GPU kernels are timed over several calls, as AlphaTensor's benchmark
does); the measurement takes the median over many samples.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import platform
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from mlo_exp.config import BENCHMARK_BACKENDS


class BackendError(RuntimeError):
    """A requested backend that cannot run here (names what is missing and what to use)."""


@dataclass
class Backend:
    """One array module plus what is needed to time it honestly and describe the device."""

    name: str  # "cupy" or "numpy"
    xp: ModuleType
    device: dict[str, Any] = field(default_factory=dict)
    math_mode: str = "fp32 (no reduced precision)"
    allow_tf32: bool = False

    @property
    def on_gpu(self) -> bool:
        return self.name == "cupy"

    def sync(self) -> None:
        """Wait until all queued device work is done (no-op on the CPU)."""
        if self.on_gpu:
            self.xp.cuda.Stream.null.synchronize()

    def asarray(self, array: np.ndarray) -> Any:
        """Host array -> backend array."""
        return self.xp.asarray(array)

    def to_host(self, array: Any) -> np.ndarray:
        """Backend array -> NumPy array."""
        return self.xp.asnumpy(array) if self.on_gpu else np.asarray(array)

    def time(self, call: Callable[[], Any], chain: int = 1) -> tuple[float, Any]:
        """Seconds one ``call()`` takes (the mean of ``chain`` consecutive calls), and the
        last result.

        GPU: CUDA events recorded around the calls on the current stream, after a
        synchronisation, and read after the end event has completed. CPU: ``perf_counter``.
        """
        chain = max(1, int(chain))
        result = None
        if self.on_gpu:
            cuda = self.xp.cuda
            self.sync()
            start, end = cuda.Event(), cuda.Event()
            start.record()
            for _ in range(chain):
                result = call()
            end.record()
            end.synchronize()
            return cuda.get_elapsed_time(start, end) / 1000.0 / chain, result
        started = time.perf_counter()
        for _ in range(chain):
            result = call()
        return (time.perf_counter() - started) / chain, result

    @contextlib.contextmanager
    def math_scope(self) -> Iterator[None]:
        """The math mode in force inside the block, the previous one restored after (see
        the module docstring). A no-op on NumPy."""
        if not self.on_gpu:
            yield
            return
        linalg = _cupy_linalg(self.xp)
        previous_env = os.environ.get("CUPY_TF32")
        previous_type = linalg.get_compute_type(np.float32) if linalg is not None else None
        os.environ["CUPY_TF32"] = "1" if self.allow_tf32 else "0"
        if linalg is not None:
            linalg.set_compute_type(np.float32, _compute_type(linalg, self.allow_tf32))
        try:
            yield
        finally:
            if previous_env is None:
                os.environ.pop("CUPY_TF32", None)
            else:
                os.environ["CUPY_TF32"] = previous_env
            if linalg is not None:
                linalg.set_compute_type(np.float32, previous_type)

    def free_memory_bytes(self) -> int:
        """Memory a benchmark may use: free device memory, or available host memory."""
        if self.on_gpu:
            self.xp.get_default_memory_pool().free_all_blocks()
            free, _total = self.xp.cuda.runtime.memGetInfo()
            return int(free)
        return host_available_memory()

    def release(self) -> None:
        """Give cached device memory back between sizes (no-op on the CPU)."""
        if self.on_gpu:
            self.xp.get_default_memory_pool().free_all_blocks()


def select_backend(choice: str = "auto", allow_tf32: bool = False) -> Backend:
    """Pick the backend (see module docstring); raises :class:`BackendError`."""
    if choice not in BENCHMARK_BACKENDS:
        raise BackendError(f"benchmark.backend={choice!r}; accepted: "
                           f"{', '.join(BENCHMARK_BACKENDS)}")
    if choice in ("auto", "cupy"):
        cupy, why = _import_cupy_with_device()
        if cupy is not None:
            return _cupy_backend(cupy, allow_tf32)
        if choice == "cupy":
            raise BackendError(
                f"benchmark.backend=cupy but {why}; accepted here: benchmark.backend=numpy "
                "(host CPU) or auto (CuPy when a CUDA device is present, else NumPy)"
            )
    if allow_tf32:
        raise BackendError("allow_tf32 needs CuPy on a CUDA device; NumPy always computes "
                           "fp32 in full precision: accepted here: allow_tf32=false")
    return _numpy_backend()


def cuda_available() -> bool:
    """True when CuPy imports and sees at least one CUDA device."""
    return _import_cupy_with_device()[0] is not None


def cuda_unavailable_reason() -> str | None:
    """Why the CuPy backend cannot run here, or None when it can."""
    cupy, why = _import_cupy_with_device()
    return None if cupy is not None else why


def _import_cupy_with_device() -> tuple[ModuleType | None, str]:
    try:
        import cupy
    except Exception as error:  # ImportError, or a broken CUDA install failing at import
        return None, f"CuPy is not importable ({type(error).__name__}: {error}); " \
                     "install it with `pip install -e .[gpu]` on a CUDA machine"
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as error:
        return None, f"CuPy finds no usable CUDA device ({type(error).__name__}: {error})"
    if count < 1:
        return None, "CuPy finds no CUDA device"
    return cupy, ""


def _cupy_backend(cupy: ModuleType, allow_tf32: bool) -> Backend:
    device_id = cupy.cuda.runtime.getDevice()
    properties = cupy.cuda.runtime.getDeviceProperties(device_id)
    name = properties["name"]
    name = name.decode() if isinstance(name, bytes) else str(name)
    _free, total = cupy.cuda.runtime.memGetInfo()
    info = {
        "backend": "cupy",
        "device": f"GPU {device_id}: {name}",
        "device_name": name,
        "compute_capability": f"{properties['major']}.{properties['minor']}",
        "memory_bytes": int(total),
        "driver_version": _cuda_version(cupy.cuda.runtime.driverGetVersion()),
        "cuda_runtime_version": _cuda_version(cupy.cuda.runtime.runtimeGetVersion()),
        "cupy_version": cupy.__version__,
        "numpy_version": np.__version__,
        "host_cpu": host_cpu_name(),
    }
    return Backend("cupy", cupy, info, _describe_cupy_math_mode(cupy, allow_tf32),
                   allow_tf32=allow_tf32)


def _cupy_linalg(cupy: ModuleType) -> Any:
    """CuPy's private module holding the float32 compute type, or None where absent."""
    core = getattr(cupy, "_core", None)
    linalg = getattr(core, "_routines_linalg", None)
    if linalg is None and getattr(cupy, "__name__", "") == "cupy":
        try:
            linalg = importlib.import_module("cupy._core._routines_linalg")
        except ImportError:
            return None
    if linalg is None or not hasattr(linalg, "set_compute_type"):
        return None
    return linalg


def _compute_type(linalg: Any, allow_tf32: bool) -> int:
    """CuPy's compute types: 1 = COMPUTE_TYPE_DEFAULT (full fp32), 7 = COMPUTE_TYPE_TF32."""
    return getattr(linalg, "COMPUTE_TYPE_TF32", 7) if allow_tf32 \
        else getattr(linalg, "COMPUTE_TYPE_DEFAULT", 1)


def _describe_cupy_math_mode(cupy: ModuleType, allow_tf32: bool) -> str:
    """What :meth:`Backend.math_scope` puts in force (nothing is changed here)."""
    linalg = _cupy_linalg(cupy)
    if linalg is not None:
        names = {1: "COMPUTE_TYPE_DEFAULT", 7: "COMPUTE_TYPE_TF32"}
        wanted = int(_compute_type(linalg, allow_tf32))
        mode = names.get(wanted, str(wanted))
    else:  # a CuPy without the private API: the environment variable only
        mode = f"CUPY_TF32={'1' if allow_tf32 else '0'}"
    override = os.environ.get("NVIDIA_TF32_OVERRIDE")
    suffix = f", NVIDIA_TF32_OVERRIDE={override}" if override is not None else ""
    allowed = "TF32 allowed" if allow_tf32 else "TF32 off"
    return f"fp32 {allowed} (CuPy float32 compute type {mode}{suffix}); fp64 full precision"


def _numpy_backend() -> Backend:
    info = {
        "backend": "numpy",
        "device": f"CPU: {host_cpu_name()} ({os.cpu_count()} logical cores)",
        "device_name": host_cpu_name(),
        "compute_capability": None,
        "memory_bytes": host_total_memory(),
        "driver_version": None,
        "cuda_runtime_version": None,
        "cupy_version": _cupy_version_if_installed(),
        "numpy_version": np.__version__,
        "blas": numpy_blas_name(),
        "host_cpu": host_cpu_name(),
        "cpu_threads": os.cpu_count(),
    }
    return Backend("numpy", np, info, "fp32/fp64 full precision (NumPy has no reduced mode)")


def _cuda_version(code: int) -> str:
    """CUDA's integer versions (12040) as ``12.4``."""
    return f"{code // 1000}.{(code % 1000) // 10}"


def _cupy_version_if_installed() -> str | None:
    try:
        from importlib.metadata import PackageNotFoundError, version
    except ImportError:  # pragma: no cover
        return None
    for dist in ("cupy", "cupy-cuda12x", "cupy-cuda11x"):
        try:
            return version(dist)
        except PackageNotFoundError:
            continue
    return None


def host_cpu_name() -> str:
    """The CPU model (``/proc/cpuinfo`` on Linux, ``platform`` elsewhere)."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown CPU"


def host_total_memory() -> int | None:
    """Physical memory in bytes, or None where the OS does not say."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return None


def host_available_memory() -> int:
    """Available host memory in bytes (``MemAvailable``), else half the physical memory."""
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return (host_total_memory() or 2**32) // 2


def numpy_blas_name() -> str | None:
    """The BLAS NumPy was built against (e.g. ``scipy-openblas 0.3.27``), when it says."""
    try:
        config = np.show_config(mode="dicts")  # numpy >= 1.26
        blas = config["Build Dependencies"]["blas"]
        return f"{blas.get('name')} {blas.get('version', '')}".strip()
    except Exception:
        return None
