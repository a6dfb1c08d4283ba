"""The benchmark stage: config group, skip rules, and end to end through a real mlo-train."""

from __future__ import annotations

import json
import logging
import sqlite3
from pathlib import Path
from types import SimpleNamespace

import pytest

from mlo_exp.benchmark.backend import cuda_available
from mlo_exp.benchmark.cli import main as cli_main
from mlo_exp.config import ConfigError, validate
from mlo_exp.run.benchmark_stage import BenchmarkStage
from mlo_exp.run.experiment import check_components
from mlo_exp.run_context import RunContext
from tests.conftest import run_dirs


def test_default_config_has_the_stage_and_none_switches_it_off(compose_config):
    cfg = compose_config()
    assert cfg.benchmark._target_ == "mlo_exp.run.benchmark_stage.BenchmarkStage"
    assert cfg.benchmark.backend == "auto" and cfg.benchmark.allow_tf32 is False
    assert compose_config(["benchmark=none"]).benchmark._target_ is None


@pytest.mark.parametrize(("override", "key"), [
    ("benchmark.dtype=float16", "benchmark.dtype"),
    ("benchmark.repeats=0", "benchmark.repeats"),
    ("benchmark.sizes=[64,0]", "benchmark.sizes[1]"),
    ("benchmark.strategy=fast", "benchmark.strategy"),
    ("benchmark.plan=clever", "benchmark.plan"),
    ("benchmark.chain=0", "benchmark.chain"),
])
def test_bad_values_name_the_key(compose_config, override, key):
    with pytest.raises(ConfigError) as error:
        validate(compose_config([override]))
    assert error.value.key == key


def test_the_stage_checks_library_names_before_the_run_writes(compose_config):
    cfg = compose_config(["benchmark.compare=[strassen,bogus]"])
    validate(cfg)  # the schema cannot know the library ...
    with pytest.raises(ConfigError) as error:  # ... the stage's check does
        check_components(cfg)
    assert error.value.key == "benchmark.compare[1]"


@pytest.mark.skipif(cuda_available(), reason="this machine has a CUDA device")
def test_cupy_backend_without_a_device_is_a_config_error(compose_config):
    with pytest.raises(ConfigError, match="benchmark.backend='cupy'.*numpy or auto"):
        check_components(compose_config(["benchmark.backend=cupy"]))


@pytest.mark.skipif(cuda_available(), reason="this machine has a CUDA device")
def test_tf32_without_a_device_is_a_config_error(compose_config):
    with pytest.raises(ConfigError, match="benchmark.allow_tf32.*false here"):
        check_components(compose_config(["benchmark.allow_tf32=true"]))


def test_the_stage_times_a_run_and_reads_the_result(tmp_path: Path, caplog):
    from mlo_exp.algorithms.library import lookup

    run = RunContext.create(tmp_path, 0, ["test"])
    stage = BenchmarkStage(run=run, logger=SimpleNamespace(log_benchmark=lambda *a: None),
                           sizes=[16, 32], repeats=1, warmup=0, registry=False,
                           compare=["alphatensor-4x2x4"])
    with caplog.at_level(logging.INFO, logger="mlo_exp"):
        stage.on_run_end(SimpleNamespace(best=lookup("strassen")),
                         SimpleNamespace(status="success"))
    record = json.loads((Path(run.run_dir) / "benchmark" / "benchmark.json").read_text())
    assert record["status"] == "success", record
    assert [r["additions"] for r in record["rows"]][:2] == [15, 15]
    assert record["rows"][2]["algorithm_shape"] == "<4,2,4>"
    assert len(record["break_even"]) == 2
    assert f"benchmark: {record['reading']}" in caplog.text


def test_a_run_without_a_verified_algorithm_is_skipped(tmp_path: Path, caplog):
    run = RunContext.create(tmp_path, 0, ["test"])
    stage = BenchmarkStage(run=run, logger=None, sizes=[8])
    with caplog.at_level(logging.INFO, logger="mlo_exp"):
        stage.on_run_end(SimpleNamespace(best=None), SimpleNamespace(status="success"))
    assert "benchmark: skipped, the run found no exactly verified algorithm" in caplog.text
    assert not (tmp_path / "benchmark").exists()


@pytest.mark.slow
def test_stage_runs_at_the_end_of_mlo_train_with_the_same_run_id(run_train, tmp_path: Path,
                                                                monkeypatch):
    result = run_train("trainer.episodes=3", "benchmark.sizes=[16,34]", "benchmark.repeats=1",
                       "benchmark.warmup=0", "benchmark.compare=[strassen]")
    assert result.returncode == 0, result.stderr[-3000:]
    (run_dir,) = run_dirs(tmp_path / "outputs")
    run_id = json.loads((run_dir / "run.json").read_text())["run_id"]
    assert (run_dir / "algorithm.json").exists(), "the greedy agent found nothing in 3 episodes"
    record = json.loads((run_dir / "benchmark" / "benchmark.json").read_text())
    assert record["status"] == "success" and record["run_id"] == run_id
    assert record["facts"]["run_id"] == run_id and record["facts"]["backend"] in ("numpy", "cupy")
    rows = record["rows"]
    assert [(r["size"], r["source_run_id"] is not None) for r in rows] == \
        [(16, True), (34, True), (16, False), (34, False)]  # the run's best, then Strassen
    assert {r["run_id"] for r in rows} == {run_id}
    assert rows[0]["source_run_id"] == run_id
    for name in ("latency.png", "speedup.png"):
        assert (run_dir / "benchmark" / name).stat().st_size > 1000
    with sqlite3.connect(tmp_path / "outputs" / "benchmarks.sqlite") as db:
        stored = db.execute("SELECT run_id, size FROM results ORDER BY id").fetchall()
    assert stored == [(run_id, 16), (run_id, 34), (run_id, 16), (run_id, 34)]
    log_text = (run_dir / "train.log").read_text()
    assert f"benchmark (run_id {run_id})" in log_text and "speedup" in log_text
    assert "break-even against the plain product" in log_text
    assert record["reading"] in log_text and record["reading"].startswith("On this ")
    assert {entry["scheme"] for entry in record["break_even"]} >= {"strassen L1 stream"} \
        or record["facts"]["backend"] == "cupy"

    # The run as a standalone target, by directory and by run_id: a new benchmark_id, and
    # the training run recorded as source_run_id.
    monkeypatch.setenv("MLO_OUTPUTS", str(tmp_path / "outputs"))
    quick = ["--sizes", "8", "--repeats", "1", "--warmup", "0", "--no-registry"]
    for target, out in ((str(run_dir), "by_dir"), (run_id, "by_id")):
        assert cli_main([target, *quick, "--out", str(tmp_path / out)]) == 0
        standalone = json.loads((tmp_path / out / "benchmark.json").read_text())
        assert standalone["benchmark_id"] != run_id
        assert standalone["facts"]["source_run_id"] == run_id
        assert [r["source_run_id"] for r in standalone["rows"]] == [run_id]
