"""What W&B may cost a run when its server, or W&B itself, does not answer: the start at most
``init_timeout_s``, the end at most ``finish_timeout_s``, one warning, and the run goes on.

Real wandb throughout: against a local server that accepts connections and never answers,
and with wandb's import or ``Run.finish`` made to hang in the W&B process."""

# Fixtures come from logger_fixtures (see test_wandb.py); pytest fixture arguments re-bind
# their names by design.
# ruff: noqa: F811

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlo_exp.loggers.base import LoggerGroup
from mlo_exp.loggers.files import FilesLogger
from mlo_exp.loggers.wandb import WandbLogger
from mlo_exp.run_context import RunContext
from tests.loggers.logger_fixtures import offline_wandb, run_context  # noqa: F401

SERVER_LIFETIME_S = 60.0  # the silent server stops by itself after this, whatever happens
SLACK_S = 3.0  # process start, imports and a loaded machine


class SilentServer:
    """A TCP server on 127.0.0.1 that accepts every connection and never reads or writes."""

    def __init__(self) -> None:
        self.socket = socket.create_server(("127.0.0.1", 0), backlog=64)
        self.socket.settimeout(0.2)
        self.url = f"http://127.0.0.1:{self.socket.getsockname()[1]}"
        self.connections: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="silent-server", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        deadline = time.monotonic() + SERVER_LIFETIME_S
        while not self._stop.is_set() and time.monotonic() < deadline:
            try:
                connection, _ = self.socket.accept()
            except TimeoutError:
                continue
            self.connections.append(connection)  # held open, never answered
        for connection in self.connections:
            connection.close()
        self.socket.close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


@pytest.fixture
def silent_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[SilentServer]:
    """W&B online, with an API key, against a server that never answers."""
    server = SilentServer()
    monkeypatch.setenv("WANDB_BASE_URL", server.url)
    monkeypatch.setenv("WANDB_API_KEY", "0123456789" * 4)  # W&B then tries the server
    monkeypatch.setenv("WANDB_MODE", "online")
    yield server
    server.stop()


def episode(run: RunContext, n: int) -> dict:
    return {"run_id": run.run_id, "episode": n, "moves": 8 * n, "wall_time_s": 0.1 * n,
            "reward": -8.0 - n, "residual_norm": 1.0, "rank_used": 8, "solved": False,
            "best_rank": None}


def drive(run: RunContext, wandb: WandbLogger, episodes: int = 3) -> tuple[float, dict]:
    """A whole run's logging (start, episodes, a checkpoint, the summary, finish) with the run
    files and ``wandb``; returns the seconds it took and the summary."""
    group = LoggerGroup([FilesLogger(run.run_dir), wandb])
    path = run.run_dir / "checkpoints" / "ckpt.pt"
    path.parent.mkdir()
    path.write_bytes(b"checkpoint")
    started = time.monotonic()
    group.start(run, {"run_id": run.run_id})
    for n in range(1, episodes + 1):
        group.log_episode(episode(run, n))
    group.log_checkpoint({"episode": episodes, "step": 8 * episodes, "run_duration_s": 0.3,
                          "file": path.name, "reason": "end"}, path)
    summary: dict = {}
    group.log_summary(summary)
    group.finish("success")
    return time.monotonic() - started, summary


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]


def assert_run_went_on(run: RunContext, wandb: WandbLogger, summary: dict) -> None:
    assert len((run.run_dir / "metrics.jsonl").read_text().splitlines()) == 3  # files: all
    assert "3 episodes" in summary["logger_failures"]["wandb"]
    assert wandb._process.returncode is not None  # the W&B process is gone, not leaked


def test_a_silent_server_costs_the_init_timeout_once(silent_server, run_context, caplog):
    timeout_s = 3.0
    wandb = WandbLogger(mode="online", init_timeout_s=timeout_s)
    elapsed, summary = drive(run_context, wandb)
    # Before: ~14 s here (init, then 10 s waiting for W&B's process to exit) and 2 warnings.
    assert elapsed < 2 * timeout_s + SLACK_S, elapsed
    (warning,) = warnings(caplog)
    assert "'wandb' failed in start" in warning
    failure = summary["logger_failures"]["wandb"]
    # W&B's own error when wandb.init gave up in time (it gets the start budget less a
    # margin), else the run's deadline (on a loaded machine, wandb's import ate the budget).
    assert failure.startswith(("start: CommError", "start: TimeoutError: W&B did not start "
                               "within 3 s")), failure
    if "CommError" in failure:
        assert silent_server.connections  # W&B did try the server
    assert_run_went_on(run_context, wandb, summary)


@pytest.fixture
def hanging_wandb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder put first on the W&B process's PYTHONPATH (see ``hang``)."""
    folder = tmp_path / "hang"
    folder.mkdir()
    monkeypatch.setenv("PYTHONPATH", str(folder))
    return folder


def test_a_start_that_never_returns_is_cut_at_init_timeout(hanging_wandb, run_context,
                                                           caplog):
    # wandb's import hangs: only the run's own deadline can end the start.
    (hanging_wandb / "wandb").mkdir()
    (hanging_wandb / "wandb" / "__init__.py").write_text("import time\ntime.sleep(600)\n")
    wandb = WandbLogger(mode="offline", init_timeout_s=2)
    elapsed, summary = drive(run_context, wandb)
    assert elapsed < 2 + SLACK_S, elapsed
    assert summary["logger_failures"]["wandb"] == (
        "start: TimeoutError: W&B did not start within 2 s (logger.init_timeout_s); is its "
        "server reachable and answering?; not sent: the run start, 3 episodes, 1 checkpoint, "
        "the summary")
    assert len(warnings(caplog)) == 1
    assert wandb._process.returncode == -9  # stuck in the start: killed at once
    assert_run_went_on(run_context, wandb, summary)


def test_a_finish_that_never_returns_is_cut_at_finish_timeout(hanging_wandb, run_context,
                                                              caplog):
    # Real (offline) wandb whose Run.finish hangs, as on a server that stops answering.
    (hanging_wandb / "sitecustomize.py").write_text(
        "import time\nimport wandb\n"
        "wandb.Run.finish = lambda self, *args, **kwargs: time.sleep(600)\n")
    wandb = WandbLogger(mode="offline", finish_timeout_s=3)
    group = LoggerGroup([FilesLogger(run_context.run_dir), wandb])
    group.start(run_context, {"run_id": run_context.run_id})
    deadline = time.monotonic() + 60  # W&B's start is not part of the budget under test
    while not wandb._started and time.monotonic() < deadline:
        wandb._receive(time.monotonic() + 0.1)
    for n in (1, 2, 3):
        group.log_episode(episode(run_context, n))
    summary: dict = {}
    started = time.monotonic()
    group.log_summary(summary)  # sync: W&B started and handled everything so far
    assert summary["logger_failures"] == {}
    group.finish("success")
    elapsed = time.monotonic() - started
    # sync, the summary and finish share one budget of finish_timeout_s.
    assert 3 <= elapsed < 3 + SLACK_S, elapsed
    (warning,) = warnings(caplog)
    assert "'wandb' failed in finish (TimeoutError: W&B did not get through the calls " \
        "sent to it in time (finish; logger.finish_timeout_s sets the limit))" in warning
    assert wandb._process.returncode == -9
    assert len((run_context.run_dir / "metrics.jsonl").read_text().splitlines()) == 3

