"""The FMM catalogue's Maple ``TriadSet`` files, read and written.

Convention (**C transposed**, the trace form ``T = sum a_ij * b_jk * c_ki``): a scheme is
``TriadSet([Triad([A, B, C]), ...])`` (the catalogue's form, the matrices written
``Matrix(..)``; ``Triad(A, B, C)`` is read too);
each ``Triad`` is one rank-one term with ``A`` the
``n x m`` coefficient matrix over A's entries, ``B`` the ``m x p`` one over B's, and ``C`` the
``p x n`` one over C's entries *transposed* (``C[k,i]`` multiplies ``c_ik``). A matrix is written
``Matrix([[1, 0], [0, 1]])``, ``Matrix(2, 2, [[1, 0], [0, 1]])`` or a bare list of rows
``[[1, 0], [0, 1]]``. An assignment ``name := TriadSet(...)`` and a final ``;`` or ``:`` are
allowed, ``#`` starts a comment to the end of the line, and white space (line breaks included)
may stand between any two tokens. The FMM catalogue's files (``*_tensor.mpl``) first declare
the symbolic matrices ``A:=Matrix(n, m, [[A_1_1, ..], ..]):``, ``B:=Matrix(m, p, ..):`` and
``C:=Matrix(p, n, ..):`` (read, and their sizes must match the triads), then
``Tensor:=TriadSet([...]):``, and end with Maple's own check of the scheme
(``map(expand, A.B - add(...));``), which is skipped here (the scheme is verified exactly
instead). Coefficients are integers, fractions ``p/q`` (``-1/8``) or
decimals (read exactly); the ring is ``Q`` when one is a fraction, else ``Z``; ``ring="Z2"``
reads a modulo-2 scheme.

Bounds: those of :mod:`mlo_exp.algorithms.parsing`; at most ``MAX_TOKENS`` tokens are read
(the scan stops there, before anything of that size is built).
"""

from __future__ import annotations

import re
from fractions import Fraction

import numpy as np

from mlo_exp.algorithms.algorithm import Algorithm
from mlo_exp.algorithms.parsing import (
    MAX_DIM,
    MAX_RANK,
    AlgorithmFileError,
    Number,
    TokenStream,
    check_coefficient,
    check_size,
    exact_matrix,
    parse_decimal,
)

ACCEPTED = ("accepted: [A:=Matrix(n, m, [[A_1_1, ..], ..]): B:=..: C:=..:] "
            "[Tensor:=]TriadSet([Triad([A, B, C]), ...]) with A (n x m), B (m x p), C (p x n, "
            "transposed) written Matrix(r, c, [[..], ..]) or [[..], ..], entries integers, p/q "
            "or decimals, then optionally the check map(expand, ...)")
_CHECK_STATEMENT = re.compile(r"^[ \t]*map[ \t]*\([ \t]*expand[ \t]*,.*\Z",
                              re.MULTILINE | re.DOTALL)
_TOKEN = re.compile(r"(?P<space>[ \t\r\n]+)|(?P<comment>#[^\n]*)"
                    r"|(?P<num>[0-9]+(?:\.[0-9]+)?(?:/[0-9]+)?)"
                    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<op>:=|[()\[\],;:\-+*/])", re.ASCII)


def looks_like_triadset(text: str) -> bool:
    """Text that holds a ``TriadSet(`` (outside comments)."""
    return re.search(r"^[^#\n]*\bTriadSet\s*\(", text, re.MULTILINE | re.ASCII) is not None


class _Scanner(TokenStream):
    pattern = _TOKEN
    accepted = ACCEPTED
    keyword_kinds = ("op", "name")


