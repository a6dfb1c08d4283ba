from pathlib import Path

import pytest

from mlo_exp.algorithms.reference import best_known_rank, known_ranks, reference_data_dir

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "best_known_ranks.csv"


def test_best_known_ranks_from_the_table():
    assert best_known_rank((2, 2, 2)) == 7
    assert best_known_rank((3, 3, 3)) == 23
    assert best_known_rank((2, 2, 3)) == 11
    assert best_known_rank((3, 2, 2)) == 11  # permutations share a rank
    assert best_known_rank((4, 4, 4), "Z2") == 47
    assert best_known_rank((1, 3, 4)) == 12
    assert best_known_rank((7, 7, 7)) == 250 and best_known_rank((7, 7, 7), "Q") == 249
    assert best_known_rank((3, 4, 11)) == 101


def test_each_ring_reads_its_own_column():
    assert best_known_rank((4, 4, 4), "Z") == 49  # no integer 48 is known
    assert best_known_rank((4, 4, 4), "Q") == 48
    assert best_known_rank((4, 4, 4), "Z2") == 47
    assert best_known_rank((6, 3, 3), "Q") == 40 and best_known_rank((3, 6, 3), "Z") == 42
    assert best_known_rank((5, 4, 4), "Z2") == 60 and best_known_rank((4, 5, 4)) == 61
    assert best_known_rank((6, 3, 2)) == 30  # known, though no scheme is shipped
    assert best_known_rank((2, 2, 7)) == 25  # only AlphaTensor's file: the fallback
    row = known_ranks()[(4, 4, 4)]
    assert row.source("Z").startswith("Strassen squared")
    assert row.source("Q").startswith("Dumas-Pernet-Sedoglavic")
    assert known_ranks()[(3, 3, 3)].source("Q") == "Laderman 1976"  # "same as Z" resolved


def test_table_is_complete():
    assert len(known_ranks()) >= 90
    for shape, row in known_ranks().items():
        if max(shape) <= 6:
            assert row.best_z and row.best_q and row.best_z2, shape
            assert row.best_z2 <= row.best_z and row.best_q <= row.best_z, shape


def test_packaged_table_is_the_shared_one():
    if not SHARED.is_file():
        pytest.skip("no ../shared/data beside this checkout")
    assert (reference_data_dir() / "best_known_ranks.csv").read_bytes() == SHARED.read_bytes()
