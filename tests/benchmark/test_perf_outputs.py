"""Where perf/run.py writes: committed tables only for full runs or when asked."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

PERF = Path(__file__).resolve().parents[2] / "perf"


@pytest.fixture(scope="module")
def perf_run():
    spec = importlib.util.spec_from_file_location("perf_run_under_test", PERF / "run.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


def test_full_runs_write_perf_and_quick_runs_write_outputs(perf_run, tmp_path, monkeypatch):
    monkeypatch.setenv("MLO_OUTPUTS", str(tmp_path))
    assert perf_run.output_dir(quick=False, update=False, out=None) == PERF
    quick = perf_run.output_dir(quick=True, update=False, out=None)
    assert quick.parent == tmp_path / "perf" and quick.name.endswith("_quick")
    assert perf_run.output_dir(quick=True, update=True, out=None) == PERF
    assert perf_run.output_dir(quick=True, update=True, out=tmp_path / "x") == tmp_path / "x"


def test_unknown_suites_are_refused(perf_run, capsys):
    assert perf_run.main(["--only", "nonsense", "--quick"]) == 2
    assert "unknown suite" in capsys.readouterr().err


def test_make_benchmark_writes_perf_only_when_asked():
    makefile = (PERF.parent / "Makefile").read_text()
    rule = makefile[makefile.index("benchmark: $(STAMP)"):]
    rule = rule[:rule.index("\n\n")]
    assert ("$(if $(UPDATE_PERF),--markdown $(PERF_DIR)/benchmark.md "
            "--json $(PERF_DIR)/benchmark.json)") in rule
    assert "PERF_DIR ?= perf" in makefile
