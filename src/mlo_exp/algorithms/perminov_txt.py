"""Perminov's plain-text schemes (``*.txt`` in dronperminov/FastMatrixMultiplication), read.

Convention (**C transposed**, as his JSON, :mod:`mlo_exp.algorithms.perminov`): the first line
is ``n m p R``; then ``R*n*m`` coefficients of ``u`` (product after product, each ``n*m`` over
A row-major), ``R*m*p`` of ``v`` (over B row-major) and ``R*p*n`` of ``w`` (over **C
transposed**: entry ``k*n+i`` is ``c[i,k]``), written as three lines; any white space separates
the numbers, ``#`` lines are comments. Coefficients are integers or ``p/q``. The ring is ``Q``
when one is a fraction; a scheme of 0/1 coefficients that holds modulo 2 but not over the
integers is ``Z2`` (his ``z2`` test); else ``Z``. ``ring`` given reads it over that ring.

Bounds: those of :mod:`mlo_exp.algorithms.parsing` (the sizes are checked before the numbers
are read).
"""

from __future__ import annotations

import re

import numpy as np

from mlo_exp.algorithms.algorithm import Algorithm
from mlo_exp.algorithms.parsing import (
    AlgorithmFileError,
    Number,
    check_size,
    exact_matrix,
    parse_number,
)

ACCEPTED = ("accepted: a Perminov .txt scheme: 'n m p R', then R*n*m coefficients of u, R*m*p "
            "of v and R*p*n of w (C transposed), integers or p/q")
_HEADER = re.compile(r"[ \t]*([0-9]{1,3})[ \t]+([0-9]{1,3})[ \t]+([0-9]{1,3})[ \t]+([0-9]{1,5})"
                     r"[ \t\r]*", re.ASCII)


def _content(text: str) -> list[str]:
    return [line for line in text.lstrip("\ufeff").split("\n")
            if line.strip() and not line.lstrip().startswith("#")]


def looks_like_perminov_txt(text: str) -> bool:
    """A first line ``n m p R`` and three more lines of numbers (how his files are laid out)."""
    lines = _content(text)
    return len(lines) == 4 and _HEADER.fullmatch(lines[0]) is not None


def read_perminov_txt(text: str, source: str, ring: str | None = None,
                      name: str | None = None) -> Algorithm:
    """Parse one ``.txt`` scheme (see module docstring); not verified here."""
    lines = _content(text)
    header = _HEADER.fullmatch(lines[0]) if lines else None
    if header is None:
        raise AlgorithmFileError(f"{source}: no 'n m p R' first line; {ACCEPTED}")
    n, m, p, rank = (int(x) for x in header.groups())
    check_size((n, m, p), rank, source)
    tokens = " ".join(lines[1:]).split()
    sizes = (n * m, m * p, p * n)
    if len(tokens) != rank * sum(sizes):
        raise AlgorithmFileError(f"{source}: {len(tokens)} coefficients after 'n m p R'; "
                                 f"accepted: R*(n*m + m*p + p*n) = {rank * sum(sizes)}")
    values: list[Number] = [parse_number(token, f"{source}: coefficient {t + 1}")
                            for t, token in enumerate(tokens)]
    start, factors = 0, []
    for size in sizes:
        factors.append(exact_matrix(values[start:start + rank * size], rank, size).T)
        start += rank * size
    u, v, w_theirs = factors
    w = w_theirs[[k * n + i for i in range(n) for k in range(p)]]
    provenance = {"name": name or f"perminov-{n}x{m}x{p}-{rank}",
                  "source": f"Perminov .txt {source}"}
    algorithm = Algorithm.from_read_factors((n, m, p), (u, v, w), ring, source, provenance)
    if ring is None and algorithm.ring == "Z" and all(
            np.isin(x, (0, 1)).all() for x in (u, v, w)) and not algorithm.verify().ok:
        modulo_2 = Algorithm((n, m, p), u, v, w, "Z2", provenance)
        if modulo_2.verify().ok:
            return modulo_2
    return algorithm
