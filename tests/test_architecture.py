"""The import rules of ``docs/architecture.md``, checked on every module (imports inside
functions included): the ground imports nothing above it, agents never reach the library or
its data, the pluggable families do not import the run, and nothing imports an entry point."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import mlo_exp.env

PACKAGE = Path(mlo_exp.env.__file__).resolve().parent

DOC = PACKAGE.parents[1] / "docs" / "architecture.md"


def read_rules(text: str) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """``(sets, rules)`` of the doc's ``import-rules`` block: ``name = modules`` defines a
    set, ``folder: names or modules`` a rule (names expanded)."""
    (block,) = re.findall(r"```import-rules\n(.*?)```", text, flags=re.S)
    sets: dict[str, set[str]] = {}
    rules: dict[str, set[str]] = {}
    for line in block.splitlines():
        if "=" in line:
            name, members = line.split("=", 1)
            sets[name.strip()] = set(members.split())
        elif ":" in line:
            folder, members = line.split(":", 1)
            rules[folder.strip()] = set().union(*(sets.get(m, {m}) for m in members.split()))
    return sets, rules


SETS, RULES = read_rules(DOC.read_text(encoding="utf-8"))
GROUND, ENTRY_POINTS = SETS["ground"], SETS["entry-points"]


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


def imports_of(path: Path, name: str | None = None) -> set[str]:
    """Every ``mlo_exp`` module ``path`` (module ``name``) imports, at any depth of the file,
    relative imports resolved; a bare ``import mlo_exp`` is reported as ``mlo_exp``."""
    name = name or module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([module] if module else []))
            if module != "mlo_exp":  # from mlo_exp import config: the names count
                found.add(module)
            found |= {f"{module}.{alias.name}" for alias in node.names
                      if (PACKAGE.parent / f"{module}.{alias.name}".replace(".", "/")
                          ).with_suffix(".py").exists()
                      or (PACKAGE.parent / f"{module}.{alias.name}".replace(".", "/")).is_dir()}
    return {n for n in found if n == "mlo_exp" or n.startswith("mlo_exp.")}


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


@pytest.mark.parametrize("source", [
    "def f():\n    from mlo_exp.run.trainer import Trainer\n",
    "from ..run import trainer\n",
    "from ..run.trainer import Trainer\n",
    "import mlo_exp\n",
])
def test_the_rules_catch_an_upward_import(tmp_path, source):
    # a module of the ground (mlo_exp.algorithms.bad) importing the run, planted four ways
    bad = tmp_path / "bad.py"
    bad.write_text(source)
    found = imports_of(bad, "mlo_exp.algorithms.bad")
    rules = RULES["mlo_exp.algorithms"]
    assert any(not allowed(t, rules) for t in found), found


def test_the_doc_block_is_the_rules():
    assert {"ground", "algebra", "entry-points"} <= set(SETS)
    assert RULES["mlo_exp.agents"] >= SETS["algebra"] and "mlo_exp.run" not in RULES["ground"]


def test_every_folder_of_the_package_has_a_rule():
    folders = {module_name(p.parent / "__init__.py") for p in modules()
               if p.parent != PACKAGE and p.parent.name != "conf"}
    assert folders <= set(RULES), folders - set(RULES)
