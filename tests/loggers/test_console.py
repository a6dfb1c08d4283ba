import logging

from mlo_exp.loggers.console import ConsoleLogger, budget_left, format_summary, format_table
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


def test_episode_lines_say_how_much_of_the_budget_is_left(tmp_path, caplog):
    logger = ConsoleLogger(print_every_s=0, progress_bar=False)
    config = {"trainer": {"episodes": 100, "time_limit_s": 90.0, "stop_at_rank": 7}}
    with caplog.at_level(logging.INFO, logger="mlo_exp"):
        logger.start(RunContext.create(tmp_path, 0, ["x"]), config)
        for episode in (1, 2, 3, 4):
            logger.log_episode({**_record(episode), "wall_time_s": 2.0 * episode})
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("episode ")]
    assert len(lines) == 4
    # 4 of 100 episodes at 2 s each from episode 1 on: 96 * 2 = 192 s for the episodes, the
    # time limit is sooner (90 - 8 = 82 s)
    assert lines[-1].startswith("episode 4/100 ")
    assert "best 8 (target 7)" in lines[-1]
    assert lines[-1].endswith("| 4% of episodes, 8s of 90s, ~82s left")


def test_budget_left_picks_the_budget_that_ends_first():
    assert budget_left(50, 10.0, 100, None) == "50% of episodes, ~10s left"
    assert budget_left(50, 10.0, 100, 1000.0) == "50% of episodes, 10s of 1000s, ~10s left"
    assert budget_left(5, 30.0, None, 90.0) == "30s of 90s, ~60s left"
    # a resumed run: the pace counts from its first episode in this process
    assert budget_left(60, 40.0, 100, None, start_episode=50, start_time_s=30.0) == \
        "60% of episodes, ~40s left"
    assert budget_left(3, 1.0, None, None) == "no budget set"
