"""The shipped schemes (``data/schemes``): each reads, verifies exactly and round-trips
through every writer; the packaged copies are the shared ones, unchanged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlo_exp.algorithms.catalogue import shipped_schemes_dir
from mlo_exp.algorithms.formats import WRITERS, format_algorithm, read_algorithms
from mlo_exp.algorithms.perminov import naive_additions
from mlo_exp.algorithms.reference import best_known_rank

SCHEMES = sorted((shipped_schemes_dir() / "perminov").glob("*.json"))
SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "schemes"


def test_every_shape_up_to_6_but_2x3x6_is_shipped():
    shapes = {tuple(json.loads(p.read_text())["n"]) for p in SCHEMES}
    wanted = {(n, m, p) for n in range(2, 7) for m in range(n, 7) for p in range(m, 7)}
    assert shapes == wanted - {(2, 3, 6)}
    assert len(SCHEMES) == 34
    assert (shipped_schemes_dir() / "perminov" / "LICENSE").read_text().startswith("MIT")


@pytest.mark.parametrize("path", SCHEMES, ids=[p.stem for p in SCHEMES])
def test_scheme_reads_verifies_and_round_trips_through_every_writer(path, tmp_path):
    (algorithm,) = read_algorithms(path)
    assert algorithm.ring == "Z" and algorithm.verify().ok
    assert algorithm.rank == best_known_rank(algorithm.shape, "Z")
    complexity = json.loads(path.read_text()).get("complexity")
    if isinstance(complexity, int):
        assert naive_additions(algorithm) == complexity
    for name, (_, suffix) in WRITERS.items():
        written = tmp_path / f"{name}{suffix}"
        written.write_text(format_algorithm(algorithm, name))
        (again,) = read_algorithms(written)  # recognised by content
        assert again.digest() == algorithm.digest(), name
        assert again.verify().ok


def test_packaged_copies_are_the_shared_ones():
    if not SHARED.is_dir():
        pytest.skip("no ../shared/data/schemes beside this checkout")
    for path in SCHEMES:
        assert path.read_bytes() == (SHARED / "perminov" / path.name).read_bytes()
