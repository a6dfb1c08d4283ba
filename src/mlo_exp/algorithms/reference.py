"""Reference data shipped with the package: best known ranks (and AlphaTensor's files).

``best_known_ranks.csv`` columns: ``n,m,p,alphatensor_Z,alphatensor_Z2,best_known,
best_known_source,best_known_Z2,best_known_Z2_source``; blank where unknown. Shapes are
listed with ``n <= m <= p``; the rank of ``<n,m,p>`` is invariant under permuting the three
sizes, so lookups sort the shape first.
"""

from __future__ import annotations

import csv
import functools
import os
from dataclasses import dataclass
from pathlib import Path


def reference_data_dir() -> Path:
    """``$MLO_DATA_DIR`` when set, else the copy inside the package."""
    if os.environ.get("MLO_DATA_DIR"):
        return Path(os.environ["MLO_DATA_DIR"])
    return Path(__file__).resolve().parent / "data"


@dataclass(frozen=True)
class KnownRank:
    shape: tuple[int, int, int]
    alphatensor_z: int | None
    alphatensor_z2: int | None
    best_known: int | None
    best_known_source: str
    best_known_z2: int | None
    best_known_z2_source: str


@functools.lru_cache(maxsize=4)
def known_ranks(path: Path | None = None) -> dict[tuple[int, int, int], KnownRank]:
    """All rows of the best-known-ranks table, keyed by the sorted shape."""
    path = path or reference_data_dir() / "best_known_ranks.csv"

    def number(text: str) -> int | None:
        return int(text) if text.strip() else None

    table = {}
    with open(path, newline="") as handle:
        for row in csv.DictReader(handle):
            shape = (int(row["n"]), int(row["m"]), int(row["p"]))
            table[tuple(sorted(shape))] = KnownRank(
                shape, number(row["alphatensor_Z"]), number(row["alphatensor_Z2"]),
                number(row["best_known"]), row["best_known_source"],
                number(row["best_known_Z2"]), row["best_known_Z2_source"],
            )
    return table


def best_known_rank(shape: tuple[int, int, int] | list[int], ring: str = "Z") -> int | None:
    """Best known rank for ``<n,m,p>`` over ``ring`` (``Z2`` uses the modulo-2 column).

    Falls back to the AlphaTensor file's rank where the best-known column is blank; ``None``
    when the shape is not in the table. ``<1,m,p>`` and the like are not listed: their rank is
    ``n*m*p`` only when a dimension is 1, which this function also answers.
    """
    n, m, p = (int(x) for x in shape)
    if min(n, m, p) == 1:
        return n * m * p
    row = known_ranks().get(tuple(sorted((n, m, p))))
    if row is None:
        return None
    if ring == "Z2":
        return row.best_known_z2 or row.alphatensor_z2 or row.best_known or row.alphatensor_z
    return row.best_known or row.alphatensor_z
