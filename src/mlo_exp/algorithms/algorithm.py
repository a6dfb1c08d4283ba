"""Algorithms: a verified decomposition of ``T<n,m,p>`` plus where it came from.

Factor layout follows :mod:`mlo_exp.algorithms.tensor`: ``u`` is ``(n*m, R)``, ``v`` is ``(m*p,
R)``,
``w`` is ``(n*p, R)``; column ``r`` is the ``r``-th multiplication. Coefficients are exact:
int64 arrays, or object arrays of :class:`fractions.Fraction` for rational algorithms.

File format (``mlo-exp/algorithm``, version 1), JSON::

    {"format": "mlo-exp/algorithm", "version": 1,
     "shape": [n, m, p], "rank": R, "ring": "Z" | "Q" | "Z2",
     "convention": "T[i*m+j, j*p+k, i*p+k]",
     "factors": {"u": [[...nm numbers...] x R], "v": [...], "w": [...]},
     "provenance": {"name": "...", ...strings, numbers, booleans, null...}}

``factors.u[r]`` is term ``r``'s coefficient vector over A's entries in row-major order
(likewise ``v`` over B and ``w`` over C). Numbers are JSON integers (an integral float such as
``2.0`` is read as the integer), or strings ``"p/q"`` for fractions. Reading is strict: unknown
or repeated keys, booleans, NaN, exponents in strings and the sizes beyond the limits of
:mod:`mlo_exp.algorithms.parsing` are refused with an :class:`AlgorithmFileError` naming the key.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from mlo_exp.algorithms.parsing import (
    ACCEPTED_NUMBER,
    MAX_COEFFICIENT,
    AlgorithmFileError,
    Number,
    check_coefficient,
    check_dim,
    check_exact_cost,
    check_size,
    decode_text,
    exact_matrix,
    label,
    parse_number,
    read_bytes,
    show,
)
from mlo_exp.algorithms.tensor import RINGS, Verification, is_integral, to_exact, verify
from mlo_exp.io import atomic_write_text

FORMAT_NAME = "mlo-exp/algorithm"
FORMAT_VERSION = 1
CONVENTION = "T[i*m+j, j*p+k, i*p+k]"
_KEYS = ("format", "version", "shape", "rank", "ring", "convention", "factors", "provenance")
_MAX_PROVENANCE_STRING = 4096
_MAX_NAME = 256
__all__ = ["CONVENTION", "FORMAT_NAME", "FORMAT_VERSION", "Algorithm", "AlgorithmFileError",
           "load_json"]


@dataclass
class Algorithm:
    """A rank-``R`` bilinear algorithm for ``<n,m,p>`` (see module docstring for layout)."""

    shape: tuple[int, int, int]
    u: np.ndarray
    v: np.ndarray
    w: np.ndarray
    ring: str = "Z"
    provenance: dict[str, Any] = field(default_factory=dict)
    #: how to evaluate it with fewer additions (an addition-reduced file's
    #: :class:`mlo_exp.algorithms.plan.AdditionPlan`), or None; not part of the JSON
    plan: Any = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.shape = tuple(int(x) for x in self.shape)  # type: ignore[assignment]
        self.u, self.v, self.w = (to_exact(x) for x in (self.u, self.v, self.w))
        if self.ring not in RINGS:
            raise ValueError(f"ring={self.ring!r}; accepted: {', '.join(RINGS)}")
        if self.ring == "Z2":
            self.u, self.v, self.w = (x % 2 for x in (self.u, self.v, self.w))

    @property
    def rank(self) -> int:
        """Number of multiplications."""
        return int(self.u.shape[1])

    @property
    def name(self) -> str:
        n, m, p = self.shape
        return self.provenance.get("name") or f"<{n},{m},{p}> rank {self.rank} ({self.ring})"

    def verify(self) -> Verification:
        """Exact verification over :attr:`ring`."""
        return verify(self.u, self.v, self.w, self.shape, self.ring)

    def as_float(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Factors as float64 arrays (for execution, never for correctness)."""
        return tuple(  # type: ignore[return-value]
            np.asarray(x, dtype=object).astype(np.float64) for x in (self.u, self.v, self.w))

    def digest(self) -> str:
        """Stable sha256 over shape, ring and exact factors: identifies an algorithm."""
        payload = json.dumps(
            {"shape": list(self.shape), "ring": self.ring, "factors": self._factor_lists()},
            sort_keys=True,
        )
        return hashlib.sha256(payload.encode()).hexdigest()

    # -- serialisation -------------------------------------------------------------------
    def _factor_lists(self) -> dict[str, list[list[int | str]]]:
        return {name: [[_number_to_json(x) for x in column] for column in factor.T]
                for name, factor in (("u", self.u), ("v", self.v), ("w", self.w))}

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "shape": list(self.shape),
            "rank": self.rank,
            "ring": self.ring,
            "convention": CONVENTION,
            "factors": self._factor_lists(),
            "provenance": self.provenance,
        }

    def save(self, path: str | Path) -> Path:
        """Write the JSON file atomically (temp file + rename) and return its path."""
        path = Path(path)
        atomic_write_text(path, json.dumps(self.to_dict(), indent=1) + "\n")
        return path

    @classmethod
    def from_read_factors(cls, shape: tuple[int, int, int],
                          factors: tuple[np.ndarray, np.ndarray, np.ndarray], ring: str | None,
                          source: str, provenance: dict[str, Any]) -> Algorithm:
        """An algorithm from factors a reader parsed (our layout): the exact check's cost
        bounded first; ``ring`` None takes Z for integers, else Q; Z or Z2 asked for with
        fractions is an :class:`AlgorithmFileError`."""
        check_exact_cost(shape, factors, source)
        integral = all(is_integral(x) for x in factors)
        if ring in ("Z", "Z2") and not integral:
            raise AlgorithmFileError(f"{source}: ring {ring} asked for, but the coefficients "
                                     "include fractions; accepted: ring Q")
        return cls(shape, *factors, ring or ("Z" if integral else "Q"), provenance)

    @classmethod
    def from_dict(cls, data: Any, source: str = "<dict>") -> Algorithm:
        """Build from a parsed file, checking every field; raises :class:`AlgorithmFileError`.

        Strict: unknown keys, booleans or floats where integers belong, and sizes or
        coefficients beyond the limits of :mod:`mlo_exp.algorithms.parsing` are refused.
        """

        def fail(place: str, message: str) -> AlgorithmFileError:
            return AlgorithmFileError(f"{source}: {place}: {message}")

        if not isinstance(data, dict):
            raise AlgorithmFileError(f"{source}: the file holds {_brief(data)}; accepted: a JSON "
                                     f"object of format {FORMAT_NAME!r} version {FORMAT_VERSION}")
        unknown = sorted(str(key) for key in data if key not in _KEYS)
        if unknown:
            raise fail(f"key {show(unknown[0])}", f"unknown; accepted keys: {', '.join(_KEYS)}")
        if data.get("format") != FORMAT_NAME:
            raise fail("format", f"{_brief(data.get('format'))}; accepted: {FORMAT_NAME!r}")
        version = data.get("version")
        if type(version) is not int or version != FORMAT_VERSION:
            raise fail("version", f"{_brief(version)}; accepted: {FORMAT_VERSION}")
        shape = data.get("shape")
        if not isinstance(shape, list) or len(shape) != 3:
            raise fail("shape", f"{_brief(shape)}; accepted: [n, m, p], e.g. [2, 2, 2]")
        n, m, p = (check_dim(x, f"shape[{i}]", source) for i, x in enumerate(shape))
        ring = data.get("ring", "Z")
        if not isinstance(ring, str) or ring not in RINGS:
            raise fail("ring", f"{_brief(ring)}; accepted: {', '.join(RINGS)}")
        convention = data.get("convention", CONVENTION)
        if convention != CONVENTION:
            raise fail("convention", f"{_brief(convention)}; accepted: {CONVENTION!r}")
        factors = data.get("factors")
        if not isinstance(factors, dict) or set(factors) != {"u", "v", "w"}:
            raise fail("factors", "accepted: an object with exactly the keys u, v, w")
        rows = {"u": n * m, "v": m * p, "w": n * p}
        for name in "uvw":
            if not isinstance(factors[name], list):
                raise fail(f"factors.{name}", f"{_brief(factors[name])}; accepted: a list of "
                           f"terms, each a list of {rows[name]} numbers")
        rank = len(factors["u"])
        if any(len(factors[name]) != rank for name in "vw"):
            counts = [len(factors[name]) for name in "uvw"]
            raise fail("factors", f"u, v, w have different numbers of terms {counts}; accepted: "
                       "the same number in each")
        if "rank" in data and (type(data["rank"]) is not int or data["rank"] != rank):
            raise fail("rank", f"{_brief(data['rank'])} but the factors hold {rank} terms; "
                       "accepted: the number of terms")
        check_size((n, m, p), rank, source)
        arrays = []
        for name in "uvw":
            values: list[Number] = []
            for r, term in enumerate(factors[name]):
                if not isinstance(term, list) or len(term) != rows[name]:
                    raise fail(f"factors.{name}[{r}]", f"{_brief(term)}; accepted: a list of "
                               f"{rows[name]} numbers for <{n},{m},{p}>")
                values += [_number_from_json(x, f"{source}: factors.{name}[{r}][{i}]")
                           for i, x in enumerate(term)]
            arrays.append(exact_matrix(values, rank, rows[name]).T)
        if ring in ("Z", "Z2") and not all(is_integral(a) for a in arrays):
            raise fail("factors", f"fractions with ring {ring}; accepted: integers, or ring Q")
        provenance = _provenance_from_json(data.get("provenance", {}), source)
        check_exact_cost((n, m, p), tuple(arrays), source)
        return cls((n, m, p), *arrays, ring=ring, provenance=provenance)

    @classmethod
    def from_json(cls, text: str, source: str = "<text>") -> Algorithm:
        """Parse and validate JSON text (see :meth:`from_dict`)."""
        return cls.from_dict(load_json(text, source), source)

    @classmethod
    def load(cls, path: str | Path) -> Algorithm:
        """Read and validate a JSON algorithm file (the file is not verified here)."""
        source = label(path)
        return cls.from_json(decode_text(read_bytes(path), source), source)

    # -- formulas ------------------------------------------------------------------------
    def formulas(self) -> str:
        """Human-readable algorithm: ``m1 = (a11 + a22) * (b11 + b22)`` ... ``c11 = m1 + ...``.

        Indices are 1-based; with a dimension above 9 they are written ``a[10,2]``.
        """
        n, m, p = self.shape
        wide = max(self.shape) > 9

        def entry(letter: str, row: int, col: int) -> str:
            return f"{letter}[{row + 1},{col + 1}]" if wide else f"{letter}{row + 1}{col + 1}"

        a_names = [entry("a", i, j) for i in range(n) for j in range(m)]
        b_names = [entry("b", j, k) for j in range(m) for k in range(p)]
        c_names = [entry("c", i, k) for i in range(n) for k in range(p)]
        lines = []
        for r in range(self.rank):
            left = _linear_combination(self.u[:, r], a_names)
            right = _linear_combination(self.v[:, r], b_names)
            lines.append(f"m{r + 1} = ({left}) * ({right})")
        m_names = [f"m{r + 1}" for r in range(self.rank)]
        for c_index, c_name in enumerate(c_names):
            lines.append(f"{c_name} = {_linear_combination(self.w[c_index, :], m_names)}")
        if self.ring == "Z2":
            lines.append("(all arithmetic modulo 2)")
        return "\n".join(lines)


