"""``hparams_search``: Hydra's Optuna sweeper over the real ``mlo-train``, the objective the
task function returns (median over ``objective.seeds`` seeds of the time to the best known
rank, a miss scoring budget x (1 + rank gap)), and the per-seed runs of each trial."""

from __future__ import annotations

import csv
import json
import statistics
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from mlo_exp.config import ConfigError, validate
from mlo_exp.run.sweep import trial_runs

SEARCH = "pair_policy_2x2x2"
BUDGET_S = 3.0


def seed_objective(run_dir: Path) -> float:
    """One seed's value, recomputed here from its own files (not through run/sweep.py)."""
    summary = json.loads((run_dir / "summary.json").read_text())
    target = summary["best_known_rank"]
    with (run_dir / "episodes.csv").open(newline="") as handle:
        reached = next((float(r["wall_time_s"]) for r in csv.DictReader(handle)
                        if r["best_rank"] and int(r["best_rank"]) <= target), None)
    if reached is not None:
        return reached
    best = summary["best_rank"] if summary["best_rank"] is not None else 8 + 1
    return BUDGET_S * (1 + max(1, best - target))


@pytest.mark.slow
def test_optuna_search_runs_two_trials_over_seeds_end_to_end(run_train, tmp_path) -> None:
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    result = run_train("-m", f"hparams_search={SEARCH}", "hydra.sweeper.n_trials=2",
                       "objective.seeds=2", f"trainer.time_limit_s={BUDGET_S}",
                       "logger.progress_bar=false", timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    (sweep_dir,) = [p.parent for p in (tmp_path / "outputs").rglob("optimization_results.yaml")]
    results = OmegaConf.to_container(OmegaConf.load(sweep_dir / "optimization_results.yaml"))
    assert set(results["best_params"]) == {"agent.learning_rate", "agent.prior_weight",
                                           "agent.steps_per_episode",
                                           "agent.advantage_temperature"}
    jobs = sorted((p for p in sweep_dir.iterdir() if p.is_dir() and p.name.isdigit()),
                  key=lambda p: int(p.name))
    assert [p.name for p in jobs] == ["0", "1"]  # two trials
    values = []
    for job in jobs:
        status = json.loads((job / "job_status.json").read_text())
        assert status["status"] == "completed"
        # each trial ran its seeds, each a complete run with the trial's parameters
        seeds = sorted(job.glob("seed*"))
        assert [p.name for p in seeds] == ["seed0", "seed1"]
        for seed_dir in seeds:
            summary = json.loads((seed_dir / "summary.json").read_text())
            assert summary["agent"] == "PairPolicyAgent" and summary["shape"] == [2, 2, 2]
            assert summary["seed"] == int(seed_dir.name.removeprefix("seed"))
        # what the task function returned to Optuna: the median over the trial's seeds
        expected = statistics.median(seed_objective(d) for d in seeds)
        assert status["objective"] == pytest.approx(expected, abs=1e-6)
        values.append(status["objective"])
    assert results["best_value"] == pytest.approx(min(values))
    # the sweep summary: one row per seed run, one setting per trial
    summary = json.loads((sweep_dir / "sweep_summary.json").read_text())
    assert len(summary["jobs"]) == 4 and len(summary["seeds"]) == 2
    assert all(len(group["seeds"]) == 2 for group in summary["seeds"])
    assert summary["search"]["best_value"] == results["best_value"]
    assert "## Hyperparameter search" in (sweep_dir / "sweep_summary.md").read_text()


def test_the_search_composes_with_the_optuna_sweeper(compose_config) -> None:
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from mlo_exp.config import config_dir

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose("config", overrides=[f"hparams_search={SEARCH}"],
                      return_hydra_config=True)
    GlobalHydra.instance().clear()
    sweeper = cfg.hydra.sweeper
    assert sweeper._target_.endswith("OptunaSweeper") and sweeper.direction == "minimize"
    assert sweeper.sampler._target_ == "optuna.samplers.TPESampler"
    assert set(sweeper.params) == {"agent.learning_rate", "agent.prior_weight",
                                   "agent.steps_per_episode", "agent.advantage_temperature"}
    assert cfg.objective.seeds == 3 and cfg.agent._target_.endswith("PairPolicyAgent")
    assert cfg.env.shape == [2, 2, 2] and cfg.benchmark._target_ is None


def test_objective_seeds_give_one_run_per_seed(compose_config, tmp_path) -> None:
    cfg = compose_config(["objective.seeds=3", "seed=5"])
    runs = list(trial_runs(cfg, validate(cfg), tmp_path, ["objective.seeds=3", "seed=5"]))
    assert [(c.seed, s.seed, d.name, o) for c, s, d, o in runs] == [
        (seed, seed, f"seed{seed}", ["objective.seeds=1", f"seed={seed}"])
        for seed in (5, 6, 7)]
    assert all(s.objective.seeds == 1 for _, s, _, _ in runs)  # each is one plain run
    single = compose_config([])
    assert [d for _, _, d, _ in trial_runs(single, validate(single), tmp_path, [])] == [tmp_path]


def test_objective_seeds_are_checked(compose_config, tmp_path) -> None:
    with pytest.raises(ConfigError, match="objective.seeds"):
        validate(compose_config(["objective.seeds=0"]))
    cfg = compose_config(["objective.seeds=2", "resume=auto"])
    with pytest.raises(ConfigError, match="1 when resume is set"):
        list(trial_runs(cfg, validate(cfg), tmp_path, []))
