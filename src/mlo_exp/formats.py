"""Plain-text algorithm formats of the published flip-graph results, read and written.

The flip-graph papers (Kauers-Moosbauer's ``solutions/*.exp`` files) write one rank-one term
per line, in the **cyclic convention** ``T = sum a_ij * b_jk * c_ki``: the third factor's
variables are indexed ``c[k, i]`` (C transposed). Accepted, one term per line:

* **products**: ``(a11+a22)*(b11+b22)*(c11+c22)``; a factor is a sum of variables with
  optional integer coefficients (``-a12``, ``2*b21``, ``a11-a22``), brackets optional around a
  single variable; an optional integer scalar factor (``-1*(...)*(...)*(...)``, or a leading
  ``-``) multiplies the term. Variables: ``a11`` (single-digit indices), ``a_1_1``,
  ``a[1,1]``, ``a(1,1)`` or ``a_{1,1}``; factors are recognised by their letter, in any order.
* **matrices** (Mathematica-like lists): ``{{{1,0},{0,1}},{{1,0},{0,1}},{{1,0},{0,1}}}``, the
  A factor (``n x m``), B factor (``m x p``) and C factor (``p x n``, i.e. ``c[k, i]``), entries
  integers; or the whole file as one list of such terms.

Blank lines and lines starting with ``#`` or ``//`` are ignored. With ``c_transposed=False``
the third factor is read (and written) in our convention instead (``c[i, k]``; ``n x p``).
Coefficients are integers: the ring (``Z`` or ``Z2``) is decided by exact verification when
not given (``Z`` when it holds over the integers, else ``Z2`` when it holds modulo 2).

:func:`read_algorithm_file` is the one entry point for "an algorithm file": the JSON format of
:mod:`mlo_exp.algorithm`, or either text format above (by content, not by extension).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from mlo_exp.algorithm import Algorithm, AlgorithmFileError

_VARIABLE = re.compile(
    r"([abc])(?:_?\{(\d+),(\d+)\}|\[(\d+),(\d+)\]|\((\d+),(\d+)\)|_(\d+)_(\d+)|(\d)(\d))"
)
_TERM = re.compile(r"([+-]?)\s*(?:(\d+)\s*\*?\s*)?(" + _VARIABLE.pattern + r")")


class FormatError(AlgorithmFileError):
    """A text algorithm that cannot be parsed: names the file, the line and what is accepted."""


# --- reading ---------------------------------------------------------------------------------
def read_algorithm_file(path: str | Path, shape: tuple[int, int, int] | None = None,
                        ring: str | None = None, c_transposed: bool = True) -> Algorithm:
    """Read a JSON (``mlo-exp/algorithm``) or flip-graph text algorithm file (not verified)."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as error:
        raise AlgorithmFileError(f"{path}: cannot read: {error.strerror}") from None
    if text.lstrip().startswith("{\"") or text.lstrip().startswith("{\n"):
        return Algorithm.load(path)
    return parse_text(text, shape=shape, ring=ring, c_transposed=c_transposed, source=str(path),
                      name=path.stem)


def parse_text(text: str, shape: tuple[int, int, int] | None = None, ring: str | None = None,
               c_transposed: bool = True, source: str = "<text>",
               name: str | None = None) -> Algorithm:
    """Parse a text algorithm (see module docstring) into an :class:`Algorithm`."""
    lines = [(number, line.strip()) for number, line in enumerate(text.splitlines(), 1)]
    lines = [(n, line) for n, line in lines
             if line and not line.startswith("#") and not line.startswith("//")]
    if not lines:
        raise FormatError(f"{source}: no terms found; accepted: one term per line, e.g. "
                          "(a11+a22)*(b11+b22)*(c11+c22) or {{{1,0},{0,1}},{{...}},{{...}}}")
    if lines[0][1].startswith("{"):
        terms = _parse_matrix_terms(lines, source)
    else:
        terms = [_parse_product(line, f"{source}:{number}") for number, line in lines]
    return _assemble(terms, shape, ring, c_transposed, source, name)


