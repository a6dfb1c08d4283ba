"""resume=auto | run_id | run dir | .pt, in process (compose API + experiment.run): the
resumed run equals the uninterrupted one, bad files are skipped with a warning naming them,
checkpoints of another shape or agent are refused naming both."""

from __future__ import annotations

import contextlib
import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mlo_exp.config import validate
from mlo_exp.run import experiment
from mlo_exp.run.checkpoint import CheckpointError
from mlo_exp.run.resume import newest_valid, resume_command, trim_run_files
from mlo_exp.run_files import RunLock

FAST = ["agent=random", "agent.batch_size=2", "trainer.time_limit_s=null", "trainer.episodes=200",
        "trainer.stop_at_rank=1", "logger.print_every_s=1000"]
TIMING = ("wall_time_s", "run_id")


@pytest.fixture
def train(compose_config, tmp_path, monkeypatch):
    """``train(run_dir_name, *overrides)`` runs experiment.run in process; outputs root is
    ``tmp_path/outputs`` (MLO_OUTPUTS)."""
    root = tmp_path / "outputs"
    monkeypatch.setenv("MLO_OUTPUTS", str(root))
    counter = iter(range(1000))

    def _train(*overrides: str, name: str | None = None):
        cfg = compose_config([*FAST, *overrides])
        run_dir = root / "runs" / (name or f"dir{next(counter)}")
        return experiment.run(cfg, validate(cfg), run_dir, overrides=list(overrides))

    return _train


def episodes(run_dir: str | Path) -> list[dict]:
    lines = (Path(run_dir) / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k not in TIMING} for line in lines]


def test_resumed_run_replays_the_uninterrupted_one(train, caplog):
    """Round trip with the default agent (greedy): stop at 2, resume to 3, compare."""
    # max_candidates below the 6400 pairs of <2,2,2>: candidates are drawn from the agent's
    # generator each episode, so its restored state matters.
    greedy = ["agent=greedy", "agent.batch_size=1", "agent.max_candidates=300",
              "checkpoint.every_episodes=2"]
    whole = train(*greedy, "trainer.episodes=3")
    first = train(*greedy, "trainer.episodes=2")
    with caplog.at_level(logging.INFO, logger="mlo_exp"):
        resumed = train(*greedy, "trainer.episodes=3", f"resume={first.run_id}")
    assert resumed.run_id == first.run_id and resumed.run_dir == first.run_dir
    assert resumed.episodes == 3 and resumed.best_rank == whole.best_rank
    assert episodes(resumed.run_dir) == episodes(whole.run_dir)
    rows = [json.loads(x) for x in Path(resumed.run_dir, "metrics.jsonl").read_text().splitlines()]
    assert {r["run_id"] for r in rows} == {first.run_id}
    assert rows[2]["wall_time_s"] >= rows[1]["wall_time_s"]  # the clock continues
    assert resumed.wall_time_s >= first.wall_time_s
    command = next(line for line in caplog.text.splitlines() if "resume with:" in line)
    assert " mlo-train agent=greedy " in command and command.endswith(f"resume={first.run_id}")
    assert not (Path(resumed.run_dir).parent / "dir2").exists()  # the resume's own dir is gone


def test_resume_drops_rows_after_the_checkpoint_and_replays_them(train):
    whole = train("trainer.episodes=9")
    first = train("trainer.episodes=7", "checkpoint.every_episodes=4")
    log_path = Path(first.run_dir) / "checkpoints" / "checkpoint_log.json"
    log = json.loads(log_path.read_text())
    # As if killed after episode 7 was logged but before the end checkpoint was written:
    (Path(first.run_dir) / "checkpoints" / "ckpt_e0000007.pt").unlink()
    log["checkpoints"] = [e for e in log["checkpoints"] if e["episode"] != 7]
    log_path.write_text(json.dumps(log))
    with open(Path(first.run_dir) / "metrics.jsonl", "a") as handle:
        handle.write('{"episode": 8, "torn')  # a record cut by the crash
    resumed = train("trainer.episodes=9", "checkpoint.every_episodes=4", "resume=auto")
    assert resumed.run_id == first.run_id
    assert episodes(resumed.run_dir) == episodes(whole.run_dir)
    csv_rows = (Path(resumed.run_dir) / "episodes.csv").read_text().splitlines()
    assert [int(r.split(",")[1]) for r in csv_rows[1:]] == list(range(1, 10))


def test_resume_by_path_and_by_run_dir(train):
    first = train("trainer.episodes=4", "checkpoint.every_episodes=2")
    path = Path(first.run_dir) / "checkpoints" / "ckpt_e0000002.pt"
    by_path = train("trainer.episodes=5", f"resume={path}")
    assert by_path.run_id == first.run_id and by_path.episodes == 5
    by_dir = train("trainer.episodes=6", f"resume={first.run_dir}")
    assert by_dir.run_id == first.run_id and by_dir.episodes == 6


