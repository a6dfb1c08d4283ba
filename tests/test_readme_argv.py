"""Every ``mlo-train`` command of the README and of the docs pages (docs/*.md) gets past
Hydra's own command-line parser as written: flags such as ``-m`` placed where argparse
accepts them (``mlo-train a=1 -m b=2`` fails with "unrecognized arguments"; ``mlo-train -m
a=1 b=2`` works). test_readme.py composes the overrides but drops ``-m``, so it cannot see
this. A command shown on two pages is tested once, under the command as its id
(``command_id``)."""

from __future__ import annotations

import hashlib
import re
import shlex
from pathlib import Path

import pytest
from hydra._internal.utils import get_args_parser

ROOT = Path(__file__).resolve().parents[1]


def command_id(command: str) -> str:
    """A command's test id: the command itself, or, past the 100 characters pytest allows an
    id (it would name the test ``command<N>``), its first words and a digest of the rest."""
    if len(command) <= 100:
        return command
    head = command[:80].rsplit(" ", 1)[0]
    return f"{head} ... {hashlib.sha256(command.encode()).hexdigest()[:8]}"


def mlo_train_commands(*pages: Path) -> list[str]:
    """The pages' ``mlo-train`` commands, each once (where it first shows)."""
    commands = []
    for page in pages:
        text = page.read_text(encoding="utf-8")
        for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
            joined = re.sub(r"\s*\\\n\s*", " ", block)
            for line in joined.splitlines():
                line = re.sub(r"\s+#.*$", "", line).strip()
                if line.startswith("mlo-train ") and not line.startswith("mlo-train report"):
                    commands.append(line)
    return list(dict.fromkeys(commands))


PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
COMMANDS = mlo_train_commands(*PAGES)


def test_commands_were_found() -> None:
    assert len(COMMANDS) > 10 and any(" -m " in c for c in COMMANDS)


def test_every_command_has_its_own_id() -> None:
    assert len({command_id(c) for c in COMMANDS}) == len(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS, ids=command_id)
def test_hydra_parses_the_command_line_as_written(command: str) -> None:
    arguments = shlex.split(command.replace("$PWD", "/tmp"))[1:]
    try:
        get_args_parser().parse_args(arguments)
    except SystemExit as error:  # argparse's "unrecognized arguments"
        pytest.fail(f"Hydra refuses `{command}` (exit {error.code}); put flags such as -m "
                    "before the overrides")


def test_the_parser_refuses_a_flag_between_overrides() -> None:
    with pytest.raises(SystemExit):
        get_args_parser().parse_args(["experiment=x", "-m", "seed=1,2"])
    get_args_parser().parse_args(["-m", "experiment=x", "seed=1,2"])
