"""Crash safety with real processes: SIGKILL at 20 random moments (each followed by a check
and ``resume=auto``), SIGINT and SIGTERM (clean exit with a final checkpoint), the exit code
and message of a resume that cannot work, and the learning agent (``pair_policy``: network,
Adam, curriculum, chains) killed and resumed twice, replaying the uninterrupted run exactly.

Starting ``mlo-train`` costs seconds of imports (torch, Hydra) on a loaded machine, so most
processes here come from a fork server: one Python process imports ``mlo_exp.train`` once,
then forks a child per run that calls the real Hydra entry point (``train.main()``) with its
own argv, environment and log file. Each child is a real training process, killed with real
signals. The SIGINT test uses the installed ``mlo-train`` executable itself.
"""

from __future__ import annotations

import csv
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mlo_exp.run.checkpoint import CheckpointLog, load_checkpoint
from mlo_exp.run.resume import newest_valid

FAST = ["agent=random", "agent.batch_size=2", "trainer.time_limit_s=null", "trainer.episodes=200",
        "trainer.stop_at_rank=1", "logger.print_every_s=1000"]

FORK_SERVER = r"""
import json, os, sys
import mlo_exp.train, mlo_exp.run.experiment, hydra  # paid once: children start with torch loaded
import torch._dynamo  # imported by torch.optim's first optimiser (seconds): paid once too
print("ready", flush=True)
for line in sys.stdin:
    job = json.loads(line)
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.chdir(job["cwd"])
            os.environ.update(job["env"])
            out = os.open(job["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            os.dup2(out, 1)
            os.dup2(out, 2)
            os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
            sys.argv = ["mlo-train", *job["argv"]]
            # A real launch is a new process with its own run-directory token; a fork of this
            # server would share the server's and meet a sibling started in the same second.
            import secrets, mlo_exp.config
            mlo_exp.config._PROCESS_TOKEN = secrets.token_hex(3)
            try:
                mlo_exp.train.main()
                code = 0
            except SystemExit as exit:
                code = exit.code if isinstance(exit.code, int) else int(exit.code is not None)
        except BaseException:
            import traceback
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    print(pid, flush=True)
    _, status = os.waitpid(pid, 0)
    print(os.waitstatus_to_exitcode(status), flush=True)
"""


class ForkServer:
    """Starts training processes (children of one pre-imported server), one at a time."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
        self.process = subprocess.Popen([sys.executable, "-c", FORK_SERVER], text=True,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        assert self.process.stdout.readline().strip() == "ready"
        self.count = 0

    def start(self, argv: list[str], outputs: Path) -> tuple[int, Path]:
        self.count += 1
        log = self.workdir / f"process{self.count}.log"
        job = {"argv": argv, "env": {"MLO_OUTPUTS": str(outputs)}, "cwd": str(self.workdir),
               "log": str(log)}
        self.process.stdin.write(json.dumps(job) + "\n")
        self.process.stdin.flush()
        return int(self.process.stdout.readline()), log

    def wait(self) -> int:
        """The exit code of the last child (negative: killed by that signal)."""
        return int(self.process.stdout.readline())

    def run(self, argv: list[str], outputs: Path) -> tuple[int, str]:
        _, log = self.start(argv, outputs)
        code = self.wait()
        return code, log.read_text()

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=30)


@pytest.fixture(scope="module")
def fork_server(tmp_path_factory):
    server = ForkServer(tmp_path_factory.mktemp("forkserver"))
    yield server
    server.close()


def wait_for_text(path: Path, text: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text(errors="replace"):
            return
        time.sleep(0.01)
    raise AssertionError(f"{text!r} did not appear in {path}: {path.read_text()[-2000:]}")


def metrics_rows(run_dir: Path) -> list[dict]:
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in ("wall_time_s", "run_id")} for r in rows]


def episode_rows(run_dir: Path) -> list[dict]:
    with open(run_dir / "episodes.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [{k: v for k, v in r.items() if k not in ("wall_time_s", "run_id")} for r in rows]


def wait_for_checkpoint(run_dir: Path, episode: int, pid: int, timeout: float = 60) -> None:
    """Until the run's checkpoint log lists a kept checkpoint of ``episode`` or later."""
    path = run_dir / "checkpoints" / "checkpoint_log.json"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        log = CheckpointLog.read(path) if path.exists() else None
        kept = log.kept() if log is not None else []
        if kept and kept[0]["episode"] >= episode:
            return
        time.sleep(0.005)
    os.kill(pid, signal.SIGKILL)
    raise AssertionError(f"no checkpoint of episode {episode} in {path} after {timeout} s")


