"""Live plotting cost as a share of training wall time (target: under 2 %).

Real training loops (TensorGame + agent + the always-on run files) run for a fixed time with
the headless :class:`~mlo_exp.run.plotting.LivePlotter` attached; the plotter's per-episode
callback is timed in full (bookkeeping and every live draw), the window set-up at run start
(window mode only, 0 here) is added, and the one-off final figure is reported
separately. One row uses ``refresh_s=0.001`` to show the share budget, not the refresh
period, keeping the cost down. The first case also pays matplotlib's import in its first
draw. Writes ``plotting.md`` and ``plotting.json``.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import matplotlib
import torch

from mlo_exp.agents.greedy import GreedyAgent
from mlo_exp.agents.random import RandomAgent
from mlo_exp.benchmark.backend import host_cpu_name
from mlo_exp.config import TrainerConfig
from mlo_exp.env import TensorGame
from mlo_exp.loggers.files import FilesLogger
from mlo_exp.run.plotting import LivePlotter
from mlo_exp.run.trainer import Trainer
from mlo_exp.run_context import RunContext, seed_everything

TARGET_SHARE = 0.02


class TimedPlotter(LivePlotter):
    """The real plotter, with the time spent in its per-episode hook added up."""

    hook_seconds = 0.0

    def on_episode_end(self, trainer, record):
        started = time.perf_counter()
        super().on_episode_end(trainer, record)
        self.hook_seconds += time.perf_counter() - started


def measure(name: str, shape: tuple[int, int, int], agent_class, seconds: float,
            refresh_s: float) -> dict[str, Any]:
    seed_everything(0)
    with tempfile.TemporaryDirectory() as folder:
        run_dir = Path(folder)
        run = RunContext.create(run_dir, 0, [name])
        logger = FilesLogger(run_dir)
        logger.start(run, {})
        plotter = TimedPlotter(run, logger, live=False, refresh_s=refresh_s)
        game = TensorGame(shape)
        trainer = Trainer(game, agent_class(game, seed=0), logger, run,
                          TrainerConfig(episodes=10**9, time_limit_s=seconds, stop_at_rank=1),
                          [plotter])
        summary = trainer.fit()
    wall = summary.wall_time_s
    return {
        "case": name, "shape": "x".join(map(str, shape)), "agent": agent_class.__name__,
        "refresh_s": refresh_s, "episodes": summary.episodes, "wall_s": round(wall, 2),
        "live_draws": plotter.draws, "draw_s": round(plotter.draw_seconds, 3),
        "setup_s": round(plotter.setup_seconds, 3),
        "hook_s": round(plotter.hook_seconds, 3),
        "share_pct": round(100 * (plotter.setup_seconds + plotter.hook_seconds) / wall, 3),
        "final_figure_s": round(plotter.final_seconds, 3),
        "share_with_final_pct": round(
            100 * (plotter.setup_seconds + plotter.hook_seconds + plotter.final_seconds) / wall,
            3),
    }


def main(out_dir: Path, quick: bool) -> None:
    seconds = 8.0 if quick else 150.0
    cases = [
        ("greedy-2x2x2", (2, 2, 2), GreedyAgent, 5.0),
        ("random-3x3x3", (3, 3, 3), RandomAgent, 5.0),
        ("random-3x3x3-refresh-1ms", (3, 3, 3), RandomAgent, 0.001),
    ]
    rows = [measure(name, shape, agent, seconds, refresh) for name, shape, agent, refresh in cases]
    meta = {"seconds_per_case": seconds, "quick": quick, "matplotlib": matplotlib.__version__,
            "backend": "Agg (headless PNG)", "torch": torch.__version__,
            "threads": torch.get_num_threads(), "cpus": os.cpu_count(),
            "cpu": host_cpu_name(),
            "load_avg_1m": round(os.getloadavg()[0], 2), "target_share_pct": 100 * TARGET_SHARE}
    (out_dir / "plotting.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    lines = [
        "# Live plotting cost (share of training wall time; target < 2 %)", "",
        f"{seconds:.0f} s of real training per case, headless Agg PNG, CPU "
        f"({meta['cpus']} cores, 1-min load average {meta['load_avg_1m']} at the end), "
        f"quick={quick}. `hook`: all time in the per-episode callback (bookkeeping + live "
        "draws; the first draw builds the figure, and in the first case imports matplotlib); "
        "`setup`: opening a window (0 headless); share (live) = (setup + hook) / wall. The "
        "final figure is a one-off at the end, reported apart. A single run draws first at "
        "~5 s, off the budget (it pays the matplotlib import); later draws, and a sweep job's "
        "first, must fit the budget.", "",
        "| case | episodes | wall (s) | live draws | draw (s) | setup (s) | hook (s) "
        "| share (live) | final figure (s) | share incl. final |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [f"| {r['case']} | {r['episodes']} | {r['wall_s']} | {r['live_draws']} | "
              f"{r['draw_s']} | {r['setup_s']} | {r['hook_s']} | {r['share_pct']:.2f} % | "
              f"{r['final_figure_s']} | "
              f"{r['share_with_final_pct']:.2f} % |"
              for r in rows]
    (out_dir / "plotting.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
