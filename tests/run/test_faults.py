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
UNSTABLE = ("wall_time_s", "flips_per_s", "attempts_per_s", "run_id")  # rates per wall second


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
FLIPGRAPH_Z2 = ["agent=flipgraph", "env=matmul_4x4x4_z2", "agent.walks=4",
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


# -- 2. signals at every stage ---------------------------------------------------------------
# Over Z with Strassen as the start: episode 1 holds a verified rank-7 algorithm, so the
# benchmark stage runs right after it.
WITH_BENCHMARK = ["agent=flipgraph", "env=matmul_2x2x2", "agent.start_from=strassen",
                  "agent.walks=1", "trainer.episodes=1", "plot=none",
                  "logger.print_every_s=1000", "benchmark.registry=false"]


def test_a_signal_during_the_benchmark_stage_stops_it_within_seconds(tmp_path):
    root, run_dir = tmp_path / "outputs", tmp_path / "run"
    process = launch(root, *WITH_BENCHMARK, "benchmark.sizes=[2048,4096]",
                     "benchmark.repeats=5", f"hydra.run.dir={run_dir}")
    wait_until(lambda: "benchmark: " in (run_dir / "train.log").read_text()
               if (run_dir / "train.log").is_file() else False, what="the benchmark stage")
    signalled = time.monotonic()
    process.send_signal(signal.SIGTERM)
    code, text = finish(process)
    # Before: the stage ran to its end (15-27 s more), status success; 12 s leaves room for
    # a loaded machine and still tells the two apart.
    assert time.monotonic() - signalled < 12, text
    assert code == 0 and "Traceback" not in text, text
    summary = json.loads((run_dir / "summary.json").read_text())
    assert (summary["status"], summary["stop_reason"]) == ("interrupted", "signal_SIGTERM")
    bench = json.loads((run_dir / "benchmark" / "benchmark.json").read_text())
    assert bench["status"] == "interrupted"


def test_signals_after_the_summary_never_kill_the_process(tmp_path):
    """SIGTERM every 10 ms from the moment ``summary.json`` exists until the process ends:
    exit 0 and the summary as written (before: exit 143 or 1 in most tries)."""
    root, run_dir = tmp_path / "outputs", tmp_path / "run"
    process = launch(root, *QUICK, "trainer.episodes=3", f"hydra.run.dir={run_dir}")
    wait_until(lambda: (run_dir / "summary.json").is_file() or process.poll() is not None,
               what="summary.json")
    while process.poll() is None:
        process.send_signal(signal.SIGTERM)
        time.sleep(0.01)
    code, text = finish(process)
    assert code == 0 and "Traceback" not in text, (code, text)
    assert json.loads((run_dir / "summary.json").read_text())["episodes"] == 3


def test_a_signal_at_launch_ends_the_process_with_nothing_or_an_interrupted_run(tmp_path):
    """Right at launch, before the interpreter has run any of mlo-exp's code (~0.1 s on a
    loaded machine), the kernel's default still applies: killed, nothing written. From the
    first line of ``mlo_exp.train`` on, the signal is the run's: exit 0, ``interrupted``."""
    root = tmp_path / "outputs"
    for trial, delay in enumerate((0.0, 0.05, 0.1, 0.2, 0.4)):
        run_dir = tmp_path / f"run{trial}"
        process = launch(root, *QUICK, "trainer.episodes=3", f"hydra.run.dir={run_dir}")
        time.sleep(delay)
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        code, text = finish(process, timeout=60)
        assert time.monotonic() - started < 30 and "Traceback" not in text, text
        if code == -signal.SIGTERM:
            assert not run_dir.exists()
        else:
            assert code == 0, text
            summary = json.loads((run_dir / "summary.json").read_text())
            assert summary["status"] == "interrupted" and summary["episodes"] == 0


# -- 3. a W&B server that accepts connections and never answers -----------------------------
@pytest.fixture
def silent_wandb(tmp_path: Path) -> dict[str, str]:
    """The environment of a run with W&B online against a server that never answers."""
    from tests.loggers.test_wandb_timeout import SilentServer

    server = SilentServer()
    yield environment(tmp_path / "outputs", WANDB_BASE_URL=server.url, WANDB_MODE="online",
                      WANDB_API_KEY="0123456789" * 4)
    server.stop()


def test_a_silent_wandb_server_costs_seconds_beyond_the_run_and_a_signal_ends_it(
        tmp_path, silent_wandb):
    root = tmp_path / "outputs"
    quick = [o for o in QUICK if not o.startswith("logger.")]
    budget = ["logger=wandb", "trainer.episodes=null", "trainer.time_limit_s=3",
              "trainer.stop_at_rank=1"]
    started = time.monotonic()
    code, text = finish(launch(root, *quick, *budget, f"hydra.run.dir={tmp_path / 'a'}",
                               env=silent_wandb))
    # Before: the default init_timeout_s (60 s) was waited out at the end of a 3 s run.
    assert code == 0 and time.monotonic() - started < 3 + 37, text
    assert json.loads((tmp_path / "a" / "summary.json").read_text())["status"] == "success"
    run_dir = tmp_path / "b"
    process = launch(root, *quick, *budget[:2], "trainer.time_limit_s=30",
                     "trainer.stop_at_rank=1", f"hydra.run.dir={run_dir}", env=silent_wandb)
    wait_until(lambda: line_count(run_dir / "metrics.jsonl") >= 1, what="a metrics row")
    signalled = time.monotonic()
    process.send_signal(signal.SIGTERM)
    code, text = finish(process)
    assert code == 0 and time.monotonic() - signalled < 12, text  # before: ~50 s
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "interrupted"


# -- 4. values that pass the schema and would not fit in memory ------------------------------
def test_a_shape_too_large_for_memory_is_refused_up_front(tmp_path):
    root, run_dir = tmp_path / "outputs", tmp_path / "run"
    code, text = finish(launch(root, *QUICK, "env.shape=[50,50,50]",
                               f"hydra.run.dir={run_dir}"))
    # Before: a 26-line traceback (ArrayMemoryError: 116 GiB), exit 1, a run dir left.
    assert code == 2 and "Traceback" not in text, text
    assert "env.shape=[50, 50, 50] is invalid; accepted: a smaller value" in text
    assert "GiB of memory is available here" in text
    assert not run_dir.exists() and not root.exists()


HOSTILE = (-1, 0, 10**12, 2**63, 1e308, "nan", "inf", "-inf")


def numeric_keys(cfg) -> list[str]:
    """Every numeric or null leaf of a composed config (dotted keys; a null one that is not
    numeric is refused by Hydra or taken as text), hydra's own left out."""
    from omegaconf import OmegaConf

    found = []

    def walk(node, prefix: str) -> None:
        for key, value in node.items():
            if key in ("hydra", "_target_"):
                continue
            dotted = f"{prefix}{key}"
            if isinstance(value, dict):
                walk(value, dotted + ".")
            elif isinstance(value, list) and value and all(isinstance(v, int) for v in value):
                found.append(dotted)
            elif value is None or (isinstance(value, (int, float))
                                   and not isinstance(value, bool)):
                found.append(dotted)  # None: an optional number, or Hydra refuses it

    walk(OmegaConf.to_container(cfg, resolve=True), "")
    return found


@pytest.mark.parametrize("agent", ["random", "greedy", "mcts", "pair_policy", "flipgraph"])
def test_hostile_values_for_every_numeric_key_are_accepted_or_refused_by_name(
        compose_config, agent):
    """Setting any numeric key to a hostile value (as a command-line override would, with
    the schema's type checks) and validating never raises anything but OmegaConf's own type
    error (Hydra's exit 1) or a :class:`ConfigError` naming a key and what is accepted;
    values that would not fit in memory are refused (``make faults`` also runs the
    accepted ones)."""
    from omegaconf import OmegaConf
    from omegaconf.errors import ValidationError

    from mlo_exp.config import ConfigError, validate

    cfg = compose_config([f"agent={agent}", "benchmark=default", "checkpoint=default"])
    keys = numeric_keys(cfg)
    assert {"env.shape", "trainer.episodes", "benchmark.repeats", "seed"} <= set(keys)
    refused = set()
    for key in keys:
        for value in HOSTILE:
            trial = cfg.copy()
            number = float(value) if isinstance(value, str) else value
            listed = key in ("env.shape", "benchmark.sizes", "env.coefficients")
            try:
                OmegaConf.update(trial, key, [number] * 3 if listed else number, merge=False)
            except ValidationError:
                continue  # the schema's type check: Hydra refuses the override (exit 1)
            try:
                validate(trial)
            except ConfigError as error:
                assert "accepted:" in str(error) and error.key, (key, value)
                refused.add((key, value))
    assert {("env.shape", 10**12), ("benchmark.sizes", 10**12), ("seed", 2**63),
            ("agent.batch_size", 10**12)} <= refused
    if agent == "flipgraph":
        assert ("agent.walks", 10**12) in refused


# -- 5. and 7. checkpoints checked for sense; what a refused resume says and leaves ----------
def nan_checkpoint(path: Path) -> None:
    """Put NaN in every floating-point tensor of the agent's state of ``path`` and update
    its sha256 in the log: whole bytes, a nonsensical content."""
    import hashlib

    import torch

    payload = torch.load(path, weights_only=True)

    def poison(value):
        if isinstance(value, torch.Tensor) and value.is_floating_point():
            return torch.full_like(value, float("nan"))
        if isinstance(value, dict):
            return {k: poison(v) for k, v in value.items()}
        if isinstance(value, list):
            return [poison(v) for v in value]
        return value

    payload["agent"] = poison(payload["agent"])
    torch.save(payload, path)
    log_path = path.parent / "checkpoint_log.json"
    entries = json.loads(log_path.read_text())
    for entry in entries["checkpoints"]:
        if entry["file"] == path.name:
            entry["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    log_path.write_text(json.dumps(entries))


PAIR_POLICY = ["agent=pair_policy", "agent.batch_size=4", "agent.steps_per_episode=3",
               "agent.hidden=16", "agent.learn_candidates=64", "seed=3",
               "trainer.time_limit_s=null", "trainer.stop_at_rank=1",
               "checkpoint.every_episodes=2", "checkpoint.keep_last=5", "plot=none",
               "benchmark=none", "logger.print_every_s=1000"]


def test_checkpoints_are_checked_for_sense_and_a_refused_resume_changes_nothing(tmp_path):
    root, run_dir = tmp_path / "outputs", tmp_path / "run"
    code, text = finish(launch(root, *PAIR_POLICY, "trainer.episodes=4",
                               f"hydra.run.dir={run_dir}"))
    assert code == 0, text
    checkpoints = run_dir / "checkpoints"
    log_before = (run_dir / "train.log").read_bytes()
    # Another seed: refused by name (before: continued silently with seed 3).
    code, text = finish(launch(root, *PAIR_POLICY, "seed=4", "trainer.episodes=6",
                               f"hydra.run.dir={run_dir}", "resume=auto"))
    assert code == 2 and "seed=3" in text and "seed=4" in text and "Traceback" not in text
    assert (run_dir / "train.log").read_bytes() == log_before  # before: 4 lines appended
    # The newest checkpoint holds NaN (its sha256 updated): skipped, the one before is used.
    nan_checkpoint(checkpoints / "ckpt_e0000004.pt")
    code, text = finish(launch(root, *PAIR_POLICY, "trainer.episodes=6",
                               f"hydra.run.dir={run_dir}", "resume=auto"))
    assert code == 0 and "Traceback" not in text, text  # before: "probability tensor
    assert "NaN" in text and "episode 2" in text  # contains nan", a traceback, no summary
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "success" and summary["episodes"] == 6
    # No checkpoint makes sense any more: refused, each named with its reason, log intact.
    for path in checkpoints.glob("ckpt_e*.pt"):
        nan_checkpoint(path)
    log_before = (run_dir / "train.log").read_bytes()
    code, text = finish(launch(root, *PAIR_POLICY, "trainer.episodes=8",
                               f"hydra.run.dir={run_dir}", "resume=auto"))
    assert code == 2 and "Refused: ckpt_e0000006.pt (makes no sense" in text, text
    assert "Traceback" not in text
    assert (run_dir / "train.log").read_bytes() == log_before


def test_a_malicious_checkpoint_is_named_as_such(tmp_path):
    from mlo_exp.run.checkpoint import CheckpointError, load_checkpoint

    path = tmp_path / "ckpt_e0000001.pt"
    # A protocol-0 pickle calling os.system (never run: opcodes are only read).
    path.write_bytes(b"(S'touch pwned'\nios\nsystem\n.")
    with pytest.raises(CheckpointError) as error:
        load_checkpoint(path)
    message = str(error.value)
    assert "refused: its pickle would import or call os.system" in message
    assert "corrupt" not in message and "weights_only" not in message


# -- 6. disk faults --------------------------------------------------------------------------
def file_size_limit(limit: int) -> Callable[[], None]:
    import resource

    return lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))


