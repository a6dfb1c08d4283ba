"""The live plotter on a real (tiny) training loop, headless: PNGs, throttling, config."""

from __future__ import annotations

import errno
import json
import logging
import math
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from mlo_exp.agents.random import RandomAgent
from mlo_exp.config import ConfigError, TrainerConfig, validate
from mlo_exp.env import TensorGame
from mlo_exp.loggers.files import FilesLogger
from mlo_exp.run.plotting import DRAW_BUDGET_FRACTION, LivePlotter, display_available
from mlo_exp.run.trainer import Trainer
from mlo_exp.run_context import RunContext
from tests.disk_faults import fail_writes

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def headless(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)


def make_trainer(run_dir: Path, plotter_options: dict, episodes: int = 3,
                 job_num: int | None = None) -> tuple[Trainer, LivePlotter]:
    run_dir.mkdir(parents=True, exist_ok=True)
    run = RunContext.create(run_dir, 0, ["test"], job_num)
    logger = FilesLogger(run_dir)
    logger.start(run, {})
    plotter = LivePlotter(run, logger, **plotter_options)
    game = TensorGame((2, 2, 2))
    trainer = Trainer(game, RandomAgent(game, seed=0, batch_size=4), logger, run,
                      TrainerConfig(episodes=episodes, time_limit_s=None), [plotter],
                      best_known_rank=7)
    return trainer, plotter


def assert_real_png(path: Path) -> None:
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE) and len(data) > 5000
    pixels = imread(path)
    assert pixels.shape[0] > 200 and pixels.shape[1] > 200
    assert float(np.std(pixels)) > 0.01  # something was drawn, not a blank canvas


def test_headless_run_writes_live_and_final_png(tmp_path: Path) -> None:
    # refresh_s tiny and max_share 1, the first draw due at once: live draws do happen.
    trainer, plotter = make_trainer(tmp_path, {"refresh_s": 1e-6, "max_share": 1.0,
                                               "first_draw_s": 0.0})
    summary = trainer.fit()
    assert not plotter.window  # no display: file output only
    assert plotter.draws >= 1 and plotter.draw_seconds > 0
    assert plotter.episodes == list(range(1, summary.episodes + 1))
    assert_real_png(tmp_path / "training.png")
    assert not list(tmp_path.glob(".training.png.*"))  # no temporary files left behind


def test_first_draw_comes_early_later_draws_wait_for_the_share_budget(tmp_path: Path) -> None:
    trainer, plotter = make_trainer(tmp_path, {"refresh_s": 1e-6, "max_share": 0.02})
    assert plotter.first_draw_s == 5.0  # the default: well inside the default 90 s budget
    plotter.on_run_start(trainer)
    record = {"episode": 1, "reward": -8.0, "residual_norm": 0.0, "rank_used": 8,
              "best_rank": None}
    plotter.on_episode_end(None, record)  # type: ignore[arg-type]
    assert plotter.draws == 0  # just started: not yet
    plotter.first_draw_s = 0.0  # as if 5 s had passed: the first draw, whatever the budget
    plotter.on_episode_end(None, {**record, "episode": 2})  # type: ignore[arg-type]
    assert plotter.draws == 1 and plotter.first_draw_seconds == plotter.draw_seconds > 0
    assert (tmp_path / "training.png").read_bytes().startswith(PNG_SIGNATURE)
    # Later draws: their cost so far + the next one's expected cost (the last draw's) must
    # fit 80 % of 2 % of the elapsed time; the first (one-off import) is not counted.
    needed = plotter._cost_estimate / (DRAW_BUDGET_FRACTION * plotter.max_share)
    plotter._started = plotter._last_draw_at - 0.9 * needed
    plotter.on_episode_end(None, {**record, "episode": 3})  # type: ignore[arg-type]
    assert plotter.draws == 1
    plotter._started -= 0.2 * needed
    plotter.on_episode_end(None, {**record, "episode": 4})  # type: ignore[arg-type]
    assert plotter.draws == 2


