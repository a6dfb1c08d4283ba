"""Checkpoint cost: save and load time of the default agent's checkpoint, and the share of a
default training run's wall time spent checkpointing at the default policy (target < 2%).

The run is the default config (``mlo-train`` with no overrides: greedy agent on <2,2,2>,
``checkpoint=default``), composed with Hydra and built like ``experiment.run`` builds it, so
the CheckpointManager's own clock can be read. ``--quick`` shortens the run to 20 episodes.
Save = payload + torch.save + atomic write with fsync + checkpoint_log.json + pruning;
load = sha256 check + torch.load(weights_only=True) + restoring agent, trainer and RNGs.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from mlo_exp.algorithms.reference import best_known_rank
from mlo_exp.benchmark.backend import host_cpu_name
from mlo_exp.config import config_dir, validate
from mlo_exp.run import experiment
from mlo_exp.run.checkpoint import CheckpointManager, load_checkpoint, restore
from mlo_exp.run.trainer import Trainer
from mlo_exp.run_context import RunContext, seed_everything

REPEATS = 30


def build(run_dir: Path, overrides: list[str]):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose(config_name="config", overrides=overrides)
    settings = validate(cfg)
    run = RunContext.create(run_dir, settings.seed, experiment.run_name_parts(settings, cfg))
    run.config = OmegaConf.to_container(cfg, resolve=True)
    run_dir.mkdir(parents=True, exist_ok=True)
    seed_everything(settings.seed)
    game = experiment.build_game(settings)
    agent = experiment.build_agent(cfg, game, settings.seed)
    logger = experiment.build_logger(cfg, run)
    components = experiment.build_components(cfg, run, logger)
    trainer = Trainer(game, agent, logger, run, settings.trainer, components,
                      best_known_rank(settings.env.shape, settings.env.ring))
    manager = next(c for c in components if isinstance(c, CheckpointManager))
    return cfg, trainer, manager


def main(out_dir: Path, quick: bool) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        overrides = ["logger.print_every_s=1000", "logger.progress_bar=false"]
        if quick:
            overrides.append("trainer.episodes=20")
        cfg, trainer, manager = build(Path(scratch) / "run", overrides)
        started = time.perf_counter()
        summary = trainer.fit()
        fit_s = time.perf_counter() - started
        run_checkpoint_s, run_saves = manager.seconds_saving, manager.saves

        # Save and load of the same (final) state, repeated.
        saves = []
        for _ in range(REPEATS):
            t0 = time.perf_counter()
            path = manager.save(trainer, "perf")
            saves.append(time.perf_counter() - t0)
        entry = manager._log.entry(path.name)
        loads = []
        _, fresh, _ = build(Path(scratch) / "fresh", overrides)
        for _ in range(REPEATS):
            t0 = time.perf_counter()
            payload = load_checkpoint(path, entry["sha256"])
            restore(fresh, payload, path)
            loads.append(time.perf_counter() - t0)

    meta = {"torch": torch.__version__, "threads": torch.get_num_threads(), "device": "cpu",
            "cpu": host_cpu_name(), "cpus": os.cpu_count(),
            "load_average_1m": round(os.getloadavg()[0], 2), "quick": quick}
    policy = {k: v for k, v in OmegaConf.to_container(cfg.checkpoint).items() if k != "_target_"}
    result = {
        "agent": str(cfg.agent._target_).rsplit(".", 1)[-1],
        "shape": list(cfg.env.shape),
        "checkpoint_bytes": entry["size"],
        "save_ms_median": round(1000 * statistics.median(saves), 2),
        "save_ms_max": round(1000 * max(saves), 2),
        "load_ms_median": round(1000 * statistics.median(loads), 2),
        "load_ms_max": round(1000 * max(loads), 2),
        "run_episodes": summary.episodes,
        "run_stop_reason": summary.stop_reason,
        "run_wall_s": round(fit_s, 3),
        "checkpoints_saved": run_saves,
        "checkpoint_s": round(run_checkpoint_s, 4),
        "policy": policy,
    }
    result["checkpoint_share_pct"] = round(100 * run_checkpoint_s / fit_s, 3)
    result["target_met"] = result["checkpoint_share_pct"] < 2.0
    (out_dir / "checkpoint.json").write_text(json.dumps({"meta": meta, "result": result},
                                                        indent=1) + "\n")
    r = result
    lines = [
        "# Checkpoint cost (CPU)", "",
        f"torch {meta['torch']}, {meta['threads']} threads, {meta['cpus']} CPUs, "
        f"1-min load average {meta['load_average_1m']} at the end, quick={quick}", "",
        f"Default agent {r['agent']} on {'x'.join(map(str, r['shape']))}, "
        f"checkpoint {r['checkpoint_bytes']:,} bytes; {REPEATS} repeats.", "",
        "| operation | median ms | max ms |", "|---|---:|---:|",
        f"| save (payload, torch.save, write+fsync+rename, log, prune) | "
        f"{r['save_ms_median']} | {r['save_ms_max']} |",
        f"| load (sha256, torch.load weights_only, restore) | {r['load_ms_median']} | "
        f"{r['load_ms_max']} |", "",
        f"Default run ({r['run_episodes']} episodes, stopped by {r['run_stop_reason']}, "
        f"{r['run_wall_s']} s) at the default policy {policy}: "
        f"{r['checkpoints_saved']} checkpoints took {r['checkpoint_s']} s = "
        f"**{r['checkpoint_share_pct']}%** of wall time (target < 2%: "
        f"{'met' if r['target_met'] else 'NOT met'}).",
    ]
    (out_dir / "checkpoint.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
