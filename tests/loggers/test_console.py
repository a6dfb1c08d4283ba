import logging

from mlo_exp.loggers.console import ConsoleLogger, format_summary, format_table
from mlo_exp.run_context import RunContext


def _record(episode):
    return {"episode": episode, "reward": -8.0, "residual_norm": 0.0, "rank_used": 8,
            "solved": True, "best_rank": 8, "wall_time_s": 0.5}


def test_console_prints_at_its_rate_and_ends_with_a_table_and_summary(tmp_path, caplog):
    logger = ConsoleLogger(print_every_s=3600, progress_bar=False)
    with caplog.at_level(logging.INFO, logger="mlo_exp"):
        logger.start(RunContext.create(tmp_path, 0, ["x"]), {"trainer": {"episodes": 10}})
        for episode in range(1, 11):
            logger.log_episode(_record(episode))
        logger.log_summary({"run_id": "r", "shape": [2, 2, 2], "ring": "Z", "best_rank": 8,
                            "verified": True, "best_known_rank": 7, "wall_time_s": 1.0})
    episode_lines = [r for r in caplog.records if r.getMessage().startswith("episode ")]
    assert len(episode_lines) == 1  # the rate limit holds
    text = caplog.text
    assert "Episode" in text and "best rank" in text and "<2,2,2> over Z" in text


def test_formatters():
    table = format_table([_record(1)])
    assert table.splitlines()[0].split() == ["Episode", "Reward", "Residual", "Rank", "Solved"]
    summary = format_summary({"best_rank": None, "logger_failures": {"wandb": "x"}})
    assert "none found" in summary and "not logged by" in summary
