import csv
import errno
import json
from pathlib import Path

import pytest

from mlo_exp.io import WriteError
from mlo_exp.loggers.base import EPISODE_COLUMNS
from mlo_exp.loggers.files import FilesLogger
from mlo_exp.run_context import RunContext
from tests.disk_faults import fail_writes, read_only, small_tmpfs


def _record(episode):
    return {"run_id": "r1", "episode": episode, "moves": 8 * episode, "wall_time_s": 0.1,
            "reward": -8.0, "residual_norm": 0.0, "rank_used": 8, "solved": True,
            "best_rank": 8, "loss": float("nan")}


def test_metrics_jsonl_and_episodes_csv(tmp_path):
    run = RunContext.create(tmp_path, 0, ["x"])
    logger = FilesLogger(tmp_path)
    logger.start(run, {})
    for episode in (1, 2):
        logger.log_episode(_record(episode))
    lines = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [x["episode"] for x in lines] == [1, 2] and lines[0]["loss"] == "nan"
    rows = list(csv.DictReader((tmp_path / "episodes.csv").open()))
    assert tuple(rows[0]) == EPISODE_COLUMNS and rows[1]["run_id"] == "r1"
    # A second start (a resumed run) appends without a second header.
    FilesLogger(tmp_path).start(run, {})
    FilesLogger(tmp_path).log_episode(_record(3))
    assert (tmp_path / "episodes.csv").read_text().count("run_id,episode") == 1


@pytest.mark.parametrize("name", ["metrics.jsonl", "episodes.csv"])
def test_a_refused_append_raises_write_error_naming_the_file(tmp_path: Path, monkeypatch,
                                                             name: str):
    run = RunContext.create(tmp_path, 0, ["x"])
    logger = FilesLogger(tmp_path)
    logger.start(run, {})
    logger.log_episode(_record(1))
    before = {n: (tmp_path / n).read_text() for n in ("metrics.jsonl", "episodes.csv")}
    fail_writes(monkeypatch, name, errno.ENOSPC)
    with pytest.raises(WriteError) as caught:
        logger.log_episode(_record(2))
    assert caught.value.errno == errno.ENOSPC and caught.value.path == tmp_path / name
    assert str(caught.value) == f"cannot write {tmp_path / name}: disk full (ENOSPC)"
    assert (tmp_path / name).read_text() == before[name]  # episode 1 intact, 2 not torn


def test_a_read_only_run_dir_refuses_the_header_with_write_error(tmp_path: Path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    run = RunContext.create(run_dir, 0, ["x"])
    with read_only(run_dir), pytest.raises(WriteError, match="episodes.csv: "):
        FilesLogger(run_dir).start(run, {})


def test_a_disk_that_fills_up_mid_run_keeps_whole_records(tmp_path: Path):
    with small_tmpfs(tmp_path / "disk", "64k") as run_dir:
        run = RunContext.create(run_dir, 0, ["x"])
        logger = FilesLogger(run_dir)
        logger.start(run, {})
        with pytest.raises(WriteError, match="disk full"):
            for episode in range(1, 100_000):
                logger.log_episode({**_record(episode), "pad": "x" * 100})
        lines = (run_dir / "metrics.jsonl").read_text().splitlines()
        assert [json.loads(x)["episode"] for x in lines] == list(range(1, len(lines) + 1))
        rows = list(csv.DictReader((run_dir / "episodes.csv").open()))
        assert all(len(row) == len(EPISODE_COLUMNS) and None not in row for row in rows)
