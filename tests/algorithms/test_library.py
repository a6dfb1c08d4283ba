import pytest

from mlo_exp.algorithms.library import lookup, school, strassen


def test_school_rank_and_strassen_rank():
    assert school(2, 3, 4).rank == 24
    assert strassen().rank == 7
    assert strassen().verify().ok


def test_lookup_names():
    assert lookup("strassen").rank == 7
    assert lookup("school-2x3x4").shape == (2, 3, 4)
    assert lookup("alphatensor-4x4x4").rank == 49
    assert lookup("alphatensor-4x4x4-z2").rank == 47


@pytest.mark.parametrize("name", ["strasen", "school-2x2", "alphatensor-9x9x9x9", "school-0x1x1"])
def test_lookup_rejects_unknown_names_listing_what_is_accepted(name):
    with pytest.raises(KeyError, match="accepted: strassen, school-NxMxP"):
        lookup(name)


@pytest.mark.parametrize(("typed", "meant"), [("strasen", "strassen"),
                                              ("alphatensr-4x4x4", "alphatensor-4x4x4"),
                                              ("bset-3x3x3", "best-3x3x3")])
def test_a_misspelt_name_gets_a_suggestion(typed, meant):
    with pytest.raises(KeyError, match=f"did you mean '{meant}'"):
        lookup(typed)
    with pytest.raises(KeyError) as error:
        lookup("nothing-like-it")
    assert "did you mean" not in str(error.value)
