"""Import AlphaTensor's published factorizations without running pickled code.

The files (``factorizations_r.npz``, ``factorizations_f2.npz``) map ``"n,m,p"`` to three
factor matrices ``u (n*m, R)``, ``v (m*p, R)``, ``w (p*n, R)`` in the convention
``T[i*m+j, j*p+k, k*n+i]`` (C transposed). Entries whose three factors have different shapes
are stored as numpy *object* arrays, i.e. as pickles. ``np.load(allow_pickle=True)`` would
execute whatever a tampered file contains, so this module reads the zip members itself and
unpickles with an allow-list of the three numpy callables that rebuild plain arrays.
"""

from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path

import numpy as np
from numpy.lib import format as npy_format

from mlo_exp.algorithm import Algorithm
from mlo_exp.reference import reference_data_dir
from mlo_exp.tensor import w_from_alphatensor

try:
    from numpy._core.multiarray import _reconstruct  # numpy >= 2
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core.multiarray import _reconstruct

_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


class UnsafeFileError(ValueError):
    """A file asked to run code (or load a type) outside the allow-list."""


class _ArrayOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):  # noqa: D401 - pickle API
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise UnsafeFileError(
                f"refusing to load {module}.{name}: only numpy arrays are accepted"
            ) from None


def default_data_dir() -> Path:
    """The AlphaTensor files: ``$MLO_DATA_DIR/alphatensor``, else the copy in the package."""
    return reference_data_dir() / "alphatensor"


def read_npz_safely(path: str | Path) -> dict[str, np.ndarray]:
    """Read every array of an ``.npz`` file; object arrays go through the allow-list."""
    path = Path(path)
    arrays: dict[str, np.ndarray] = {}
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as error:
        raise ValueError(f"{path}: not a readable .npz archive ({error})") from None
    with archive:
        for member in archive.namelist():
            if not member.endswith(".npy"):
                continue
            with archive.open(member) as handle:
                arrays[member[:-4]] = _read_npy(io.BytesIO(handle.read()), f"{path}:{member}")
    return arrays


def _read_npy(stream: io.BytesIO, where: str) -> np.ndarray:
    version = npy_format.read_magic(stream)
    if version == (1, 0):
        shape, fortran, dtype = npy_format.read_array_header_1_0(stream)
    else:
        shape, fortran, dtype = npy_format.read_array_header_2_0(stream)
    if dtype.hasobject:
        try:
            array = _ArrayOnlyUnpickler(stream).load()
        except UnsafeFileError as error:
            raise UnsafeFileError(f"{where}: {error}") from None
        except Exception as error:
            raise ValueError(f"{where}: corrupt object array ({error})") from None
        if not isinstance(array, np.ndarray):
            raise ValueError(f"{where}: payload is {type(array).__name__}, not an array")
        return array
    count = int(np.prod(shape)) if shape else 1
    data = np.frombuffer(stream.read(count * dtype.itemsize), dtype=dtype, count=count)
    return data.reshape(shape, order="F" if fortran else "C")


def load_alphatensor(path: str | Path, ring: str = "Q") -> dict[tuple[int, int, int], Algorithm]:
    """All algorithms of one AlphaTensor file, converted to our convention (``w`` permuted).

    ``ring`` is ``Q`` (``factorizations_r.npz``; integral ones are marked ``Z``) or ``Z2``.
    """
    algorithms = {}
    for key, value in read_npz_safely(path).items():
        n, m, p = (int(x) for x in key.split(","))
        u, v, w = (np.asarray(value[i]) for i in range(3))
        algorithm_ring = ring
        if ring == "Q" and all(np.all(np.mod(x, 1) == 0) for x in (u, v, w)):
            algorithm_ring = "Z"
            u, v, w = (x.astype(np.int64) for x in (u, v, w))
        algorithms[(n, m, p)] = Algorithm(
            (n, m, p), u, v, w_from_alphatensor(w, n, p), algorithm_ring,
            {"name": f"alphatensor-{n}x{m}x{p}" + ("-z2" if ring == "Z2" else ""),
             "source": f"AlphaTensor 2022 ({Path(path).name})"},
        )
    return algorithms
