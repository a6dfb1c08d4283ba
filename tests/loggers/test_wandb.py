"""The W&B backend against real wandb in offline mode; what it wrote is read back from disk."""

# Fixtures come from logger_fixtures (imported, since a tests/loggers/conftest.py would
# shadow tests/conftest.py); pytest fixture arguments re-bind their names by design.
# ruff: noqa: F811

from __future__ import annotations

import json
import os
import re
import signal
from pathlib import Path

import pytest

from mlo_exp.agents.random import RandomAgent
from mlo_exp.algorithms.library import strassen
from mlo_exp.config import validate
from mlo_exp.loggers.base import LoggerGroup
from mlo_exp.loggers.console import format_summary
from mlo_exp.loggers.files import FilesLogger
from mlo_exp.loggers.wandb import WandbLogger
from mlo_exp.loggers.wandb_offline import OfflineRun, read_offline_run
from mlo_exp.run import experiment
from mlo_exp.run_context import RunContext
from tests.loggers.logger_fixtures import module_wandb_env, offline_wandb, run_context, run_dirs  # noqa: F401

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
                                  "reason": "periodic+best" if episode == 4 else "periodic"},
                                 path)
            if episode == 2:
                path.unlink()  # pruned at once: the upload still has its staged copy
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


def test_full_episode_table_for_old_servers(run_context: RunContext) -> None:
    logger = WandbLogger(mode="offline", episode_table="full", table_every_s=0)
    logger.start(run_context, {})
    for episode in (1, 2, 3):
        logger.log_episode(record(run_context, episode))
    logger.finish()
    recorded = read_offline_run(run_context.run_dir)
    sizes = [row["episodes_table/nrows"] for _, row in sorted(recorded.history.items())]
    assert sizes == [1, 2, 3]  # each log holds every row so far
    assert [row[0] for row in recorded.table_rows("episodes_table")[1]] == [1, 2, 3]


def test_a_checkpoint_saved_twice_under_one_name_is_uploaded_twice(run_context) -> None:
    logger = WandbLogger(mode="offline")
    logger.start(run_context, {})
    path = run_context.run_dir / "checkpoints" / "ckpt_e0000002.pt"
    path.parent.mkdir()
    for content, reason in ((b"periodic", "periodic"), (b"final", "end")):
        logger.log_episode(record(run_context, 2))
        # The manager rewrites the same name (e.g. at the end), atomically: a new file.
        path.with_suffix(".tmp").write_bytes(content)
        path.with_suffix(".tmp").replace(path)
        logger.log_checkpoint({"episode": 2, "step": 16, "run_duration_s": 0.2,
                               "file": path.name, "reason": reason}, path)
    logger.finish()
    staged = sorted((run_context.run_dir / "wandb" / "checkpoint-staging").rglob("*.pt"))
    assert [p.read_bytes() for p in staged] == [b"periodic", b"final"]  # neither replaced
    recorded = read_offline_run(run_context.run_dir)
    assert recorded.exit_code == 0
    assert len([a for a in recorded.artifacts if a["type"] == "model"]) == 2


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


# --- failure never stops a run: real wandb failures ------------------------------------
def run_experiment(compose_config, tmp_path: Path, *overrides: str) -> tuple[dict, Path]:
    """One in-process run (random agent, 3 episodes) with ``overrides``; returns its
    summary.json and run dir."""
    cfg = compose_config(["agent=random", "trainer.episodes=3", "trainer.time_limit_s=null",
                          *overrides])
    run_dir = tmp_path / "run"
    summary = experiment.run(cfg, validate(cfg), run_dir)
    assert summary.episodes == 3 and summary.status == "success"
    return json.loads((run_dir / "summary.json").read_text()), run_dir


def wandb_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.levelname == "WARNING" and "'wandb'" in r.getMessage()]


