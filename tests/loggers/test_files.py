import csv
import json

from mlo_exp.loggers.base import EPISODE_COLUMNS
from mlo_exp.loggers.files import FilesLogger
from mlo_exp.run_context import RunContext


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
