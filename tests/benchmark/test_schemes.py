"""Library schemes in any order of their sides (exact, same rank)."""

from __future__ import annotations

import pytest

from mlo_exp.benchmark.schemes import fitting_schemes, resolve_scheme


def test_library_names_in_any_order():
    scheme = resolve_scheme("alphatensor-4x2x4")
    assert scheme.shape == (4, 2, 4) and scheme.rank == 26 and scheme.name == "alphatensor-4x2x4"
    assert resolve_scheme("strassen").rank == 7
    with pytest.raises(KeyError):
        resolve_scheme("alphatensor-13x13x13")
    with pytest.raises(KeyError):
        resolve_scheme("alphatensor-2x2x13")


def test_fitting_schemes():
    names = ["strassen", "alphatensor-4x2x4", "alphatensor-3x3x3"]
    assert fitting_schemes((4096, 2048, 4096), names, padding=0.0) == ["strassen",
                                                                      "alphatensor-4x2x4"]
    assert "alphatensor-3x3x3" in fitting_schemes((4096, 2048, 4096), names)  # 0.05% padding


def test_products_of_names_are_verified_schemes():
    scheme = resolve_scheme("best-3x2x3*strassen")
    assert scheme.shape == (6, 4, 6) and scheme.rank == 15 * 7
    assert scheme.name == "best-3x2x3*strassen" and scheme.verify().ok
    with pytest.raises(KeyError):
        resolve_scheme("best-3x2x3*nonsense")
