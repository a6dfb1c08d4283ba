"""The import rules of ``docs/architecture.md``, checked on every module (imports inside
functions included): the ground imports nothing above it, agents never reach the library or
its data, the pluggable families do not import the run, and nothing imports an entry point."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import mlo_exp.env

PACKAGE = Path(mlo_exp.env.__file__).resolve().parent

GROUND = {"mlo_exp.io", "mlo_exp.run_files", "mlo_exp.signals", "mlo_exp.run_context",
          "mlo_exp.config"}
ALGEBRA = {"mlo_exp.algorithms.tensor", "mlo_exp.algorithms.algorithm",
           "mlo_exp.algorithms.parsing", "mlo_exp.algorithms.formats",
           "mlo_exp.algorithms.lifting"}
ENTRY_POINTS = {"mlo_exp.train", "mlo_exp.algorithms.cli", "mlo_exp.benchmark.cli"}

# Folder (or module) -> what its modules may import from mlo_exp, besides themselves.
RULES: dict[str, set[str]] = {
    "ground": GROUND,
    "mlo_exp.algorithms": GROUND | {"mlo_exp.algorithms"},
    "mlo_exp.env": GROUND | {"mlo_exp.algorithms.tensor"},
    "mlo_exp.agents": GROUND | ALGEBRA | {"mlo_exp.env", "mlo_exp.agents"},
    "mlo_exp.agents.flipgraph": GROUND | ALGEBRA | {"mlo_exp.env", "mlo_exp.agents"},
    "mlo_exp.loggers": GROUND | {"mlo_exp.algorithms.algorithm", "mlo_exp.loggers"},
    "mlo_exp.benchmark": GROUND | {"mlo_exp.algorithms", "mlo_exp.benchmark"},
    "mlo_exp.run": GROUND | {"mlo_exp.algorithms", "mlo_exp.env", "mlo_exp.agents",
                             "mlo_exp.loggers", "mlo_exp.benchmark", "mlo_exp.run"},
    # Sweeps read the jobs' files: nothing of the run but themselves.
    "mlo_exp.run.sweep": GROUND | {"mlo_exp.run.sweep"},
    "mlo_exp.train": GROUND | {"mlo_exp.run"},
    "mlo_exp.results": GROUND | {"mlo_exp.run", "mlo_exp.benchmark"},
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def family(name: str) -> str:
    if name in GROUND:
        return "ground"
    for key in sorted(RULES, key=len, reverse=True):
        if name == key or name.startswith(key + "."):
            return key
    raise AssertionError(f"{name} belongs to no folder of docs/architecture.md")


def imports_of(path: Path) -> set[str]:
    """Every ``mlo_exp`` module ``path`` imports, at any depth of the file."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names
                      if (PACKAGE.parent / f"{node.module}.{alias.name}".replace(".", "/")
                          ).with_suffix(".py").exists()}
    return {name for name in found if name.startswith("mlo_exp.")}


def allowed(target: str, rules: set[str]) -> bool:
    return any(target == rule or target.startswith(rule + ".") for rule in rules)


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_follow_the_rules(path):
    name = module_name(path)
    rules = RULES[family(name)]
    wrong = sorted(t for t in imports_of(path)
                   if not allowed(t, rules) and not t.startswith(name + "."))
    assert wrong == [], f"{name} ({family(name)}) may not import {wrong}"
    entry_points = sorted(t for t in imports_of(path) & ENTRY_POINTS if t != name)
    assert entry_points == [], f"{name} imports the entry point(s) {entry_points}"


def test_the_rules_catch_an_upward_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from mlo_exp.run.trainer import Trainer\n")
    assert not allowed("mlo_exp.run.trainer", RULES["ground"])
    assert "mlo_exp.run.trainer" in imports_of(bad)


def test_every_folder_of_the_package_has_a_rule():
    folders = {module_name(p.parent / "__init__.py") for p in modules()
               if p.parent != PACKAGE and p.parent.name != "conf"}
    assert folders <= set(RULES), folders - set(RULES)