def test_a_full_disk_before_the_start_leaves_no_folder(tmp_path):
    from tests.disk_faults import small_tmpfs

    with small_tmpfs(tmp_path / "disk", "64k") as disk:
        (disk / "filler").write_bytes(b"\0" * 56 * 1024)  # 8 KiB left: Hydra's record fails
        for overrides, root in (([f"hydra.run.dir={disk / 'run'}"], tmp_path / "outputs"),
                                ([], disk / "outputs")):
            code, text = finish(launch(root, *QUICK, "trainer.episodes=2", *overrides))
            # Before: Hydra's traceback, exit 1, and an empty run directory left behind.
            assert code == 1 and "Traceback" not in text, text
            assert "disk full (ENOSPC)" in text and "nothing was run" in text
            assert sorted(p.name for p in disk.iterdir()) == ["filler"]


def test_a_file_size_limit_is_called_file_too_large(tmp_path):
    root, run_dir = tmp_path / "outputs", tmp_path / "run"
    code, text = finish(launch(root, *QUICK, "trainer.episodes=100000", "checkpoint=none",
                               "trainer.stop_at_rank=1", f"hydra.run.dir={run_dir}",
                               preexec_fn=file_size_limit(12_000)))
    assert code == 1 and "Traceback" not in text, text
    assert "file too large (EFBIG)" in text and "ENOSPC" not in text  # before: ENOSPC


