"""The run's promises under faults, on the real ``mlo-train`` entry point: racing launches
into one run directory, ``resume=auto`` with a named directory, refused launches that touch
nothing, signals without a checkpoint manager and during start-up, bad values, and a disk
that fills up mid-run (a file-size limit makes the kernel refuse writes, as a full disk
would)."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import run_dirs

pytestmark = pytest.mark.slow

QUICK = ["agent=random", "agent.batch_size=2", "plot=none", "benchmark=none",
         "logger.print_every_s=1000"]
# Long enough to still be running when a second launch comes.
LONG = [*QUICK, "trainer.episodes=null", "trainer.time_limit_s=600", "trainer.stop_at_rank=1"]


def launch(root: Path, *overrides: str, limit_bytes: int | None = None) -> subprocess.Popen:
    """Start the installed ``mlo-train`` with outputs under ``root``."""
    env = {**os.environ, "MLO_OUTPUTS": str(root), "WANDB_MODE": "offline"}

    def limit() -> None:
        if limit_bytes is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, resource.RLIM_INFINITY))

    return subprocess.Popen([str(Path(sys.executable).with_name("mlo-train")), *overrides],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            cwd=root.parent, preexec_fn=limit)


def finish(process: subprocess.Popen, timeout: float = 180) -> tuple[int, str]:
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out + err


def wait_for(path: Path, text: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.is_file() and text in path.read_text(errors="replace"):
            return
        time.sleep(0.1)
    raise AssertionError(f"{text!r} never appeared in {path}")


def wait_until_caught(pid: int, signum: int, timeout: float = 60) -> None:
    """Until process ``pid`` has a handler for ``signum`` (``SigCgt`` of /proc/<pid>/status):
    a signal sent before that would kill it, which no run can prevent."""
    status = Path(f"/proc/{pid}/status")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        caught = next((line.split()[1] for line in status.read_text().splitlines()
                       if line.startswith("SigCgt:")), "0")
        if int(caught, 16) >> (signum - 1) & 1:
            return
        time.sleep(0.005)
    raise AssertionError(f"pid {pid} did not take signal {signum} within {timeout} s")


def snapshot(directory: Path) -> dict[str, bytes]:
    """Every file under ``directory`` by content (but the log, which a resume appends to,
    and the lock, which holds the pid of the last process that took it)."""
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*"))
            if p.is_file() and p.name not in ("train.log", ".lock")}


def test_racing_launches_into_one_run_dir_never_touch_each_others_files(tmp_path):
    root = tmp_path / "outputs"
    run_dir = tmp_path / "shared_run"
    for trial in range(3):
        first = launch(root, *LONG, f"hydra.run.dir={run_dir}", f"seed={trial}")
        second = launch(root, *LONG, f"hydra.run.dir={run_dir}", f"seed={trial + 10}")
        wait_for(run_dir / "train.log", "resume with:")
        # One of the two holds the directory; the other was refused before touching it.
        deadline = time.monotonic() + 60
        while first.poll() is None and second.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        refused = [p for p in (first, second) if p.poll() is not None]
        running = [p for p in (first, second) if p.poll() is None]
        assert len(refused) == 1 and len(running) == 1, [p.poll() for p in (first, second)]
        code, text = finish(refused[0])
        assert code == 2 and "is in use by another process" in text and "Traceback" not in text
        wait_for(run_dir / "run.json", "run_id")
        before = snapshot(run_dir)
        third = launch(root, *LONG, f"hydra.run.dir={run_dir}", "resume=auto")
        code, text = finish(third)
        assert code == 2 and "in use by another process" in text
        running[0].send_signal(signal.SIGTERM)
        code, text = finish(running[0])
        assert code == 0, text
        run = json.loads((run_dir / "run.json").read_text())
        summary = json.loads((run_dir / "summary.json").read_text())
        assert run["run_id"] == summary["run_id"] and summary["status"] == "interrupted"
        after = snapshot(run_dir)
        # The refused launches changed nothing the running run had written (its record and
        # identity; the run itself went on appending to its metrics).
        fixed = [name for name in before if name.startswith(".hydra/") or name == "run.json"]
        assert len(fixed) == 4 and all(after[name] == before[name] for name in fixed)
        assert not [name for name in after if "/launch-" in name]
        # The next trial starts clean: an existing run is never overwritten by a new one.
        code, text = finish(launch(root, *QUICK, "trainer.episodes=1",
                                   f"hydra.run.dir={run_dir}"))
        assert code == 2 and "already holds a run" in text and "Traceback" not in text
        assert snapshot(run_dir) == after
        os.rename(run_dir, tmp_path / f"done_{trial}")


def test_resume_auto_with_a_named_dir_means_that_dir(tmp_path):
    root = tmp_path / "outputs"
    code, text = finish(launch(root, *QUICK, "trainer.episodes=2", "resume=auto"))
    assert code == 0, text
    (elsewhere,) = run_dirs(root)
    other_id = json.loads((elsewhere / "run.json").read_text())["run_id"]
    named = tmp_path / "named"
    code, text = finish(launch(root, *QUICK, "trainer.episodes=2", "resume=auto",
                               f"hydra.run.dir={named}"))
    assert code == 0, text
    new_id = json.loads((named / "run.json").read_text())["run_id"]
    assert new_id != other_id  # a new run in the named dir, not the one elsewhere
    assert f"hydra.run.dir={named.resolve()} resume=auto" in text  # the printed command
    # ... and that command continues it.
    code, text = finish(launch(root, *QUICK, "trainer.episodes=4", "resume=auto",
                               f"hydra.run.dir={named}"))
    assert code == 0, text
    summary = json.loads((named / "summary.json").read_text())
    assert summary["run_id"] == new_id and summary["episodes"] == 4
    assert (named / ".hydra" / "config.yaml").is_file()
    # A named dir holding a run whose checkpoints are all unusable is refused, untouched.
    for checkpoint in (named / "checkpoints").glob("*.pt"):
        checkpoint.write_bytes(b"not a checkpoint")
    before = snapshot(named)
    code, text = finish(launch(root, *QUICK, "trainer.episodes=6", "resume=auto",
                               f"hydra.run.dir={named}"))
    assert code == 2 and "no valid checkpoint" in text and "Traceback" not in text
    assert snapshot(named) == before


@pytest.mark.parametrize(("override", "message"), [
    ("+trainer.bogus=1", "trainer.bogus=1 is invalid; accepted: no such key"),
    ("env.coefficients=[5]", "env.coefficients=[5] is invalid"),
    ("trainer.time_limit_s=null", "a run needs one budget"),
])
def test_bad_values_are_refused_and_leave_no_folder(tmp_path, override, message):
    root = tmp_path / "outputs"
    code, text = finish(launch(root, *QUICK, override))
    assert code == 2 and message in text and "Traceback" not in text
    assert not root.exists() or list(root.rglob("*")) == []  # not even runs/<date>/


def test_device_cuda_is_refused_without_a_cuda_device(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present: device=cuda is accepted here")
    code, text = finish(launch(tmp_path / "outputs", *QUICK, "device=cuda"))
    assert code == 2 and "device='cuda' is invalid; accepted: cpu here" in text
    assert "Traceback" not in text


def test_sigterm_without_checkpoints_still_writes_the_summary(tmp_path):
    root = tmp_path / "outputs"
    run_dir = tmp_path / "run"
    process = launch(root, *LONG, "checkpoint=none", f"hydra.run.dir={run_dir}")
    wait_for(run_dir / "train.log", "resume with:")
    time.sleep(0.5)
    process.send_signal(signal.SIGTERM)
    code, text = finish(process)
    assert code == 0, text
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["stop_reason"] == "signal_SIGTERM"


def test_a_signal_during_start_up_ends_the_run_cleanly(tmp_path):
    root = tmp_path / "outputs"
    run_dir = tmp_path / "run"
    process = launch(root, *LONG, f"hydra.run.dir={run_dir}")
    wait_until_caught(process.pid, signal.SIGTERM)  # the first import; torch, Hydra still load
    process.send_signal(signal.SIGTERM)
    code, text = finish(process)
    assert code == 0, text  # not -15: the run saw the signal and stopped before episode 1
    assert "Traceback" not in text
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["episodes"] == 0


@pytest.mark.parametrize(("checkpoint", "file", "stop_reason"), [
    ("checkpoint=none", "metrics.jsonl", "write_failed"),
    ("checkpoint.every_episodes=5", "ckpt_e0000005.pt", "checkpoint_failed"),
])
def test_a_disk_that_fills_up_mid_run_ends_in_one_message(tmp_path, checkpoint, file,
                                                          stop_reason):
    root = tmp_path / "outputs"
    run_dir = tmp_path / "run"
    # metrics.jsonl grows past 12 kB after a few dozen episodes, a checkpoint is larger.
    process = launch(root, *QUICK, "plot=live", "trainer.episodes=100000",
                     "trainer.stop_at_rank=1", checkpoint, f"hydra.run.dir={run_dir}",
                     limit_bytes=12_000)
    code, text = finish(process)
    assert code == 1 and "Traceback" not in text
    assert "cannot write" in text and file in text
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "failed" and summary["stop_reason"] == stop_reason
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["episode"] for line in lines] == list(range(1, len(lines) + 1))


def test_a_run_dir_where_nothing_can_be_written_ends_in_one_message(tmp_path):
    root = tmp_path / "outputs"
    run_dir = tmp_path / "run"
    code, text = finish(launch(root, *QUICK, "trainer.episodes=2", f"hydra.run.dir={run_dir}",
                               limit_bytes=1))
    assert code == 1 and "Traceback" not in text and "cannot write" in text
    assert not (run_dir / "summary.json").exists()
