"""Import AlphaTensor's published factorizations without running pickled code.

The files (``factorizations_r.npz``, ``factorizations_f2.npz``) map ``"n,m,p"`` to three
factor matrices ``u (n*m, R)``, ``v (m*p, R)``, ``w (p*n, R)`` in the convention
``T[i*m+j, j*p+k, k*n+i]`` (C transposed): one numeric array of shape ``(3, rows, R)`` when the
three shapes agree, else a numpy *object* array of the three, i.e. a pickle.
``np.load(allow_pickle=True)`` would execute whatever a tampered file contains, so this module
reads the zip members itself and unpickles with an allow-list of the numpy callables that
rebuild plain arrays.

Everything is bounded before it is read (:mod:`mlo_exp.algorithms.parsing`): the file size, at most
:data:`MAX_MEMBERS` members named ``n,m,p.npy`` (no repeats) of at most
:data:`MAX_MEMBER_BYTES` each uncompressed, array headers (shape and dtype: integers or floats)
checked before the data; floats must be exact (integers or binary fractions such as 0.125).
Every refusal is an :class:`~mlo_exp.algorithms.parsing.AlgorithmFileError` naming the file and
member.
"""

from __future__ import annotations

import io
import pickle
import re
import zipfile
import zlib
from fractions import Fraction
from pathlib import Path

import numpy as np

from mlo_exp.algorithms.algorithm import Algorithm
from mlo_exp.algorithms.parsing import (
    MAX_COEFFICIENT,
    AlgorithmFileError,
    check_exact_cost,
    check_size,
    label,
    npy_header,
    read_bytes,
    show,
)
from mlo_exp.algorithms.reference import reference_data_dir
from mlo_exp.algorithms.tensor import w_from_alphatensor

try:
    from numpy._core.multiarray import _reconstruct  # numpy >= 2
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core.multiarray import _reconstruct

MAX_MEMBERS = 1024
MAX_MEMBER_BYTES = 16 * 2**20
MAX_TOTAL_BYTES = 256 * 2**20
_MEMBER = re.compile(r"([0-9]{1,2}),([0-9]{1,2}),([0-9]{1,2})\.npy", re.ASCII)
_ACCEPTED = "accepted: an AlphaTensor .npz (zip of 'n,m,p.npy' arrays of integers or floats)"

_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


class UnsafeFileError(AlgorithmFileError):
    """A file asked to run code (or load a type) outside the allow-list."""


class _ArrayOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):  # noqa: D401 - pickle API
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise UnsafeFileError(
                f"refusing to load {show(module)}.{show(name)}: only numpy arrays are accepted"
            ) from None


def default_data_dir() -> Path:
    """The AlphaTensor files: ``$MLO_DATA_DIR/alphatensor``, else the copy in the package."""
    return reference_data_dir() / "alphatensor"


def default_ring(path: str | Path) -> str:
    """``Z2`` for a modulo-2 file (``*f2*``), else ``Q`` (exact files, integral ones read as Z)."""
    return "Z2" if "f2" in Path(path).name else "Q"


def read_npz_safely(path: str | Path) -> dict[str, np.ndarray]:
    """Every array of an AlphaTensor ``.npz`` file, keyed ``"n,m,p"`` (bounded, no code run)."""
    return _read_members(read_bytes(path), label(path))


