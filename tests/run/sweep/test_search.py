"""Hyperparameter search: the objective only where a sweeper reads it, the expected duration
at the start, plain words for ties and all-miss trials, and the sweeper's set-up noise."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.types import RunMode
from omegaconf import OmegaConf

from mlo_exp.config import config_dir
from mlo_exp.run.sweep.callback import search_duration_line
from mlo_exp.run.sweep.jobs import read_rows
from mlo_exp.run.sweep.objective import BASIC_SWEEPER, objective_wanted, quiet_search_setup
from mlo_exp.run.sweep.summary import search_notes, to_markdown


def compose_hydra(overrides: list[str]):
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
            return compose("config", overrides=overrides, return_hydra_config=True)
    finally:
        GlobalHydra.instance().clear()


def test_objective_is_computed_only_for_a_sweeper_that_reads_it() -> None:
    optuna = "hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper"
    assert objective_wanted(OmegaConf.create({"mode": RunMode.MULTIRUN,
                                              "sweeper": {"_target_": optuna}}))
    assert not objective_wanted(OmegaConf.create({"mode": RunMode.MULTIRUN,
                                                  "sweeper": {"_target_": BASIC_SWEEPER}}))
    assert not objective_wanted(OmegaConf.create({"mode": RunMode.RUN,
                                                  "sweeper": {"_target_": optuna}}))
    # the target the project's default config really names is the basic sweeper's
    assert compose_hydra([]).hydra.sweeper._target_ == BASIC_SWEEPER


def test_a_search_prints_its_expected_duration_at_the_start() -> None:
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    config = compose_hydra(["hparams_search=pair_policy_2x2x2"])
    line = search_duration_line(config)
    # the default search: 20 trials x 3 seeds x 30 s, one trial at a time = 30 min
    assert line is not None and line.startswith(
        "hyperparameter search: 20 trials x 3 seeds x up to 30 s each, 1 trial at a time: "
        "up to ~30 min")
    faster = compose_hydra(["hparams_search=pair_policy_2x2x2", "hydra.sweeper.n_trials=4",
                            "objective.seeds=1", "trainer.time_limit_s=5"])
    assert "up to ~20 s" in search_duration_line(faster)
    assert search_duration_line(compose_hydra([])) is None  # not a search


def test_the_sweeper_set_up_noise_is_silenced(monkeypatch) -> None:
    optuna = pytest.importorskip("optuna")
    monkeypatch.setattr(logging.getLogger("alembic"), "level", logging.NOTSET)
    previous = optuna.logging.get_verbosity()
    try:
        quiet_search_setup(compose_hydra([]))  # a plain sweep: nothing touched
        assert logging.getLogger("alembic").level == logging.NOTSET
        pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
        quiet_search_setup(compose_hydra(["hparams_search=pair_policy_2x2x2"]))
        assert logging.getLogger("alembic").level == logging.WARNING
        assert optuna.logging.get_verbosity() == optuna.logging.WARNING
    finally:
        optuna.logging.set_verbosity(previous)


def make_trial(sweep: Path, job: int, objective: float, times: list[float | None],
               params: str) -> None:
    """A trial of ``len(times)`` seeds; a seed reached rank 7 at its time, or only 8."""
    job_dir = sweep / str(job)
    (job_dir / ".hydra").mkdir(parents=True)
    (job_dir / "job_status.json").write_text(json.dumps(
        {"job": job, "status": "completed", "objective": objective,
         "overrides": [f"agent.learning_rate={params}", f"objective.seeds={len(times)}"]}))
    for seed, time in enumerate(times):
        run = job_dir / f"seed{seed}"
        run.mkdir()
        rank = 7 if time is not None else 8
        (run / "summary.json").write_text(json.dumps(
            {"run_id": f"r{job}{seed}", "seed": seed, "best_rank": rank, "best_known_rank": 7,
             "verified": True, "episodes": 1, "wall_time_s": 30.0, "status": "success"}))
        (run / "episodes.csv").write_text(
            "episode,wall_time_s,reward,best_rank\n"
            f"1,{time if time is not None else 29.0},-{rank},{rank}\n")


def write_results(sweep: Path, value: float, learning_rate: str) -> None:
    (sweep / "optimization_results.yaml").write_text(
        f"name: optuna\nbest_params:\n  agent.learning_rate: {learning_rate}\n"
        f"best_value: {value}\n")


def test_ties_and_all_miss_trials_are_said_plainly(tmp_path: Path) -> None:
    everyone_missed = tmp_path / "a"
    make_trial(everyone_missed, 0, 60.0, [None, None], "0.00012345678901234567")
    make_trial(everyone_missed, 1, 60.0, [None, None], "0.0031")
    make_trial(everyone_missed, 2, 90.0, [None, None], "0.02")
    write_results(everyone_missed, 60.0, "0.00012345678901234567")
    notes = search_notes(read_rows(everyone_missed),
                         {"best_value": 60.0, "best_params": {}})
    assert notes[0].startswith("2 trials tied at the best value 60 (jobs 0, 1)")
    assert notes[1].startswith("Every trial missed the target rank in every seed (3 trials)")
    markdown = to_markdown(read_rows(everyone_missed), everyone_missed)
    assert "best value 60 with `agent.learning_rate=0.000123`" in markdown  # readable
    assert "- 2 trials tied at the best value" in markdown

    one_hit = tmp_path / "b"
    make_trial(one_hit, 0, 12.5, [12.5, None, 4.0], "0.001")
    make_trial(one_hit, 1, 60.0, [None, None, None], "0.01")
    notes = search_notes(read_rows(one_hit), {"best_value": 12.5})
    assert notes == []  # a clear winner that reached the target: nothing to add