def test_multirun_jobs_draw_their_first_figure_only_on_the_budget(tmp_path: Path) -> None:
    trainer, plotter = make_trainer(tmp_path, {"refresh_s": 1e-6, "max_share": 0.02,
                                               "first_draw_s": 0.0}, job_num=3)
    record = {"episode": 1, "reward": -8.0, "residual_norm": 0.0, "rank_used": 8,
              "best_rank": None}
    plotter.on_run_start(trainer)
    plotter.on_episode_end(None, record)  # type: ignore[arg-type]
    assert plotter.draws == 0  # a sweep job: no early draw
    plotter._started -= 1.5 / (DRAW_BUDGET_FRACTION * 0.02)  # its estimated cost now fits
    plotter.on_episode_end(None, {**record, "episode": 2})  # type: ignore[arg-type]
    assert plotter.draws == 1


def test_default_live_plot_draws_within_a_short_default_run(tmp_path: Path) -> None:
    """A real run of ~7 s with the default plot settings draws live before it ends (the
    issue: the first draw used to come at ~95 s, after the default 90 s budget)."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    run = RunContext.create(run_dir, 0, ["test"], None)
    logger = FilesLogger(run_dir)
    logger.start(run, {})
    plotter = LivePlotter(run, logger)  # defaults
    game = TensorGame((2, 2, 2))
    trainer = Trainer(game, RandomAgent(game, seed=0, batch_size=4), logger, run,
                      TrainerConfig(episodes=None, time_limit_s=7.0), [plotter],
                      best_known_rank=7)
    trainer.fit()
    assert plotter.draws >= 1


def test_a_figure_drawn_early_still_spans_every_episode_later(tmp_path: Path) -> None:
    """A live draw at episode 2 (x fixed around so few episodes) must not fix the final
    figure's x range."""
    _, plotter = make_trainer(tmp_path, {})
    base = {"reward": -8.0, "residual_norm": 0.0, "rank_used": 8, "best_rank": 8}
    for episode in (1, 2):
        plotter._append({**base, "episode": episode})
    plotter._render(plotter._ready_figure())
    for episode in range(3, 13):
        plotter._append({**base, "episode": episode})
    figure = plotter._render(plotter._ready_figure())
    low, high = figure.axes[2].get_xlim()
    assert low <= 1 and high >= 12


def test_losses_of_a_learning_agent_get_their_own_panel(tmp_path: Path) -> None:
    _, plotter = make_trainer(tmp_path, {})
    base = {"reward": -8.0, "residual_norm": 0.0, "rank_used": 8, "best_rank": 8}
    plotter._append({**base, "episode": 1})  # a first episode without losses (pretraining)
    for episode in range(2, 12):
        plotter._append({**base, "episode": episode, "policy_loss": 2.0 / episode,
                         "value_loss": 0.5, "solve_rate": 1.0})
    figure = plotter._render(plotter._ready_figure())
    assert len(figure.axes) == 4
    loss_axis = figure.axes[3]
    assert loss_axis.get_ylabel() == "loss" and loss_axis.get_xlabel() == "episode"
    lines = {l.get_label(): l for l in loss_axis.get_lines()}
    assert set(lines) == {"policy_loss", "value_loss"}  # not solve_rate
    y = np.asarray(lines["policy_loss"].get_ydata(), dtype=float)
    assert np.isnan(y[0]) and y[-1] == pytest.approx(2.0 / 11)
    assert legend_texts(loss_axis) == ["policy_loss", "value_loss"]
    plotter._save(figure)
    assert_real_png(tmp_path / "training.png")


def test_long_runs_are_thinned_to_max_points(tmp_path: Path) -> None:
    _, plotter = make_trainer(tmp_path, {"max_points": 100})
    for episode in range(1, 10_001):
        plotter._append({"episode": episode, "reward": -8.0, "residual_norm": 0.0,
                         "rank_used": 8, "best_rank": 8})
    kept = plotter._thinned()
    assert len(kept) <= 101 and kept[0] == 0 and kept[-1] == 9_999


