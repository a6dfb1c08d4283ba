"""docs/own_agent.md: the template agent of examples/own_agent/, from a user config directory,
through the real ``mlo-train`` (single run, a sweep with its summary, a refused setting)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.conftest import run_dirs

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "examples" / "own_agent"
SMALL = ["env=matmul_2x2x2", "benchmark=none", "plot=none", "checkpoint=none",
         "logger.progress_bar=false"]


def user_env() -> dict[str, str]:
    """The docs' `export PYTHONPATH=$PWD` in the template folder (the project's own
    sources stay importable as they are in this test session)."""
    return {"PYTHONPATH": os.pathsep.join(
        [str(TEMPLATE), *filter(None, [os.environ.get("PYTHONPATH")])])}


def test_template_agent_runs_from_a_user_config_dir(run_train, tmp_path) -> None:
    result = run_train("--config-dir", str(TEMPLATE / "conf"), "agent=sparse_random",
                       "agent.density=0.4", "trainer.episodes=3", *SMALL, env=user_env())
    assert result.returncode == 0, result.stderr[-3000:]
    (run_dir,) = run_dirs(tmp_path / "outputs")
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["agent"] == "SparseRandomAgent" and summary["episodes"] == 3
    config = (run_dir / ".hydra" / "config.yaml").read_text()
    assert "my_agents.sparse_random.SparseRandomAgent" in config and "density: 0.4" in config


def test_template_agent_through_hydra_searchpath_in_a_sweep(run_train, tmp_path) -> None:
    result = run_train("-m", f"hydra.searchpath=[file://{TEMPLATE / 'conf'}]",
                       "agent=random,sparse_random", "seed=1,2", "trainer.episodes=2",
                       *SMALL, env=user_env(), timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    (summary,) = (tmp_path / "outputs").rglob("sweep_summary.md")
    text = summary.read_text()
    assert "| `agent=sparse_random` |" in text and "| `agent=random` |" in text
    agents = sorted(json.loads(p.read_text())["agent"]
                    for p in (tmp_path / "outputs").rglob("summary.json"))
    assert agents == ["RandomAgent", "RandomAgent", "SparseRandomAgent", "SparseRandomAgent"]


def test_a_setting_the_template_refuses_is_one_line_and_exit_2(run_train) -> None:
    result = run_train("--config-dir", str(TEMPLATE / "conf"), "agent=sparse_random",
                       "agent.density=2", "trainer.episodes=1", *SMALL, env=user_env())
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "agent.density=2; must be in (0, 1]" in result.stderr