def assert_run_went_on(summary: dict, run_dir: Path, failed_in: str, error: str) -> None:
    failure = summary["logger_failures"]["wandb"]
    assert failure.startswith(f"{failed_in}: ") and error in failure
    assert "not sent: " in failure and "3 episodes" in failure and "the summary" in failure
    assert len((run_dir / "metrics.jsonl").read_text().splitlines()) == 3
    assert re.search(r"not logged by +wandb \(", format_summary(summary))


def test_online_without_api_key_warns_once_and_goes_on(compose_config, tmp_path, caplog):
    # The autouse fixture removed WANDB_API_KEY and pointed HOME at an empty dir (no netrc).
    summary, run_dir = run_experiment(compose_config, tmp_path, "logger=wandb",
                                      "logger.mode=online")
    assert_run_went_on(summary, run_dir, "start", "No API key")
    assert len(wandb_warnings(caplog)) == 1


def test_unreachable_server_times_out_and_goes_on(compose_config, tmp_path, caplog,
                                                  monkeypatch):
    monkeypatch.setenv("WANDB_API_KEY", "0123456789" * 4)
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")  # nothing listens there
    summary, run_dir = run_experiment(compose_config, tmp_path, "logger=wandb",
                                      "logger.mode=online", "logger.init_timeout_s=2")
    # W&B's own error when wandb.init gave up in time, else the run's own deadline (a slow
    # import of wandb leaves wandb.init little of the 2 s): see test_wandb_timeout.py.
    error = "CommError" if "CommError" in summary["logger_failures"]["wandb"] else \
        "TimeoutError: W&B did not start within 2 s"
    assert_run_went_on(summary, run_dir, "start", error)
    assert len(wandb_warnings(caplog)) == 1


def test_wandb_not_importable_leaves_tensorboard_running(compose_config, tmp_path, caplog,
                                                         monkeypatch):
    # W&B runs in a child process: shadow wandb there with a package whose import fails.
    shadow = tmp_path / "no-wandb"
    (shadow / "wandb").mkdir(parents=True)
    (shadow / "wandb" / "__init__.py").write_text("raise ImportError('no wandb here')\n")
    monkeypatch.setenv("PYTHONPATH", str(shadow))
    summary, run_dir = run_experiment(compose_config, tmp_path, "logger=many")
    assert_run_went_on(summary, run_dir, "start", "wandb is not importable")
    assert len(wandb_warnings(caplog)) == 1
    assert list((run_dir / "tensorboard").rglob("events.out.tfevents.*"))


def test_a_call_that_raises_drops_wandb_and_closes_its_run(run_context, tmp_path, caplog):
    group = LoggerGroup([FilesLogger(run_context.run_dir), WandbLogger(mode="offline")])
    group.start(run_context, {"run_id": run_context.run_id})
    group.log_episode(record(run_context, 1))
    group.log_episode(record(run_context, 2))
    missing = run_context.run_dir / "ckpt_000002.pt"  # never written: the Artifact raises
    group.log_checkpoint({"episode": 2, "step": 16, "run_duration_s": 0.2,
                          "file": missing.name, "reason": "interval"}, missing)
    group.log_episode(record(run_context, 3))
    summary: dict = {}
    group.log_summary(summary)
    group.finish("success")
    failure = summary["logger_failures"]["wandb"]
    assert failure.startswith("log_checkpoint: ValueError") and "Path is not a file" in failure
    assert failure.endswith("not sent: 1 episode, 1 checkpoint, the summary")
    assert len(wandb_warnings(caplog)) == 1
    assert len((run_context.run_dir / "metrics.jsonl").read_text().splitlines()) == 3
    recorded = read_offline_run(run_context.run_dir)
    assert recorded.exit_code == 1  # abandoned: the W&B run was closed, not leaked
    assert [s for s, row in recorded.history.items() if "reward" in row] == [1, 2]


