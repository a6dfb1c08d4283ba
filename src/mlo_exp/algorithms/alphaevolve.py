"""AlphaEvolve's published decompositions: three numpy arrays ``U``, ``V``, ``W``.

Convention (**C transposed**, as AlphaTensor's files): ``U`` is ``(n*m, R)`` over A's entries
row-major, ``V`` is ``(m*p, R)`` over B's, ``W`` is ``(p*n, R)`` over C *transposed* (row
``k*n+i`` multiplies ``c[i,k]``): the tensor is ``T[i*m+j, j*p+k, k*n+i]``. ``<n,m,p>`` is
read off the three row counts. Two containers, recognised by content:

* an ``.npz`` archive with members ``U.npy``, ``V.npy``, ``W.npy`` (or lower case), each a
  2-D integer or float array (floats exact: integers or binary fractions such as 0.5);
* Python source, as in the results notebook: ``U = np.array([[...], ...], dtype=...)``,
  ``V = ...``, ``W = ...`` (``np.array(...)``, ``numpy.array(...)`` or a bare nested list), or
  one assignment of a tuple ``decomposition = (np.array(U), np.array(V), np.array(W))``.
  Entries are integers, decimals (read exactly: ``0.5`` is 1/2) or fractions ``p/q``;
  complex entries (``1j``) are refused. ``#`` starts a comment.

The ring is ``Q`` when an entry is a fraction, else ``Z`` (``ring="Z2"`` reads a modulo-2
scheme). Bounds: :mod:`mlo_exp.algorithms.parsing`, and at most ``MAX_TOKENS`` tokens of text.
"""

from __future__ import annotations

import io
import re
import zipfile

import numpy as np

from mlo_exp.algorithms.algorithm import Algorithm
from mlo_exp.algorithms.alphatensor import _check_dtype, _exact, _read_members
from mlo_exp.algorithms.parsing import (
    MAX_CHECK_CELLS,
    MAX_DIM,
    AlgorithmFileError,
    Number,
    TokenStream,
    check_coefficient,
    check_size,
    exact_matrix,
    factor_dims,
    npy_header,
    parse_decimal,
    show,
)
from mlo_exp.algorithms.tensor import w_from_alphatensor

ACCEPTED = ("accepted: AlphaEvolve factors U (n*m x R), V (m*p x R), W (p*n x R, C "
            "transposed): an .npz of U.npy, V.npy, W.npy, or Python 'U = np.array([[...]])' "
            "lines for U, V and W")
_MEMBER = re.compile(r"[UVWuvw]\.npy", re.ASCII)
_TOKEN = re.compile(r"(?P<space>[ \t\r\n\\]+)|(?P<comment>#[^\n]*)"
                    r"|(?P<num>[0-9]+(?:\.[0-9]*)?(?:/[0-9]+)?(?![0-9A-Za-z_.]))"
                    r"|(?P<name>[A-Za-z_][A-Za-z0-9_.]*)|(?P<op>[()\[\],=+\-])", re.ASCII)


# --- .npz ------------------------------------------------------------------------------------
def is_uvw_npz(data: bytes) -> bool:
    """An ``.npz`` whose members are named ``U.npy``/``V.npy``/``W.npy`` (any case)."""
    try:
        names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError, OSError):
        return False
    return bool(names) and all(_MEMBER.fullmatch(name) for name in names)


def _read_2d(stream: io.BytesIO, where: str) -> np.ndarray:
    shape, fortran, dtype = npy_header(stream, where, ACCEPTED)
    if len(shape) != 2 or not all(type(x) is int and x >= 0 for x in shape) or dtype.hasobject:
        raise AlgorithmFileError(f"{where}: array of shape {shape} and dtype {show(str(dtype))}; "
                                 "accepted: a 2-D integer or float array")
    _check_dtype(dtype, where)
    if shape[0] * shape[1] > MAX_CHECK_CELLS:
        raise AlgorithmFileError(f"{where}: {shape[0] * shape[1]} entries; accepted: at most "
                                 f"{MAX_CHECK_CELLS}")
    count = shape[0] * shape[1]
    data = stream.read()
    if len(data) != count * dtype.itemsize:
        raise AlgorithmFileError(f"{where}: {len(data)} data bytes for shape {shape}; accepted: "
                                 f"exactly {count * dtype.itemsize}")
    return np.frombuffer(data, dtype=dtype, count=count).reshape(
        shape, order="F" if fortran else "C")


def read_uvw_npz(data: bytes, source: str, ring: str | None = None,
                 name: str | None = None) -> Algorithm:
    """The algorithm of an AlphaEvolve ``.npz`` (see module docstring)."""
    members = _read_members(data, source, _MEMBER, _read_2d, ACCEPTED)
    factors = {key.upper(): value for key, value in members.items()}
    if sorted(factors) != ["U", "V", "W"] or len(members) != 3:
        raise AlgorithmFileError(f"{source}: members {sorted(members)}; {ACCEPTED}")
    u, v, w = (_exact(np.asarray(factors[key]), f"{source}: member {key}.npy")
               for key in "UVW")
    return _assemble(u, v, w, ring, source, name)


# --- Python text -----------------------------------------------------------------------------
def looks_like_python_uvw(text: str) -> bool:
    """Text with a Python assignment (``U = ...``, ``decomposition = (...)``) or
    ``np.array(`` (outside comments)."""
    return re.search(r"^\s*[A-Za-z_][A-Za-z0-9_]*\s*=(?!=)|^[^#\n]*\bnp\.array\s*\(",
                     text, re.MULTILINE | re.ASCII) is not None


