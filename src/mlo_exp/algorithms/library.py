"""Known algorithms: the school method for any shape, Strassen, and AlphaTensor's files.

Agents must not use this module: it holds known decompositions of the targets they are asked
to discover (a test enforces that no agent imports it).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mlo_exp.algorithms.algorithm import Algorithm
from mlo_exp.algorithms.alphatensor import default_data_dir, load_alphatensor

# Strassen (1969) in our convention: rows are a11 a12 a21 a22 / b11 b12 b21 b22 /
# c11 c12 c21 c22, columns m1..m7.
_STRASSEN_U = [[1, 0, 1, 0, 1, -1, 0], [0, 0, 0, 0, 1, 0, 1],
               [0, 1, 0, 0, 0, 1, 0], [1, 1, 0, 1, 0, 0, -1]]
_STRASSEN_V = [[1, 1, 0, -1, 0, 1, 0], [0, 0, 1, 0, 0, 1, 0],
               [0, 0, 0, 1, 0, 0, 1], [1, 0, -1, 0, 1, 0, 1]]
_STRASSEN_W = [[1, 0, 0, 1, -1, 0, 1], [0, 0, 1, 0, 1, 0, 0],
               [0, 1, 0, 1, 0, 0, 0], [1, -1, 1, 0, 0, 1, 0]]


def school(n: int, m: int, p: int) -> Algorithm:
    """The school method: one multiplication ``a_ij * b_jk`` per ``(i, j, k)``, rank ``n*m*p``."""
    rank = n * m * p
    u = np.zeros((n * m, rank), dtype=np.int64)
    v = np.zeros((m * p, rank), dtype=np.int64)
    w = np.zeros((n * p, rank), dtype=np.int64)
    r = 0
    for i in range(n):
        for j in range(m):
            for k in range(p):
                u[i * m + j, r] = v[j * p + k, r] = w[i * p + k, r] = 1
                r += 1
    return Algorithm((n, m, p), u, v, w, "Z", {"name": f"school-{n}x{m}x{p}", "source": "school"})


def strassen() -> Algorithm:
    """Strassen's rank-7 algorithm for ``<2,2,2>``."""
    return Algorithm((2, 2, 2), np.array(_STRASSEN_U), np.array(_STRASSEN_V),
                     np.array(_STRASSEN_W), "Z",
                     {"name": "strassen", "source": "Strassen 1969"})


def alphatensor(n: int, m: int, p: int, ring: str = "Q", data_dir: Path | None = None) -> Algorithm:
    """AlphaTensor's published algorithm for ``<n,m,p>`` (ring ``Q``/``Z``, or ``Z2``)."""
    file = "factorizations_f2.npz" if ring == "Z2" else "factorizations_r.npz"
    path = (data_dir or default_data_dir()) / file
    algorithms = load_alphatensor(path, ring="Z2" if ring == "Z2" else "Q")
    key = (n, m, p)
    if key not in algorithms:
        known = ", ".join(",".join(map(str, k)) for k in sorted(algorithms))
        raise KeyError(
            f"no AlphaTensor {ring} algorithm for <{n},{m},{p}> in {path}; known: {known}")
    return algorithms[key]


def lookup(name: str) -> Algorithm:
    """Resolve a library name: ``strassen``, ``school-NxMxP``, ``alphatensor-NxMxP[-z2]``."""
    parts = name.lower().split("-")
    try:
        if parts == ["strassen"]:
            return strassen()
        if parts[0] == "school" and len(parts) == 2:
            return school(*_parse_shape(parts[1]))
        if parts[0] == "alphatensor" and len(parts) in (2, 3):
            ring = "Z2" if parts[2:] == ["z2"] else "Q"
            if len(parts) == 3 and parts[2] != "z2":
                raise ValueError(name)
            return alphatensor(*_parse_shape(parts[1]), ring=ring)
    except ValueError:
        pass
    raise KeyError(
        f"unknown library algorithm {name!r}; accepted: strassen, school-NxMxP "
        "(e.g. school-2x3x4), alphatensor-NxMxP, alphatensor-NxMxP-z2"
    )


def _parse_shape(text: str) -> tuple[int, int, int]:
    dims = tuple(int(x) for x in text.split("x"))
    if len(dims) != 3 or min(dims) < 1:
        raise ValueError(text)
    return dims  # type: ignore[return-value]
