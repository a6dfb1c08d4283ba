"""TensorBoard backend (``logger=tensorboard``): a live local dashboard without an account.

Event files go to ``<run_dir>/<subdir>/<run name>/`` (default subdir ``tensorboard``), so
TensorBoard's run list (``tensorboard --logdir outputs``) ends each run's path with its name
(``env__agent__s<seed>__<run_id>``), not only a date. One step axis (see :mod:`.base`): every
scalar is written with ``global_step = episode``.

Tags: ``episode/<key>`` for each numeric record value (``reward``, ``residual_norm``,
``rank_used``, ``moves``, ``wall_time_s``, ``solved``, ``best_rank``, agent metrics),
``best/rank`` plus the formulas as text at a new best, ``checkpoint/run_duration_s`` and
``checkpoint/step`` per checkpoint, ``benchmark`` (a markdown table) plus
``benchmark/<algorithm>/n<N>/speedup`` and ``.../median_s`` scalars, and ``summary`` (text).

HParams: at the start the run's settings (``agent.*``, ``env.*``, ``trainer.*``, ``seed``,
...; lists as text) go to TensorBoard's HParams tab, with the metrics ``summary/best_rank``,
``summary/time_to_best_s``, ``summary/episodes`` and ``summary/wall_time_s`` written at the
end; compare runs of a sweep there.
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

        log_dir = Path(run.run_dir) / self.subdir / run.run_name
        self.writer = SummaryWriter(log_dir=str(log_dir), flush_secs=int(self.flush_secs))
        self.writer.add_text("run", f"`{run.run_name}` (run_id `{run.run_id}`)", 0)
        self._write_hparams(config)
        self._best_at: float | None = None
        log.info("TensorBoard event files under %s (tensorboard --logdir %s)", log_dir,
                 Path(run.run_dir) / self.subdir)

    def _write_hparams(self, config: dict[str, Any]) -> None:
        """The run's settings to the HParams tab (the metrics follow in :meth:`log_summary`)."""
        from torch.utils.tensorboard.summary import hparams

        values = hparam_values(config)
        if not values:
            return
        experiment, start, end = hparams(values, {tag: 0.0 for tag in HPARAM_METRICS})
        writer = self.writer._get_file_writer()
        for event in (experiment, start, end):
            writer.add_summary(event)

    def log_episode(self, record: dict[str, Any]) -> None:
        self.step = max(self.step, int(record["episode"]))
        for key, value in scalars(record).items():
            self.writer.add_scalar(f"episode/{key}", value, self.step)

    def log_new_best(self, algorithm: Algorithm, path: Path, record: dict[str, Any]) -> None:
        self.step = max(self.step, int(record.get("episode", self.step)))
        self._best_at = algorithm.provenance.get("found_after_s")
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
        for row in rows:  # numbers too, so runs can be compared in the Scalars tab
            name = str(row.get("Algorithm") or "algorithm").replace("/", "_")
            for key, column in (("speedup", "Speedup"), ("median_s", "Median (s)")):
                value = row.get(column)
                if isinstance(value, (int, float)) and row.get("N") is not None:
                    self.writer.add_scalar(f"benchmark/{name}/n{row['N']}/{key}", value,
                                           self.step)

    def log_summary(self, summary: dict[str, Any]) -> None:
        text = "\n".join(f"    {key}: {value}" for key, value in summary.items())
        self.writer.add_text("summary", text, self.step)
        metrics = {"summary/best_rank": summary.get("best_rank"),
                   "summary/time_to_best_s": self._best_at if summary.get("best_rank") else None,
                   "summary/episodes": summary.get("episodes"),
                   "summary/wall_time_s": summary.get("wall_time_s")}
        for tag, value in metrics.items():
            if isinstance(value, (int, float)):
                self.writer.add_scalar(tag, value, self.step)
        self.writer.flush()

    def finish(self, status: str = "success") -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    def abandon(self) -> None:
        self.finish("failed")


HPARAM_METRICS = ("summary/best_rank", "summary/time_to_best_s", "summary/episodes",
                  "summary/wall_time_s")
HPARAM_GROUPS = ("env", "agent", "trainer", "objective")
HPARAM_KEYS = ("seed", "device", "threads", "tag")


def hparam_values(config: dict[str, Any]) -> dict[str, Any]:
    """The settings shown in the HParams tab: ``<group>.<key>`` of the groups that define
    an experiment plus the run-wide keys; lists as text, nulls as ``"null"``."""
    values: dict[str, Any] = {}
    for group in HPARAM_GROUPS:
        node = config.get(group)
        if isinstance(node, dict):
            for key, value in node.items():
                values[f"{group}.{key}"] = value
    values.update({key: config[key] for key in HPARAM_KEYS if key in config})
    return {key: (value if isinstance(value, (bool, int, float, str)) else
                  "null" if value is None else str(value)) for key, value in values.items()}