def _read_members(data: bytes, source: str, member: re.Pattern = _MEMBER,
                  read=None, accepted: str = _ACCEPTED) -> dict[str, np.ndarray]:
    """The members of an ``.npz`` (bounded), each named by ``member`` and read by ``read``
    (default: AlphaTensor's factor arrays)."""
    read = read or _read_npy
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError) as error:
        raise AlgorithmFileError(f"{source}: not a readable .npz archive ({error}); "
                                 f"{accepted}") from None
    if not infos or len(infos) > MAX_MEMBERS:
        raise AlgorithmFileError(f"{source}: {len(infos)} members; {accepted}, 1 to "
                                 f"{MAX_MEMBERS} members")
    arrays: dict[str, np.ndarray] = {}
    total = 0
    for info in infos:
        where = f"{source}: member {show(info.filename)}"
        if member.fullmatch(info.filename) is None:
            raise AlgorithmFileError(f"{where}: unexpected name; {accepted}")
        if info.filename[:-4] in arrays:
            raise AlgorithmFileError(f"{where}: appears twice; accepted: each shape once")
        total += info.file_size
        if info.file_size > MAX_MEMBER_BYTES or total > MAX_TOTAL_BYTES:
            raise AlgorithmFileError(f"{where}: {info.file_size} bytes uncompressed; accepted: "
                                     f"at most {MAX_MEMBER_BYTES} per member, {MAX_TOTAL_BYTES} "
                                     "in all")
        try:
            with archive.open(info) as handle:
                raw = handle.read(MAX_MEMBER_BYTES + 1)
        except (zipfile.BadZipFile, NotImplementedError, RuntimeError, EOFError, zlib.error,
                ValueError, OSError) as error:
            raise AlgorithmFileError(f"{where}: cannot decompress ({error}); {accepted}") from None
        if len(raw) > MAX_MEMBER_BYTES:
            raise AlgorithmFileError(f"{where}: more than {MAX_MEMBER_BYTES} bytes uncompressed; "
                                     "accepted: at most that")
        arrays[info.filename[:-4]] = read(io.BytesIO(raw), where)
    return arrays


def _read_npy(stream: io.BytesIO, where: str) -> np.ndarray:
    """One ``.npy`` member: a ``(3, rows, R)`` integer/float array or an object array of 3."""
    shape, fortran, dtype = npy_header(stream, where, _ACCEPTED)
    if not all(type(x) is int and x >= 0 for x in shape):
        raise AlgorithmFileError(f"{where}: array shape {shape}; {_ACCEPTED}")
    if dtype.hasobject:
        if shape != (3,) or dtype != np.dtype(object):
            raise AlgorithmFileError(f"{where}: object array of shape {shape}; accepted: three "
                                     "factor matrices")
        try:
            array = _ArrayOnlyUnpickler(stream).load()
        except UnsafeFileError as error:
            raise UnsafeFileError(f"{where}: {error}") from None
        except Exception as error:  # noqa: BLE001 - pickle may raise anything on bad data
            raise AlgorithmFileError(f"{where}: corrupt object array ({type(error).__name__}); "
                                     f"{_ACCEPTED}") from None
        if not isinstance(array, np.ndarray) or array.shape != (3,) or array.dtype != object:
            raise AlgorithmFileError(f"{where}: the pickle holds {type(array).__name__}; accepted: "
                                     "an object array of three factor matrices")
        for item in array:
            if not isinstance(item, np.ndarray) or item.ndim != 2:
                raise AlgorithmFileError(f"{where}: a factor is {type(item).__name__}; accepted: "
                                         "2-D integer or float arrays")
            _check_dtype(item.dtype, where)
        return array
    _check_dtype(dtype, where)
    if len(shape) != 3 or shape[0] != 3:
        raise AlgorithmFileError(f"{where}: array shape {shape}; accepted: (3, rows, R)")
    count = shape[0] * shape[1] * shape[2]
    data = stream.read()
    if len(data) != count * dtype.itemsize:
        raise AlgorithmFileError(f"{where}: {len(data)} data bytes for shape {shape}; accepted: "
                                 f"exactly {count * dtype.itemsize}")
    return np.frombuffer(data, dtype=dtype, count=count).reshape(
        shape, order="F" if fortran else "C")


def _check_dtype(dtype: np.dtype, where: str) -> None:
    if dtype.kind not in "iuf" or dtype.itemsize > 8 or dtype.fields is not None:
        raise AlgorithmFileError(f"{where}: dtype {show(str(dtype))}; accepted: integer or float "
                                 "arrays (booleans, complex, strings are not coefficients)")