def test_resumed_run_plots_earlier_episodes_from_the_csv(tmp_path: Path) -> None:
    first, _ = make_trainer(tmp_path, {}, episodes=2)
    first.fit()
    trainer, plotter = make_trainer(tmp_path, {}, episodes=4)
    trainer.episode = 2  # as a resume would restore it
    trainer.fit()
    assert plotter.episodes == [1, 2, 3, 4]


def test_window_only_for_single_runs_with_a_display(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    assert not display_available()
    _, plotter = make_trainer(tmp_path, {"live": True})
    assert not plotter.window
    monkeypatch.setenv("DISPLAY", ":99")
    _, in_sweep = make_trainer(tmp_path / "job", {"live": True}, job_num=0)
    _, switched_off = make_trainer(tmp_path / "off", {"live": False})
    assert not in_sweep.window and not switched_off.window


def test_live_plot_is_the_default_and_none_switches_it_off(compose_config) -> None:
    cfg = compose_config()
    assert cfg.plot._target_ == "mlo_exp.run.plotting.LivePlotter"
    assert validate(cfg).plot.refresh_s > 0
    assert compose_config(["plot=none"]).plot._target_ is None


@pytest.mark.parametrize("override, key", [
    ("plot.refresh_s=0", "plot.refresh_s"),
    ("plot.max_share=1.5", "plot.max_share"),
    ("plot.filename=../x.png", "plot.filename"),
])
def test_bad_plot_values_name_the_key(compose_config, override: str, key: str) -> None:
    with pytest.raises(ConfigError) as error:
        validate(compose_config([override]))
    assert error.value.key == key


@pytest.mark.parametrize("number", [errno.ENOSPC, errno.EROFS])
def test_live_png_that_cannot_be_written_warns_once_and_training_goes_on(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
        number: int) -> None:
    fail_writes(monkeypatch, "training.png", number)  # only the figure; run files still work
    trainer, plotter = make_trainer(tmp_path, {"refresh_s": 1e-6, "max_share": 1.0,
                                               "first_draw_s": 0.0}, episodes=4)
    with caplog.at_level(logging.WARNING, logger="mlo_exp"):
        summary = trainer.fit()
    assert summary.status == "success" and summary.episodes == 4
    assert plotter.draws >= 1 and plotter.write_failures == plotter.draws + 1  # + the final
    with caplog.at_level(logging.WARNING, logger="mlo_exp"):
        for episode in (5, 6):  # more live draws, each failing: still warned about once
            plotter._started -= 1e6
            plotter.on_episode_end(None, {"episode": episode, "reward": -8.0,  # type: ignore
                                          "residual_norm": 0.0, "rank_used": 8})
    assert plotter.write_failures == plotter.draws + 1 >= 3
    live = [r for r in caplog.records if "training goes on" in r.getMessage()]
    final = [r for r in caplog.records if "final figure not written" in r.getMessage()]
    assert len(live) == 1 and len(final) == 1
    assert f"cannot write {tmp_path / 'training.png'}: " in live[0].getMessage()
    assert json.loads((tmp_path / "summary.json").read_text())["episodes"] == 4
    assert not (tmp_path / "training.png").exists()
    assert not list(tmp_path.glob(".training.png.*"))


def test_final_figure_failing_is_only_a_warning(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch,
                                                caplog: pytest.LogCaptureFixture) -> None:
    # No live draw (the first is never due): only the final figure.
    trainer, plotter = make_trainer(tmp_path, {"first_draw_s": math.inf})
    (tmp_path / "training.png").write_bytes(b"an older figure")
    fail_writes(monkeypatch, "training.png", errno.ENOSPC)
    with caplog.at_level(logging.WARNING, logger="mlo_exp"):
        summary = trainer.fit()
    assert summary.status == "success" and plotter.draws == 0 and plotter.write_failures == 1
    assert any("final figure not written" in r.getMessage() and "disk full" in r.getMessage()
               for r in caplog.records)
    assert (tmp_path / "summary.json").is_file()
    assert (tmp_path / "training.png").read_bytes() == b"an older figure"  # left as it was


def test_final_figure_that_cannot_be_drawn_is_only_a_warning(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    trainer, plotter = make_trainer(tmp_path, {"first_draw_s": math.inf})

    def broken(figure):  # noqa: ANN001, ANN202
        raise RuntimeError("no fonts")

    monkeypatch.setattr(plotter, "_render", broken)
    with caplog.at_level(logging.WARNING, logger="mlo_exp"):
        assert trainer.fit().status == "success"
    assert any("final figure not drawn (RuntimeError: no fonts)" in r.getMessage()
               for r in caplog.records)
    assert (tmp_path / "summary.json").is_file()


def legend_texts(axis) -> list[str]:
    legend = axis.get_legend()
    return [t.get_text() for t in legend.get_texts()] if legend is not None else []


def assert_legend_above(axis) -> None:
    box = axis.get_legend().get_bbox_to_anchor().transformed(axis.transAxes.inverted())
    assert box.y0 >= 1.0  # above the panel: it covers none of the newest points


def test_figure_of_a_run_that_found_nothing(tmp_path: Path) -> None:
    trainer, plotter = make_trainer(tmp_path / "run", {"live": False}, episodes=4)
    trainer.fit()
    reward_axis, residual_axis, rank_axis = plotter._figure.axes
    assert [a.get_ylabel() for a in plotter._figure.axes] == ["reward", "residual norm", "rank"]
    assert rank_axis.get_xlabel() == "episode"
    assert legend_texts(reward_axis) == ["episode", "best so far"]
    # nothing verified: no 'best verified' entry; the best known rank is there
    assert legend_texts(rank_axis) == ["rank used", "best known (7)"]
    for axis in (reward_axis, rank_axis):
        assert_legend_above(axis)
    # the random agent leaves a residual: no note over the panel
    assert plotter._artists["residual_note"].get_text() == ""
    # ranks and (integer) rewards get integer ticks, never 7.5
    for axis in (reward_axis, rank_axis):
        low, high = axis.get_ylim()
        ticks = [t for t in axis.get_yticks() if low <= t <= high]
        assert len(ticks) >= 2 and all(float(t).is_integer() for t in ticks)
    # per-episode points are drawn over the 'best so far' lines
    assert plotter._artists["reward"].get_zorder() > plotter._artists["best_reward"].get_zorder()
    assert plotter._artists["rank"].get_zorder() > plotter._artists["best_rank"].get_zorder()


def test_figure_of_an_agent_that_always_solves(tmp_path: Path) -> None:
    from mlo_exp.agents.greedy import GreedyAgent

    trainer, plotter = make_trainer(tmp_path / "run", {"live": False}, episodes=3)
    trainer.agent = GreedyAgent(trainer.game, seed=0, batch_size=4)
    trainer.fit()
    reward_axis, residual_axis, rank_axis = plotter._figure.axes
    assert legend_texts(rank_axis) == ["rank used", "best verified", "best known (7)"]
    # residual 0 in every episode: the panel says so instead of looking empty
    assert plotter._artists["residual_note"].get_text() == (
        "residual 0 in all 3 episodes: every game ended in an exact decomposition")
    assert_real_png(tmp_path / "run" / "training.png")


def test_a_one_episode_run_gets_integer_episode_ticks(tmp_path: Path) -> None:
    trainer, plotter = make_trainer(tmp_path / "run", {"live": False}, episodes=1)
    trainer.fit()
    rank_axis = plotter._figure.axes[2]
    low, high = rank_axis.get_xlim()
    ticks = [t for t in rank_axis.get_xticks() if low <= t <= high]
    assert len(ticks) >= 2 and all(float(t).is_integer() for t in ticks)
    assert plotter._artists["title"].get_text().endswith("\n1 episode")
