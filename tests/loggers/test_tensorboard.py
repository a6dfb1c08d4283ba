"""TensorBoard event files in the run dir, read back with TensorBoard's EventAccumulator."""

# Fixtures come from logger_fixtures (imported, since a tests/loggers/conftest.py would
# shadow tests/conftest.py); pytest fixture arguments re-bind their names by design.
# ruff: noqa: F811

from __future__ import annotations

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from mlo_exp.algorithms.library import strassen
from mlo_exp.loggers.tensorboard import TensorBoardLogger
from mlo_exp.run_context import RunContext
from tests.loggers.logger_fixtures import offline_wandb, run_context  # noqa: F401


def test_scalars_text_and_one_step_axis(run_context: RunContext) -> None:
    logger = TensorBoardLogger(flush_secs=1)
    logger.start(run_context, {})
    for episode in (1, 2, 3):
        logger.log_episode({"run_id": run_context.run_id, "episode": episode,
                            "moves": 8 * episode, "wall_time_s": 0.1, "reward": -10.0 + episode,
                            "residual_norm": 1.0, "rank_used": 8, "solved": episode == 3,
                            "best_rank": None})
    logger.log_new_best(strassen(), run_context.run_dir / "algorithm.json", {"episode": 3})
    logger.log_checkpoint({"episode": 3, "step": 24, "run_duration_s": 1.5,
                           "file": "c.pt", "reason": "interval"}, run_context.run_dir / "c.pt")
    logger.log_benchmark([{"Source Run ID": run_context.run_id, "Algorithm": "strassen",
                           "N": 64, "Speedup": 1.25, "Median (s)": 0.002}], {"device": "cpu"})
    logger.log_summary({"best_rank": 7, "episodes": 3, "wall_time_s": 0.3})
    logger.finish()

    # TensorBoard names a run by its folder: the run name, not only a date path
    (events,) = (run_context.run_dir / "tensorboard").rglob("events.out.tfevents.*")
    assert events.parent == run_context.run_dir / "tensorboard" / run_context.run_name
    accumulator = EventAccumulator(str(events.parent))
    accumulator.Reload()
    reward = accumulator.Scalars("episode/reward")
    assert [(e.step, e.value) for e in reward] == [(1, -9.0), (2, -8.0), (3, -7.0)]
    assert [e.value for e in accumulator.Scalars("episode/solved")] == [0, 0, 1]
    assert "episode/best_rank" not in accumulator.Tags()["scalars"]  # None is not a number
    assert [(e.step, e.value) for e in accumulator.Scalars("best/rank")] == [(3, 7.0)]
    assert [(e.step, e.value) for e in accumulator.Scalars("checkpoint/step")] == [(3, 24.0)]
    texts = accumulator.Tags()["tensors"]
    assert {"best/algorithm/text_summary", "benchmark/text_summary",
            "summary/text_summary"} <= set(texts)
    # the benchmark as numbers, the summary's metrics, against the episode it came at
    assert [(e.step, e.value) for e in accumulator.Scalars(
        "benchmark/strassen/n64/speedup")] == [(3, 1.25)]
    assert [e.value for e in accumulator.Scalars("summary/best_rank")] == [7]
    assert [e.value for e in accumulator.Scalars("summary/episodes")] == [3]


def test_settings_go_to_the_hparams_tab(run_context: RunContext) -> None:
    from tensorboard.plugins.hparams import plugin_data_pb2

    logger = TensorBoardLogger(flush_secs=1)
    config = {"run_id": run_context.run_id, "seed": 3, "device": "cpu",
              "env": {"shape": [2, 2, 2], "ring": "Z", "max_rank": None},
              "agent": {"_target_": "mlo_exp.agents.greedy.GreedyAgent", "batch_size": 4},
              "trainer": {"episodes": 5, "time_limit_s": None}, "logger": {"flush_secs": 1}}
    logger.start(run_context, config)
    logger.log_summary({"best_rank": 8})
    logger.finish()
    (events,) = (run_context.run_dir / "tensorboard").rglob("events.out.tfevents.*")
    accumulator = EventAccumulator(str(events.parent))
    accumulator.Reload()
    content = accumulator.PluginTagToContent("hparams")
    experiment = plugin_data_pb2.HParamsPluginData.FromString(
        content["_hparams_/experiment"]).experiment
    names = {info.name for info in experiment.hparam_infos}
    assert {"seed", "device", "env.shape", "env.ring", "env.max_rank", "agent.batch_size",
            "agent._target_", "trainer.episodes"} <= names
    assert "logger.flush_secs" not in names  # how a run is watched is not a hyperparameter
    metrics = {info.name.tag for info in experiment.metric_infos}
    assert metrics == {"summary/best_rank", "summary/time_to_best_s", "summary/episodes",
                       "summary/wall_time_s"}
    start = plugin_data_pb2.HParamsPluginData.FromString(
        content["_hparams_/session_start_info"]).session_start_info
    assert start.hparams["env.shape"].string_value == "[2, 2, 2]"
    assert start.hparams["seed"].number_value == 3
    assert start.hparams["env.max_rank"].string_value == "null"
