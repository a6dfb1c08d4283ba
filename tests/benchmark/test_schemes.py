"""Library schemes in any order of their sides (exact, same rank)."""

from __future__ import annotations

import pytest

from mlo_exp.algorithms.library import lookup
from mlo_exp.benchmark.schemes import fitting_schemes, reshape_to, resolve_scheme, rotate, transpose


@pytest.mark.parametrize("shape", [(2, 3, 4), (2, 4, 3), (3, 2, 4), (3, 4, 2), (4, 2, 3),
                                   (4, 3, 2)])
def test_every_order_of_the_sides_is_exact(shape):
    scheme = reshape_to(lookup("school-2x3x4"), shape)
    assert scheme.shape == shape and scheme.rank == 24 and scheme.verify().ok


def test_transpose_and_rotate():
    base = lookup("alphatensor-2x4x4")
    assert transpose(base).shape == (4, 4, 2) and rotate(base).shape == (4, 4, 2)
    assert rotate(rotate(rotate(base))).shape == base.shape


def test_library_names_in_any_order():
    scheme = resolve_scheme("alphatensor-4x2x4")
    assert scheme.shape == (4, 2, 4) and scheme.rank == 26 and scheme.name == "alphatensor-4x2x4"
    assert resolve_scheme("strassen").rank == 7
    with pytest.raises(KeyError):
        resolve_scheme("alphatensor-13x13x13")
    with pytest.raises(ValueError, match="no reordering"):
        reshape_to(lookup("strassen"), (2, 2, 3))


def test_fitting_schemes():
    names = ["strassen", "alphatensor-4x2x4", "alphatensor-3x3x3"]
    assert fitting_schemes((4096, 2048, 4096), names, padding=0.0) == ["strassen",
                                                                      "alphatensor-4x2x4"]
    assert "alphatensor-3x3x3" in fitting_schemes((4096, 2048, 4096), names)  # 0.05% padding
