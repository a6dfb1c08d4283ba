"""``mlo-benchmark``: targets (library names, files, run dirs), refusal, bad input, report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlo_exp.benchmark.backend import cuda_available
from mlo_exp.benchmark.cli import main
from mlo_exp.benchmark.store import ResultsStore
from mlo_exp.library import strassen

QUICK = ["--sizes", "12", "--repeats", "1", "--warmup", "0"]


@pytest.fixture(autouse=True)
def outputs(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setenv("MLO_OUTPUTS", str(tmp_path / "outputs"))
    return tmp_path / "outputs"


def test_library_name_gets_its_own_benchmark_id(outputs: Path, capsys):
    assert main(["strassen", "school-2x2x2", *QUICK]) == 0
    out = capsys.readouterr().out
    (record_file,) = (outputs / "benchmarks").rglob("benchmark.json")
    record = json.loads(record_file.read_text())
    benchmark_id = record["benchmark_id"]
    assert f"benchmark {benchmark_id}" in out and "strassen" in out and "school-2x2x2" in out
    assert [r["algorithm"] for r in record["rows"]] == ["strassen", "school-2x2x2"]
    assert all(r["source_run_id"] is None and r["run_id"] == benchmark_id
               for r in record["rows"])
    assert (record_file.parent / "speedup.png").exists()
    assert [r["benchmark_id"] for r in ResultsStore().rows()] == [benchmark_id] * 2
    assert main(["report", "--last", "1"]) == 0
    report = capsys.readouterr().out
    assert "strassen" in report and benchmark_id[-12:] in report


def test_algorithm_file_records_its_source_run(tmp_path: Path, capsys):
    algorithm = strassen()
    algorithm.provenance["run_id"] = "20260101-000000-0badc0de"
    path = algorithm.save(tmp_path / "found.json")
    markdown = tmp_path / "table.md"
    assert main([str(path), *QUICK, "--no-registry", "--markdown", str(markdown)]) == 0
    assert "| strassen | 7 | 1 | 12 |" in markdown.read_text()
    assert "CPU" in markdown.read_text() or "GPU" in markdown.read_text()
    assert not ResultsStore().path.exists()


def test_unverifiable_algorithm_is_refused_with_the_residual(tmp_path: Path, capsys):
    algorithm = strassen()
    algorithm.w[0, 0] = 0
    path = algorithm.save(tmp_path / "broken.json")
    assert main([str(path), *QUICK]) == 2
    error = capsys.readouterr().err
    assert "exact verification failed" in error and "wrong entries" in error


@pytest.mark.parametrize(("target", "message"), [
    ("strasen", "is not a run directory, a run_id"),
    ("20260101-000000-00000000", "no run directory under"),
    ("missing.json", "no such file"),
])
def test_bad_targets_exit_2_naming_what_is_accepted(target, message, capsys):
    assert main([target, *QUICK]) == 2
    assert message in capsys.readouterr().err


def test_invalid_algorithm_file_and_bad_settings_exit_2(tmp_path: Path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "something-else"}')
    assert main([str(bad), *QUICK]) == 2
    assert "format='something-else'" in capsys.readouterr().err
    assert main(["strassen", "--sizes", "0"]) == 2
    assert "benchmark.sizes[0]=0" in capsys.readouterr().err


@pytest.mark.skipif(cuda_available(), reason="this machine has a CUDA device")
def test_cupy_backend_without_a_device_exits_2(capsys):
    assert main(["strassen", *QUICK, "--backend", "cupy"]) == 2
    assert "benchmark.backend='cupy'" in capsys.readouterr().err
