"""Every ``mlo-train`` command of the README and of the docs pages (docs/*.md) gets past
Hydra's own command-line parser as written: flags such as ``-m`` placed where argparse
accepts them (``mlo-train a=1 -m b=2`` fails with "unrecognized arguments"; ``mlo-train -m
a=1 b=2`` works). test_readme.py composes the overrides but drops ``-m``, so it cannot see
this. A command shown on two pages is tested once, under the command as its id
(``command_id``)."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
from hydra._internal.utils import get_args_parser

from tests.readme_pages import README, ROOT, command_id, commands_of_pages


def mlo_train_commands(pages: list[Path]) -> list[str]:
    """The pages' ``mlo-train`` commands (``report`` aside), each once."""
    return [c for c in commands_of_pages(pages)
            if c.startswith("mlo-train ") and not c.startswith("mlo-train report")]


PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
COMMANDS = mlo_train_commands(PAGES)


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
