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
    logger.log_benchmark([{"Source Run ID": run_context.run_id, "Size": 64}], {"device": "cpu"})
    logger.log_summary({"best_rank": 7})
    logger.finish()

    (events,) = (run_context.run_dir / "tensorboard").glob("events.out.tfevents.*")
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
