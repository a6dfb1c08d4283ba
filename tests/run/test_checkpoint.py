"""CheckpointManager and the checkpoint file format: payload round trip, safe loading,
the keep policy, checkpoint_log.json, and a write that fails (file size limit = full disk)."""

from __future__ import annotations

import json
import logging
import random
import resource
import signal
from pathlib import Path

import numpy as np
import pytest
import torch

from mlo_exp.config import validate
from mlo_exp.loggers.base import Logger, LoggerGroup
from mlo_exp.run import experiment
from mlo_exp.run.checkpoint import (
    CheckpointError,
    CheckpointManager,
    build_payload,
    capture_rng,
    load_checkpoint,
    restore,
    restore_rng,
    serialise,
)
from mlo_exp.run.trainer import Trainer
from mlo_exp.run_context import RunContext

FAST = ["agent=random", "agent.batch_size=2", "trainer.time_limit_s=null", "trainer.episodes=200",
        "trainer.stop_at_rank=1", "logger.print_every_s=1000"]


class RecordingLogger(Logger):
    """Keeps the checkpoint events it is given."""

    def __init__(self) -> None:
        self.events: list[tuple[dict, Path]] = []

    def log_checkpoint(self, event, path) -> None:
        self.events.append((event, path))


def make_trainer(compose_config, run_dir: Path, overrides: list[str], **manager_args):
    """A real trainer with a real CheckpointManager, built the way experiment.run does."""
    cfg = compose_config([*FAST, *overrides])
    settings = validate(cfg)
    from omegaconf import OmegaConf

    run = RunContext.create(run_dir, settings.seed, ["test"])
    run.config = OmegaConf.to_container(cfg, resolve=True)
    run_dir.mkdir(parents=True, exist_ok=True)
    game = experiment.build_game(settings)
    agent = experiment.build_agent(cfg, game, settings.seed)
    recorder = RecordingLogger()
    manager = CheckpointManager(run, LoggerGroup([recorder]), **manager_args)
    trainer = Trainer(game, agent, LoggerGroup([]), run, settings.trainer, [manager])
    return trainer, manager, recorder


def test_payload_round_trip_restores_agent_trainer_and_rngs(compose_config, tmp_path):
    trainer, manager, _ = make_trainer(compose_config, tmp_path / "run",
                                       ["trainer.episodes=3"], every_episodes=3)
    trainer.fit()
    path = tmp_path / "run" / "checkpoints" / "ckpt_e0000003.pt"
    payload = load_checkpoint(path)  # weights_only=True inside
    assert payload["episode"] == 3 and payload["step"] == trainer.moves
    assert payload["run_id"] == trainer.run.run_id
    assert payload["config"]["agent"]["_target_"].endswith("RandomAgent")
    assert payload["reason"] == "periodic+end"
    expected_next = trainer.agent.run_episode()  # what the agent does after the checkpoint

    other, _, _ = make_trainer(compose_config, tmp_path / "other", ["trainer.episodes=3"])
    random.random(), np.random.rand(), torch.rand(1)  # disturb the global generators
    restore(other, payload, path)
    assert (other.episode, other.moves) == (3, trainer.moves)
    replay = other.agent.run_episode()
    assert replay.reward == expected_next.reward and replay.moves == expected_next.moves
    assert replay.metrics == expected_next.metrics


def test_rng_capture_restore_is_exact():
    state = capture_rng()
    first = (random.random(), float(np.random.rand()), float(torch.rand(1)))
    restore_rng(state)
    assert (random.random(), float(np.random.rand()), float(torch.rand(1))) == first


def test_pickle_that_would_run_code_is_refused(tmp_path):
    marker = tmp_path / "code-ran"

    class Exploit:
        def __reduce__(self):
            return (Path.touch, (marker,))

    path = tmp_path / "ckpt_e0000001.pt"
    torch.save({"format": "mlo-exp/checkpoint", "agent": Exploit()}, path)
    with pytest.raises(CheckpointError, match="refused") as error:
        load_checkpoint(path)
    # Named as code, with what it would call; never PyTorch's advice to load it unsafely.
    assert str(path) in str(error.value) and "pathlib" in str(error.value)
    assert "weights_only" not in str(error.value) and "corrupt" not in str(error.value)
    assert not marker.exists()


