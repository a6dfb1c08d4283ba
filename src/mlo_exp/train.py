"""``mlo-train``: the Hydra entry point. Compose, validate, run, summarise; nothing else.

Exit codes: 0 on success (also when the run was interrupted and saved), 1 for Hydra's own
composition errors (unknown option, wrong type, unknown key) and for a run that failed (a
checkpoint could not be written), 2 for invalid values and a checkpoint that cannot be
resumed (missing, corrupt, unsafe, or for another shape or agent). In a multirun an invalid
value fails that job only (Hydra exits 1 after all jobs ran).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from mlo_exp import experiment
from mlo_exp.checkpoint import CheckpointError
from mlo_exp.config import ConfigError, config_dir, validate


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="config")
def main(cfg: DictConfig) -> int | None:
    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    try:
        settings = validate(cfg)
    except ConfigError as error:
        if hydra_cfg.mode.name == "MULTIRUN":
            # Hydra records the job as failed, the other jobs go on, and the sweep summary
            # lists this job with the error (see mlo_exp.sweep).
            raise
        _discard_unused_run_dir(run_dir)
        print(f"mlo-train: invalid configuration: {error}", file=sys.stderr)
        sys.exit(2)
    job_num = hydra_cfg.job.num if hydra_cfg.mode.name == "MULTIRUN" else None
    try:
        summary = experiment.run(cfg, settings, run_dir, job_num,
                                 list(hydra_cfg.overrides.task))
    except CheckpointError as error:
        _discard_unused_run_dir(run_dir)
        print(f"mlo-train: cannot resume: {error}", file=sys.stderr)
        sys.exit(2)
    except ConfigError as error:  # a setting the agent refused
        if hydra_cfg.mode.name == "MULTIRUN":
            raise
        _discard_unused_run_dir(run_dir)
        print(f"mlo-train: invalid configuration: {error}", file=sys.stderr)
        sys.exit(2)
    if summary.status == "failed":
        sys.exit(1)
    return summary.best_rank


def _discard_unused_run_dir(run_dir: Path) -> None:
    """Remove a run dir that holds only what Hydra wrote before validation failed."""
    leftovers = {".hydra", "train.log", ".lock"}
    if run_dir.is_dir() and {p.name for p in run_dir.iterdir()} <= leftovers:
        shutil.rmtree(run_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
