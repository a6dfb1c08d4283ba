"""Known algorithms: the school method for any shape, Strassen, AlphaTensor's files, and the
best scheme of the catalogue for a shape (``best-NxMxP[-z|-q|-z2]``,
:mod:`mlo_exp.algorithms.catalogue`).

Agents must not use this module: it holds known decompositions of the targets they are asked
to discover (a test enforces that no agent imports it).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mlo_exp.algorithms.algorithm import Algorithm
from mlo_exp.algorithms.alphatensor import default_data_dir, member_algorithm, read_members
from mlo_exp.algorithms.parsing import label, read_bytes

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
    """AlphaTensor's published algorithm for ``<n,m,p>`` (ring ``Q``/``Z``, or ``Z2``).

    Only that member of the file is converted (the others cost seconds at large shapes).
    """
    file = "factorizations_f2.npz" if ring == "Z2" else "factorizations_r.npz"
    path = (data_dir or default_data_dir()) / file
    members = read_members(read_bytes(path), label(path))
    key = (n, m, p)
    if key not in members:
        known = ", ".join(",".join(map(str, k)) for k in sorted(members))
        raise KeyError(
            f"no AlphaTensor {ring} algorithm for <{n},{m},{p}> in {path}; known: {known}")
    return member_algorithm(key, members[key], label(path), "Z2" if ring == "Z2" else "Q",
                            name=file)


BEST_RINGS = {"": "Z", "z": "Z", "q": "Q", "z2": "Z2"}


def best(n: int, m: int, p: int, ring: str = "Z") -> Algorithm:
    """The best scheme of the catalogue for ``<n,m,p>`` over ``ring`` (verified exactly)."""
    from mlo_exp.algorithms.catalogue import load_catalogue

    entry = load_catalogue().best((n, m, p), ring)
    if entry is None:
        raise KeyError(f"the catalogue has no scheme for <{n},{m},{p}> over {ring}; see "
                       "mlo-algorithms list")
    algorithm = entry.algorithm
    algorithm.provenance["name"] = f"best-{n}x{m}x{p}" + ("" if ring == "Z" else
                                                          f"-{ring.lower()}")
    algorithm.provenance["source"] = entry.source
    return algorithm


def lookup(name: str) -> Algorithm:
    """Resolve a library name: ``strassen``, ``school-NxMxP``, ``alphatensor-NxMxP[-z2]``,
    ``best-NxMxP[-z|-q|-z2]`` (the catalogue's best over Z, Q or Z2; Z by default)."""
    parts = name.lower().split("-")
    if parts[0] == "best" and len(parts) in (2, 3) and (parts[2:] or [""])[0] in BEST_RINGS:
        try:
            shape = _parse_shape(parts[1])
        except ValueError:
            shape = None
        if shape is not None:
            return best(*shape, ring=BEST_RINGS[(parts[2:] or [""])[0]])
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
        f"unknown library algorithm {name!r}{_did_you_mean(name)}; accepted: strassen, "
        "school-NxMxP (e.g. school-2x3x4), alphatensor-NxMxP, alphatensor-NxMxP-z2, "
        "best-NxMxP, best-NxMxP-q, best-NxMxP-z2"
    )


def _did_you_mean(name: str) -> str:
    """`` (did you mean 'strassen'?)`` for a near miss of a family word, else ``""``."""
    import difflib

    head, _, rest = name.lower().partition("-")
    match = difflib.get_close_matches(head, ["strassen", "school", "alphatensor", "best"], 1,
                                      0.6)
    if not match or match[0] == head:
        return ""
    return f" (did you mean {'-'.join([match[0], rest]).rstrip('-')!r}?)"


def _parse_shape(text: str) -> tuple[int, int, int]:
    if not all(part.isascii() and part.isdigit() and len(part) <= 3 for part in text.split("x")):
        raise ValueError(text)
    dims = tuple(int(x) for x in text.split("x"))
    if len(dims) != 3 or min(dims) < 1:
        raise ValueError(text)
    return dims  # type: ignore[return-value]
