import json

import pytest

from mlo_exp.agents.greedy import GreedyAgent
from mlo_exp.agents.random import RandomAgent
from mlo_exp.algorithms.algorithm import Algorithm
from mlo_exp.config import TrainerConfig
from mlo_exp.env import TensorGame
from mlo_exp.loggers.base import LoggerGroup
from mlo_exp.loggers.files import FilesLogger
from mlo_exp.run.trainer import Trainer, TrainerCallback
from mlo_exp.run_context import RunContext, seed_everything


class Events(TrainerCallback):
    def __init__(self):
        self.seen = []

    def on_run_start(self, trainer):
        self.seen.append("start")

    def on_new_best(self, trainer, algorithm, path):
        self.seen.append(("best", algorithm.rank))

    def on_run_end(self, trainer, summary):
        self.seen.append(("end", summary.stop_reason))


def _trainer(tmp_path, agent_class, episodes=3, stop_at_rank=None, seed=0, callbacks=()):
    seed_everything(seed)
    game = TensorGame((2, 2, 2))
    run = RunContext.create(tmp_path, seed, ["t"])
    logger = LoggerGroup([FilesLogger(tmp_path)])
    logger.start(run, {})
    config = TrainerConfig(episodes=episodes, time_limit_s=None, stop_at_rank=stop_at_rank)
    return Trainer(game, agent_class(game, seed=seed), logger, run, config, list(callbacks), 7)


def test_greedy_run_keeps_an_exactly_verified_algorithm(tmp_path):
    events = Events()
    summary = _trainer(tmp_path, GreedyAgent, callbacks=[events]).fit()
    assert summary.best_rank == 8 and summary.verified and summary.episodes == 3
    algorithm = Algorithm.load(tmp_path / "algorithm.json")
    assert algorithm.verify().ok and algorithm.rank == 8
    assert algorithm.provenance["run_id"] == summary.run_id
    assert summary.run_id in (tmp_path / "algorithm.txt").read_text()
    assert events.seen == ["start", ("best", 8), ("end", "episodes")]
    saved = json.loads((tmp_path / "summary.json").read_text())
    assert saved["best_known_rank"] == 7 and saved["stop_reason"] == "episodes"


def test_the_run_stops_once_the_target_rank_is_reached(tmp_path):
    summary = _trainer(tmp_path, GreedyAgent, episodes=50, stop_at_rank=8).fit()
    assert summary.episodes == 1 and summary.stop_reason == "target_rank"


def test_time_limit(tmp_path):
    trainer = _trainer(tmp_path, RandomAgent, episodes=10**6)
    trainer.config = TrainerConfig(episodes=10**6, time_limit_s=0.5)
    summary = trainer.fit()
    assert summary.stop_reason == "time_limit" and 0 < summary.episodes < 10**6


def test_random_run_finds_nothing_and_says_so(tmp_path):
    summary = _trainer(tmp_path, RandomAgent).fit()
    assert summary.best_rank is None and not summary.verified
    assert not (tmp_path / "algorithm.json").exists()


def test_same_seed_same_episodes(tmp_path):
    rows = []
    for attempt in range(2):
        directory = tmp_path / str(attempt)
        directory.mkdir()
        _trainer(directory, RandomAgent, episodes=5, seed=11).fit()
        lines = (directory / "metrics.jsonl").read_text().splitlines()
        rows.append([{k: v for k, v in json.loads(x).items() if k not in ("run_id", "wall_time_s")}
                     for x in lines])
    assert rows[0] == rows[1] and len(rows[0]) == 5


def test_a_solved_game_is_not_kept_unless_verification_passes(tmp_path, monkeypatch):
    trainer = _trainer(tmp_path, GreedyAgent, episodes=1)
    real_episode = trainer.agent.run_episode

    def corrupted_episode():
        result = real_episode()
        u, v, w = result.factors
        w = w.copy()
        w[0, 0] += 1  # the claimed solution no longer decomposes T
        result.factors = (u, v, w)
        return result

    monkeypatch.setattr(trainer.agent, "run_episode", corrupted_episode)
    summary = trainer.fit()
    assert summary.best_rank is None and not (tmp_path / "algorithm.json").exists()


def test_interrupt_ends_the_run_with_a_summary(tmp_path, monkeypatch):
    trainer = _trainer(tmp_path, GreedyAgent, episodes=100)

    def interrupted():
        raise KeyboardInterrupt

    monkeypatch.setattr(trainer.agent, "run_episode", interrupted)
    summary = trainer.fit()
    assert summary.status == "interrupted" and (tmp_path / "summary.json").exists()


@pytest.mark.parametrize("episodes", [2])
def test_state_dict_round_trip(tmp_path, episodes):
    trainer = _trainer(tmp_path, GreedyAgent, episodes=episodes)
    trainer.fit()
    (tmp_path / "x").mkdir()
    other = _trainer(tmp_path / "x", GreedyAgent)
    other.load_state_dict(trainer.state_dict())
    assert other.episode == episodes and other.best_rank == 8