def _linear_combination(coefficients: np.ndarray, names: list[str]) -> str:
    parts: list[str] = []
    for coefficient, name in zip(coefficients, names, strict=True):
        value = Fraction(coefficient)
        if value == 0:
            continue
        sign = "-" if value < 0 else "+"
        magnitude = abs(value)
        term = name if magnitude == 1 else f"{magnitude}*{name}"
        parts.append(f"{sign} {term}")
    if not parts:
        return "0"
    text = " ".join(parts)
    return text[2:] if text.startswith("+ ") else "-" + text[2:]


def _number_to_json(value: Any) -> int | str:
    fraction = Fraction(value)
    return int(fraction) if fraction.denominator == 1 else str(fraction)


def _brief(value: Any) -> str:
    """A short, one-line description of a parsed JSON value for an error message."""
    if isinstance(value, str):
        return show(value)
    if isinstance(value, dict):
        return f"an object with {len(value)} keys"
    if isinstance(value, list):
        return f"a list of {len(value)} items"
    if isinstance(value, int) and abs(value) >= 10**40:
        return "a very large integer"
    if value is None or isinstance(value, (bool, int, float)):
        return show(json.dumps(value))
    return type(value).__name__


def _number_from_json(value: Any, where: str) -> Number:
    """A JSON coefficient: an integer, an integral float such as ``2.0``, or a string ``p/q``."""
    if isinstance(value, bool) or not isinstance(value, (int, str, float)):
        raise AlgorithmFileError(f"{where}: {_brief(value)} is not a number; accepted: "
                                 f"{ACCEPTED_NUMBER} (fractions as strings 'p/q')")
    if isinstance(value, str):
        return parse_number(value, where)
    if isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            raise AlgorithmFileError(f"{where}: {_brief(value)} is a float; accepted: "
                                     f"{ACCEPTED_NUMBER} (fractions as strings 'p/q')")
        if abs(value) > MAX_COEFFICIENT:
            raise AlgorithmFileError(f"{where}: coefficient {_brief(value)} is too large; "
                                     f"accepted: {ACCEPTED_NUMBER}")
        value = int(value)
    return check_coefficient(value, where)


