"""The SLURM refusal: ``hydra/launcher=slurm`` where no SLURM exists stops before any job."""

from __future__ import annotations

import shutil
import sys

from omegaconf import DictConfig, OmegaConf


def refuse_slurm_off_cluster(config: DictConfig) -> None:
    """``hydra/launcher=slurm`` on a machine without SLURM (no ``srun``): one line naming
    the launcher to rehearse with instead (``submitit_local``), exit 2, no job run."""
    target = str(OmegaConf.select(config, "hydra.launcher._target_", default="") or "")
    if target.endswith("SlurmLauncher") and shutil.which("srun") is None:
        print("mlo-train: hydra/launcher=slurm needs a SLURM cluster (no `srun` on this "
              "machine); nothing was run. Rehearse the sweep here with "
              "hydra/launcher=submitit_local (or joblib)", file=sys.stderr)
        sys.exit(2)
