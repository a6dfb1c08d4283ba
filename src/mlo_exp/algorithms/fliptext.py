"""The flip-graph papers' plain-text algorithm formats (products and matrices), read and written.

The flip-graph papers (Kauers-Moosbauer's ``*.exp`` / ``*.m`` files) write rank-one terms in
the **cyclic convention** ``T = sum a_ij * b_jk * c_ki``: the third factor's variables are
indexed ``c[k, i]`` (C transposed). Accepted:

* **products**, one term per line: ``(a11+a22)*(b11+b22)*(c11+c22)``. A factor is a sum of
  variables with optional coefficients (``-a12``, ``2*b21``, ``2 b21``, ``1/2*a11``,
  ``a11-a22``), a scaled sum (``-3*(a12-a13)``), brackets optional around a single variable;
  one factor each in ``a``, ``b`` and ``c``, in any order, joined by ``*`` (or by nothing
  where one of two neighbours is bracketed: ``(a13-a53) b31 (-c13+c35)``, as Kauers-Moosbauer's
  symmetric ``*_lifted.exp`` files write them). Numbers between
  the factors (``-1*(...)*2*...``), a leading sign and a trailing divisor (``.../315``, as in
  the ``.exp`` files) scale the whole term. Variables: ``a11`` (single-digit indices),
  ``a_1_1``, ``a[1,1]``, ``a(1,1)`` or ``a_{1,1}``; indices start at 1.
* **matrices** (Mathematica lists): a term is ``{{{1,0},{0,1}},{{1,0},{0,1}},{{1,0},{0,1}}}``,
  the A factor (``n x m``), B factor (``m x p``) and C factor (``p x n``, i.e. ``c[k, i]``);
  the file is one term per line, or one list of terms ``{term, term, ...}`` broken across
  lines anywhere (Mathematica's ``.m`` output; one term per line inside an outer ``{ }`` is
  the common layout). All terms have the same matrix sizes.

Numbers are integers or fractions ``p/q`` (see :mod:`mlo_exp.algorithms.parsing` for the bounds; no
float syntax, no exponents). Spaces and tabs may separate tokens but never split a name, and
two variables always need an operator between them (``a21a22`` or ``a21 a22`` is refused,
not read as a sum); a factor names each variable at most once; a line has at most 30,000
characters. Blank lines and lines starting with ``#`` or ``//`` are ignored. With
``c_transposed=False`` the third factor is read (and written) in our convention instead
(``c[i, k]``; ``n x p``). When not given, the ring is ``Q`` when a coefficient is a fraction;
``Z2`` when every coefficient is 0 or 1 (how modulo-2 schemes are written) and the algorithm
holds modulo 2 but not over the integers; else ``Z`` (so a sign error in an integer scheme is
reported as wrong, not as correct modulo 2).

:func:`parse_text` reads both (:func:`mlo_exp.algorithms.formats.read_algorithms` picks it
for any text no other format claims); :func:`format_products` and :func:`format_matrices`
write them.

Length: about 540 lines: two grammars (products and matrices) with their limits and
writers, which share the variable names and the ring rules.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from mlo_exp.algorithms.algorithm import Algorithm, AlgorithmFileError
from mlo_exp.algorithms.parsing import (
    MAX_DIM,
    MAX_RANK,
    Number,
    check_coefficient,
    check_exact_cost,
    check_size,
    exact_matrix,
    parse_number,
    show,
)
from mlo_exp.algorithms.tensor import is_integral

ACCEPTED_PRODUCTS = ("a product like (a11+a22)*(b11+b22)*(c11+c22) with variables a11, a[1,1], "
                     "a_1_1, a(1,1) or a_{1,1} and integer or p/q coefficients")
ACCEPTED_MATRICES = ("matrices like {{{1,0},{0,1}},{{1,0},{0,1}},{{1,0},{0,1}}} per term, or "
                     "one list {term, term, ...}, entries integers or p/q")
_MAX_PARENS = 8
_MAX_LINE = 30_000  # a dense <16,16,16> term with p/q coefficients is about 13,000
_MAX_VALUES = MAX_RANK * 3 * (MAX_DIM * MAX_DIM + MAX_DIM + 1) + MAX_RANK
_VARIABLE = (r"(?P<letter>[abc])(?:_?\{\s*(?P<i1>[0-9]+)\s*,\s*(?P<j1>[0-9]+)\s*\}"
             r"|\[\s*(?P<i2>[0-9]+)\s*,\s*(?P<j2>[0-9]+)\s*\]"
             r"|\(\s*(?P<i3>[0-9]+)\s*,\s*(?P<j3>[0-9]+)\s*\)"
             r"|_(?P<i4>[0-9]+)_(?P<j4>[0-9]+)|(?P<i5>[0-9])(?P<j5>[0-9]))")
_PRODUCT_TOKEN = re.compile(
    rf"(?P<space>[ \t]+)|(?P<var>{_VARIABLE})|(?P<num>[0-9]+)|(?P<op>[-+*/();,])", re.ASCII)
_INDEX_GROUPS = tuple(f"{axis}{k}" for k in range(1, 6) for axis in "ij")
_NAME_CHAR = re.compile(r"[A-Za-z0-9_]", re.ASCII)
_MATRIX_TOKEN = re.compile(r"(?P<space>[ \t\r]+)|(?P<newline>\n)|(?P<num>[+-]?[0-9]+(?:/[0-9]+)?)"
                           r"|(?P<op>[{},])", re.ASCII)


class FormatError(AlgorithmFileError):
    """A text algorithm that cannot be parsed: names the file, the line and what is accepted."""


# --- text ------------------------------------------------------------------------------------
@dataclass
class _Term:
    """One rank-one term: ``{letter: {(row, col): coefficient}}`` times ``scale``."""

    where: str
    factors: dict[str, dict[tuple[int, int], Number]] = field(default_factory=dict)
    scale: Number = 1


def parse_text(text: str, shape: tuple[int, int, int] | None = None, ring: str | None = None,
               c_transposed: bool = True, source: str = "<text>",
               name: str | None = None) -> Algorithm:
    """Parse a text algorithm (see module docstring) into an :class:`Algorithm`."""
    if text.startswith("\ufeff"):
        text = text[1:]
    lines = [line.rstrip("\r") for line in text.split("\n")]
    content = [(number, line.strip(" \t")) for number, line in enumerate(lines, 1)]
    content = [(n, line) for n, line in content
               if line and not line.startswith("#") and not line.startswith("//")]
    if not content:
        raise FormatError(f"{source}: no terms found; accepted: one term per line, e.g. "
                          "(a11+a22)*(b11+b22)*(c11+c22), or " + ACCEPTED_MATRICES)
    if content[0][1].startswith("{"):
        kept = {n for n, _ in content}
        body = "\n".join(line if n in kept else "" for n, line in enumerate(lines, 1))
        return _matrices(body, shape, ring, c_transposed, source, name)
    if len(content) > MAX_RANK:
        raise FormatError(f"{source}: {len(content)} terms; accepted: at most {MAX_RANK}")
    terms = [_Products(line, f"{source}:{number}").term() for number, line in content]
    return _assemble(terms, shape, ring, c_transposed, source, name)


class _Products:
    """Recursive-descent reader of one product line (grammar in the module docstring)."""

    def __init__(self, line: str, where: str) -> None:
        self.line, self.where = line, where
        self.tokens: list[tuple[str, object, int]] = []
        self.position = position = 0
        if len(line) > _MAX_LINE:
            raise self.error(f"a line of {len(line)} characters; at most {_MAX_LINE}", 1)
        while position < len(line):
            match = _PRODUCT_TOKEN.match(line, position)
            if match is None:
                raise self.error(f"cannot read {show(line[position:position + 20])}",
                                 position + 1)
            kind = match.lastgroup
            if kind == "var":
                self.tokens.append(("var", self._variable(match), position + 1))
                if _NAME_CHAR.match(line, match.end()):
                    raise self.error(f"{show(line[match.end():match.end() + 10])} right after "
                                     f"{match.group('var')}: names need an operator between "
                                     "them", match.end() + 1)
            elif kind != "space":
                self.tokens.append((kind, match.group(), position + 1))  # type: ignore[arg-type]
            position = match.end()
        self.position = 0

    def error(self, message: str, column: int | None = None) -> FormatError:
        if column is None:
            column = (self.tokens[self.position][2] if self.position < len(self.tokens)
                      else len(self.line) + 1)
        return FormatError(f"{self.where}: column {column}: {message}; accepted: "
                           f"{ACCEPTED_PRODUCTS}")

    def _variable(self, match: re.Match) -> tuple[str, int, int]:
        indices = []
        for text in [x for x in match.group(*_INDEX_GROUPS) if x is not None]:
            if len(text) > 3 or not 1 <= int(text) <= MAX_DIM:
                raise self.error(f"index {text} in {match.group('var')}: indices run from 1 to "
                                 f"{MAX_DIM}", match.start() + 1)
            indices.append(int(text) - 1)
        return match.group("letter"), indices[0], indices[1]

    # -- tokens
    def peek(self) -> tuple[str, object]:
        if self.position < len(self.tokens):
            kind, value, _ = self.tokens[self.position]
            return kind, value
        return "end", None

    def take(self, op: str) -> bool:
        if self.peek() == ("op", op):
            self.position += 1
            return True
        return False

    def number(self) -> Number:
        """``digits [/ digits]``; the caller saw a number."""
        _, text, column = self.tokens[self.position]
        self.position += 1
        if self.peek() == ("op", "/") and self.position + 1 < len(self.tokens) \
                and self.tokens[self.position + 1][0] == "num":
            text = f"{text}/{self.tokens[self.position + 1][1]}"
            self.position += 2
        return parse_number(str(text), f"{self.where}: column {column}")

    def divisor(self) -> Number:
        """After ``/``: a positive integer."""
        kind, text = self.peek()
        if kind != "num":
            raise self.error("a divisor must be a positive integer")
        self.position += 1
        value = parse_number(str(text), f"{self.where}: divisor")
        if value == 0:
            raise self.error("division by zero")
        return value

    # -- grammar
    def term(self) -> _Term:
        """``[sign] item (['*'] item)* [';']``: an item is a number or a factor, each may be
        followed by ``/ divisor``; a number may stand right before the factor it scales."""
        term = _Term(self.where)
        scale: Number = 1
        while True:
            if self.take("-"):
                scale = -scale
            else:
                self.take("+")
            number = self.peek()[0] == "num"
            if number:
                scale = check_coefficient(scale * self.number(), self.where)
            elif self._at_atom():
                self.factor_into(term)
            else:
                raise self.error("expected a factor such as (a11+a22), a variable or a number")
            while self.take("/"):
                scale = check_coefficient(Fraction(scale) / self.divisor(), self.where)
            if self.take("*") or (number and self._at_atom()) or (
                    not number and self._juxtaposed()):
                continue
            break
        _ = self.take(";") or self.take(",")
        if self.peek()[0] != "end":
            raise self.error("expected '*' between factors or the end of the line")
        missing = sorted(set("abc") - set(term.factors))
        if missing:
            raise FormatError(f"{self.where}: the term needs one factor each in a, b and c; no "
                              f"factor in {', '.join(missing)}; accepted: {ACCEPTED_PRODUCTS}")
        term.scale = scale
        return term

    def _juxtaposed(self) -> bool:
        """A factor right after a factor with no ``*``, one of the two bracketed:
        ``(a11+a22) (b11-b12) c21`` (two bare variables still need an operator)."""
        before = self.tokens[self.position - 1][1]
        return (before == ")" and self._at_atom()) or self.peek() == ("op", "(")

    def _at_atom(self) -> bool:
        kind, value = self.peek()
        return kind == "var" or (kind, value) == ("op", "(")

    def factor_into(self, term: _Term) -> None:
        """One factor (a variable or a bracketed sum) stored in ``term`` under its letter."""
        column = self.tokens[self.position][2]
        linear = self.atom(0)
        letters = {letter for letter, _, _ in linear}
        if len(letters) != 1:
            raise self.error(f"a factor mixes variables {', '.join(sorted(letters))}; each "
                             "factor uses one of a, b, c", column)
        letter = letters.pop()
        if letter in term.factors:
            raise self.error(f"two factors in {letter}", column)
        term.factors[letter] = {(row, col): value for (_, row, col), value in linear.items()}

    def atom(self, depth: int) -> dict[tuple[str, int, int], Number]:
        kind, value = self.peek()
        if kind == "var":
            self.position += 1
            return {value: 1}  # type: ignore[dict-item]
        if (kind, value) != ("op", "("):
            raise self.error("expected a variable such as a11 or '('")
        if depth >= _MAX_PARENS:
            raise self.error(f"brackets nested deeper than {_MAX_PARENS}")
        self.position += 1
        result = self.sum(depth + 1)
        if not self.take(")"):
            raise self.error("expected ')' or an operator (+ - * /)")
        return result

    def sum(self, depth: int) -> dict[tuple[str, int, int], Number]:
        """``[sign] [coefficients] atom ['/' divisor] (sign ...)*``; each variable once."""
        result: dict[tuple[str, int, int], Number] = {}
        first = True
        while True:
            if self.take("-"):
                sign = -1
            elif self.take("+") or first:
                sign = 1
            else:
                return result
            first = False
            coefficient: Number = sign
            column = self.tokens[self.position][2] if self.position < len(self.tokens) else 0
            while self.peek()[0] == "num":
                coefficient = check_coefficient(coefficient * self.number(), self.where)
                self.take("*")
            part = self.atom(depth)
            while self.take("/"):
                coefficient = check_coefficient(Fraction(coefficient) / self.divisor(),
                                                self.where)
            for key, value in part.items():
                if key in result:
                    letter, row, col = key
                    raise self.error(f"{letter}[{row + 1},{col + 1}] appears twice in one "
                                     "factor; each variable at most once", column)
                result[key] = (coefficient if value == 1 else
                               check_coefficient(coefficient * value, self.where))


def _assemble(terms: list[_Term], shape: tuple[int, int, int] | None, ring: str | None,
              c_transposed: bool, source: str, name: str | None) -> Algorithm:
    def c_index(row: int, col: int) -> tuple[int, int]:
        return (col, row) if c_transposed else (row, col)  # -> (i, k)

    if shape is None:
        n = m = p = 1
        for term in terms:
            for row, col in term.factors["a"]:
                n, m = max(n, row + 1), max(m, col + 1)
            for row, col in term.factors["b"]:
                m, p = max(m, row + 1), max(p, col + 1)
            for row, col in term.factors["c"]:
                i, k = c_index(row, col)
                n, p = max(n, i + 1), max(p, k + 1)
        shape = (n, m, p)
    check_size(shape, len(terms), source)
    n, m, p = shape
    rank = len(terms)
    columns: dict[str, list[Number]] = {"a": [], "b": [], "c": []}
    for term in terms:
        for letter, (rows, cols) in (("a", (n, m)), ("b", (m, p)), ("c", (n, p))):
            column: list[Number] = [0] * (rows * cols)
            for (row, col), value in term.factors[letter].items():
                i, k = c_index(row, col) if letter == "c" else (row, col)
                if i >= rows or k >= cols:
                    raise FormatError(f"{term.where}: {letter}[{row + 1},{col + 1}] is outside "
                                      f"<{n},{m},{p}>; accepted: indices within the shape")
                if letter == "c" and term.scale != 1:
                    value = check_coefficient(value * term.scale, term.where)
                column[i * cols + k] = value
            columns[letter] += column
    u, v, w = (exact_matrix(columns[letter], rank, rows).T
               for letter, rows in (("a", n * m), ("b", m * p), ("c", n * p)))
    return _finish((n, m, p), (u, v, w), ring, source, name)


def _finish(shape: tuple[int, int, int], factors: tuple[np.ndarray, ...], ring: str | None,
            source: str, name: str | None) -> Algorithm:
    """Ring (given, or detected) and the cost check of a text algorithm."""
    n, m, p = shape
    check_exact_cost(shape, factors, source)
    provenance = {"name": name or f"imported-{n}x{m}x{p}", "source": f"text file {source}"}
    integral = all(is_integral(x) for x in factors)
    if ring is not None:
        if ring in ("Z", "Z2") and not integral:
            raise FormatError(f"{source}: ring {ring} asked for, but the coefficients include "
                              "fractions; accepted: ring Q")
        return Algorithm(shape, *factors, ring, provenance)
    if not integral:
        return Algorithm(shape, *factors, "Q", provenance)
    algorithm = Algorithm(shape, *factors, "Z", provenance)
    binary = all(np.isin(x, (0, 1)).all() for x in factors)  # how modulo-2 files are written
    if binary and not algorithm.verify().ok and Algorithm(shape, *factors, "Z2").verify().ok:
        algorithm = Algorithm(shape, *factors, "Z2", provenance)
    return algorithm


@dataclass
class _Node:
    """A ``{...}`` list of the matrices format and the line it starts on."""

    line: int
    items: list = field(default_factory=list)


def _matrices(text: str, shape: tuple[int, int, int] | None, ring: str | None,
              c_transposed: bool, source: str, name: str | None) -> Algorithm:
    values = _parse_lists(text, source)
    first = values[0] if values else None
    depth = 0
    while isinstance(first, _Node) and first.items:
        depth, first = depth + 1, first.items[0]
    if len(values) == 1 and depth == 4:
        values = values[0].items
    if not values or len(values) > MAX_RANK:
        raise FormatError(f"{source}: {len(values)} terms; accepted: 1 to {MAX_RANK} terms of "
                          + ACCEPTED_MATRICES)
    terms = []
    for t, node in enumerate(values, 1):
        where = f"{source}: term {t} (line {node.line if isinstance(node, _Node) else '?'})"
        if not isinstance(node, _Node) or len(node.items) != 3:
            raise FormatError(f"{where}: not three matrices {{A, B, C}}; accepted: "
                              + ACCEPTED_MATRICES)
        terms.append((where, [_matrix(item, letter, where)
                              for item, letter in zip(node.items, "abc", strict=True)]))
    if shape is None:
        a_rows, b_rows, _ = terms[0][1]
        shape = (len(a_rows), len(a_rows[0]), len(b_rows[0]))
    n, m, p = shape
    expected = [(n, m), (m, p), (p, n) if c_transposed else (n, p)]
    for where, matrices in terms:
        for letter, matrix, size in zip("abc", matrices, expected, strict=True):
            if len(matrix) != size[0] or len(matrix[0]) != size[1]:
                raise FormatError(f"{where}: matrix {letter} is {len(matrix)}x{len(matrix[0])}; "
                                  f"accepted: {size[0]}x{size[1]} for <{n},{m},{p}> "
                                  f"(C is {'p x n, c[k,i]' if c_transposed else 'n x p'})")
    check_size(shape, len(terms), source)
    columns: dict[str, list[Number]] = {"a": [], "b": [], "c": []}
    for _, (a_rows, b_rows, c_rows) in terms:
        columns["a"] += [x for row in a_rows for x in row]
        columns["b"] += [x for row in b_rows for x in row]
        ours = [list(col) for col in zip(*c_rows, strict=True)] if c_transposed else c_rows
        columns["c"] += [x for row in ours for x in row]
    rank = len(terms)
    factors = tuple(exact_matrix(columns[letter], rank, rows).T
                    for letter, rows in (("a", n * m), ("b", m * p), ("c", n * p)))
    return _finish((n, m, p), factors, ring, source, name)


def _matrix(node: object, letter: str, where: str) -> list[list[Number]]:
    accepted = f"accepted: {ACCEPTED_MATRICES}"
    if not isinstance(node, _Node) or not node.items or not all(
            isinstance(row, _Node) and row.items for row in node.items):
        raise FormatError(f"{where}: factor {letter} is not a matrix (a list of rows); {accepted}")
    rows = [row.items for row in node.items]
    if any(len(row) != len(rows[0]) or any(isinstance(x, _Node) for x in row) for row in rows):
        raise FormatError(f"{where}: factor {letter}: rows of different lengths or nested "
                          f"lists; {accepted}")
    if len(rows) > MAX_DIM or len(rows[0]) > MAX_DIM:
        raise FormatError(f"{where}: factor {letter} is {len(rows)}x{len(rows[0])}; accepted: "
                          f"at most {MAX_DIM}x{MAX_DIM}")
    return rows


def _parse_lists(text: str, source: str) -> list:
    """Top-level values of a ``{..., {...}}`` text; lists are :class:`_Node`, numbers exact.

    Inside a list, items are separated by exactly one comma; top-level values by a comma or a
    line break. Nesting is at most 4 deep; lists hold at most ``MAX_RANK`` items.
    """
    top: list = []
    stack: list[_Node] = []
    line, position = 1, 0
    separated = True  # may a value start here? (in the current list or at the top level)
    count = 0
    while position < len(text):
        match = _MATRIX_TOKEN.match(text, position)
        where = f"{source}:{line}"
        if match is None:
            raise FormatError(f"{where}: cannot read {show(text[position:position + 20])}; "
                              f"accepted: {ACCEPTED_MATRICES}")
        position = match.end()
        token = match.group()
        if match.group("space"):
            continue
        if match.group("newline"):
            line += 1
            separated = separated or not stack
            continue
        items = stack[-1].items if stack else top
        if token == ",":
            if separated and (stack or not top):
                raise FormatError(f"{where}: a comma without a value before it; accepted: "
                                  f"{ACCEPTED_MATRICES}")
            separated = True
            continue
        if token == "}":
            if not stack:
                raise FormatError(f"{where}: '}}' without '{{'; accepted: {ACCEPTED_MATRICES}")
            if separated and stack[-1].items:
                raise FormatError(f"{where}: a comma before '}}'; accepted: {ACCEPTED_MATRICES}")
            stack.pop()
            separated = False
            continue
        if not separated:
            raise FormatError(f"{where}: missing ',' between values; accepted: "
                              f"{ACCEPTED_MATRICES}")
        count += 1
        if len(items) >= MAX_RANK or count > _MAX_VALUES:
            raise FormatError(f"{where}: too many values; accepted: at most {MAX_RANK} terms "
                              f"of at most {MAX_DIM}x{MAX_DIM} matrices")
        if token == "{":
            if len(stack) >= 4:
                raise FormatError(f"{where}: lists nested deeper than 4; accepted: "
                                  f"{ACCEPTED_MATRICES}")
            node = _Node(line)
            items.append(node)
            stack.append(node)
            separated = True
        else:
            number = token.lstrip("+-")
            if "/" not in token and len(number) <= 9:
                items.append(int(token))
            else:
                items.append(parse_number(token, where))
            separated = False
    if stack:
        raise FormatError(f"{source}:{stack[-1].line}: '{{' is never closed; accepted: "
                          f"{ACCEPTED_MATRICES}")
    return top


# --- writing ---------------------------------------------------------------------------------
def format_products(algorithm: Algorithm, c_transposed: bool = True) -> str:
    """The algorithm as product lines (``(a11+a22)*(b11+b22)*(c11+c22)``), one per term.

    Fractions are written ``1/2*a11``; with a dimension above 9 indices are ``a[10,2]``.
    """
    n, m, p = algorithm.shape
    wide = max(n, m, p) > 9

    def name(letter: str, row: int, col: int) -> str:
        return f"{letter}[{row + 1},{col + 1}]" if wide else f"{letter}{row + 1}{col + 1}"

    def factor(column: np.ndarray, letter: str, cols: int, transpose: bool) -> str:
        parts = []
        for index, value in enumerate(column):
            value = Fraction(value)
            if value == 0:
                continue
            row, col = divmod(index, cols)
            variable = name(letter, col, row) if transpose else name(letter, row, col)
            sign = "-" if value < 0 else "+"
            magnitude = abs(value)
            parts.append(f"{sign}{magnitude}*{variable}" if magnitude != 1
                         else f"{sign}{variable}")
        text = "".join(parts) or f"0*{name(letter, 0, 0)}"  # a zero factor stays readable
        return "(" + (text[1:] if text.startswith("+") else text) + ")"

    lines = [
        factor(algorithm.u[:, r], "a", m, False) + "*" + factor(algorithm.v[:, r], "b", p, False)
        + "*" + factor(algorithm.w[:, r], "c", p, c_transposed)
        for r in range(algorithm.rank)
    ]
    return "\n".join(lines) + "\n"


def format_matrices(algorithm: Algorithm, c_transposed: bool = True) -> str:
    """The algorithm as a Mathematica/Maple-style ``.m`` list (Perminov's and the flip-graph
    papers' layout): ``{`` then one ``{{{A}}, {{B}}, {{C}}}`` term per line, C transposed
    (``p x n``) unless ``c_transposed`` is false; fractions ``p/q``."""
    n, m, p = algorithm.shape

    def matrix(column: np.ndarray, rows: int, cols: int, transpose: bool = False) -> str:
        grid = [[str(Fraction(column[i * cols + k])) for k in range(cols)] for i in range(rows)]
        if transpose:
            grid = [list(row) for row in zip(*grid, strict=True)]
        return "{" + ", ".join("{" + ", ".join(row) + "}" for row in grid) + "}"

    terms = ["{" + ", ".join([matrix(algorithm.u[:, r], n, m), matrix(algorithm.v[:, r], m, p),
                              matrix(algorithm.w[:, r], n, p, c_transposed)]) + "}"
             for r in range(algorithm.rank)]
    return "{\n  " + ",\n  ".join(terms) + "\n}\n"
