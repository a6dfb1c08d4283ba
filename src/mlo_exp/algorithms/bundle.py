"""Compressed bundles of verified schemes: many algorithms in one ``.npz``, read lazily.

A bundle is a NumPy ``.npz`` (zip, deflated; no pickled objects) holding:

* ``index``: UTF-8 JSON bytes (a ``uint8`` array), a list with one object per scheme:
  ``member`` (the prefix of its arrays), ``shape`` ``[n, m, p]``, ``rank``, ``ring``
  (``Z``, ``Q`` or ``Z2``), ``source`` (the publication or collection it comes from),
  ``file`` (the file it was read from, in that collection), ``key`` (its
  :func:`~mlo_exp.algorithms.equivalence.canonical_key`) and ``naive_additions``;
* per scheme, ``<member>_u``, ``<member>_v``, ``<member>_w``: integer numerators in **our
  convention** (:mod:`mlo_exp.algorithms.tensor`: ``u (n*m, R)``, ``v (m*p, R)``,
  ``w (n*p, R)``, C not transposed), int8 where the numbers fit, else int64; and
  ``<member>_den``: the three common denominators (``u = <member>_u / den[0]``, ...), all 1
  for an integer scheme.

Every scheme is verified exactly before it is written (:func:`write_bundle`); the reader
checks shapes, sizes and denominators and builds the exact algorithm when it is asked for
(:func:`read_member`), so listing a bundle costs only its index.
"""

from __future__ import annotations

import io
import json
import zipfile
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from mlo_exp.algorithms.algorithm import Algorithm, AlgorithmFileError
from mlo_exp.algorithms.equivalence import canonical_key
from mlo_exp.algorithms.parsing import MAX_COEFFICIENT, check_size
from mlo_exp.algorithms.perminov import naive_additions
from mlo_exp.algorithms.tensor import RINGS, scale_to_integers
from mlo_exp.io import atomic_write_bytes

_INDEX_KEYS = {"member", "shape", "rank", "ring", "source", "file", "key", "naive_additions"}


def write_bundle(path: Path, schemes: list[tuple[Algorithm, str, str]]) -> list[dict]:
    """Write ``(algorithm, source, file)`` triples (each verified first) as one bundle,
    atomically; returns the index written."""
    arrays: dict[str, np.ndarray] = {}
    index = []
    for number, (algorithm, source, file) in enumerate(schemes):
        if not algorithm.verify().ok:
            raise ValueError(f"{file}: not correct over {algorithm.ring}; not bundled")
        member = f"s{number}"
        denominators = []
        for letter, factor in zip("uvw", (algorithm.u, algorithm.v, algorithm.w), strict=True):
            numerators, denominator = scale_to_integers(factor)
            values = np.asarray(numerators, dtype=np.int64)
            small = np.abs(values).max(initial=0) < 128
            arrays[f"{member}_{letter}"] = values.astype(np.int8 if small else np.int64)
            denominators.append(denominator)
        arrays[f"{member}_den"] = np.array(denominators, dtype=np.int64)
        index.append({"member": member, "shape": list(algorithm.shape), "rank": algorithm.rank,
                      "ring": algorithm.ring, "source": source, "file": file,
                      "key": canonical_key(algorithm),
                      "naive_additions": naive_additions(algorithm)})
    arrays["index"] = np.frombuffer(json.dumps(index, indent=0).encode(), dtype=np.uint8)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    atomic_write_bytes(path, buffer.getvalue())
    return index


def read_index(path: Path) -> list[dict]:
    """The index of a bundle (see module docstring), checked."""
    where = str(path)
    with np.load(path, allow_pickle=False) as data:
        if "index" not in data.files:
            raise AlgorithmFileError(f"{where}: no index; accepted: a scheme bundle "
                                     "(mlo_exp.algorithms.bundle)")
        try:
            index = json.loads(data["index"].tobytes().decode())
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise AlgorithmFileError(f"{where}: index is not JSON ({error}); accepted: a "
                                     "scheme bundle") from None
    if not isinstance(index, list) or not all(
            isinstance(item, dict) and set(item) == _INDEX_KEYS for item in index):
        raise AlgorithmFileError(f"{where}: index entries need exactly the keys "
                                 f"{', '.join(sorted(_INDEX_KEYS))}")
    for item in index:
        if item["ring"] not in RINGS:
            raise AlgorithmFileError(f"{where}: {item['member']}: ring {item['ring']!r}; "
                                     f"accepted: {', '.join(RINGS)}")
        check_size(tuple(item["shape"]), item["rank"], where)  # type: ignore[arg-type]
    return index


def read_member(path: Path, item: dict[str, Any]) -> Algorithm:
    """The exact algorithm of one index entry (not verified here)."""
    where = f"{path} {item['member']}"
    n, m, p = item["shape"]
    rank = item["rank"]
    with np.load(path, allow_pickle=False) as data:
        factors = [data[f"{item['member']}_{letter}"] for letter in "uvw"]
        denominators = [int(x) for x in data[f"{item['member']}_den"]]
    for letter, factor, rows in zip("uvw", factors, (n * m, m * p, n * p), strict=True):
        if factor.shape != (rows, rank) or factor.dtype.kind != "i":
            raise AlgorithmFileError(f"{where}: {letter} is {factor.dtype} {factor.shape}; "
                                     f"accepted: integers of shape ({rows}, {rank})")
    if len(denominators) != 3 or not all(1 <= d <= MAX_COEFFICIENT for d in denominators):
        raise AlgorithmFileError(f"{where}: denominators {denominators}; accepted: three, "
                                 f"1 to {MAX_COEFFICIENT}")
    exact = []
    for factor, denominator in zip(factors, denominators, strict=True):
        values = factor.astype(np.int64)
        if denominator == 1:
            exact.append(values)
        else:
            table = np.empty(values.shape, dtype=object)
            table.ravel()[:] = [Fraction(int(x), denominator) for x in values.ravel()]
            exact.append(_integral_or_fractions(table))
    provenance = {"name": f"{item['source'].split(',')[0]}-{n}x{m}x{p}-{rank}",
                  "source": item["source"], "file": item["file"]}
    return Algorithm((n, m, p), *exact, item["ring"], provenance)


def _integral_or_fractions(table: np.ndarray) -> np.ndarray:
    if all(x.denominator == 1 for x in table.ravel()):
        return np.array([int(x) for x in table.ravel()], dtype=np.int64).reshape(table.shape)
    return table


def is_bundle(path: Path) -> bool:
    """A zip holding an ``index.npy`` member (cheap: the zip directory only)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return "index.npy" in archive.namelist()
    except (OSError, zipfile.BadZipFile):
        return False
