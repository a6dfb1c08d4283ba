"""Starting schemes of the flip-graph walks: the school method, or a user-given file.

A library or catalogue name in ``agent.start_from`` is resolved by the run
(:func:`mlo_exp.run.experiment.resolve_start_from` writes it to a file first): agents never read
the library. Factors: ``(U, V, W)`` int64, columns = terms, layout of
:mod:`mlo_exp.algorithms.tensor` (``u = E_ij``, ``v = E_jk``, ``w = E_ik`` for the school term
``a_ij b_jk -> c_ik``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

Factors = tuple[np.ndarray, np.ndarray, np.ndarray]


def school(n: int, m: int, p: int) -> Factors:
    """The school method, one term ``a_ij * b_jk -> c_ik`` per ``(i, j, k)``."""
    i, j, k = (x.ravel() for x in np.meshgrid(np.arange(n), np.arange(m), np.arange(p),
                                               indexing="ij"))
    rank = n * m * p
    u = np.zeros((n * m, rank), dtype=np.int64)
    v = np.zeros((m * p, rank), dtype=np.int64)
    w = np.zeros((n * p, rank), dtype=np.int64)
    terms = np.arange(rank)
    u[i * m + j, terms] = v[j * p + k, terms] = w[i * p + k, terms] = 1
    return u, v, w


def read_start(start_from: str, shape: tuple[int, int, int], ring: str, bound: int) -> Factors:
    """The scheme of the file ``start_from`` (JSON ``mlo-exp/algorithm`` or the flip-graph text
    format), checked: its shape, a ring the walks can use (a Z2 walk takes Z schemes modulo 2;
    a Z walk refuses Z2 and rationals), exact validity, coefficients within ``bound`` (Z).
    ValueError naming ``agent.start_from`` otherwise."""
    from mlo_exp.algorithms.formats import read_algorithm_file

    n, m, p = shape
    algorithm = read_algorithm_file(Path(start_from), shape=shape)
    where = f"agent.start_from={start_from!r}"
    if tuple(algorithm.shape) != (n, m, p):
        raise ValueError(f"{where}: algorithm is for <{','.join(map(str, algorithm.shape))}>, "
                         f"the run is for <{n},{m},{p}>")
    z2 = ring == "Z2"
    if algorithm.ring == "Z2" and not z2:
        raise ValueError(f"{where}: a Z2 algorithm cannot start a walk over Z "
                         "(lift it first: mlo-algorithms import --lift)")
    if algorithm.ring == "Q":
        raise ValueError(f"{where}: rational algorithms are not accepted; Z or Z2 only")
    check = algorithm.verify()
    if not check.ok:
        raise ValueError(f"{where}: not a valid decomposition: {check.describe()}")
    u, v, w = (np.asarray(x, dtype=np.int64) for x in (algorithm.u, algorithm.v, algorithm.w))
    if z2:
        return u % 2, v % 2, w % 2
    if max(int(np.abs(x).max()) for x in (u, v, w)) > bound:
        raise ValueError(f"{where}: coefficients exceed the bound {bound}; "
                         "raise agent.coefficient_bound")
    return u, v, w


def read_starts(start_from: str, shape: tuple[int, int, int], ring: str,
                bound: int) -> list[Factors]:
    """The schemes of ``start_from``: one file (:func:`read_start`), or every ``.json`` and
    ``.txt`` file of a folder in name order (``agent.starts``: the walks take them in turn);
    ValueError for a folder without one."""
    path = Path(start_from).expanduser()
    if not path.is_dir():
        return [read_start(start_from, shape, ring, bound)]
    files = sorted(f for f in path.iterdir() if f.suffix in (".json", ".txt") and f.is_file())
    if not files:
        raise ValueError(f"agent.start_from={start_from!r}: a folder with no algorithm file "
                         "(.json or flip-graph .txt)")
    return [read_start(str(f), shape, ring, bound) for f in files]

