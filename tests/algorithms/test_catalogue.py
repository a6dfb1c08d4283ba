"""The catalogue: the best scheme for every shape up to 6, the user folder, duplicates,
library names, and ``mlo-algorithms best / list / import --into-catalogue``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mlo_exp.algorithms.algorithm import Algorithm
from mlo_exp.algorithms.catalogue import (
    add_to_catalogue,
    format_table,
    load_catalogue,
    user_catalogue_dir,
)
from mlo_exp.algorithms.equivalence import permute_shape
from mlo_exp.algorithms.fliptext import format_products
from mlo_exp.algorithms.library import alphatensor, lookup, school, strassen
from mlo_exp.algorithms.reference import best_known_rank

CLI = str(Path(sys.executable).with_name("mlo-algorithms"))
SHAPES = [(n, m, p) for n in range(2, 7) for m in range(n, 7) for p in range(m, 7)]


def cli(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    import os

    return subprocess.run([CLI, *args], capture_output=True, text=True, timeout=60, cwd=cwd,
                          env={**os.environ, **(env or {})})


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory):
    return load_catalogue(tmp_path_factory.mktemp("empty-user-catalogue"))


@pytest.mark.parametrize("shape", SHAPES, ids=["x".join(map(str, s)) for s in SHAPES])
def test_best_answers_every_shape_up_to_6_at_the_best_known_integer_rank(catalogue, shape):
    turned = tuple(reversed(shape))  # any order of the sizes
    entry = catalogue.best(turned, "Z")
    assert entry is not None and entry.algorithm.shape == turned
    assert entry.rank == best_known_rank(shape, "Z") and entry.ring == "Z"
    assert entry.algorithm.verify().ok


def test_rings_take_the_schemes_valid_over_them(catalogue):
    assert catalogue.best((4, 4, 4), "Z2").rank == 47  # AlphaTensor's modulo-2 scheme
    assert catalogue.best((4, 4, 4), "Z").rank == 49
    q = catalogue.best((4, 4, 4), "Q")
    assert q.rank == 48 and q.ring == "Q"  # the FMM catalogue's rational 48 (bundled)
    z2 = catalogue.best((5, 5, 5), "Z2")
    assert z2.rank == 93 and z2.ring == "Z"  # the integer 93 beats AlphaTensor's Z2 96


def test_duplicates_are_counted_once(catalogue):
    assert catalogue.duplicates  # Perminov's copies of AlphaTensor's small schemes
    keys = [(e.sorted_shape, e.key) for e in catalogue.entries if e.rank < 20]
    assert len(keys) == len(set(keys))


def test_table_marks_gaps_and_missing_shapes(catalogue):
    table = format_table(catalogue, None)
    lines = {line.split()[0]: line for line in table.splitlines()[1:-1]}
    assert lines["3x4x11"].split()[1] == "none/101"  # no integer scheme shipped
    assert lines["4x4x4"].split()[1:] == ["49/49", "48/48", "47/47"]
    assert "61/60  +1" in lines["4x4x5"]  # no modulo-2 60 here
    assert "+" not in lines["3x3x3"]


def test_user_catalogue_adds_new_schemes_and_skips_known_or_wrong_ones(tmp_path):
    folder = tmp_path / "cat"
    shipped = permute_shape(alphatensor(2, 2, 3), (3, 2, 2))  # shipped, turned around
    path, existing = add_to_catalogue(shipped, folder)
    assert path is None and existing is not None
    path, existing = add_to_catalogue(strassen(), folder)  # not literally a shipped one
    assert existing is None and path.exists()
    eight = school(2, 2, 2)
    path, existing = add_to_catalogue(eight, folder)
    assert existing is None and path.parent == folder and path.suffix == ".json"
    assert Algorithm.load(path).provenance["canonical_key"]
    again, _ = add_to_catalogue(permute_shape(eight, (2, 2, 2)), folder)
    assert again is None
    (folder / "broken.json").write_text("{")
    wrong = tmp_path / "wrong.txt"
    wrong.write_text("(a11+a12)*(b11)*(c11)\n")
    (folder / "wrong.txt").write_text(wrong.read_text())
    catalogue = load_catalogue(folder)
    assert any("broken.json" in w for w in catalogue.warnings)
    assert any("wrong.txt" in w and "not correct" in w for w in catalogue.warnings)
    ranks = sorted(e.rank for e in catalogue.candidates((2, 2, 2)))
    assert ranks[-1] == 8 and catalogue.best((2, 2, 2)).rank == 7
    assert len([e for e in catalogue.entries if e.origin.startswith(str(folder))]) == 2


def test_user_catalogue_folder_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("MLO_CATALOGUE", str(tmp_path / "mine"))
    assert user_catalogue_dir() == tmp_path / "mine"
    monkeypatch.delenv("MLO_CATALOGUE")
    monkeypatch.setenv("MLO_OUTPUTS", str(tmp_path / "out"))
    assert user_catalogue_dir() == tmp_path / "out" / "catalogue"


def test_library_names_resolve_through_the_catalogue():
    assert lookup("best-4x4x4").rank == 49
    assert lookup("best-4x4x4-z2").rank == 47
    assert lookup("best-6x5x4").shape == (6, 5, 4)
    assert lookup("best-2x3x6").rank == 30
    assert lookup("best-8x8x8-q").rank == 336
    with pytest.raises(KeyError, match="no scheme for <3,4,11>"):
        lookup("best-3x4x11")
    with pytest.raises(KeyError, match="accepted: strassen"):
        lookup("best-4x4")


def test_cli_best_list_and_import_into_the_catalogue(tmp_path):
    env = {"MLO_CATALOGUE": str(tmp_path / "cat")}
    done = cli("best", "4x5x6", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    for text in ("rank 90 (the best known rank)", "ring: Z", "coefficients: {-1, 0, 1}",
                 "additions: 1023", "source: Perminov catalogue, MIT"):
        assert text in out, out
    none = cli("best", "3x4x11", cwd=tmp_path, env=env)
    assert none.returncode == 1 and "no scheme (best known rank 101)" in none.stdout
    bad = cli("best", "4x5", cwd=tmp_path, env=env)
    assert bad.returncode == 2 and "accepted: NxMxP" in bad.stderr
    source = tmp_path / "school.txt"
    source.write_text(format_products(school(2, 2, 3)))
    added = cli("import", str(source), "--into-catalogue", cwd=tmp_path, env=env)
    assert added.returncode == 0 and "catalogue: added" in added.stdout, added.stderr
    twice = cli("import", str(source), "--into-catalogue", cwd=tmp_path, env=env)
    assert "already there" in twice.stdout
    nowhere = cli("import", str(source), cwd=tmp_path, env=env)
    assert nowhere.returncode == 2 and "accepted: --out DIR, --into-catalogue" in nowhere.stderr
    listing = cli("list", cwd=tmp_path, env=env)
    assert listing.returncode == 0
    assert "2x3x6    30/30" in listing.stdout and "alphatensor-4x4x4-z2" in listing.stdout
    shown = json.loads(cli("export", "best-2x2x2", cwd=tmp_path, env=env).stdout)
    assert Algorithm.from_dict(shown).rank == 7
