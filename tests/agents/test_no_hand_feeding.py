"""No hand-feeding: agent code never loads a known decomposition of the target.

Two checks over every module under ``src/mlo_exp/agents``:

* statically (AST): no import of the known-algorithm modules (``mlo_exp.algorithms.library``,
  ``mlo_exp.algorithms.alphatensor``) or of ``mlo_exp.algorithms.reference`` (which locates the
  data directory), and
  no string naming the reference files (``.npz``, ``factorizations``, ``best_known``);
* at run time, in a fresh interpreter: importing every agent and playing an episode with each
  leaves those modules unimported and opens no file under the package data directory.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import mlo_exp.env

PACKAGE = Path(mlo_exp.env.__file__).resolve().parent
AGENTS = PACKAGE / "agents"
FORBIDDEN_MODULES = ("mlo_exp.algorithms.library", "mlo_exp.algorithms.alphatensor",
                     "mlo_exp.algorithms.reference", "mlo_exp.algorithms.catalogue")
FORBIDDEN_STRINGS = (".npz", "factorizations", "best_known", "alphatensor")


def agent_modules() -> list[Path]:
    return sorted(p for p in AGENTS.glob("*.py"))


def imported_names(tree: ast.AST) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr == "import_module" and node.args
              and isinstance(node.args[0], ast.Constant)):
            names.add(str(node.args[0].value))
    return names


def test_the_scan_sees_every_agent_module():
    names = {p.stem for p in agent_modules()}
    assert {"base", "random", "greedy", "pair_policy", "mcts"} <= names


def test_agent_modules_import_no_known_algorithm_source():
    for path in agent_modules():
        tree = ast.parse(path.read_text(), filename=str(path))
        for name in imported_names(tree):
            assert not name.startswith(FORBIDDEN_MODULES), f"{path.name} imports {name}"
        docstrings = {id(node.value) for node in ast.walk(tree) if isinstance(node, ast.Expr)}
        for node in ast.walk(tree):
            if (isinstance(node, ast.Constant) and isinstance(node.value, str)
                    and id(node) not in docstrings):
                hits = [s for s in FORBIDDEN_STRINGS if s in node.value.lower()]
                assert not hits, f"{path.name} names reference data: {node.value!r}"


def test_the_scan_catches_a_forbidden_import():
    tree = ast.parse("from mlo_exp.algorithms.library import load\n"
                     "import mlo_exp.algorithms.alphatensor as at\n")
    names = imported_names(tree)
    assert "mlo_exp.algorithms.library" in names and "mlo_exp.algorithms.alphatensor" in names


RUNTIME_CHECK = r"""
import builtins, importlib, inspect, io, json, pathlib, sys
import numpy as np
data_dir = pathlib.Path(sys.argv[1]).resolve()
opened = []
real_open, real_io_open, real_load = builtins.open, io.open, np.load
def spy(file, *args, **kwargs):
    if isinstance(file, (str, pathlib.Path)):
        opened.append(str(pathlib.Path(file).resolve()))
    return real_open(file, *args, **kwargs)
def spy_load(file, *args, **kwargs):
    if isinstance(file, (str, pathlib.Path)):
        opened.append(str(pathlib.Path(file).resolve()))
    return real_load(file, *args, **kwargs)
builtins.open, io.open, np.load = spy, spy, spy_load
from mlo_exp.env import TensorGame
from mlo_exp.agents.base import Agent
played = []
# Agents whose defaults make one episode long get a small setting (the code paths are the same).
SMALL = {"MctsAgent": {"pretrain_steps": 3, "simulations": 2, "candidates": 2, "train_steps": 1}}
for path in sorted((pathlib.Path(sys.argv[2])).glob("*.py")):
    module = importlib.import_module(f"mlo_exp.agents.{path.stem}")
    for value in vars(module).values():
        if (isinstance(value, type) and issubclass(value, Agent)
                and not inspect.isabstract(value) and value.__module__ == module.__name__):
            agent = value(TensorGame((2, 2, 2)), seed=0, batch_size=2,
                          **SMALL.get(value.__name__, {}))
            agent.run_episode()
            played.append(value.__name__)
print(json.dumps({"played": played,
                  "modules": sorted(m for m in sys.modules if m.startswith("mlo_exp")),
                  "opened": opened}))
"""


def test_playing_every_agent_loads_no_known_algorithm():
    result = subprocess.run(
        [sys.executable, "-c", RUNTIME_CHECK, str(PACKAGE / "algorithms" / "data"), str(AGENTS)],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert {"RandomAgent", "GreedyAgent", "PairPolicyAgent", "MctsAgent"} <= set(report["played"])
    for name in FORBIDDEN_MODULES:
        assert name not in report["modules"], f"{name} was imported by agent code"
    data_dir = str((PACKAGE / "algorithms" / "data").resolve())
    assert not [p for p in report["opened"] if p.startswith(data_dir)], report["opened"]
