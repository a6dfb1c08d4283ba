"""The catalogue: the best scheme known to the project for each shape and ring.

Three sources, in this order of precedence:

* ``data/schemes/perminov/``: one verified scheme at the best known integer rank for every
  shape up to 6 but ``<2,3,6>`` (Perminov's catalogue, MIT; ``data/schemes/README.md``);
* ``data/schemes/best/best_<ring>.npz``: the rest of the best known schemes for shapes up to
  8 (integer; rational where better), from the same collection, compressed
  (:mod:`mlo_exp.algorithms.bundle`; ``data/schemes/best/README.md``);
* ``data/alphatensor/``: AlphaTensor's 2022 factorizations (CC BY 4.0; ``data/README.md``);
* the user catalogue folder (:func:`user_catalogue_dir`: ``$MLO_CATALOGUE``, else
  ``<outputs root>/catalogue``), where ``mlo-algorithms import FILE --into-catalogue`` writes
  verified schemes (our JSON, written atomically); any readable scheme file placed there counts
  (each is verified exactly when loaded; one that is not correct is skipped with a warning).

A scheme met twice (equal :func:`~mlo_exp.algorithms.equivalence.canonical_key`: the same
terms up to order, scaling and rotation/transposition) is counted once. A scheme over ``Z`` is
valid over ``Q`` and modulo 2 too, so it competes in every ring; one over ``Q`` only in
``Q``, one modulo 2 only in ``Z2``. Among the schemes of the lowest rank the one with the
fewest additions wins. Schemes of ``<n,m,p>`` answer every permutation of the shape (turned
by :func:`~mlo_exp.algorithms.equivalence.permute_shape`).

Agents never import this module (no hand-feeding).
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from mlo_exp.algorithms.algorithm import Algorithm, AlgorithmFileError
from mlo_exp.algorithms.alphatensor import member_algorithm, read_members
from mlo_exp.algorithms.bundle import read_index, read_member
from mlo_exp.algorithms.equivalence import canonical_key, permute_shape
from mlo_exp.algorithms.formats import read_algorithms
from mlo_exp.algorithms.parsing import label, read_bytes
from mlo_exp.algorithms.perminov import naive_additions
from mlo_exp.algorithms.reference import best_known_rank, known_ranks, reference_data_dir
from mlo_exp.io import atomic_write_text
from mlo_exp.run_files import outputs_root

RINGS = ("Z", "Q", "Z2")
VALID_IN = {"Z": ("Z",), "Q": ("Z", "Q"), "Z2": ("Z", "Z2")}  # ring asked -> rings that hold
PERMINOV = "Perminov catalogue, MIT (data/schemes)"
ALPHATENSOR = "AlphaTensor 2022, CC BY 4.0 (data/alphatensor)"
BEST = "Perminov collection, MIT (data/schemes/best)"


def user_catalogue_dir() -> Path:
    """``$MLO_CATALOGUE`` when set and not empty, else ``<outputs root>/catalogue``."""
    return Path(os.environ.get("MLO_CATALOGUE") or outputs_root() / "catalogue")


def shipped_schemes_dir() -> Path:
    return reference_data_dir() / "schemes"


@dataclass
class Entry:
    """One scheme of the catalogue and where it came from.

    Shape, rank and ring are known up front; the algorithm itself may be read only when it
    is needed (``loader``: AlphaTensor's large members cost seconds to convert exactly).
    """

    source: str
    origin: str  # the file (and member) it was read from
    shape: tuple[int, int, int]
    rank: int
    ring: str
    loader: Callable[[], Algorithm] | None = field(default=None, repr=False)
    _algorithm: Algorithm | None = field(default=None, repr=False)
    _key: str | None = field(default=None, repr=False)

    @classmethod
    def of(cls, algorithm: Algorithm, source: str, origin: str) -> Entry:
        return cls(source, origin, algorithm.shape, algorithm.rank, algorithm.ring,
                   _algorithm=algorithm)

    @property
    def algorithm(self) -> Algorithm:
        if self._algorithm is None:
            assert self.loader is not None
            self._algorithm = self.loader()
        return self._algorithm

    @property
    def sorted_shape(self) -> tuple[int, int, int]:
        return tuple(sorted(self.shape))  # type: ignore[return-value]

    @property
    def key(self) -> str:
        if self._key is None:
            self._key = canonical_key(self.algorithm)
        return self._key

    def additions(self) -> int:
        """Additions to evaluate it: its plan's when it has one, else the naive count."""
        plan = self.algorithm.plan
        return plan.additions() if plan is not None else naive_additions(self.algorithm)

    def coefficients(self) -> str:
        """The set of coefficients it uses, e.g. ``{-1, 0, 1}``."""
        values: set[Fraction] = set()
        for factor in (self.algorithm.u, self.algorithm.v, self.algorithm.w):
            values.update(Fraction(x) for x in np.unique(np.asarray(factor, dtype=object)))
        return "{" + ", ".join(str(x) for x in sorted(values)) + "}"


@dataclass
class Catalogue:
    """Entries without duplicates; ``duplicates`` counts the schemes met again."""

    entries: list[Entry] = field(default_factory=list)
    duplicates: list[tuple[Entry, Entry]] = field(default_factory=list)  # (kept, dropped)
    warnings: list[str] = field(default_factory=list)

    def add(self, entry: Entry) -> Entry | None:
        """Add ``entry`` unless an equal scheme is there; returns the one already there."""
        for other in self.entries:
            if (other.sorted_shape == entry.sorted_shape and other.rank == entry.rank
                    and (other.ring == "Z2") == (entry.ring == "Z2") and other.key == entry.key):
                self.duplicates.append((other, entry))
                return other
        self.entries.append(entry)
        return None

    def candidates(self, shape: tuple[int, int, int], ring: str = "Z") -> list[Entry]:
        """Entries for ``shape`` (any order) valid over ``ring``, best first."""
        wanted = tuple(sorted(shape))
        found = [e for e in self.entries
                 if e.sorted_shape == wanted and e.ring in VALID_IN[ring]]
        lowest = min((e.rank for e in found), default=0)
        return sorted(found, key=lambda e: (e.rank, e.additions() if e.rank == lowest else 0))

    def best(self, shape: tuple[int, int, int], ring: str = "Z") -> Entry | None:
        """The best entry for ``shape`` over ``ring``, turned to ``shape``'s order and
        verified exactly over ``ring``; ``None`` when the catalogue has none."""
        for entry in self.candidates(shape, ring):
            turned = permute_shape(entry.algorithm, shape)
            algorithm = Algorithm(turned.shape, turned.u, turned.v, turned.w, turned.ring,
                                  dict(turned.provenance), plan=turned.plan)
            if algorithm.ring != ring and entry.ring == "Z" and ring == "Z2":
                check = Algorithm(algorithm.shape, algorithm.u, algorithm.v, algorithm.w,
                                  "Z2").verify()
            else:
                check = algorithm.verify()
            if check.ok:
                found = Entry.of(algorithm, entry.source, entry.origin)
                found._key = entry._key
                return found
            self.warnings.append(f"{entry.origin}: not correct over {ring}, skipped")
        return None

    def rank(self, shape: tuple[int, int, int], ring: str) -> int | None:
        wanted = tuple(sorted(shape))
        return min((e.rank for e in self.entries
                    if e.sorted_shape == wanted and e.ring in VALID_IN[ring]), default=None)

    def shapes(self) -> list[tuple[int, int, int]]:
        return sorted({e.sorted_shape for e in self.entries})


def shipped_entries() -> list[Entry]:
    """The schemes in the package: Perminov's, the best-known bundles, then AlphaTensor's
    (exact, then modulo 2)."""
    entries = []
    folder = shipped_schemes_dir()
    for path in sorted(folder.glob("perminov/*.json")) if folder.is_dir() else []:
        for algorithm in read_algorithms(path):
            algorithm.provenance["source"] = PERMINOV
            entries.append(Entry.of(algorithm, PERMINOV, str(path.relative_to(folder.parent))))
    for path in sorted((folder / "best").glob("best_*.npz")) if folder.is_dir() else []:
        for item in read_index(path):
            entries.append(Entry(
                f"{BEST}: {item['source']}", f"schemes/best/{path.name} {item['file']}",
                tuple(item["shape"]), item["rank"], item["ring"],  # type: ignore[arg-type]
                loader=functools.partial(read_member, path, item), _key=item["key"]))
    at = reference_data_dir() / "alphatensor"
    for name, ring in (("factorizations_r.npz", "Q"), ("factorizations_f2.npz", "Z2")):
        path = at / name
        if not path.is_file():
            continue
        members = read_members(read_bytes(path), label(path))
        for key in sorted(members):
            value = members[key]
            integral = all(np.all(np.asarray(x) == np.round(np.asarray(x))) for x in value)
            entries.append(Entry(
                ALPHATENSOR, f"alphatensor/{name} {','.join(map(str, key))}", key,
                int(value[0].shape[1]), "Z2" if ring == "Z2" else "Z" if integral else "Q",
                loader=functools.partial(member_algorithm, key, value, label(path), ring,
                                         name)))
    return entries


def user_entries(folder: Path | None = None) -> tuple[list[Entry], list[str]]:
    """Every scheme file of the user catalogue folder, verified; unreadable or wrong files
    are skipped with a warning line each."""
    folder = folder or user_catalogue_dir()
    entries, warnings = [], []
    if not folder.is_dir():
        return entries, warnings
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")):
        try:
            found = read_algorithms(path)
        except AlgorithmFileError as error:
            warnings.append(f"skipping {error}")
            continue
        for algorithm in found:
            if not algorithm.verify().ok:
                warnings.append(f"skipping {label(path)}: {algorithm.name} is not correct")
                continue
            source = str(algorithm.provenance.get("source") or "user")
            entries.append(Entry.of(algorithm, f"user catalogue: {source}", label(path)))
    return entries, warnings


@functools.lru_cache(maxsize=1)
def _shipped() -> tuple[Entry, ...]:
    return tuple(shipped_entries())


def load_catalogue(user_folder: Path | None = None, shipped: bool = True) -> Catalogue:
    """The catalogue: shipped schemes, then the user's (see module docstring)."""
    catalogue = Catalogue()
    for entry in _shipped() if shipped else ():
        catalogue.add(entry)
    entries, warnings = user_entries(user_folder)
    catalogue.warnings += warnings
    for entry in entries:
        catalogue.add(entry)
    return catalogue


def add_to_catalogue(algorithm: Algorithm, folder: Path | None = None,
                     catalogue: Catalogue | None = None) -> tuple[Path | None, Entry | None]:
    """Write a verified ``algorithm`` into the user catalogue (atomically), unless the
    catalogue already holds the same scheme: then ``(None, that entry)``."""
    folder = folder or user_catalogue_dir()
    if not algorithm.verify().ok:
        raise ValueError(f"{algorithm.name} is not correct over {algorithm.ring}")
    catalogue = catalogue if catalogue is not None else load_catalogue(folder)
    entry = Entry.of(algorithm, "user", "")
    existing = catalogue.add(entry)
    if existing is not None:
        return None, existing
    n, m, p = algorithm.shape
    algorithm.provenance["canonical_key"] = entry.key
    algorithm.provenance.setdefault("verified", f"exact over {algorithm.ring}")
    stem = f"{n}x{m}x{p}-rank{algorithm.rank}-{algorithm.ring.lower()}-{entry.key[:12]}"
    path = folder / f"{stem}.json"
    atomic_write_text(path, _json(algorithm))
    entry.origin = label(path)
    return path, None


def _json(algorithm: Algorithm) -> str:
    import json

    return json.dumps(algorithm.to_dict(), indent=1) + "\n"


# --- the table -------------------------------------------------------------------------------
def table_rows(catalogue: Catalogue, max_dim: int | None = 6) -> list[tuple]:
    """``(shape, [(ring, catalogue rank, best known rank)])`` for every shape of the
    best-known table (up to ``max_dim``) and of the catalogue."""
    shapes = set(catalogue.shapes()) | set(known_ranks())
    if max_dim is not None:
        shapes = {s for s in shapes if max(s) <= max_dim}
    rows = []
    for shape in sorted(shapes):
        cells = [(ring, catalogue.rank(shape, ring), best_known_rank(shape, ring))
                 for ring in RINGS]
        rows.append((shape, cells))
    return rows


def format_table(catalogue: Catalogue, max_dim: int | None = 6) -> str:
    """Shapes x rings: catalogue rank / best known rank; ``+k`` marks a gap of k, ``none``
    a shape the catalogue lacks."""
    lines = [f"{'shape':<9}" + "".join(f"{ring + ' (cat/best)':<18}" for ring in RINGS)]
    gaps = missing = 0
    for shape, cells in table_rows(catalogue, max_dim):
        text = f"{'x'.join(map(str, shape)):<9}"
        for _, have, best in cells:
            if have is None:
                cell = f"none/{best if best is not None else '-'}"
                missing += 1
            else:
                cell = f"{have}/{best if best is not None else '-'}"
                if best is not None and have > best:
                    cell += f"  +{have - best}"
                    gaps += 1
            text += f"{cell:<18}"
        lines.append(text.rstrip())
    lines.append(f"({gaps} cells above the best known rank (+k), {missing} with no scheme "
                 "(none); a Z scheme counts for Q and Z2 too)")
    return "\n".join(lines)


def warn(lines: list[str]) -> None:
    for line in lines:
        print(line, file=sys.stderr)
