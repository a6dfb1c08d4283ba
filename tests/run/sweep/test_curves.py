"""Learning curves across seeds: median and bootstrap band of any metric of metrics.jsonl."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from mlo_exp.run.sweep.curves import (
    default_metrics,
    learning_curves_figure,
    median_band,
    read_metric,
)


def write_run(run_dir: Path, losses: list[float], rewards: list[float]) -> Path:
    run_dir.mkdir(parents=True)
    lines = [json.dumps({"episode": i + 1, "reward": r, "policy_loss": l, "solved": True})
             for i, (l, r) in enumerate(zip(losses, rewards, strict=True))]
    (run_dir / "metrics.jsonl").write_text("\n".join(lines) + "\n{torn")
    return run_dir


def test_read_metric_and_default_metrics(tmp_path: Path) -> None:
    run = write_run(tmp_path / "a", [3.0, 2.0, 1.0], [-9, -8, -7])
    episodes, values = read_metric(run, "policy_loss")
    assert episodes.tolist() == [1, 2, 3] and values.tolist() == [3.0, 2.0, 1.0]
    assert read_metric(run, "solved")[0].size == 0  # booleans are not curves
    assert default_metrics([run]) == ["reward", "policy_loss"]


def test_median_band_over_seeds_stops_where_half_the_seeds_stop() -> None:
    series = [(np.arange(1, 11), np.full(10, 1.0)), (np.arange(1, 11), np.full(10, 3.0)),
              (np.arange(1, 5), np.full(4, 2.0))]
    episodes, median, low, high = median_band(series)
    assert episodes[-1] == 10  # 2 of 3 seeds reach episode 10
    assert median[0] == 2.0 and median[-1] == 2.0  # median of (1, 3, 2), then of (1, 3)
    assert np.all(low <= median) and np.all(median <= high)
    assert low[0] == 1.0 and high[0] == 3.0
    short = [(np.arange(1, 11), np.zeros(10)), (np.arange(1, 3), np.zeros(2)),
             (np.arange(1, 3), np.zeros(2))]
    assert median_band(short)[0][-1] == 2  # one long run alone does not make a tail


def test_learning_curves_figure_draws_losses_per_setting(tmp_path: Path) -> None:
    fast = [write_run(tmp_path / f"fast{s}", [3.0 / (i + 1) for i in range(20)], [-8] * 20)
            for s in range(3)]
    slow = [write_run(tmp_path / f"slow{s}", [3.0] * 20, [-9] * 20) for s in range(3)]
    figure = learning_curves_figure([fast, slow], ["lr=0.01", "lr=0.001"])
    reward_axis, loss_axis = figure.axes
    assert loss_axis.get_ylabel() == "policy_loss" and loss_axis.get_xlabel() == "episode"
    assert "median over seeds, 95% bootstrap band" in loss_axis.get_title()
    lines = {l.get_label(): l for l in loss_axis.get_lines()}
    assert set(lines) == {"lr=0.01 (3 seeds)", "lr=0.001 (3 seeds)"}
    assert lines["lr=0.01 (3 seeds)"].get_ydata()[-1] < 1.0 < lines[
        "lr=0.001 (3 seeds)"].get_ydata()[-1]
    assert len(loss_axis.collections) == 2  # a band per setting