def _provenance_from_json(value: Any, source: str) -> dict[str, Any]:
    """Provenance: a flat object of at most 64 keys; values are strings (at most 4096
    characters), finite numbers, booleans or null; ``name`` is one printable line (<= 256)."""
    accepted = ("accepted: an object of at most 64 keys with strings (at most "
                f"{_MAX_PROVENANCE_STRING} characters), numbers, booleans or null as values")
    if not isinstance(value, dict) or len(value) > 64:
        raise AlgorithmFileError(f"{source}: provenance: {_brief(value)}; {accepted}")
    for key, item in value.items():
        where = f"{source}: provenance.{key if str(key).isidentifier() else show(str(key))}"
        if not _is_text(key, 100):
            raise AlgorithmFileError(f"{source}: provenance key {show(str(key))}; {accepted}")
        if isinstance(item, str):
            if not _is_text(item, _MAX_PROVENANCE_STRING):
                raise AlgorithmFileError(f"{where}: {_brief(item)}; {accepted}")
        elif isinstance(item, float) and not math.isfinite(item):
            raise AlgorithmFileError(f"{where}: {item}; {accepted}")
        elif not (item is None or isinstance(item, (bool, int, float))):
            raise AlgorithmFileError(f"{where}: {_brief(item)}; {accepted}")
    name = value.get("name")
    if name is not None and (not isinstance(name, str) or not name.isprintable()
                             or len(name) > _MAX_NAME):
        raise AlgorithmFileError(f"{source}: provenance.name: {_brief(name)}; accepted: a "
                                 f"one-line string of at most {_MAX_NAME} printable characters")
    return dict(value)


