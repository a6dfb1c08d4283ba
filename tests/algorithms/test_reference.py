from mlo_exp.algorithms.reference import best_known_rank, known_ranks


def test_best_known_ranks_from_the_table():
    assert best_known_rank((2, 2, 2)) == 7
    assert best_known_rank((3, 3, 3)) == 23
    assert best_known_rank((2, 2, 3)) == 11
    assert best_known_rank((3, 2, 2)) == 11  # permutations share a rank
    assert best_known_rank((4, 4, 4), "Z2") == 47
    assert best_known_rank((1, 3, 4)) == 12
    assert best_known_rank((7, 7, 7)) is None


def test_table_is_complete():
    assert len(known_ranks()) >= 90
