"""Run identity and reproducibility: run_id, run name, run directory, clock, seeds.

``run_id`` is ``YYYYmmdd-HHMMSS-<8 hex>``: a timestamp plus 32 random bits from the OS, so it
is unique across parallel sweep jobs (which may start in the same second), and it only uses
characters W&B accepts as a run id. It is created once per run and restored on resume.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import secrets
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mlo_exp.io import atomic_write_text


def new_run_id(now: dt.datetime | None = None) -> str:
    """A fresh run id (see module docstring)."""
    now = now or dt.datetime.now()
    return f"{now:%Y%m%d-%H%M%S}-{secrets.token_hex(4)}"


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch so the same seed on the CPU replays the same episodes."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@dataclass
class RunContext:
    """Who this run is and where its files go. Serialised to ``run.json`` in the run dir."""

    run_id: str
    run_name: str
    run_dir: Path
    seed: int
    started_at: str  # ISO 8601, local time with offset
    start_time: float = field(default_factory=time.time)  # epoch seconds of this process' start
    time_offset_s: float = 0.0  # run duration before this process (non-zero after a resume)
    job_num: int | None = None  # index within a multirun, None for a single run
    overrides: list[str] = field(default_factory=list)
    # The resolved config as a plain dict (set by experiment.run; saved in checkpoints,
    # not in run.json, which the config in .hydra/ already covers).
    config: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def create(cls, run_dir: Path, seed: int, name_parts: list[str],
               job_num: int | None = None, overrides: list[str] | None = None) -> RunContext:
        now = dt.datetime.now().astimezone()
        run_id = new_run_id(now)
        run_name = "__".join([*name_parts, f"s{seed}", run_id])
        return cls(run_id, run_name, Path(run_dir), seed, now.isoformat(timespec="seconds"),
                   job_num=job_num, overrides=list(overrides or []))

    def elapsed(self) -> float:
        """Run duration in seconds, counting time before a resume."""
        return self.time_offset_s + (time.time() - self.start_time)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["run_dir"] = str(self.run_dir)
        data.pop("config")
        data["pid"] = os.getpid()
        return data

    def write(self) -> Path:
        """Write ``run.json`` atomically."""
        return atomic_write_text(self.run_dir / "run.json", json.dumps(self.to_dict(), indent=1))
