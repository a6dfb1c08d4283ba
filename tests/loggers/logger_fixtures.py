"""Fixtures for logger tests: real W&B, kept offline, quiet and away from the user's setup.

Imported by each test module (not a conftest.py: a second ``conftest`` module would shadow
``tests/conftest.py`` for ``from conftest import ...``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mlo_exp.run_context import RunContext

# Variables that would point W&B at a real account or server; tests start without them.
WANDB_ACCOUNT_VARIABLES = ("WANDB_API_KEY", "WANDB_ENTITY", "WANDB_PROJECT", "WANDB_BASE_URL",
                           "WANDB_MODE", "WANDB_DIR", "WANDB_RUN_GROUP", "WANDB_TAGS")


def isolate_wandb(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    """Offline W&B whose settings, caches and staging live under ``home`` (no netrc)."""
    for name in WANDB_ACCOUNT_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    home.mkdir(parents=True, exist_ok=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(home / "wandb-config"))
    monkeypatch.setenv("WANDB_CACHE_DIR", str(home / "wandb-cache"))
    monkeypatch.setenv("WANDB_DATA_DIR", str(home / "wandb-data"))
    monkeypatch.setenv("WANDB_ARTIFACT_DIR", str(home / "wandb-artifacts"))
    monkeypatch.setenv("WANDB_DISABLE_CODE", "true")


@pytest.fixture(autouse=True)
def offline_wandb(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate_wandb(monkeypatch, tmp_path / "home")


@pytest.fixture
def run_context(tmp_path: Path) -> RunContext:
    """A run in ``tmp_path/run`` (run.json written), as experiment.run would make it."""
    run = RunContext.create(tmp_path / "run", 3, ["matmul2x2x2", "random"])
    run.run_dir.mkdir(parents=True)
    run.write()
    return run


@pytest.fixture(scope="module")
def module_wandb_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[pytest.MonkeyPatch]:
    """:func:`isolate_wandb` for a whole module (one W&B run shared by several tests)."""
    with pytest.MonkeyPatch.context() as patch:
        isolate_wandb(patch, tmp_path_factory.mktemp("home"))
        yield patch


def run_dirs(root: Path) -> list[Path]:
    """Run directories (those holding run.json) below ``root``."""
    return sorted(p.parent for p in root.rglob("run.json"))