@pytest.mark.slow
def test_sigkill_at_20_random_moments_then_resume_auto(fork_server, tmp_path):
    seed = int.from_bytes(os.urandom(4), "little")
    moments = random.Random(seed)
    root = tmp_path / "outputs"
    chain = [*FAST, "trainer.episodes=1000000", "checkpoint.every_episodes=1",
             "checkpoint.keep_last=2", "resume=auto"]
    run_dir, last_episode, last_logged, resumed_from = None, 0, 0, []
    for kill in range(20):
        pid, log = fork_server.start(chain, root)
        wait_for_text(log, "resume with:")  # set up; from here on it trains and saves
        time.sleep(moments.uniform(0.0, 0.4))
        os.kill(pid, signal.SIGKILL)
        assert fork_server.wait() == -signal.SIGKILL, f"kill {kill} (seed {seed})"
        text = log.read_text()
        if "resuming run" in text:
            resumed_from.append(text.split("(episode ", 1)[1].split(",", 1)[0])
        logs = list(root.glob("**/checkpoints/checkpoint_log.json"))
        for path in logs:
            json.loads(path.read_text())  # always valid JSON
        if not logs:
            continue  # killed before its first checkpoint: the next process starts anew
        assert len(logs) == 1, f"kill {kill}: resume=auto started a second run (seed {seed})"
        current = logs[0].parent.parent
        assert run_dir in (None, current)
        run_dir = current
        point = newest_valid(run_dir)
        newest_logged = CheckpointLog.read(logs[0]).kept()[0]
        assert point is not None and point.skipped == [], f"kill {kill} (seed {seed})"
        assert point.episode >= newest_logged["episode"] >= last_logged
        assert point.episode >= last_episode
        last_logged = newest_logged["episode"]
        assert load_checkpoint(point.path)["run_id"] == json.loads(
            (run_dir / "run.json").read_text())["run_id"]
        last_episode = point.episode
    assert run_dir is not None and last_episode >= 20, (last_episode, seed)
    assert len(resumed_from) >= 15, f"only {len(resumed_from)} of 20 resumed (seed {seed})"

    # The chain, finished, equals a run that was never interrupted.
    target = last_episode + 5
    code, text = fork_server.run([*chain[:-4], f"trainer.episodes={target}", "resume=auto"],
                                 root)
    assert code == 0, text
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["episodes"] == target and summary["run_dir"] == str(run_dir)
    code, text = fork_server.run([*FAST, f"trainer.episodes={target}", "checkpoint=none"],
                                 tmp_path / "reference")
    assert code == 0, text
    (reference,) = (p.parent for p in (tmp_path / "reference").glob("**/summary.json"))
    assert metrics_rows(run_dir) == metrics_rows(reference)
    durations = [e["run_duration_s"] for e in CheckpointLog.read(
        run_dir / "checkpoints" / "checkpoint_log.json").entries]
    assert durations == sorted(durations)  # run time continues across resumes


@pytest.mark.slow
def test_sigterm_saves_a_final_checkpoint_and_exits_cleanly(fork_server, tmp_path):
    root = tmp_path / "outputs"
    pid, log = fork_server.start([*FAST, "trainer.episodes=1000000",
                                  "checkpoint.every_episodes=100000"], root)
    wait_for_text(log, "resume with:")
    time.sleep(0.3)
    os.kill(pid, signal.SIGTERM)
    assert fork_server.wait() == 0, log.read_text()
    (run_dir,) = (p.parent for p in root.glob("**/summary.json"))
    check_final_checkpoint(run_dir, "SIGTERM")


@pytest.mark.slow
def test_sigint_saves_a_final_checkpoint_and_exits_cleanly(tmp_path):
    """The installed mlo-train executable, interrupted as Ctrl-C would."""
    root = tmp_path / "outputs"
    log = tmp_path / "train.out"
    env = {**os.environ, "MLO_OUTPUTS": str(root), "WANDB_MODE": "offline"}
    with open(log, "w") as out:
        process = subprocess.Popen(
            [str(Path(sys.executable).with_name("mlo-train")), *FAST,
             "trainer.episodes=1000000", "checkpoint.every_episodes=100000"],
            stdout=out, stderr=subprocess.STDOUT, env=env, cwd=tmp_path)
        try:
            wait_for_text(log, "resume with:", timeout=120)
            time.sleep(0.3)
            process.send_signal(signal.SIGINT)
            assert process.wait(timeout=60) == 0, log.read_text()
        finally:
            process.kill()
    (run_dir,) = (p.parent for p in root.glob("**/summary.json"))
    check_final_checkpoint(run_dir, "SIGINT")
    assert "SIGINT received" in log.read_text()


