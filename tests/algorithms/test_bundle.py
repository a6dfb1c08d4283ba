"""Scheme bundles (compressed .npz of verified schemes) and the shipped best-known bundles."""

from __future__ import annotations

import io
import json
from fractions import Fraction

import numpy as np
import pytest

from mlo_exp.algorithms.algorithm import Algorithm, AlgorithmFileError
from mlo_exp.algorithms.bundle import is_bundle, read_index, read_member, write_bundle
from mlo_exp.algorithms.catalogue import load_catalogue
from mlo_exp.algorithms.library import strassen
from mlo_exp.algorithms.reference import known_ranks, reference_data_dir

BEST = reference_data_dir() / "schemes" / "best"
# cells of the table the public sources here hold no scheme for (modulo-2 records, 2022-24)
NOT_FOUND = {((4, 4, 5), "Z2"): 60, ((4, 5, 5), "Z2"): 73, ((4, 5, 6), "Z2"): 89}


def halved() -> Algorithm:
    s = strassen()
    return Algorithm(s.shape, s.u.astype(object) * Fraction(1, 2), s.v, s.w * 2, "Q")


def test_a_bundle_round_trips_exactly_and_lists_without_reading_members(tmp_path):
    path = tmp_path / "b.npz"
    index = write_bundle(path, [(strassen(), "Strassen 1969", "a.json"),
                                (halved(), "halved", "b.json")])
    assert is_bundle(path) and read_index(path) == index
    assert [item["ring"] for item in index] == ["Z", "Q"]
    for item, original in zip(index, (strassen(), halved()), strict=True):
        back = read_member(path, item)
        assert back.digest() == original.digest() and back.verify().ok
        assert back.provenance["file"] == item["file"]


def test_a_wrong_scheme_is_never_bundled(tmp_path):
    s = strassen()
    w = s.w.copy()
    w[0, 0] += 1
    with pytest.raises(ValueError, match="not correct"):
        write_bundle(tmp_path / "b.npz", [(Algorithm(s.shape, s.u, s.v, w, "Z"), "x", "x")])
    assert not (tmp_path / "b.npz").exists()


def test_a_bundle_with_a_bad_index_is_refused(tmp_path):
    path = tmp_path / "b.npz"
    buffer = io.BytesIO()
    np.savez(buffer, index=np.frombuffer(json.dumps([{"member": "s0"}]).encode(), np.uint8))
    path.write_bytes(buffer.getvalue())
    with pytest.raises(AlgorithmFileError, match="index entries need exactly the keys"):
        read_index(path)


def test_shipped_bundles_are_small_and_licensed():
    sizes = [p.stat().st_size for p in BEST.glob("best_*.npz")]
    assert len(sizes) == 2 and sum(sizes) < 400_000
    assert (BEST / "LICENSE").read_text().startswith("MIT License")
    assert "dronperminov/FastMatrixMultiplication" in (BEST / "README.md").read_text()


def test_best_answers_every_shape_up_to_8_at_the_tables_rank_for_each_ring(tmp_path):
    """Every row of best_known_ranks.csv with p <= 8, each ring: the catalogue's best scheme,
    turned to the row's shape and verified exactly, has the table's rank (a Z scheme answers
    Q and Z2 where their ranks are no better), except the cells no public source here holds."""
    catalogue = load_catalogue(user_folder=tmp_path / "empty")
    missing = {}
    rows = [row for row in known_ranks().values() if max(row.shape) <= 8]
    assert len(rows) == 84
    for row in rows:
        for ring in ("Z", "Q", "Z2"):
            wanted = row.best(ring)
            entry = catalogue.best(row.shape, ring)
            assert entry is not None and entry.algorithm.shape == row.shape
            assert entry.rank >= wanted
            if entry.rank > wanted:
                missing[row.shape, ring] = wanted
    assert missing == NOT_FOUND and not catalogue.warnings