def read_triadset(text: str, source: str, ring: str | None = None,
                  name: str | None = None) -> Algorithm:
    """Parse a ``TriadSet`` file (see module docstring); not verified here."""
    text = text.lstrip("\ufeff")
    check = _CHECK_STATEMENT.search(text)
    if check is not None and "TriadSet" in text[:check.start()]:
        text = text[:check.start()]  # Maple's own check, after the scheme: not read
    scanner = _Scanner(text, source)
    declared: dict[str, tuple[int, int]] = {}
    while scanner.current[0] == "name" and scanner.current[1] != "TriadSet":
        variable = scanner.current[1]
        scanner.current = scanner.advance()
        scanner.expect(":=", "':=' after a name")
        if scanner.current[1] == "TriadSet":
            break
        if variable not in ("A", "B", "C") or variable in declared:
            raise scanner.error(f"{variable} := ...: expected the declarations A, B, C "
                                "(once each) or TriadSet")
        declared[variable] = _declaration(scanner)
    scanner.expect("TriadSet", "TriadSet(")
    scanner.expect("(", "'(' after TriadSet")
    scanner.expect("[", "'[' opening the list of triads")
    terms: list[tuple[int, list[list[list[Number]]]]] = []
    if not scanner.take("]"):
        while True:
            line = scanner.current[2]
            if len(terms) >= MAX_RANK:
                raise scanner.error(f"more than {MAX_RANK} triads")
            scanner.expect("Triad", "Triad(")
            scanner.expect("(", "'(' after Triad")
            opened = scanner.take("[")  # Triad([Matrix(..), ..]) or a bare matrix's '['
            listed = opened and scanner.current[1] == "Matrix"
            matrices = [_matrix(scanner, opened=opened and not listed)]
            for _ in range(2):
                scanner.expect(",", "',' between the matrices of a Triad")
                matrices.append(_matrix(scanner))
            if listed:
                scanner.expect("]", "']' closing the list of three matrices")
            scanner.expect(")", "')' closing the Triad (three matrices)")
            terms.append((line, matrices))
            if scanner.take("]"):
                break
            scanner.expect(",", "',' or ']' after a Triad")
    scanner.expect(")", "')' closing TriadSet")
    _ = scanner.take(";") or scanner.take(":")
    if scanner.current[0] != "end":
        raise scanner.error("expected the end of the file (or Maple's check map(expand, ...)) "
                            "after TriadSet(...)")
    if not terms:
        raise AlgorithmFileError(f"{source}: no triads; {ACCEPTED}")
    a, b, c = terms[0][1]
    n, m, p = len(a), len(a[0]), len(b[0])
    check_size((n, m, p), len(terms), source)
    for line, matrices in terms:
        for letter, matrix, size in zip("ABC", matrices, ((n, m), (m, p), (p, n)), strict=True):
            if (len(matrix), len(matrix[0])) != size:
                raise AlgorithmFileError(
                    f"{source}:{line}: matrix {letter} of a Triad is {len(matrix)}x"
                    f"{len(matrix[0])}; accepted: {size[0]}x{size[1]} for <{n},{m},{p}> "
                    "(C is p x n, transposed)")
    for variable, size in zip("ABC", ((n, m), (m, p), (p, n)), strict=True):
        if variable in declared and declared[variable] != size:
            rows, cols = declared[variable]
            raise AlgorithmFileError(
                f"{source}: {variable} is declared {rows}x{cols} but the triads make it "
                f"{size[0]}x{size[1]} (<{n},{m},{p}>, C transposed); accepted: matching sizes")
    rank = len(terms)
    columns: dict[str, list[Number]] = {"a": [], "b": [], "c": []}
    for _, (a, b, c) in terms:
        columns["a"] += [x for row in a for x in row]
        columns["b"] += [x for row in b for x in row]
        columns["c"] += [c[k][i] for i in range(n) for k in range(p)]
    u, v, w = (exact_matrix(columns[key], rank, rows).T
               for key, rows in (("a", n * m), ("b", m * p), ("c", n * p)))
    return Algorithm.from_read_factors(
        (n, m, p), (u, v, w), ring, source,
        {"name": name or f"triadset-{n}x{m}x{p}-{rank}", "source": f"Maple TriadSet {source}"})