class _Parser(TokenStream):
    pattern = _TOKEN
    accepted = ACCEPTED

    def value(self, tuple_allowed: bool = True) -> list | tuple:
        """``np.array(LIST[, dtype=NAME])``, a nested list, or a tuple of those."""
        kind, word, _ = self.current
        if kind == "name" and word in ("np.array", "numpy.array", "np.asarray",
                                        "numpy.asarray"):
            self.current = self.advance()
            self.expect("(", "'(' after np.array")
            array = self.nested(0)
            while self.take(","):
                if self.current[0] != "name" or self.current[1] != "dtype":
                    raise self.error("expected dtype=... after the list")
                self.current = self.advance()
                self.expect("=", "'=' after dtype")
                if self.current[0] != "name":
                    raise self.error("expected a dtype name such as np.int32")
                self.current = self.advance()
            self.expect(")", "')' closing np.array")
            return array
        if self.take("("):
            if tuple_allowed is False:
                raise self.error("a tuple inside a tuple")
            items = [self.value(False)]
            while self.take(","):
                if self.current[1] == ")":
                    break
                if len(items) == 3:
                    raise self.error("more than three items (U, V, W) in the tuple")
                items.append(self.value(False))
            self.expect(")", "')' closing the tuple")
            return tuple(items)
        return self.nested(0)

    def nested(self, depth: int) -> list:
        if depth > 2:
            raise self.error("lists nested deeper than 2")
        self.expect("[", "'[' opening a list")
        items: list = []
        if self.take("]"):
            return items
        while True:
            if len(items) >= MAX_DIM * MAX_DIM * 16:
                raise self.error("a list too long for a factor matrix")
            items.append(self.nested(depth + 1) if self.current[1] == "[" else self.number())
            if self.take("]"):
                return items
            self.expect(",", "',' or ']' in a list")
            if self.take("]"):
                return items

    def number(self) -> Number:
        sign = -1 if self.take("-") else 1
        if sign == 1:
            self.take("+")
        kind, text, line = self.current
        if kind != "num":
            raise self.error("expected a number (complex entries are not accepted)")
        self.current = self.advance()
        where = f"{self.source}:{line}"
        return check_coefficient(sign * parse_decimal(text.rstrip("."), where), where)


def read_python_uvw(text: str, source: str, ring: str | None = None,
                    name: str | None = None) -> Algorithm:
    """The algorithm of AlphaEvolve-style Python source (see module docstring)."""
    parser = _Parser(text.lstrip("\ufeff"), source)
    found: dict[str, list] = {}
    while parser.current[0] != "end":
        kind, target, line = parser.current
        if kind != "name":
            raise parser.error("expected an assignment such as U = np.array([[...]])")
        if target in ("import", "from"):
            raise parser.error("expected only assignments of U, V, W")
        parser.current = parser.advance()
        parser.expect("=", f"'=' after {target}")
        value = parser.value()
        if isinstance(value, tuple):
            if len(value) != 3 or any(isinstance(x, tuple) for x in value):
                raise AlgorithmFileError(f"{source}:{line}: a tuple of {len(value)} items; "
                                         f"{ACCEPTED}")
            for key, item in zip("UVW", value, strict=True):
                found[key] = item
        elif target.upper() in ("U", "V", "W"):
            found[target.upper()] = value
        else:
            raise AlgorithmFileError(f"{source}:{line}: {show(target)} is not U, V or W; "
                                     f"{ACCEPTED}")
    missing = [key for key in "UVW" if key not in found]
    if missing:
        raise AlgorithmFileError(f"{source}: no {', '.join(missing)}; {ACCEPTED}")
    arrays = []
    for key in "UVW":
        rows = found[key]
        if not rows or not all(isinstance(row, list) and row and len(row) == len(rows[0])
                               and not any(isinstance(x, list) for x in row) for row in rows):
            raise AlgorithmFileError(f"{source}: {key} is not a matrix (rows of equal length); "
                                     f"{ACCEPTED}")
        arrays.append(exact_matrix([x for row in rows for x in row], len(rows), len(rows[0])))
    return _assemble(*arrays, ring, source, name)


def _assemble(u: np.ndarray, v: np.ndarray, w: np.ndarray, ring: str | None, source: str,
              name: str | None) -> Algorithm:
    rank = u.shape[1]
    if v.shape[1] != rank or w.shape[1] != rank:
        raise AlgorithmFileError(f"{source}: U, V, W have {u.shape[1]}, {v.shape[1]}, "
                                 f"{w.shape[1]} columns; accepted: the same rank R in each")
    n, m, p = factor_dims((u.shape[0], v.shape[0], w.shape[0]), source)
    check_size((n, m, p), rank, source)
    w = w_from_alphatensor(w, n, p)
    return Algorithm.from_read_factors(
        (n, m, p), (u, v, w), ring, source,
        {"name": name or f"alphaevolve-{n}x{m}x{p}-{rank}",
         "source": f"AlphaEvolve arrays {source}"})


def format_python_uvw(algorithm: Algorithm) -> str:
    """``U``, ``V``, ``W`` as Python source (W over C transposed), readable back exactly."""
    from fractions import Fraction

    n, m, p = algorithm.shape
    order = [i * p + k for k in range(p) for i in range(n)]
    lines = [f"# <{n},{m},{p}> rank {algorithm.rank} over {algorithm.ring}: U (n*m x R), "
             "V (m*p x R), W (p*n x R, C transposed)"]
    for key, factor in (("U", algorithm.u), ("V", algorithm.v), ("W", algorithm.w[order])):
        rows = ["[" + ", ".join(str(Fraction(x)) for x in row) + "]" for row in factor]
        lines.append(f"{key} = np.array([" + ",\n  ".join(rows) + "])")
    return "\n".join(lines) + "\n"