def test_bad_checkpoints_are_skipped_for_the_previous_valid_one(train, caplog):
    first = train("trainer.episodes=6", "checkpoint.every_episodes=2", "checkpoint.keep_last=3")
    directory = Path(first.run_dir) / "checkpoints"
    newest, middle = directory / "ckpt_e0000006.pt", directory / "ckpt_e0000004.pt"
    newest.write_bytes(newest.read_bytes()[:1000])  # truncated
    data = bytearray(middle.read_bytes())
    data[-100] ^= 0x01  # one bit altered
    middle.write_bytes(bytes(data))
    unlisted = directory / "ckpt_e0000009.pt"  # not in the log: checked by loading only
    unlisted.write_bytes(b"garbage")
    with caplog.at_level(logging.WARNING, logger="mlo_exp"):
        point = newest_valid(Path(first.run_dir))
    assert point is not None and point.episode == 2
    for bad in (newest, middle, unlisted):
        assert f"skipping checkpoint {bad}" in caplog.text
    assert "sha256" in caplog.text and "unreadable" in caplog.text
    resumed = train("trainer.episodes=7", "resume=auto")
    assert resumed.run_id == first.run_id and resumed.episodes == 7


def test_unsafe_pickle_is_refused_and_skipped(train, caplog, tmp_path):
    first = train("trainer.episodes=2", "checkpoint.every_episodes=1")
    marker = tmp_path / "code-ran"

    class Exploit:
        def __reduce__(self):
            return (Path.touch, (marker,))

    evil = Path(first.run_dir) / "checkpoints" / "ckpt_e0000050.pt"
    torch.save({"format": "mlo-exp/checkpoint", "payload": Exploit()}, evil)
    with pytest.raises(CheckpointError, match="refused"):
        train("trainer.episodes=3", f"resume={evil}")
    with caplog.at_level(logging.WARNING, logger="mlo_exp"):
        resumed = train("trainer.episodes=3", "resume=auto")
    assert f"skipping checkpoint {evil}" in caplog.text and resumed.run_id == first.run_id
    assert not marker.exists()


def test_other_shape_or_agent_is_refused_naming_both(train):
    first = train("trainer.episodes=1")
    with pytest.raises(CheckpointError) as error:
        train("env=matmul_2x2x3", "trainer.episodes=2", f"resume={first.run_id}")
    assert "shape 2x2x2" in str(error.value) and "shape 2x2x3" in str(error.value)
    with pytest.raises(CheckpointError) as error:
        train("agent=greedy", "trainer.episodes=2", f"resume={first.run_dir}")
    assert "agent RandomAgent" in str(error.value) and "agent GreedyAgent" in str(error.value)


def test_auto_without_checkpoint_starts_anew_and_unknown_id_is_an_error(train):
    fresh = train("trainer.episodes=1", "resume=auto")
    assert fresh.episodes == 1
    other_seed = train("trainer.episodes=1", "seed=5", "resume=auto")
    assert other_seed.run_id != fresh.run_id  # auto only continues runs of the same config
    # hydra.run.dir=<run dir> resume=auto: that directory's own checkpoints come first.
    newer = train("trainer.episodes=1", "checkpoint.every_episodes=1")
    in_place = train("trainer.episodes=2", "resume=auto", name=Path(fresh.run_dir).name)
    assert in_place.run_id == fresh.run_id != newer.run_id and in_place.episodes == 2
    with pytest.raises(CheckpointError, match="no run with that run_id") as error:
        train("resume=20990101-000000-deadbeef")
    assert "accepted: auto, a run_id" in str(error.value)


def test_trim_and_resume_command(tmp_path, monkeypatch):
    (tmp_path / "metrics.jsonl").write_text('{"episode": 1}\n{"episode": 2}\n{"episo')
    assert trim_run_files(tmp_path, 1) == 2
    assert (tmp_path / "metrics.jsonl").read_text() == '{"episode": 1}\n'
    monkeypatch.delenv("MLO_OUTPUTS", raising=False)
    command = resume_command(["env=matmul_3x3x3", "resume=auto", "tag=a b"], "ID")
    assert command == "mlo-train env=matmul_3x3x3 'tag=a b' resume=ID"


def test_a_run_in_use_is_not_resumed_twice(train):
    first = train("trainer.episodes=2", "checkpoint.every_episodes=1")
    with lock_held_by_another_process(Path(first.run_dir)):  # as a live run would hold it
        with pytest.raises(CheckpointError, match="in use by another process"):
            train("trainer.episodes=3", f"resume={first.run_id}")
        other = train("trainer.episodes=3", "resume=auto")
        assert other.run_id != first.run_id and other.episodes == 3
    assert train("trainer.episodes=3", f"resume={first.run_id}").run_id == first.run_id


def test_the_run_lock_is_reentrant_in_one_process_only(tmp_path):
    first, second = RunLock(tmp_path), RunLock(tmp_path)
    assert first.acquire() and second.acquire()  # the same process: taken again
    first.release()
    second.release()
    with lock_held_by_another_process(tmp_path):
        assert not RunLock(tmp_path).acquire()
    assert RunLock(tmp_path).acquire()


@contextlib.contextmanager
def lock_held_by_another_process(run_dir: Path):
    """A real second process holding ``run_dir``'s lock until the block ends."""
    code = ("import fcntl, os, sys; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT); "
            "fcntl.flock(fd, fcntl.LOCK_EX); os.write(fd, str(os.getpid()).encode()); "
            "print('locked', flush=True); sys.stdin.read()")
    holder = subprocess.Popen([sys.executable, "-c", code, str(run_dir / ".lock")],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        yield holder.pid
    finally:
        holder.stdin.close()
        holder.wait(timeout=10)