def _declaration(scanner: _Scanner) -> tuple[int, int]:
    """``Matrix(r, c, [[X_1_1, ..], ..])`` of symbols, then ``:`` or ``;``: its size."""
    scanner.expect("Matrix", "Matrix( declaring the symbolic matrix")
    scanner.expect("(", "'(' after Matrix")
    sizes = []
    for _ in range(2):
        sizes.append(int(_number(scanner)))
        scanner.expect(",", "',' after a Matrix size")
    scanner.expect("[", "'[' opening the rows of symbols")
    rows = 0
    while True:
        scanner.expect("[", "'[' opening a row of symbols")
        count = 0
        while True:
            if scanner.current[0] != "name" or count >= MAX_DIM:
                raise scanner.error("expected a symbol such as A_1_1")
            scanner.current = scanner.advance()
            count += 1
            if not scanner.take(","):
                break
        scanner.expect("]", "',' or ']' in a row of symbols")
        if count != sizes[1]:
            raise scanner.error(f"a row of {count} symbols in a {sizes[0]}x{sizes[1]} Matrix")
        rows += 1
        if rows > MAX_DIM:
            raise scanner.error(f"a matrix with more than {MAX_DIM} rows")
        if scanner.take("]"):
            break
        scanner.expect(",", "',' or ']' after a row of symbols")
    scanner.expect(")", "')' closing Matrix")
    if rows != sizes[0] or not 1 <= sizes[0] <= MAX_DIM or not 1 <= sizes[1] <= MAX_DIM:
        raise scanner.error(f"Matrix({sizes[0]}, {sizes[1]}, ...) with {rows} rows")
    if not (scanner.take(":") or scanner.take(";")):
        raise scanner.error("expected ':' or ';' after the declaration")
    return sizes[0], sizes[1]


def _matrix(scanner: _Scanner, opened: bool = False) -> list[list[Number]]:
    """``Matrix(..)`` or a bare list of rows (``opened``: its first ``[`` already read)."""
    if opened:
        return _rows(scanner, opened=True)
    if scanner.take("Matrix"):
        scanner.expect("(", "'(' after Matrix")
        sizes = []
        while scanner.current[0] == "num":
            if len(sizes) == 2:
                raise scanner.error("expected the rows after two Matrix sizes")
            sizes.append(_number(scanner))
            scanner.expect(",", "',' after a Matrix size")
        rows = _rows(scanner)
        scanner.expect(")", "')' closing Matrix")
        if sizes and (len(sizes) != 2 or sizes != [len(rows), len(rows[0])]):
            raise scanner.error(f"Matrix sizes {sizes} do not match its {len(rows)}x"
                                f"{len(rows[0])} entries")
        return rows
    return _rows(scanner)


def _rows(scanner: _Scanner, opened: bool = False) -> list[list[Number]]:
    if not opened:
        scanner.expect("[", "a matrix: Matrix([[..], ..]) or [[..], ..]")
    rows: list[list[Number]] = []
    while True:
        if len(rows) >= MAX_DIM:
            raise scanner.error(f"a matrix with more than {MAX_DIM} rows")
        scanner.expect("[", "'[' opening a row")
        row = [_number(scanner)]
        while scanner.take(","):
            if len(row) >= MAX_DIM:
                raise scanner.error(f"a row with more than {MAX_DIM} entries")
            row.append(_number(scanner))
        scanner.expect("]", "',' or ']' in a row")
        if rows and len(row) != len(rows[0]):
            raise scanner.error("rows of different lengths")
        rows.append(row)
        if scanner.take("]"):
            return rows
        scanner.expect(",", "',' or ']' after a row")


_MAX_NESTING = 8


def _number(scanner: _Scanner) -> Number:
    """An entry: a number, or Maple's unevaluated arithmetic of numbers such as
    ``(0*1-1*0+1)*(1*1-1*0)`` (``+ - * /`` and brackets, at most 8 deep), evaluated exactly."""
    line = scanner.current[2]
    return check_coefficient(_sum(scanner, 0), f"{scanner.source}:{line}")


