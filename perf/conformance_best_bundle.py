"""Build the package's bundles of best-known schemes (``data/schemes/best/best_<ring>.npz``).

For every shape with ``p <= 8`` of ``best_known_ranks.csv`` and each ring (``Z``; ``Q`` where
``best_Q < best_Z``; ``Z2`` where ``best_Z2 < best_Z``) that the package's other schemes do not
already answer at the table's rank, the schemes the public collection
dronperminov/FastMatrixMultiplication (MIT) lists at that rank in its ``schemes/status.json``
are read with our readers, in its order of preference (ternary ``ZT`` first, then ``Z``; fewest
additions first), and the first one that verifies exactly at the table's rank is bundled
(:mod:`mlo_exp.algorithms.bundle`). A cell with no such scheme is reported, never filled.

    python perf/conformance_best_bundle.py --collection DIR [--out FOLDER]

``--collection`` is a checkout (a folder holding ``schemes/``) or its bare git directory.
Writes the bundles and ``best/README.md`` (what each holds and where it came from).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from mlo_exp.algorithms.algorithm import AlgorithmFileError
from mlo_exp.algorithms.bundle import write_bundle
from mlo_exp.algorithms.catalogue import BEST, Catalogue, shipped_entries
from mlo_exp.algorithms.formats import read_algorithms
from mlo_exp.algorithms.reference import known_ranks, reference_data_dir
from mlo_exp.io import atomic_write_text

MAX_P = 8
COLLECTION = "dronperminov/FastMatrixMultiplication"
PREFERENCE = {"Z": ("ZT", "Z"), "Q": ("Q", "Z", "ZT"), "Z2": ()}


def collection_root(collection: Path, work: Path) -> tuple[Path, str]:
    """A folder holding ``schemes/`` (exported from ``HEAD`` for a bare git directory)."""
    if (collection / "HEAD").is_file() and (collection / "objects").is_dir():
        git = ["git", f"--git-dir={collection}"]
        commit = subprocess.run(git + ["rev-parse", "HEAD"], capture_output=True, text=True,
                                check=True).stdout.strip()
        status = json.loads(subprocess.run(git + ["show", "HEAD:schemes/status.json"],
                                           capture_output=True, check=True).stdout)
        wanted = sorted({scheme["source"] for key, cell in status.items()
                         if max(int(x) for x in key.split("x")) <= MAX_P
                         for schemes in cell["schemes"].values() for scheme in schemes})
        archive = subprocess.run(git + ["archive", "HEAD", "--", "schemes/status.json",
                                        *wanted], capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(work)], input=archive, check=True)
        return work, commit
    return collection, "checkout"


def targets() -> list[tuple[tuple[int, int, int], str, int, str]]:
    """(shape, ring, rank, publication) cells with p <= 8 the shipped schemes do not answer."""
    catalogue = Catalogue()
    for entry in shipped_entries():
        if not entry.source.startswith(BEST):  # the bundles being rebuilt do not count
            catalogue.add(entry)
    cells = []
    for row in known_ranks().values():
        if max(row.shape) > MAX_P or row.best_z is None:
            continue
        for ring, rank in (("Z", row.best_z), ("Q", row.best_q), ("Z2", row.best_z2)):
            if rank is None or (ring != "Z" and rank >= row.best_z):
                continue  # the integer scheme answers this ring at the table's rank
            have = catalogue.rank(row.shape, ring)
            if have is None or have > rank:
                cells.append((row.shape, ring, rank, row.source(ring)))
    return cells


def choose(root: Path, status: dict, shape: tuple[int, int, int], ring: str,
           rank: int) -> tuple[object, str] | tuple[None, str]:
    """The first scheme of the collection that verifies at ``rank`` over ``ring``."""
    cell = status.get("x".join(map(str, sorted(shape))), {})
    tried = []
    for theirs in PREFERENCE[ring]:
        for scheme in sorted(cell.get("schemes", {}).get(theirs, []),
                             key=lambda s: s.get("complexity", 0)):
            if scheme["rank"] != rank:
                continue
            path = root / scheme["source"]
            try:
                (algorithm,) = read_algorithms(path)
            except (AlgorithmFileError, ValueError) as error:
                tried.append(f"{scheme['source']}: {error}")
                continue
            wanted_ring = algorithm.ring in (("Z",) if ring == "Z" else (ring, "Z"))
            if algorithm.rank == rank and wanted_ring and algorithm.verify().ok:
                return algorithm, scheme["source"]
            tried.append(f"{scheme['source']}: rank {algorithm.rank} over {algorithm.ring}")
    return None, "; ".join(tried) or f"the collection lists no {ring} scheme of rank {rank}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--collection", type=Path, required=True)
    parser.add_argument("--out", type=Path,
                        default=reference_data_dir() / "schemes" / "best")
    args = parser.parse_args(argv)
    chosen: dict[str, list] = {"Z": [], "Q": [], "Z2": []}
    missing = []
    with tempfile.TemporaryDirectory() as work:
        root, commit = collection_root(args.collection, Path(work))
        status = json.loads((root / "schemes" / "status.json").read_text())
        for shape, ring, rank, publication in sorted(targets()):
            algorithm, file = choose(root, status, shape, ring, rank)
            label = f"<{','.join(map(str, shape))}> {ring} rank {rank}"
            if algorithm is None:
                missing.append(f"{label}: {file}")
                print(f"missing {label}: {file}", flush=True)
                continue
            source = f"{publication}; via {COLLECTION} (MIT)"
            chosen[ring].append((algorithm, source, f"{file} @ {commit[:12]}"))
            print(f"{label}: {file}", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    lines = ["# Best-known schemes, shapes up to 8 (bundles)", "",
             f"Built by `perf/conformance_best_bundle.py` from {COLLECTION} (MIT, commit "
             f"`{commit}`; `LICENSE` beside this file, Copyright (c) 2025 Andrew Perminov) "
             "against `../../best_known_ranks.csv`: one exactly verified scheme for every "
             "(shape, ring) cell with p <= 8 that the package's other schemes "
             "(`../perminov/`, `../../alphatensor/`) do not answer at the table's rank. Each "
             "scheme keeps the publication the table names and the collection file it was "
             "read from (`known/tensor/*_tensor.mpl` are the FMM catalogue's files, Sedoglavic "
             "et al., as the collection mirrors them). Format: `mlo_exp.algorithms.bundle` "
             "(npz, no pickle, our convention: C not transposed).", ""]
    for ring, schemes in chosen.items():
        if not schemes:
            continue
        index = write_bundle(args.out / f"best_{ring}.npz", schemes)
        lines += [f"## best_{ring}.npz ({len(index)} schemes)", "",
                  "| shape | rank | ring | source | file |", "|---|---:|---|---|---|"]
        lines += [f"| {'x'.join(map(str, item['shape']))} | {item['rank']} | {item['ring']} | "
                  f"{item['source']} | `{item['file']}` |" for item in index]
        lines.append("")
    lines += ["## Not found", ""] + ([f"- {line}" for line in missing] or ["(none)"])
    atomic_write_text(args.out / "README.md", "\n".join(lines) + "\n")
    print(f"{sum(map(len, chosen.values()))} schemes bundled, {len(missing)} cells missing")
    return 0


if __name__ == "__main__":
    sys.exit(main())