def _is_text(value: Any, limit: int) -> bool:
    if not isinstance(value, str) or len(value) > limit:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate from a JSON escape
        return False
    return True


class _JsonRefused(ValueError):
    """A JSON literal or key refused by the reader's hooks (see :func:`load_json`)."""

    def __init__(self, literal: str, message: str) -> None:
        super().__init__(message)
        self.literal = literal


def _json_int(text: str) -> int:
    if len(text) > 40:
        raise _JsonRefused(text, f"integer of {len(text)} digits; accepted: {ACCEPTED_NUMBER}")
    return int(text)


def _json_float(text: str) -> float:
    if len(text) > 40:
        raise _JsonRefused(text, f"number of {len(text)} characters; accepted: at most 40")
    return float(text)


def _json_decimal(text: str) -> Fraction:
    """A JSON number with a fraction part, exactly (``0.1`` is 1/10); no exponent."""
    if len(text) > 40:
        raise _JsonRefused(text, f"number of {len(text)} characters; accepted: at most 40")
    if "e" in text.lower():
        raise _JsonRefused(text, f"number {text} has an exponent; accepted: decimals such as "
                           "0.5 or fractions as strings 'p/q'")
    return Fraction(text)


def _json_constant(text: str) -> float:
    raise _JsonRefused(text, f"{text} is not a JSON number; accepted: finite numbers")


def _json_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _JsonRefused(f'"{key}"', f"key {show(key)} appears twice; accepted: each key "
                               "once")
        result[key] = value
    return result


def load_json(text: str, source: str, decimals: bool = False) -> Any:
    """``json.loads`` with bounded numbers, no NaN/Infinity, no repeated keys and a nesting
    limit (Python's recursion limit); every refusal is an :class:`AlgorithmFileError`.

    ``decimals``: numbers with a fraction part are read exactly as Fractions (no exponent).
    """
    try:
        return json.loads(text, parse_int=_json_int,
                          parse_float=_json_decimal if decimals else _json_float,
                          parse_constant=_json_constant, object_pairs_hook=_json_object)
    except _JsonRefused as error:
        line = text.count("\n", 0, max(text.find(error.literal), 0)) + 1
        raise AlgorithmFileError(f"{source}:{line}: {error}") from None
    except json.JSONDecodeError as error:
        raise AlgorithmFileError(f"{source}:{error.lineno}: not valid JSON ({error.msg} at "
                                 f"column {error.colno}); accepted: {FORMAT_NAME} JSON") from None
    except RecursionError:
        raise AlgorithmFileError(f"{source}: not valid JSON (nested too deeply); accepted: "
                                 f"{FORMAT_NAME} JSON, nested at most 4 levels") from None
