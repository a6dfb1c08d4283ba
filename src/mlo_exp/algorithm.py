"""Algorithms: a verified decomposition of ``T<n,m,p>`` plus where it came from.

Factor layout follows :mod:`mlo_exp.tensor`: ``u`` is ``(n*m, R)``, ``v`` is ``(m*p, R)``,
``w`` is ``(n*p, R)``; column ``r`` is the ``r``-th multiplication. Coefficients are exact:
int64 arrays, or object arrays of :class:`fractions.Fraction` for rational algorithms.

File format (``mlo-exp/algorithm``, version 1), JSON::

    {"format": "mlo-exp/algorithm", "version": 1,
     "shape": [n, m, p], "rank": R, "ring": "Z" | "Q" | "Z2",
     "convention": "T[i*m+j, j*p+k, i*p+k]",
     "factors": {"u": [[...nm numbers...] x R], "v": [...], "w": [...]},
     "provenance": {...free-form strings/numbers...}}

``factors.u[r]`` is term ``r``'s coefficient vector over A's entries in row-major order
(likewise ``v`` over B and ``w`` over C). Numbers are JSON integers, or strings ``"p/q"``
for fractions.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from mlo_exp.io import atomic_write_text
from mlo_exp.tensor import RINGS, Verification, is_integral, to_exact, verify

FORMAT_NAME = "mlo-exp/algorithm"
FORMAT_VERSION = 1
CONVENTION = "T[i*m+j, j*p+k, i*p+k]"


class AlgorithmFileError(ValueError):
    """An algorithm file that cannot be read: names the file, the field and what is accepted."""


@dataclass
class Algorithm:
    """A rank-``R`` bilinear algorithm for ``<n,m,p>`` (see module docstring for layout)."""

    shape: tuple[int, int, int]
    u: np.ndarray
    v: np.ndarray
    w: np.ndarray
    ring: str = "Z"
    provenance: dict[str, Any] = field(default_factory=dict)

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
    def from_dict(cls, data: Any, source: str = "<dict>") -> Algorithm:
        """Build from a parsed file, checking every field; raises :class:`AlgorithmFileError`."""

        def fail(message: str) -> AlgorithmFileError:
            return AlgorithmFileError(f"{source}: {message}")

        if not isinstance(data, dict):
            raise fail(f"expected a JSON object, got {type(data).__name__}")
        if data.get("format") != FORMAT_NAME:
            raise fail(f"format={data.get('format')!r}; accepted: {FORMAT_NAME!r}")
        if data.get("version") != FORMAT_VERSION:
            raise fail(f"version={data.get('version')!r}; accepted: {FORMAT_VERSION}")
        shape = data.get("shape")
        if (not isinstance(shape, list) or len(shape) != 3
                or not all(type(x) is int and x >= 1 for x in shape)):
            raise fail(f"shape={shape!r}; accepted: three integers >= 1, e.g. [2, 2, 2]")
        ring = data.get("ring", "Z")
        if ring not in RINGS:
            raise fail(f"ring={ring!r}; accepted: {', '.join(RINGS)}")
        convention = data.get("convention", CONVENTION)
        if convention != CONVENTION:
            raise fail(f"convention={convention!r}; accepted: {CONVENTION!r}")
        factors = data.get("factors")
        if not isinstance(factors, dict) or set(factors) != {"u", "v", "w"}:
            raise fail("factors must be an object with exactly the keys u, v, w")
        n, m, p = shape
        arrays = []
        for name, rows in (("u", n * m), ("v", m * p), ("w", n * p)):
            terms = factors[name]
            if not isinstance(terms, list) or not all(
                isinstance(t, list) and len(t) == rows for t in terms
            ):
                raise fail(f"factors.{name} must be a list of terms, each a list of {rows} numbers")
            try:
                values = [[_number_from_json(x) for x in term] for term in terms]
            except (ValueError, ZeroDivisionError, TypeError) as error:
                raise fail(f"factors.{name}: {error}") from None
            arrays.append(to_exact(np.array(values, dtype=object).reshape(len(terms), rows).T))
        ranks = {a.shape[1] for a in arrays}
        if len(ranks) != 1:
            raise fail(f"factors u, v, w have different numbers of terms: {sorted(ranks)}")
        if "rank" in data and data["rank"] != arrays[0].shape[1]:
            raise fail(f"rank={data['rank']!r} but the factors hold {arrays[0].shape[1]} terms")
        if ring in ("Z", "Z2") and not all(is_integral(a) for a in arrays):
            raise fail(f"ring {ring} needs integer coefficients; fractions need ring Q")
        provenance = data.get("provenance", {})
        if not isinstance(provenance, dict):
            raise fail("provenance must be an object")
        return cls((n, m, p), *arrays, ring=ring, provenance=provenance)

    @classmethod
    def load(cls, path: str | Path) -> Algorithm:
        """Read and validate a JSON algorithm file (the file is not verified here)."""
        path = Path(path)
        try:
            text = path.read_text()
        except OSError as error:
            raise AlgorithmFileError(f"{path}: cannot read: {error.strerror}") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise AlgorithmFileError(f"{path}: not valid JSON ({error})") from None
        return cls.from_dict(data, source=str(path))

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


def _number_from_json(value: Any) -> Fraction:
    if isinstance(value, bool) or not isinstance(value, (int, str, float)):
        raise TypeError(f"coefficient {value!r} is not a number; accepted: integers or 'p/q'")
    if isinstance(value, float) and not value.is_integer():
        raise ValueError(f"coefficient {value!r} is a float; write fractions as 'p/q' strings")
    return Fraction(value)
