"""The W&B backend against real wandb in offline mode; what it wrote is read back from disk."""

from __future__ import annotations

import json

import pytest

from mlo_exp.library import strassen
from mlo_exp.loggers.base import LoggerGroup
from mlo_exp.loggers.files import FilesLogger
from mlo_exp.loggers.wandb import WandbLogger
from mlo_exp.loggers.wandb_offline import OfflineRun, read_offline_run
from mlo_exp.run_context import RunContext

EPISODES = 5


def record(run: RunContext, episode: int) -> dict:
    return {"run_id": run.run_id, "episode": episode, "moves": 8 * episode,
            "wall_time_s": 0.1 * episode, "reward": -8.0 - episode, "residual_norm": 1.5 / episode,
            "rank_used": 8, "solved": episode == 3, "best_rank": 7 if episode >= 3 else None,
            "epsilon": 0.5}


@pytest.fixture(scope="module")
def offline(tmp_path_factory: pytest.TempPathFactory,
            module_wandb_env: pytest.MonkeyPatch) -> tuple[RunContext, OfflineRun, dict]:
    """One offline W&B run, written as a sweep job would, with every kind of call; shared by
    the tests below (wandb's start-up is slow)."""
    root = tmp_path_factory.mktemp("wandb")
    module_wandb_env.setenv("WANDB_PROJECT", "project-from-env")
    run_dir = root / "multirun" / "2026-01-02" / "10-11-12_abcdef" / "0"
    run_dir.mkdir(parents=True)
    run = RunContext.create(run_dir, 3, ["matmul2x2x2", "random"], job_num=0)
    backend = WandbLogger(mode="offline", tags=["t1"], notes="a note", table_every_s=1e9)
    group = LoggerGroup([FilesLogger(run_dir), backend])
    group.start(run, {"run_id": run.run_id, "env": {"shape": [2, 2, 2]}, "seed": 3})
    for episode in range(1, EPISODES + 1):
        if episode == 3:
            algorithm = strassen()
            algorithm.save(run_dir / "algorithm.json")
            group.log_new_best(algorithm, run_dir / "algorithm.json",
                               {"run_id": run.run_id, "episode": 3, "rank": 7})
        group.log_episode(record(run, episode))
        if episode in (2, 4):
            path = run_dir / "checkpoints" / f"ckpt_{episode:06d}.pt"
            path.parent.mkdir(exist_ok=True)
            path.write_bytes(b"checkpoint %d" % episode)
            group.log_checkpoint({"episode": episode, "step": 8 * episode,
                                  "run_duration_s": 0.1 * episode, "file": path.name,
                                  "reason": "best" if episode == 4 else "interval"}, path)
    group.log_benchmark([{"Algorithm": "strassen", "Size": 64, "Time (ms)": 0.5},
                         {"Algorithm": "school", "Size": 64, "Time (ms)": 0.7}],
                        {"run_id": run.run_id, "device": "cpu", "gpu": None, "cupy": None})
    summary = {"run_id": run.run_id, "best_rank": 7, "episodes": EPISODES, "status": "success"}
    group.log_summary(summary)
    group.finish("success")
    return run, read_offline_run(run_dir), summary


def test_identity_config_and_group(offline) -> None:
    run, recorded, summary = offline
    assert recorded.run["id"] == run.run_id
    assert recorded.run["name"] == run.run_name and "random" in run.run_name
    assert recorded.run["project"] == "project-from-env"  # WANDB_PROJECT honoured
    assert recorded.run["group"] == "2026-01-02_10-11-12_abcdef"  # the sweep
    assert recorded.run["tags"] == ["t1"] and recorded.run["notes"] == "a note"
    assert recorded.config["env"] == {"shape": [2, 2, 2]}
    assert recorded.config["run"]["run_id"] == run.run_id
    assert summary["logger_failures"] == {}
    assert recorded.exit_code == 0


def test_one_step_axis_every_episode_logged(offline) -> None:
    _, recorded, _ = offline
    steps = [s for s, row in recorded.history.items() if "reward" in row]
    assert steps == list(range(1, EPISODES + 1))
    assert all(recorded.history[s]["episode"] == s for s in steps)
    assert recorded.history[3]["solved"] == 1 and recorded.history[3]["best/rank"] == 7
    assert recorded.history[4]["checkpoint/step"] == 32
    assert "best_rank" not in recorded.history[1]  # None is left out, never logged as 0


def test_episode_table_is_cumulative(offline) -> None:
    run, recorded, _ = offline
    columns, rows = recorded.table_rows("episodes_table")
    assert columns == ["Episode", "Reward", "Residual", "Rank"]
    expected = [[e, -8.0 - e, 1.5 / e, 8] for e in range(1, EPISODES + 1)]
    assert rows == expected
    # Logged in increments (first episode, then the rest at the end), not one table per row.
    increments = [s for s, row in recorded.history.items() if "episodes_table/path" in row]
    assert len(increments) == 2


def test_checkpoints_table_files_and_artifacts(offline) -> None:
    run, recorded, _ = offline
    columns, rows = recorded.table_rows("checkpoints_summary")
    assert columns == ["Episode", "Step", "Run Duration (s)", "File"]
    assert rows == [[2, 16, 0.2, "ckpt_000002.pt"], [4, 32, 0.4, "ckpt_000004.pt"]]
    assert {"checkpoints/ckpt_000002.pt", "checkpoints/ckpt_000004.pt", "algorithm.json"} \
        <= set(recorded.files)
    models = [a for a in recorded.artifacts if a["type"] == "model"]
    assert [a["name"] for a in models] == [f"checkpoint-{run.run_id}"] * 2
    assert set(models[0]["aliases"]) == {"latest", "episode-2"}
    assert set(models[1]["aliases"]) == {"latest", "episode-4", "best"}
    assert models[1]["files"] == ["ckpt_000004.pt"]


def test_benchmark_table_facts_and_summary(offline) -> None:
    run, recorded, _ = offline
    columns, rows = recorded.table_rows("benchmark")
    assert columns[0] == "Source Run ID"
    assert [row[0] for row in rows] == [run.run_id, run.run_id]
    assert recorded.config["benchmark"]["device"] == "cpu"
    assert recorded.summary["best_rank"] == 7 and recorded.summary["status"] == "success"


def test_run_files_have_what_wandb_has(offline) -> None:
    run, recorded, _ = offline
    lines = (run.run_dir / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["reward"] for line in lines] == \
        [recorded.history[s]["reward"] for s in range(1, EPISODES + 1)]


def test_environment_fallbacks_and_explicit_group(monkeypatch, run_context: RunContext) -> None:
    monkeypatch.setenv("WANDB_ENTITY", "my-team")
    monkeypatch.setenv("WANDB_MODE", "disabled")
    chosen = WandbLogger().resolved_settings(run_context)
    assert chosen == {"entity": "my-team", "project": "mlo-exp", "mode": "disabled",
                      "group": None}
    chosen = WandbLogger(entity="me", project="p", mode="offline",
                         group="g").resolved_settings(run_context)
    assert chosen == {"entity": "me", "project": "p", "mode": "offline", "group": "g"}
    monkeypatch.setenv("WANDB_MODE", "dryrun-typo")
    with pytest.raises(ValueError, match="online, offline, disabled"):
        WandbLogger().resolved_settings(run_context)
