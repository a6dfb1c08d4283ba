"""Progress inside long episodes: an agent's report_progress reaches the console, rate-limited."""

from __future__ import annotations

import logging
import time

from mlo_exp.agents.greedy import GreedyAgent
from mlo_exp.config import TrainerConfig
from mlo_exp.env import TensorGame
from mlo_exp.loggers.base import LoggerGroup
from mlo_exp.loggers.files import FilesLogger
from mlo_exp.run.progress import EpisodeProgress
from mlo_exp.run.trainer import Trainer
from mlo_exp.run_context import RunContext


class SlowSearchAgent(GreedyAgent):
    """A greedy episode preceded by a 'search' of ``steps`` steps of 10 ms, reported as it
    goes (what mcts does during its self-play)."""

    steps = 40

    def run_episode(self):
        for step in range(1, self.steps + 1):
            time.sleep(0.01)
            self.report_progress(search_steps=step, best_so_far=-9.0 + step / 100)
        return super().run_episode()


def make_trainer(tmp_path, episodes: int) -> Trainer:
    game = TensorGame((2, 2, 2))
    run = RunContext.create(tmp_path, 0, ["t"])
    logger = LoggerGroup([FilesLogger(tmp_path)])
    logger.start(run, {})
    config = TrainerConfig(episodes=episodes, time_limit_s=60.0)
    return Trainer(game, SlowSearchAgent(game, seed=0), logger, run, config, [], 7)


def test_long_episodes_print_progress_rate_limited(tmp_path, caplog) -> None:
    trainer = make_trainer(tmp_path, episodes=2)
    assert trainer.agent.progress_callback is trainer.progress  # the trainer wires it
    trainer.progress.every_s = 0.1  # 10 s in a run; 0.1 s here (episodes of ~0.4 s)
    with caplog.at_level(logging.INFO, logger="mlo_exp"):
        trainer.fit()
    lines = [r.getMessage() for r in caplog.records if "in progress" in r.getMessage()]
    # ~0.4 s per episode, a line at most every 0.1 s and none in an episode's first 0.1 s
    assert 2 <= len(lines) <= 2 * 4 and trainer.progress.lines == len(lines)
    assert lines[0].startswith("episode 1 in progress: ")
    assert any(line.startswith("episode 2 in progress: ") for line in lines)
    assert "search_steps " in lines[0] and "best_so_far -8." in lines[0]
    assert "s of 60s" in lines[0]


def test_short_episodes_stay_silent(tmp_path, caplog) -> None:
    trainer = make_trainer(tmp_path, episodes=2)  # the default: 10 s between lines
    with caplog.at_level(logging.INFO, logger="mlo_exp"):
        trainer.fit()
    assert not [r for r in caplog.records if "in progress" in r.getMessage()]


def test_an_agent_without_a_trainer_reports_nowhere() -> None:
    agent = SlowSearchAgent(TensorGame((2, 2, 2)), seed=0)
    agent.report_progress(search_steps=1)  # no callback: nothing happens, nothing raises
    seen = []
    agent.progress_callback = seen.append
    agent.report_progress(search_steps=2, best=7)
    assert seen == [{"search_steps": 2, "best": 7}]


def test_progress_line_names_the_episode_and_the_budget(caplog) -> None:
    class Clock:
        def elapsed(self) -> float:
            return 21.4

    trainer = type("T", (), {"config": TrainerConfig(time_limit_s=45.0), "run": Clock()})()
    progress = EpisodeProgress(trainer, every_s=0.0)
    progress.start_episode(3)
    with caplog.at_level(logging.INFO, logger="mlo_exp"):
        progress({"simulations": 1200, "best_return": -9.25})
    (line,) = [r.getMessage() for r in caplog.records]
    assert line.startswith("episode 3 in progress: 0 s in  simulations 1200  best_return -9.25")
    assert line.endswith("| 21s of 45s")
