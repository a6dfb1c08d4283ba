"""Reference data shipped with the package: best known ranks (and AlphaTensor's files).

``best_known_ranks.csv`` columns: ``n,m,p,alphatensor_Z,alphatensor_Z2,best_Z,best_Z_source,
best_Q,best_Q_source,best_Z2,best_Z2_source``; blank where unknown (``data/README.md``).
``best_Z`` is the best known rank with integer coefficients (valid over every ring),
``best_Q`` with rational ones, ``best_Z2`` modulo 2. Shapes are listed with ``n <= m <= p``;
the rank of ``<n,m,p>`` is invariant under permuting the three sizes, so lookups sort the
shape first.
"""

from __future__ import annotations

import csv
import functools
import os
from dataclasses import dataclass
from pathlib import Path

RING_COLUMNS = {"Z": "best_Z", "Q": "best_Q", "Z2": "best_Z2"}


def reference_data_dir() -> Path:
    """``$MLO_DATA_DIR`` when set, else the copy inside the package."""
    if os.environ.get("MLO_DATA_DIR"):
        return Path(os.environ["MLO_DATA_DIR"])
    return Path(__file__).resolve().parent / "data"


@dataclass(frozen=True)
class KnownRank:
    """One row of the table (ranks ``None`` where blank)."""

    shape: tuple[int, int, int]
    alphatensor_z: int | None
    alphatensor_z2: int | None
    best_z: int | None
    best_z_source: str
    best_q: int | None
    best_q_source: str
    best_z2: int | None
    best_z2_source: str

    def best(self, ring: str) -> int | None:
        """The best known rank over ``ring`` (see :func:`best_known_rank` for the fallbacks)."""
        if ring == "Z2":
            return (self.best_z2 or self.alphatensor_z2 or self.best_z
                    or self.alphatensor_z)
        if ring == "Q":
            return self.best_q or self.best_z or self.alphatensor_z
        return self.best_z or self.alphatensor_z

    def source(self, ring: str) -> str:
        """Where :meth:`best` comes from, as the table says it (``same as Z`` resolved)."""
        text = {"Z": self.best_z_source, "Q": self.best_q_source,
                "Z2": self.best_z2_source}[ring]
        if text.strip().lower() == "same as z" or (not text and ring != "Z"):
            text = self.best_z_source
        return text or "AlphaTensor 2022 file"

    # the old column names, kept for callers that read them
    @property
    def best_known(self) -> int | None:
        return self.best_z

    @property
    def best_known_z2(self) -> int | None:
        return self.best_z2


@functools.lru_cache(maxsize=4)
def known_ranks(path: Path | None = None) -> dict[tuple[int, int, int], KnownRank]:
    """All rows of the best-known-ranks table, keyed by the sorted shape."""
    path = path or reference_data_dir() / "best_known_ranks.csv"

    def number(text: str | None) -> int | None:
        return int(text) if text and text.strip() else None

    table = {}
    with open(path, newline="") as handle:
        for row in csv.DictReader(handle):
            shape = (int(row["n"]), int(row["m"]), int(row["p"]))
            table[tuple(sorted(shape))] = KnownRank(
                shape, number(row["alphatensor_Z"]), number(row["alphatensor_Z2"]),
                number(row["best_Z"]), row["best_Z_source"] or "",
                number(row["best_Q"]), row["best_Q_source"] or "",
                number(row["best_Z2"]), row["best_Z2_source"] or "",
            )
    return table


def best_known_rank(shape: tuple[int, int, int] | list[int], ring: str = "Z") -> int | None:
    """Best known rank for ``<n,m,p>`` (in any order) over ``ring``.

    ``Z`` reads ``best_Z`` (integer coefficients: ``<4,4,4>`` is 49), ``Q`` reads ``best_Q``
    (``<4,4,4>`` is 48) and ``Z2`` reads ``best_Z2`` (``<4,4,4>`` is 47). Where a column is
    blank it falls back to what holds over that ring too: ``Q`` and ``Z2`` to ``best_Z``, and
    every ring to the AlphaTensor file's rank. ``None`` when the shape is not in the table;
    a shape with a dimension 1 has rank ``n*m*p``, which this function also answers.
    """
    n, m, p = (int(x) for x in shape)
    if min(n, m, p) == 1:
        return n * m * p
    row = known_ranks().get(tuple(sorted((n, m, p))))
    if row is None:
        return None
    return row.best(ring if ring in RING_COLUMNS else "Z")
