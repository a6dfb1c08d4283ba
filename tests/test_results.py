"""mlo_exp.results: a run, a multirun and the registry as DataFrames, from real run files."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from mlo_exp import results
from mlo_exp.agents.pair_policy import PairPolicyAgent
from mlo_exp.agents.random import RandomAgent
from mlo_exp.benchmark.store import ResultsStore
from mlo_exp.config import TrainerConfig
from mlo_exp.env import TensorGame
from mlo_exp.loggers.base import LoggerGroup
from mlo_exp.loggers.files import FilesLogger
from mlo_exp.run.trainer import Trainer
from mlo_exp.run_context import RunContext


def real_run(run_dir: Path, agent_class, seed: int, overrides: list[str],
             episodes: int = 3) -> Path:
    """A real (tiny) training run writing its real files, with Hydra's overrides record."""
    run_dir.mkdir(parents=True)
    (run_dir / ".hydra").mkdir()
    (run_dir / ".hydra" / "overrides.yaml").write_text(
        "".join(f"- {o}\n" for o in overrides))
    game = TensorGame((2, 2, 2))
    run = RunContext.create(run_dir, seed, overrides)
    logger = LoggerGroup([FilesLogger(run_dir)])
    logger.start(run, {})
    agent = agent_class(game, seed=seed)
    Trainer(game, agent, logger, run, TrainerConfig(episodes=episodes, time_limit_s=None),
            [], 7).fit()
    return run_dir


def test_a_run_loads_per_episode_with_its_losses_summary_and_overrides(tmp_path) -> None:
    run_dir = real_run(tmp_path / "run", PairPolicyAgent, 3,
                       ["agent=pair_policy", "agent.learning_rate=0.002", "seed=3"])
    frame = results.load(run_dir)
    assert list(frame["episode"]) == [1, 2, 3]
    assert {"reward", "best_rank", "policy_loss"} <= set(frame.columns)  # losses included
    assert frame["agent.learning_rate"].tolist() == [0.002] * 3  # parsed, a float
    assert set(frame["setting"]) == {"agent=pair_policy agent.learning_rate=0.002"}
    assert set(frame["seed"]) == {3} and set(frame["final_status"]) == {"success"}
    assert set(frame["final_episodes"]) == {3}


def test_a_multirun_loads_every_run_and_its_summaries(tmp_path) -> None:
    sweep = tmp_path / "sweep"
    for job, (agent, seed) in enumerate([("random", 1), ("random", 2), ("pair_policy", 1)]):
        cls = RandomAgent if agent == "random" else PairPolicyAgent
        real_run(sweep / str(job), cls, seed, [f"agent={agent}", f"seed={seed}"])
    frame = results.load(sweep)
    assert len(frame) == 9 and sorted(set(frame["job"])) == [0, 1, 2]
    per_setting = frame.groupby("setting")["seed"].nunique().to_dict()
    assert per_setting == {"agent=random": 2, "agent=pair_policy": 1}
    # an agent metric only one agent logs: NaN for the other's episodes
    assert frame.loc[frame["agent"] == "RandomAgent", "policy_loss"].isna().all()
    runs = results.load_summaries(sweep)
    assert len(runs) == 3 and list(runs["job"]) == [0, 1, 2]
    assert list(runs["agent"]) == ["random", "random", "pair_policy"]  # the override column
    assert {"best_rank", "time_to_best_s", "setting"} <= set(runs.columns)


def test_the_registry_loads_as_rows(tmp_path) -> None:
    database = tmp_path / "benchmarks.sqlite"
    assert results.load_registry(database).empty  # not there yet: empty, nothing created
    assert not database.exists()
    ResultsStore(database).append([{"benchmark_id": "b1", "algorithm": "strassen",
                                    "size": 512, "speedup": 1.2, "median_s": 0.01}])
    frame = results.load(database)
    assert isinstance(frame, pd.DataFrame) and frame.loc[0, "algorithm"] == "strassen"
    assert frame.loc[0, "speedup"] == pytest.approx(1.2)


def test_a_path_with_nothing_to_load_says_what_is_accepted(tmp_path) -> None:
    with pytest.raises(results.ResultsError, match="no run .* and no multirun"):
        results.load(tmp_path)
    with pytest.raises(results.ResultsError, match="Accepted: a run directory"):
        results.load(tmp_path / "missing")
    shutil.rmtree(tmp_path)


def test_the_docs_example_runs_on_a_real_multirun(tmp_path, capsys) -> None:
    """The python blocks of docs/results.md, with ``sweep_dir`` a sweep of real runs."""
    import re

    sweep = tmp_path / "sweep"
    for job, (agent, seed) in enumerate([("random", 1), ("random", 2), ("pair_policy", 1),
                                         ("pair_policy", 2)]):
        cls = RandomAgent if agent == "random" else PairPolicyAgent
        real_run(sweep / str(job), cls, seed, ["env=matmul_2x2x2", f"agent={agent}",
                                                f"seed={seed}", "trainer.episodes=3"])
    text = (Path(__file__).resolve().parents[1] / "docs" / "results.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) == 3
    with pd.option_context("display.width", 400, "display.max_columns", 50,
                           "display.max_colwidth", 200):
        for block in blocks:
            exec(compile(block, "docs/results.md", "exec"), {"sweep_dir": sweep})  # noqa: S102
    out = capsys.readouterr().out
    assert "agent=pair_policy" in out and "PairPolicyAgent" in out and "time_to_best_s" in out
    assert (sweep / "my_curves.png").read_bytes().startswith(b"\x89PNG")