def check_final_checkpoint(run_dir: Path, signal_name: str) -> None:
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "interrupted"
    assert summary["stop_reason"] == f"signal_{signal_name}"
    entries = CheckpointLog.read(run_dir / "checkpoints" / "checkpoint_log.json").kept()
    assert entries[0]["reason"] == "signal"
    assert entries[0]["episode"] == summary["episodes"] == len(metrics_rows(run_dir)) > 0
    payload = load_checkpoint(run_dir / "checkpoints" / entries[0]["file"],
                              entries[0]["sha256"])
    assert payload["episode"] == summary["episodes"]


@pytest.mark.slow
def test_resume_that_cannot_work_exits_2_naming_the_problem(fork_server, tmp_path):
    root = tmp_path / "outputs"
    code, text = fork_server.run([*FAST, "trainer.episodes=2"], root)
    assert code == 0, text
    (run_json,) = root.glob("**/run.json")
    run_id = json.loads(run_json.read_text())["run_id"]
    code, text = fork_server.run([*FAST, "env=matmul_3x3x3", f"resume={run_id}"], root)
    assert code == 2
    assert "cannot resume" in text and "shape 2x2x2" in text and "shape 3x3x3" in text
    code, text = fork_server.run([*FAST, "resume=no-such-run"], root)
    assert code == 2 and "no run with that run_id" in text
    assert len(list(root.glob("**/run.json"))) == 1  # the failed attempts left no run dirs
    assert len([p for p in root.glob("runs/*/*") if p.is_dir()]) == 1


# A short pair_policy run: a warm-up episode, then search, learning and the rank curriculum.
PAIR_EPISODES = 100  # long enough that a kill after episode 20 lands before the end
PAIR = ["agent=pair_policy", "agent.batch_size=8", "agent.steps_per_episode=5",
        f"trainer.episodes={PAIR_EPISODES}", "trainer.time_limit_s=null",
        "trainer.stop_at_rank=1", "checkpoint.every_episodes=5", "checkpoint.keep_last=2",
        "logger.print_every_s=1000", "plot=none", "benchmark=none"]


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_pair_policy_killed_twice_then_resumed_replays_the_uninterrupted_run(
        fork_server, tmp_path, signum):
    """Killed after its episode-10 and episode-20 checkpoints, each time resumed with
    ``resume=auto``: metrics.jsonl and episodes.csv equal an uninterrupted run's, wall time
    aside. (Adam's moments once went missing on resume: the runs parted two episodes after.)"""
    reference = tmp_path / "reference"
    code, text = fork_server.run([*PAIR, f"hydra.run.dir={reference}"], tmp_path / "outputs")
    assert code == 0, text
    run_dir = tmp_path / "killed"
    chain = [*PAIR, f"hydra.run.dir={run_dir}", "resume=auto"]
    resumed_from = []
    for kill_after in (10, 20):
        pid, log = fork_server.start(chain, tmp_path / "outputs")
        wait_for_checkpoint(run_dir, kill_after, pid)
        os.kill(pid, signum)
        code = fork_server.wait()
        text = log.read_text()
        if signum == signal.SIGKILL:
            assert code == -signal.SIGKILL, text
        else:  # the episode in flight finishes, a final checkpoint, a clean exit
            summary = json.loads((run_dir / "summary.json").read_text())
            assert code == 0 and summary["status"] == "interrupted", text
        assert newest_valid(run_dir).episode < PAIR_EPISODES, "killed too late to matter"
        if "resuming run" in text:
            resumed_from.append(int(text.split("(episode ", 1)[1].split(",", 1)[0]))
    code, text = fork_server.run(chain, tmp_path / "outputs")
    assert code == 0 and "resuming run" in text, text
    resumed_from.append(int(text.split("(episode ", 1)[1].split(",", 1)[0]))
    assert len(resumed_from) == 2 and 10 <= resumed_from[0] < 20 <= resumed_from[1], resumed_from
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["episodes"] == PAIR_EPISODES and summary["status"] == "success"
    rows = metrics_rows(run_dir)
    assert [r["episode"] for r in rows] == list(range(1, PAIR_EPISODES + 1))
    assert any("policy_loss" in r for r in rows[: resumed_from[0]])  # it learned before
    assert rows == metrics_rows(reference)
    assert episode_rows(run_dir) == episode_rows(reference)
