"""Real files of the public scheme collection (fixtures/perminov, MIT) read and verified exactly.

Each fixture is an unchanged copy (fixtures/perminov/README.md); shape and rank are taken from
the file's own name, so a reader that mis-reads the layout fails here.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mlo_exp.algorithms.fliptext import format_products, parse_text
from mlo_exp.algorithms.formats import read_algorithms
from mlo_exp.algorithms.library import strassen
from mlo_exp.algorithms.tensor import matmul_tensor, reconstruct

FIXTURES = Path(__file__).parent / "fixtures" / "perminov"
FILES = sorted(p.relative_to(FIXTURES).as_posix() for p in FIXTURES.rglob("*")
               if p.is_file() and p.name not in ("LICENSE", "README.md"))
RATIONAL = {"known/tensor/3x3x6_tensor.mpl", "known/meta_flip_graph/257/k108391c6c35ad0c4.m",
            "results/serendipitous_base/2x3x7_m35_7eb3b298bd86083c27dce063b31571bb03c07bdb_Q.json"}
# ranks of the files whose names do not state them: the FMM catalogue's and the classics'
NAMED_RANKS = {"known/tensor/2x2x3_tensor.mpl": 11, "known/tensor/2x3x5_tensor.mpl": 25,
               "known/tensor/3x3x6_tensor.mpl": 40,
               "known/meta_flip_graph/257/k108391c6c35ad0c4.m": 55}


def stated(relative: str) -> tuple[tuple[int, int, int], int]:
    """Shape and rank as the collection names the file (``2x3x5_m25``, ``223-11``, ``/257/``)."""
    name = relative.split("/")[-1]
    shape = re.search(r"([0-9]+)x([0-9]+)x([0-9]+)", name)
    digits = re.search(r"(?<![0-9])([2-9])([2-9])([2-9])-([0-9]+)", name)
    if shape:
        dims = tuple(int(x) for x in shape.groups())
    elif digits:
        dims = tuple(int(x) for x in digits.groups()[:3])
    else:
        dims = tuple(int(x) for x in re.search(r"/([2-9])([2-9])([2-9])/", relative).groups())
    rank = re.search(r"_m([0-9]+)", name)
    if rank:
        return dims, int(rank.group(1))  # type: ignore[return-value]
    return dims, int(digits.group(4)) if digits else NAMED_RANKS[relative]  # type: ignore


def test_every_format_of_the_collection_has_a_fixture():
    suffixes = {Path(f).suffix for f in FILES} | {"reduced" for f in FILES if "_reduced" in f}
    assert suffixes == {".json", ".mpl", ".m", ".exp", ".txt", "reduced"}
    assert (FIXTURES / "LICENSE").read_text().startswith("MIT License")


@pytest.mark.parametrize("relative", FILES)
def test_real_file_reads_and_verifies_at_its_stated_rank(relative):
    (algorithm,) = read_algorithms(FIXTURES / relative)
    shape, rank = stated(relative)
    assert sorted(algorithm.shape) == sorted(shape) and algorithm.rank == rank
    assert algorithm.ring == ("Q" if relative in RATIONAL else "Z")
    assert algorithm.verify().ok
    # the exact check by hand: the factors rebuild T<n,m,p> in our convention (C not transposed)
    if algorithm.ring == "Z":
        n, m, p = algorithm.shape
        assert np.array_equal(reconstruct(algorithm.u, algorithm.v, algorithm.w),
                              matmul_tensor(n, m, p))


@pytest.mark.parametrize(("relative", "additions"), [
    ("results/addition_reduced_ZT/2x2x2_m7_cr15_cn24_ZT_reduced.json", 15),
    ("results/addition_reduced_ZT/3x3x3_m23_cr58_cn119_ZT_reduced.json", 58),
    ("results/addition_reduced_ZT/4x4x4_m49_cr159_fv100_cn474_ZT_reduced.json", 159),
])
def test_reduced_files_keep_their_plan_with_the_stated_additions(relative, additions):
    path = FIXTURES / relative
    (algorithm,) = read_algorithms(path)
    data = json.loads(path.read_text())
    assert data["complexity"]["reduced"] == additions == algorithm.plan.additions()
    u, v, w = algorithm.plan.expand()
    assert np.array_equal(u, algorithm.u) and np.array_equal(v, algorithm.v)
    assert np.array_equal(w, algorithm.w)


def test_the_mpl_arithmetic_entries_are_evaluated():
    text = (FIXTURES / "known/tensor/2x3x5_tensor.mpl").read_text()
    assert "(0-1*1)" in text  # the file writes some entries as Maple arithmetic
    (algorithm,) = read_algorithms(FIXTURES / "known/tensor/2x3x5_tensor.mpl")
    assert algorithm.verify().ok


def test_factors_juxtaposed_as_in_the_symmetric_exp_files():
    # Kauers-Moosbauer's *_lifted.exp: no '*' between factors, bare variables beside brackets,
    # e.g. "(-a13 - a53) b31 (-c13 - c15 + c35)"
    lines = format_products(strassen()).replace(")*(", ") (").splitlines()
    lines = [re.sub(r"\(([abc][0-9][0-9])\)", r"\1", line) for line in lines]
    assert "(a11+a22) (b11+b22) (c11+c22)" in lines and any(" b11 " in x for x in lines)
    algorithm = parse_text("\n".join(lines))
    assert algorithm.digest() == strassen().digest() and algorithm.verify().ok


def test_mlo_algorithms_verify_accepts_the_formats_that_failed_in_issue_27():
    """The command the issue ran: the reduced JSON and the FMM catalogue's .mpl now verify."""
    script = Path(sys.executable).with_name("mlo-algorithms")
    files = ["results/addition_reduced_ZT/2x2x2_m7_cr15_cn24_ZT_reduced.json",
             "results/addition_reduced_ZT/3x3x3_m23_cr58_cn119_ZT_reduced.json",
             "known/tensor/2x2x3_tensor.mpl", "known/tensor/3x3x6_tensor.mpl"]
    for relative in files:
        done = subprocess.run([str(script), "verify", str(FIXTURES / relative)],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, (relative, done.stderr)
        assert "exact decomposition" in done.stdout


def test_the_conformance_run_over_a_checkout_of_the_fixtures(tmp_path):
    """perf/conformance_catalogue.py (make conformance) on a checkout holding the fixtures."""
    shutil.copytree(FIXTURES, tmp_path / "checkout" / "schemes",
                    ignore=shutil.ignore_patterns("LICENSE", "README.md"))
    script = Path(__file__).resolve().parents[2] / "perf" / "conformance_catalogue.py"
    done = subprocess.run([sys.executable, str(script), "--collection",
                           str(tmp_path / "checkout"), "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    table = json.loads((tmp_path / "out" / "catalogue_conformance.json").read_text())
    assert table["meta"]["files"] == len(FILES)
    assert {row["outcome"] for row in table["rows"]} == {"verified"}
    assert "| **all** | | **15** | **15** | **15** | **0** | **0** | **0** | **0** |" in (
        tmp_path / "out" / "catalogue_conformance.md").read_text()
