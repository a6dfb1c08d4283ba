"""TensorBoard backend (``logger=tensorboard``): a live local dashboard without an account.

Event files go to ``<run_dir>/<subdir>`` (default ``tensorboard``); watch them with
``tensorboard --logdir outputs``. One step axis (see :mod:`.base`): every scalar is written
with ``global_step = episode``.

Tags: ``episode/<key>`` for each numeric record value (``reward``, ``residual_norm``,
``rank_used``, ``moves``, ``wall_time_s``, ``solved``, ``best_rank``, agent metrics),
``best/rank`` plus the formulas as text at a new best, ``checkpoint/run_duration_s`` and
``checkpoint/step`` per checkpoint, ``benchmark`` (a markdown table) and ``summary`` (text).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlo_exp.algorithms.algorithm import Algorithm
from mlo_exp.config import TensorBoardLoggerConfig
from mlo_exp.loggers.base import Logger, log
from mlo_exp.loggers.records import scalars
from mlo_exp.run_context import RunContext


class TensorBoardLogger(Logger):
    name = "tensorboard"

    def __init__(self, **settings: Any) -> None:
        """``settings``: fields of :class:`~mlo_exp.config.TensorBoardLoggerConfig` (defaults
        there)."""
        self.settings = TensorBoardLoggerConfig(**settings)
        self.subdir = self.settings.subdir
        self.flush_secs = float(self.settings.flush_secs)
        self.writer: Any = None
        self.step = 0

    def start(self, run: RunContext, config: dict[str, Any]) -> None:
        from torch.utils.tensorboard import SummaryWriter

        log_dir = Path(run.run_dir) / self.subdir
        self.writer = SummaryWriter(log_dir=str(log_dir), flush_secs=int(self.flush_secs))
        self.writer.add_text("run", f"`{run.run_name}` (run_id `{run.run_id}`)", 0)
        log.info("TensorBoard event files under %s (tensorboard --logdir %s)", log_dir, log_dir)

    def log_episode(self, record: dict[str, Any]) -> None:
        self.step = max(self.step, int(record["episode"]))
        for key, value in scalars(record).items():
            self.writer.add_scalar(f"episode/{key}", value, self.step)

    def log_new_best(self, algorithm: Algorithm, path: Path, record: dict[str, Any]) -> None:
        self.step = max(self.step, int(record.get("episode", self.step)))
        self.writer.add_scalar("best/rank", algorithm.rank, self.step)
        formulas = "\n".join(f"    {line}" for line in algorithm.formulas().splitlines())
        self.writer.add_text("best/algorithm", f"rank {algorithm.rank}\n\n{formulas}", self.step)

    def log_checkpoint(self, event: dict[str, Any], path: Path) -> None:
        self.step = max(self.step, int(event["episode"]))
        self.writer.add_scalar("checkpoint/run_duration_s", float(event["run_duration_s"]),
                               self.step)
        self.writer.add_scalar("checkpoint/step", int(event["step"]), self.step)

    def log_benchmark(self, rows: list[dict[str, Any]], facts: dict[str, Any]) -> None:
        columns: list[str] = []
        for row in rows:
            columns += [key for key in row if key not in columns]
        lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
        lines += ["| " + " | ".join(str(row.get(c, "")) for c in columns) + " |" for row in rows]
        facts_text = ", ".join(f"{k}: {v}" for k, v in facts.items())
        self.writer.add_text("benchmark", facts_text + "\n\n" + "\n".join(lines), self.step)

    def log_summary(self, summary: dict[str, Any]) -> None:
        text = "\n".join(f"    {key}: {value}" for key, value in summary.items())
        self.writer.add_text("summary", text, self.step)
        self.writer.flush()

    def finish(self, status: str = "success") -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    def abandon(self) -> None:
        self.finish("failed")