def _exact(array: np.ndarray, where: str) -> np.ndarray:
    """An integer/float array as int64, or float64 holding bounded binary fractions (read
    exactly by :func:`mlo_exp.algorithms.tensor.to_exact`)."""
    if array.size == 0:
        return array.astype(np.int64)
    if array.dtype.kind in "iu":
        if array.min() < -MAX_COEFFICIENT or array.max() > MAX_COEFFICIENT:
            raise AlgorithmFileError(f"{where}: a coefficient beyond {MAX_COEFFICIENT}; "
                                     "accepted: at most that in absolute value")
        return array.astype(np.int64)
    if not np.all(np.isfinite(array)):
        raise AlgorithmFileError(f"{where}: a non-finite coefficient; accepted: finite numbers")
    if np.abs(array).max() > MAX_COEFFICIENT:
        raise AlgorithmFileError(f"{where}: a coefficient beyond {MAX_COEFFICIENT}; accepted: "
                                 "at most that in absolute value")
    if np.all(array == np.round(array)):
        return array.astype(np.int64)
    for value in np.unique(array):
        exact = Fraction(float(value))
        if exact.denominator > MAX_COEFFICIENT:
            raise AlgorithmFileError(f"{where}: coefficient {float(value)!r} is not exact "
                                     f"(binary value {exact}); accepted: integers and fractions "
                                     f"with denominators at most {MAX_COEFFICIENT}")
    return array.astype(np.float64)


def alphatensor_from_bytes(data: bytes, source: str, ring: str | None = None,
                           name: str = "") -> dict[tuple[int, int, int], Algorithm]:
    """All algorithms of an AlphaTensor ``.npz`` (its bytes), converted to our convention.

    ``ring``: ``Z2`` reads a modulo-2 file; ``Q`` (or ``None`` unless ``name`` has ``f2``)
    an exact file, where integral algorithms are marked ``Z``; ``Z`` also needs integers.
    """
    return {key: member_algorithm(key, value, source, ring, name)
            for key, value in read_members(data, source).items()}


def read_members(data: bytes, source: str) -> dict[tuple[int, int, int], np.ndarray]:
    """The raw members of an AlphaTensor ``.npz`` (bounded, no code run), keyed by shape."""
    return {tuple(int(x) for x in key.split(",")): value  # type: ignore[misc]
            for key, value in _read_members(data, source).items()}


def member_algorithm(shape: tuple[int, int, int], value: np.ndarray, source: str,
                     ring: str | None = None, name: str = "") -> Algorithm:
    """One member of an AlphaTensor ``.npz`` (see :func:`alphatensor_from_bytes`)."""
    suffix = "-z2" if "Z2" in (ring, default_ring(name)) else ""
    ring = ring or default_ring(name)
    n, m, p = shape
    where = f"{source}: member {show(f'{n},{m},{p}.npy')}"
    shapes = ((n * m, "u = n*m"), (m * p, "v = m*p"), (p * n, "w = p*n"))
    check_size((n, m, p), value[0].shape[1] if value[0].ndim == 2 else 0, where)
    factors = []
    for array, (rows, what) in zip(value, shapes, strict=True):
        if array.shape != (rows, value[0].shape[1]):
            raise AlgorithmFileError(f"{where}: a factor of shape {array.shape}; accepted: "
                                     f"({what} = {rows}, R) with the same R for u, v, w")
        factors.append(_exact(np.asarray(array), where))
    u, v, w = factors
    integral = all(x.dtype.kind == "i" for x in factors)
    if ring in ("Z", "Z2") and not integral:
        raise AlgorithmFileError(f"{where}: fractions with ring {ring}; accepted: integers, "
                                 "or ring Q")
    algorithm_ring = ring if ring != "Q" or not integral else "Z"
    w = w_from_alphatensor(w, n, p)
    check_exact_cost((n, m, p), (u, v, w), where)
    return Algorithm(
        (n, m, p), u, v, w, algorithm_ring,
        {"name": f"alphatensor-{n}x{m}x{p}{suffix}",
         "source": f"AlphaTensor 2022 ({label(Path(name).name) if name else source})"},
    )


def load_alphatensor(path: str | Path, ring: str = "Q") -> dict[tuple[int, int, int], Algorithm]:
    """All algorithms of one AlphaTensor file, converted to our convention (``w`` permuted).

    ``ring`` is ``Q`` (``factorizations_r.npz``; integral ones are marked ``Z``) or ``Z2``.
    """
    return alphatensor_from_bytes(read_bytes(path), label(path), ring, name=Path(path).name)