def _sum(scanner: _Scanner, depth: int) -> Number:
    total = _product(scanner, depth)
    while scanner.current[1] in ("+", "-") and scanner.current[0] == "op":
        sign = -1 if scanner.take("-") else 1
        if sign == 1:
            scanner.take("+")
        total = _bounded(scanner, total + sign * _product(scanner, depth))
    return total


def _product(scanner: _Scanner, depth: int) -> Number:
    value = _signed(scanner, depth)
    while scanner.current[1] in ("*", "/") and scanner.current[0] == "op":
        if scanner.take("*"):
            value = _bounded(scanner, value * _signed(scanner, depth))
        else:
            scanner.take("/")
            divisor = _signed(scanner, depth)
            if divisor == 0:
                raise scanner.error("division by zero")
            value = _bounded(scanner, Fraction(value) / divisor)
    return value


def _signed(scanner: _Scanner, depth: int) -> Number:
    if scanner.take("-"):
        return -_signed(scanner, depth)
    scanner.take("+")
    kind, value, line = scanner.current
    if scanner.take("("):
        if depth >= _MAX_NESTING:
            raise scanner.error(f"brackets nested deeper than {_MAX_NESTING}")
        result = _sum(scanner, depth + 1)
        scanner.expect(")", "')' closing the bracket")
        return result
    if kind != "num":
        raise scanner.error("expected a number")
    scanner.current = scanner.advance()
    return _bounded(scanner, parse_decimal(value, f"{scanner.source}:{line}"))


def _bounded(scanner: _Scanner, value: Number) -> Number:
    if isinstance(value, Fraction) and value.denominator == 1:
        value = int(value)
    return check_coefficient(value, f"{scanner.source}:{scanner.current[2]}")


# --- writing ---------------------------------------------------------------------------------
def _entry(value: object) -> str:
    return str(Fraction(value))  # type: ignore[arg-type]


def format_triadset(algorithm: Algorithm) -> str:
    """The algorithm as the FMM catalogue writes a ``*_tensor.mpl``: the symbolic ``A``, ``B``,
    ``C`` declared, then ``Tensor:=TriadSet([Triad([Matrix(n, m, ..), ..]), ..]):`` (C
    transposed; fractions ``p/q``; two ``#`` comment lines first)."""
    n, m, p = algorithm.shape

    def rows(grid: list[list[str]]) -> str:
        return "[" + ",".join("[" + ",".join(row) + "]" for row in grid) + "]"

    def matrix(column: np.ndarray, height: int, width: int, transpose: bool = False) -> str:
        grid = [[_entry(column[i * width + k]) for k in range(width)] for i in range(height)]
        if transpose:
            grid = [list(row) for row in zip(*grid, strict=True)]
            height, width = width, height
        return f"Matrix({height}, {width}, {rows(grid)})"

    def symbols(letter: str, height: int, width: int) -> str:
        grid = [[f"{letter}_{i + 1}_{k + 1}" for k in range(width)] for i in range(height)]
        return f"{letter}:=Matrix({height}, {width}, {rows(grid)}):\n"

    triads = [f"Triad([{matrix(algorithm.u[:, r], n, m)}, {matrix(algorithm.v[:, r], m, p)}, "
              f"{matrix(algorithm.w[:, r], n, p, transpose=True)}])"
              for r in range(algorithm.rank)]
    head = (f"# <{n},{m},{p}> rank {algorithm.rank} over {algorithm.ring}: {algorithm.name}\n"
            f"# Triad([A, B, C]): A is {n}x{m}, B is {m}x{p}, C is {p}x{n} (C transposed: "
            "sum a_ij*b_jk*c_ki)\n")
    return (head + symbols("A", n, m) + symbols("B", m, p) + symbols("C", p, n)
            + "Tensor:=TriadSet([" + ", ".join(triads) + "]):\n")
