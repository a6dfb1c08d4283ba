"""Benson and Ballard's fast-matmul coefficient files (``codegen/algorithms/*``).

Convention (**C not transposed**, as ours): three blocks of rows, ``U`` then ``V`` then ``W``,
separated by lines starting with ``#`` (a ``#`` line before ``U`` is a comment, e.g.
``# (0, 0, 0) permutation of grey322-11-50``). Each row is one entry of a matrix, in row-major
order, and holds R whitespace-separated coefficients, one per multiplication: ``U`` has
``n*m`` rows over A (``a11, a12, ...``), ``V`` has ``m*p`` over B, ``W`` has ``n*p`` over C
(``c11, c12, ...``), so ``W`` is our ``w`` as it stands. ``<n,m,p>`` is read off the row counts.
Coefficients are integers, fractions ``p/q`` or decimals (read exactly); the ring is ``Q`` when
one is a fraction, else ``Z`` (``ring="Z2"`` reads a modulo-2 scheme). Blank lines are ignored;
a row has at most 30,000 characters.
"""

from __future__ import annotations

import re
from fractions import Fraction

from mlo_exp.algorithms.algorithm import Algorithm
from mlo_exp.algorithms.parsing import (
    MAX_DIM,
    MAX_RANK,
    AlgorithmFileError,
    Number,
    check_size,
    exact_matrix,
    factor_dims,
    parse_decimal,
    show,
)

ACCEPTED = ("accepted: fast-matmul coefficients: rows of R numbers, U (n*m rows), V (m*p "
            "rows), W (n*p rows), the blocks separated by '#' lines")
_ROW = re.compile(r"[ \t]*[-+]?[0-9][-+0-9./ \t]*", re.ASCII)
_MAX_LINE = 30_000


def looks_like_benson(text: str) -> bool:
    """Every line is blank, a ``#`` line or a row of numbers, and there is a row."""
    rows = 0
    for line in text.lstrip("\ufeff").splitlines():
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("#"):
            continue
        if not _ROW.fullmatch(line.rstrip("\r")):
            return False
        rows += 1
    return rows > 0


def read_benson(text: str, source: str, ring: str | None = None,
                name: str | None = None) -> Algorithm:
    """Parse a fast-matmul coefficient file (see module docstring); not verified here."""
    blocks: list[list[list[Number]]] = [[]]
    lines = text.lstrip("\ufeff").split("\n")
    for number, line in enumerate(lines, 1):
        stripped = line.strip()
        where = f"{source}:{number}"
        if stripped.startswith("#"):
            if blocks[-1]:
                blocks.append([])
            continue
        if not stripped:
            continue
        if len(blocks) > 3:
            raise AlgorithmFileError(f"{where}: a fourth block of rows; {ACCEPTED}")
        if len(line) > _MAX_LINE:
            raise AlgorithmFileError(f"{where}: a line of {len(line)} characters; accepted: at "
                                     f"most {_MAX_LINE}")
        tokens = stripped.split()
        if len(tokens) > MAX_RANK:
            raise AlgorithmFileError(f"{where}: {len(tokens)} coefficients; accepted: at most "
                                     f"{MAX_RANK} (one per multiplication)")
        row = [parse_decimal(token, f"{where}: column {k + 1}") for k, token in enumerate(tokens)]
        if blocks[-1] and len(row) != len(blocks[-1][0]):
            raise AlgorithmFileError(f"{where}: {len(row)} coefficients after rows of "
                                     f"{len(blocks[-1][0])}; accepted: R in every row")
        if len(blocks[-1]) >= MAX_DIM * MAX_DIM:
            raise AlgorithmFileError(f"{where}: more than {MAX_DIM * MAX_DIM} rows in a block; "
                                     f"{ACCEPTED}")
        blocks[-1].append(row)
    blocks = [block for block in blocks if block]
    if len(blocks) != 3:
        raise AlgorithmFileError(f"{source}: {len(blocks)} blocks of rows; {ACCEPTED}")
    ranks = {len(block[0]) for block in blocks}
    if len(ranks) != 1:
        raise AlgorithmFileError(f"{source}: U, V, W rows hold {[len(b[0]) for b in blocks]} "
                                 f"coefficients; accepted: the same R in each")
    rank = ranks.pop()
    n, m, p = factor_dims(tuple(len(block) for block in blocks), source)  # type: ignore[arg-type]
    check_size((n, m, p), rank, source)
    u, v, w = (exact_matrix([x for row in block for x in row], len(block), rank)
               for block in blocks)
    return Algorithm.from_read_factors(
        (n, m, p), (u, v, w), ring, source,
        {"name": name or f"fast-matmul-{n}x{m}x{p}-{rank}",
         "source": f"fast-matmul coefficients {show(source, 200)[1:-1]}"})


def format_benson(algorithm: Algorithm) -> str:
    """The algorithm as a fast-matmul coefficient file (W over C, not transposed)."""
    n, m, p = algorithm.shape
    parts = [f"# <{n},{m},{p}> rank {algorithm.rank} over {algorithm.ring}: {algorithm.name}"]
    for index, factor in enumerate((algorithm.u, algorithm.v, algorithm.w)):
        if index:
            parts.append("#")
        parts += [" ".join(str(Fraction(x)) for x in row) for row in factor]
    return "\n".join(parts) + "\n"