def test_wandb_runs_in_its_own_process_that_ignores_ctrl_c(run_context: RunContext) -> None:
    logger = WandbLogger(mode="offline")
    logger.start(run_context, {})
    assert logger._process.pid != os.getpid()
    logger.log_episode(record(run_context, 1))
    logger.sync()
    os.kill(logger._process.pid, signal.SIGINT)  # Ctrl-C is the run's to handle
    logger.log_episode(record(run_context, 2))
    logger.finish()
    assert logger._process.returncode == 0
    recorded = read_offline_run(run_context.run_dir)
    assert recorded.exit_code == 0
    assert [s for s, row in recorded.history.items() if "reward" in row] == [1, 2]


def test_a_killed_run_still_gets_its_wandb_run_closed(run_context: RunContext) -> None:
    logger = WandbLogger(mode="offline")
    logger.start(run_context, {})
    logger.log_episode(record(run_context, 1))
    logger._connection.close()  # what the W&B process sees when the run's process dies
    logger._process.wait(60)
    recorded = read_offline_run(run_context.run_dir)
    assert recorded.exit_code == 1  # closed as failed, not left open
    assert [s for s, row in recorded.history.items() if "reward" in row] == [1]


def test_the_wandb_process_dying_drops_wandb_and_the_run_goes_on(run_context, caplog):
    group = LoggerGroup([FilesLogger(run_context.run_dir), WandbLogger(mode="offline")])
    group.start(run_context, {"run_id": run_context.run_id})
    group.log_episode(record(run_context, 1))
    group.sync()
    (wandb_logger,) = [m for m in group.loggers if isinstance(m, WandbLogger)]
    wandb_logger._process.kill()
    wandb_logger._process.wait(60)
    group.log_episode(record(run_context, 2))
    group.log_episode(record(run_context, 3))
    summary: dict = {}
    group.log_summary(summary)
    group.finish("success")
    failure = summary["logger_failures"]["wandb"]
    assert "the W&B process exited (code -9" in failure, failure
    assert len(wandb_warnings(caplog)) == 1
    assert len((run_context.run_dir / "metrics.jsonl").read_text().splitlines()) == 3


def test_backend_that_cannot_be_built_is_left_out(compose_config, run_context, caplog):
    cfg = compose_config(["logger=wandb", "logger._target_=mlo_exp.loggers.nowhere.Nothing"])
    group = experiment.build_logger(cfg, run_context)
    assert [type(m).__name__ for m in group.loggers] == ["FilesLogger", "ConsoleLogger"]
    assert group.failures["nothing"].startswith("setup: ")
    assert len([r for r in caplog.records if r.levelname == "WARNING"]) == 1


@pytest.mark.parametrize("error, status, exit_code",
                         [(KeyboardInterrupt, "interrupted", 1), (RuntimeError, "failed", 1)])
def test_finish_is_called_on_ctrl_c_and_exceptions(compose_config, tmp_path, monkeypatch,
                                                   error, status, exit_code):
    calls = {"n": 0}
    original = RandomAgent.run_episode

    def run_episode(self):  # the third episode is interrupted / crashes
        calls["n"] += 1
        if calls["n"] == 3:
            raise error("stop here")
        return original(self)

    monkeypatch.setattr(RandomAgent, "run_episode", run_episode)
    cfg = compose_config(["agent=random", "trainer.episodes=5", "logger=wandb",
                          "logger.mode=offline"])
    run_dir = tmp_path / "run"
    if error is KeyboardInterrupt:
        assert experiment.run(cfg, validate(cfg), run_dir).status == "interrupted"
    else:
        with pytest.raises(RuntimeError):
            experiment.run(cfg, validate(cfg), run_dir)
    recorded = read_offline_run(run_dir)
    assert recorded.exit_code == exit_code
    assert recorded.summary["status"] == status
    assert [s for s, row in recorded.history.items() if "reward" in row] == [1, 2]


