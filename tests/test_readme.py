"""Every command the README and the docs pages show still works.

The commands are read from the ``bash`` blocks of README.md and of every docs/*.md page but
docs/own_agent.md (its commands need the template's config directory and ``PYTHONPATH``:
tests/test_own_agent.py runs them), so a new example is covered the day it is written; a
command shown on two pages is tested once, under the command as its id (``command_id``).
``mlo-train`` commands are composed by the real entry point (``--cfg job``: Hydra's groups,
keys and types) and validated with the schemas (values), with a sweep's first value standing
for the sweep; the cheap ones also run to the end on a small budget.
``mlo-algorithms`` and ``mlo-benchmark`` commands run for real, placeholders replaced by real
files and small sizes. ``make`` lines must name a target of the Makefile (``make test`` runs
itself; the end-to-end tier runs ``mlo-train`` on its defaults).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser

from mlo_exp.config import validate
from tests.conftest import run_dirs
from tests.readme_pages import README, ROOT, command_id, commands_of_pages, page_commands

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
# Commands that run to the end here (a few seconds each); the others are composed only.
RUN_FULLY = {"mlo-train experiment=smoke", "mlo-train env=matmul_2x2x2_z2 agent=flipgraph"}
SMALL_BUDGET = ["trainer.time_limit_s=5", "trainer.episodes=2", "benchmark=none", "plot=none",
                "logger.print_every_s=1000"]


PAGES = [README, *sorted(p for p in (ROOT / "docs").glob("*.md") if p.name != "own_agent.md")]


def readme_commands() -> list[str]:
    """The commands of the README, then of the docs pages, each once (where it first shows)."""
    return commands_of_pages(PAGES)


def first_values(overrides: list[str]) -> list[str]:
    """A sweep's overrides with each sweep (``a=x,y``) replaced by its first value."""
    parser = OverridesParser.create()
    single = []
    for text in overrides:
        if text in ("-m", "--multirun"):
            continue
        (override,) = parser.parse_overrides([text])
        if override.is_sweep_override():
            first = next(iter(override.sweep_string_iterator()))
            single.append(f"{override.get_key_element()}={first}")
        else:
            single.append(text)
    return single


def commands_of(program: str) -> list[str]:
    return [c for c in readme_commands() if c.split()[0] == program]


def test_the_readme_shows_commands_of_every_kind():
    programs = {c.split()[0] for c in page_commands(README)}
    assert {"make", "mlo-train", "mlo-algorithms", "mlo-benchmark"} <= programs


def test_the_readme_lists_every_experiment_bundle():
    text = README.read_text(encoding="utf-8")
    bundles = sorted(p.stem for p in (ROOT / "conf" / "experiment").glob("*.yaml"))
    assert [b for b in bundles if f"| `{b}` |" not in text] == []


def test_the_pages_the_readme_links_exist():
    links = re.findall(r"\]\((docs/[^)#]+)", README.read_text(encoding="utf-8"))
    assert links and [link for link in links if not (ROOT / link).is_file()] == []


def test_every_command_has_its_own_id():
    commands = readme_commands()
    assert len({command_id(c) for c in commands}) == len(commands)


@pytest.mark.parametrize("command", [c for c in readme_commands() if c.startswith("make ")],
                         ids=command_id)
def test_make_lines_name_makefile_targets(command):
    target = command.split()[1]
    assert re.search(rf"^{re.escape(target)}:", (ROOT / "Makefile").read_text(), re.M), target


@pytest.fixture(scope="module")
def outputs(tmp_path_factory) -> Path:
    """An outputs root with one finished run (its directory, run_id, algorithm.json)."""
    root = tmp_path_factory.mktemp("readme") / "outputs"
    env = {**os.environ, "MLO_OUTPUTS": str(root), "WANDB_MODE": "offline"}
    result = subprocess.run([str(BIN / "mlo-train"), "agent=greedy", *SMALL_BUDGET],
                            capture_output=True, text=True, env=env, cwd=root.parent,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    return root


def run(program: str, args: list[str], outputs: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "MLO_OUTPUTS": str(outputs), "WANDB_MODE": "offline",
           "WANDB_SILENT": "true"}
    return subprocess.run([str(BIN / program), *args], capture_output=True, text=True,
                          env=env, cwd=outputs.parent, timeout=300)


@pytest.mark.parametrize("command", commands_of("mlo-train"), ids=command_id)
def test_mlo_train_commands_compose_validate_and_the_cheap_ones_run(command, compose_config,
                                                                    outputs):
    (run_dir,) = run_dirs(outputs)[:1]
    words = [w.replace("outputs/.../algorithm.json", str(run_dir / "algorithm.json"))
             for w in shlex.split(command)[1:]]
    if any(w.startswith("--") and w != "--cfg" for w in words):  # --help and the like
        shown = run("mlo-train", words, outputs)
        assert shown.returncode == 0 and shown.stdout, shown.stderr
        return
    if "--cfg" in words:  # the command prints the config itself
        at = words.index("--cfg")
        words = words[:at] + words[at + 2:]
    overrides = first_values(words)
    shown = run("mlo-train", [*overrides, "--cfg", "job"], outputs)
    assert shown.returncode == 0, shown.stderr
    own = [o for o in overrides if not o.startswith("hydra")]
    validate(compose_config(own))
    if command in RUN_FULLY:
        done = run("mlo-train", [*own, *SMALL_BUDGET], outputs)
        assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr


@pytest.mark.parametrize("command", commands_of("mlo-algorithms"), ids=command_id)
def test_mlo_algorithms_commands_run(command, outputs):
    (run_dir,) = run_dirs(outputs)[:1]
    text_file = outputs.parent / "333-23-mod2.txt"
    if not text_file.exists():
        made = run("mlo-algorithms", ["export", "alphatensor-3x3x3-z2", "--format", "text",
                                      "--out", str(text_file)], outputs)
        assert made.returncode == 0, made.stderr
    command = command.replace(" [--ring Z]", "").replace("path/to/algorithm.json",
                                                          str(run_dir / "algorithm.json"))
    result = run("mlo-algorithms", shlex.split(command)[1:], outputs)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("command", commands_of("mlo-benchmark"), ids=command_id)
def test_mlo_benchmark_commands_run(command, outputs):
    (run_dir,) = run_dirs(outputs)[:1]
    run_id = json.loads((run_dir / "run.json").read_text())["run_id"]
    words = shlex.split(command)[1:]
    words = [str(run_dir) if w.startswith("outputs/runs/") else
             run_id if re.fullmatch(r"\d{8}-\d{6}-[0-9a-f]{8}", w) else
             str(run_dir / "algorithm.json") if w == "path/to/algorithm.json" else w
             for w in words]
    if words[0] != "report":
        if "--shape" in words:  # a small product of the same block structure
            start = words.index("--shape") + 1
            while start < len(words) and re.fullmatch(r"\d+x\d+x\d+", words[start]):
                del words[start]
            words.insert(start, "192x128x192")
        elif "--sizes" in words:  # small sizes: the command, not the machine, is under test
            start = words.index("--sizes") + 1
            while start < len(words) and words[start].isdigit():
                del words[start]
            words.insert(start, "64")
        else:
            words += ["--sizes", "64"]
        words += ["--repeats", "1", "--max-repeats", "1", "--no-registry"]
    result = run("mlo-benchmark", words, outputs)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