def test_a_write_failing_in_the_benchmark_stage_fails_the_run(tmp_path):
    """The stage's figures are its largest files: a 20 kB file-size limit refuses them."""
    root, run_dir = tmp_path / "outputs", tmp_path / "run"
    code, text = finish(launch(root, *WITH_BENCHMARK, "checkpoint=none",
                               "benchmark.sizes=[64,128]", f"hydra.run.dir={run_dir}",
                               preexec_fn=file_size_limit(20_000)))
    # Before: exit 0 and status success beside a failed benchmark.
    assert code == 1 and "Traceback" not in text, text
    assert "benchmark: cannot write" in text
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "failed"
    bench = run_dir / "benchmark" / "benchmark.json"
    assert json.loads(bench.read_text())["status"] == "failed"


# -- 8. a refused launch never removes another launch's record -------------------------------
def test_a_refused_launch_leaves_a_directory_it_did_not_create_as_it_was(tmp_path):
    """A run directory holding only another launch's start-up record (its ``.hydra/`` and
    log: a first launch still starting, or killed while starting) is not this launch's to
    remove when it is refused (before: the whole directory went, ``.hydra/`` included)."""
    root, run_dir = tmp_path / "outputs", tmp_path / "run"
    (run_dir / ".hydra").mkdir(parents=True)
    for name in ("config.yaml", "hydra.yaml", "overrides.yaml"):
        (run_dir / ".hydra" / name).write_text(f"# the first launch's {name}\n")
    (run_dir / "train.log").write_text("[00:00:00][INFO] the first launch\n")
    before = {p.relative_to(run_dir): p.read_bytes() for p in run_dir.rglob("*")
              if p.is_file()}
    code, text = finish(launch(root, *QUICK, "trainer.episodes=-1",
                               f"hydra.run.dir={run_dir}"))
    assert code == 2 and "trainer.episodes=-1 is invalid" in text, text
    after = {p.relative_to(run_dir): p.read_bytes() for p in run_dir.rglob("*")
             if p.is_file() and p.name != ".lock"}
    assert after == before