# --- the real entry point -----------------------------------------------------------------
@pytest.mark.slow
def test_mlo_train_without_api_key_exits_0_and_says_what_was_not_sent(run_train, tmp_path):
    result = run_train("logger=wandb", "logger.mode=online", "agent=random",
                       "trainer.episodes=3")
    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    assert output.count("logger 'wandb' failed in start (UsageError: No API key") == 1
    assert re.search(r"not logged by +wandb \(start: UsageError: .*not sent: the run start, "
                     r"3 episodes, (1 checkpoint, )?the summary\)", output)
    (run_dir,) = run_dirs(tmp_path / "outputs")
    assert len((run_dir / "metrics.jsonl").read_text().splitlines()) == 3
    saved = json.loads((run_dir / "summary.json").read_text())
    assert saved["logger_failures"]["wandb"].startswith("start: UsageError")


@pytest.mark.slow
def test_mlo_train_multirun_is_one_wandb_group_and_leaks_no_run(run_train, tmp_path):
    result = run_train("-m", "logger=wandb", "agent=random", "trainer.episodes=2", "seed=0,1")
    assert result.returncode == 0, result.stderr
    dirs = run_dirs(tmp_path / "outputs")
    recorded = [read_offline_run(d) for d in dirs]
    sweep = dirs[0].parent
    assert [r.run["group"] for r in recorded] == [f"{sweep.parent.name}_{sweep.name}"] * 2
    assert [r.run["id"] for r in recorded] == \
        [json.loads((d / "run.json").read_text())["run_id"] for d in dirs]
    assert [r.exit_code for r in recorded] == [0, 0]  # both finished
    assert all(r.config["seed"] == s for r, s in zip(recorded, (0, 1), strict=True))


@pytest.mark.slow
def test_a_resumed_run_reads_back_as_one_run_without_link_warnings(run_train, tmp_path):
    run_dir = tmp_path / "run"
    common = ("logger=wandb", "agent=greedy", "benchmark=none", "plot=none",
              f"hydra.run.dir={run_dir}")
    quiet = {"WANDB_SILENT": "false"}  # W&B's own warnings would show
    first = run_train(*common, "trainer.episodes=3", env=quiet)
    assert first.returncode == 0, first.stderr
    second = run_train(*common, "trainer.episodes=6", "resume=auto", env=quiet)
    assert second.returncode == 0, second.stderr
    for output in (first.stderr, second.stderr):  # files go in without W&B's link warnings
        assert "Symlinked" not in output and "into the W&B run directory" not in output
    assert len(list((run_dir / "wandb").glob("offline-run-*"))) == 2  # one per process
    recorded = read_offline_run(run_dir)
    assert len(recorded.directories) == 2 and recorded.exit_code == 0
    assert sorted(s for s, row in recorded.history.items() if "reward" in row) == \
        [1, 2, 3, 4, 5, 6]
    assert recorded.run["id"] == json.loads((run_dir / "run.json").read_text())["run_id"]
    assert "algorithm.json" in recorded.files
    _, rows = recorded.table_rows("episodes_table")
    assert [row[0] for row in rows] == [1, 2, 3, 4, 5, 6]


def test_the_wandb_process_lowers_its_priority_and_its_childrens_after_start() -> None:
    # Not before wandb.init: a niced start-up waited for a core on a busy machine and W&B's
    # clock began long after the run's. After it: this process and its children (W&B's
    # service) at NICENESS.
    import subprocess
    import sys

    code = ("import os, subprocess, time\n"
            "from mlo_exp.loggers.wandb_session import NICENESS, lower_priority\n"
            "before = os.getpriority(os.PRIO_PROCESS, 0)\n"
            "child = subprocess.Popen(['sleep', '5'])\n"
            "lower_priority()\n"
            "print(before, os.getpriority(os.PRIO_PROCESS, 0),\n"
            "      os.getpriority(os.PRIO_PROCESS, child.pid), NICENESS)\n"
            "child.kill()\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True).stdout.split()
    before, after, child, niceness = map(int, out)
    assert after == min(before + niceness, 19) and child == after