def _parse_matrix_terms(lines: list[tuple[int, str]], source: str) -> list[dict]:
    def load(text: str, where: str):
        try:
            return json.loads(text.replace("{", "[").replace("}", "]"))
        except json.JSONDecodeError as error:
            raise FormatError(f"{where}: not a list of integer matrices ({error.msg})") from None

    joined = " ".join(line for _, line in lines)
    if joined.startswith("{{{{"):
        raw_terms = [(source, term) for term in load(joined, source)]
    else:
        raw_terms = [(f"{source}:{n}", load(line, f"{source}:{n}")) for n, line in lines]
    terms = []
    for where, term in raw_terms:
        if not isinstance(term, list) or len(term) != 3:
            raise FormatError(f"{where}: a term must be three matrices {{A, B, C}}")
        entries = {}
        for letter, matrix in zip("abc", term, strict=True):
            array = np.array(matrix, dtype=object)
            if array.ndim != 2 or not all(isinstance(x, int) and not isinstance(x, bool)
                                          for x in array.ravel()):
                raise FormatError(f"{where}: factor {letter} must be a matrix of integers")
            for (row, col), value in np.ndenumerate(array):
                entries[(letter, row, col)] = int(value)
        terms.append({"entries": entries, "scale": 1, "where": where})
    return terms


def _split_top_level(text: str, where: str) -> list[str]:
    parts, depth, current = [], 0, []
    for char in text:
        if char == "(" and depth >= 0:
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                raise FormatError(f"{where}: unbalanced ')'")
        if char == "*" and depth == 0:
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    if depth != 0:
        raise FormatError(f"{where}: unbalanced '('")
    parts.append("".join(current).strip())
    return parts


def _parse_product(line: str, where: str) -> dict:
    accepted = "a product like (a11+a22)*(b11+b22)*(c11+c22)"
    text = line.replace(" ", "").rstrip(";,")
    scale = 1
    if text.startswith("-("):
        scale, text = -1, text[1:]
    # A lone integer factor (anywhere) scales the whole term: 2*a11*(...) = a11*(...)*(2*...).
    merged = _split_top_level(text, where)
    entries: dict[tuple[str, int, int], int] = {}
    letters_seen = set()
    for factor in merged:
        if not factor:
            raise FormatError(f"{where}: empty factor; accepted: {accepted}")
        if re.fullmatch(r"[+-]?\d+", factor):
            scale *= int(factor)
            continue
        body = factor[1:-1] if factor.startswith("(") and factor.endswith(")") else factor
        negate = False
        if factor.startswith("-(") and factor.endswith(")"):
            body, negate = factor[2:-1], True
        position, letters = 0, set()
        while position < len(body):
            match = _TERM.match(body, position)
            if match is None:
                raise FormatError(f"{where}: cannot read {body[position:]!r} in factor "
                                  f"{factor!r}; accepted: {accepted}, variables a11, a[1,1], "
                                  "a_1_1, a(1,1)")
            sign = -1 if match.group(1) == "-" else 1
            coefficient = sign * int(match.group(2) or 1) * (-1 if negate else 1)
            letter, row, col = _variable(match.group(3))
            letters.add(letter)
            key = (letter, row, col)
            entries[key] = entries.get(key, 0) + coefficient
            position = match.end()
        if len(letters) != 1:
            raise FormatError(f"{where}: factor {factor!r} mixes variables {sorted(letters)}; "
                              "each factor uses one of a, b, c")
        letter = letters.pop()
        if letter in letters_seen:
            raise FormatError(f"{where}: two factors in {letter}; accepted: {accepted}")
        letters_seen.add(letter)
    if letters_seen != {"a", "b", "c"}:
        raise FormatError(f"{where}: the term needs one factor each in a, b and c; found "
                          f"{sorted(letters_seen)}")
    return {"entries": entries, "scale": scale, "where": where}


