"""Shared fixtures: Hydra's compose API over the real conf/, and real mlo-train subprocesses."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig

from mlo_exp.config import config_dir

CONF = config_dir()
FAST = bool(os.environ.get("MLO_FAST_TESTS"))  # `make test-fast`: the tier without subprocesses


@pytest.fixture(autouse=True)
def _fast_tier_runs_no_program(monkeypatch):
    """In the fast tier (``MLO_FAST_TESTS=1``: ``make test-fast``) a test that starts Python or
    an entry point in a subprocess (a real ``mlo-train``, the W&B process, a fresh
    interpreter) is skipped at that moment, saying so: those belong to ``make test``, which
    runs every test."""
    if not FAST:
        yield
        return
    original = subprocess.Popen.__init__

    def guarded(self, args, *rest, **kwargs):
        program = Path(str(args[0] if isinstance(args, (list, tuple)) else args).split()[0]).name
        if program.startswith(("python", "mlo-")) or program == Path(sys.executable).name:
            pytest.skip(f"starts {program} in a subprocess: run by make test, not test-fast")
        original(self, args, *rest, **kwargs)

    monkeypatch.setattr(subprocess.Popen, "__init__", guarded)
    yield


@pytest.fixture
def compose_config() -> Callable[..., DictConfig]:
    """``compose_config(["agent=random", ...])`` -> the composed config (no run dir made)."""

    def _compose(overrides: list[str] | None = None) -> DictConfig:
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            return compose(config_name="config", overrides=list(overrides or []))

    yield _compose
    GlobalHydra.instance().clear()


def group_options(group: str) -> list[str]:
    """Every selectable option of a config group (the YAML files in conf/<group>/)."""
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


@pytest.fixture
def run_train(tmp_path: Path) -> Callable[..., subprocess.CompletedProcess]:
    """Run the real ``mlo-train`` entry point in a subprocess, outputs under ``tmp_path``."""

    def _run(*overrides: str, timeout: float = 120, env: dict | None = None,
             cwd: Path | None = None) -> subprocess.CompletedProcess:
        environment = {**os.environ, "MLO_OUTPUTS": str(tmp_path / "outputs"),
                       "WANDB_MODE": "offline", "WANDB_SILENT": "true", **(env or {})}
        executable = Path(sys.executable).with_name("mlo-train")
        return subprocess.run([str(executable), *overrides], capture_output=True, text=True,
                              timeout=timeout, env=environment, cwd=cwd or tmp_path)

    return _run


def run_dirs(root: Path) -> list[Path]:
    """Run directories (those holding run.json) below ``root``."""
    return sorted(p.parent for p in root.rglob("run.json"))