def test_truncated_and_altered_files_are_detected(compose_config, tmp_path):
    trainer, _, _ = make_trainer(compose_config, tmp_path / "run", ["trainer.episodes=2"],
                                 every_episodes=1)
    trainer.fit()
    directory = tmp_path / "run" / "checkpoints"
    entries = json.loads((directory / "checkpoint_log.json").read_text())["checkpoints"]
    sha = {e["file"]: e["sha256"] for e in entries}
    truncated = directory / "ckpt_e0000002.pt"
    truncated.write_bytes(truncated.read_bytes()[:500])
    with pytest.raises(CheckpointError, match="unreadable") as error:
        load_checkpoint(truncated)
    assert str(truncated) in str(error.value)
    with pytest.raises(CheckpointError, match="sha256"):
        load_checkpoint(truncated, sha[truncated.name])
    altered = directory / "ckpt_e0000001.pt"
    data = bytearray(altered.read_bytes())
    data[len(data) // 2] ^= 0xFF
    altered.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="altered or truncated"):
        load_checkpoint(altered, sha[altered.name])


def test_keeps_last_k_plus_best_and_log_records_everything(compose_config, tmp_path):
    trainer, manager, recorder = make_trainer(
        compose_config, tmp_path / "run",
        ["agent=greedy", "agent.batch_size=1", "agent.max_candidates=300",
         "trainer.episodes=4"],
        every_episodes=1, keep_last=2)
    trainer.fit()
    assert trainer.best is not None  # greedy finds rank 8 at once on <2,2,2>
    directory = tmp_path / "run" / "checkpoints"
    data = json.loads((directory / "checkpoint_log.json").read_text())
    status = {e["file"]: e["status"] for e in data["checkpoints"]}
    first_best = min(e["episode"] for e in data["checkpoints"] if "best" in e["reason"])
    best_file = f"ckpt_e{first_best:07d}.pt"
    kept = {best_file, "ckpt_e0000003.pt", "ckpt_e0000004.pt"}
    assert {f for f, s in status.items() if s == "kept"} == kept
    assert sorted(p.name for p in directory.glob("*.pt")) == sorted(kept)
    assert len(status) == 4 and data["run_id"] == trainer.run.run_id
    for entry in data["checkpoints"]:
        assert set(entry) >= {"file", "reason", "episode", "step", "timestamp",
                              "run_duration_s", "size", "sha256", "status"}
    for file in kept:
        entry = next(e for e in data["checkpoints"] if e["file"] == file)
        assert load_checkpoint(directory / file, entry["sha256"])["episode"] == entry["episode"]
    events = [event for event, _ in recorder.events]
    assert [e["episode"] for e in events] == [1, 2, 3, 4, 4]
    assert events[-1]["reason"] == "periodic+end"
    assert all({"episode", "step", "run_duration_s", "reason", "file"} <= set(e)
               for e in events)
    durations = [e["run_duration_s"] for e in data["checkpoints"]]
    assert durations == sorted(durations)


def test_failed_write_stops_the_run_and_keeps_earlier_checkpoints(compose_config, tmp_path,
                                                                  caplog):
    """A file-size limit makes the kernel refuse the write (EFBIG), as a full disk would."""
    trainer, manager, _ = make_trainer(compose_config, tmp_path / "run", ["trainer.episodes=4"],
                                       every_episodes=1)
    manager.on_run_start(trainer)
    for _ in range(2):
        trainer._run_one_episode()
    directory = tmp_path / "run" / "checkpoints"
    before = {p.name: p.read_bytes() for p in directory.iterdir()}
    assert "ckpt_e0000002.pt" in before
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, hard))
    try:
        with caplog.at_level(logging.ERROR, logger="mlo_exp"):
            trainer._run_one_episode()
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)
    assert trainer.stop_reason == "checkpoint_failed" and manager.failed
    message = caplog.text
    assert "cannot write checkpoint" in message and "ckpt_e0000003.pt" in message
    assert "ckpt_e0000002.pt" in message  # names the intact earlier ones
    after = {p.name: p.read_bytes() for p in directory.iterdir()}
    assert after == before  # nothing changed, no temporary file left
    json.loads((directory / "checkpoint_log.json").read_text())


def test_serialised_payload_holds_only_safe_types(compose_config, tmp_path):
    trainer, manager, _ = make_trainer(compose_config, tmp_path / "run", ["trainer.episodes=1"])
    trainer.fit()
    data = serialise(build_payload(trainer, "test"))
    path = tmp_path / "x.pt"
    path.write_bytes(data)
    torch.load(path, weights_only=True)  # raises if anything beyond plain types crept in