def _variable(text: str) -> tuple[str, int, int]:
    match = _VARIABLE.fullmatch(text)
    assert match is not None
    numbers = [g for g in match.groups()[1:] if g is not None]
    return match.group(1), int(numbers[0]) - 1, int(numbers[1]) - 1


def _assemble(terms: list[dict], shape: tuple[int, int, int] | None, ring: str | None,
              c_transposed: bool, source: str, name: str | None) -> Algorithm:
    def c_index(row: int, col: int) -> tuple[int, int]:
        return (col, row) if c_transposed else (row, col)  # -> (i, k)

    if shape is None:
        n = m = p = 1
        for term in terms:
            for (letter, row, col) in term["entries"]:
                if letter == "a":
                    n, m = max(n, row + 1), max(m, col + 1)
                elif letter == "b":
                    m, p = max(m, row + 1), max(p, col + 1)
                else:
                    i, k = c_index(row, col)
                    n, p = max(n, i + 1), max(p, k + 1)
        shape = (n, m, p)
    n, m, p = shape
    rank = len(terms)
    u = np.zeros((n * m, rank), dtype=np.int64)
    v = np.zeros((m * p, rank), dtype=np.int64)
    w = np.zeros((n * p, rank), dtype=np.int64)
    for r, term in enumerate(terms):
        for (letter, row, col), value in term["entries"].items():
            if letter == "a":
                ok, index, target = row < n and col < m, row * m + col, u
            elif letter == "b":
                ok, index, target = row < m and col < p, row * p + col, v
            else:
                i, k = c_index(row, col)
                ok, index, target = i < n and k < p, i * p + k, w
            if not ok:
                raise FormatError(f"{term['where']}: {letter}[{row + 1},{col + 1}] is outside "
                                  f"<{n},{m},{p}>")
            target[index, r] += value * (term["scale"] if letter == "c" else 1)
    provenance = {"name": name or f"imported-{n}x{m}x{p}", "source": f"text file {source}"}
    if ring is None:
        algorithm = Algorithm((n, m, p), u, v, w, "Z", provenance)
        if not algorithm.verify().ok and Algorithm((n, m, p), u, v, w, "Z2").verify().ok:
            algorithm = Algorithm((n, m, p), u, v, w, "Z2", provenance)
        return algorithm
    return Algorithm((n, m, p), u, v, w, ring, provenance)


# --- writing ---------------------------------------------------------------------------------
def format_products(algorithm: Algorithm, c_transposed: bool = True) -> str:
    """The algorithm as product lines (``(a11+a22)*(b11+b22)*(c11+c22)``), one per term.

    Integer coefficients only; multi-digit indices are written ``a[10,2]``.
    """
    n, m, p = algorithm.shape
    wide = max(n, m, p) > 9
    u, v, w = (np.asarray(x) for x in (algorithm.u, algorithm.v, algorithm.w))
    if any(x.dtype == object for x in (u, v, w)):
        raise ValueError("the text format holds integer coefficients only (this algorithm is "
                         "rational); export it as JSON")

    def name(letter: str, row: int, col: int) -> str:
        return f"{letter}[{row + 1},{col + 1}]" if wide else f"{letter}{row + 1}{col + 1}"

    def factor(column: np.ndarray, letter: str, rows: int, cols: int, transpose: bool) -> str:
        parts = []
        for index, value in enumerate(column):
            if value == 0:
                continue
            row, col = divmod(index, cols)
            label = name(letter, col, row) if transpose else name(letter, row, col)
            sign = "-" if value < 0 else "+"
            magnitude = abs(int(value))
            parts.append(f"{sign}{magnitude}*{label}" if magnitude != 1 else f"{sign}{label}")
        text = "".join(parts)
        return "(" + (text[1:] if text.startswith("+") else text) + ")"

    lines = [
        factor(u[:, r], "a", n, m, False) + "*" + factor(v[:, r], "b", m, p, False) + "*"
        + factor(w[:, r], "c", n, p, c_transposed)
        for r in range(algorithm.rank)
    ]
    return "\n".join(lines) + "\n"
