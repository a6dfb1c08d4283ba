"""Every ``mlo-train`` command of the README (and docs/own_agent.md) gets past Hydra's own
command-line parser as written: flags such as ``-m`` placed where argparse accepts them
(``mlo-train a=1 -m b=2`` fails with "unrecognized arguments"; ``mlo-train -m a=1 b=2``
works). test_readme.py composes the overrides but drops ``-m``, so it cannot see this."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from hydra._internal.utils import get_args_parser

ROOT = Path(__file__).resolve().parents[1]


def mlo_train_commands(*names: str) -> list[str]:
    commands = []
    for name in names:
        text = (ROOT / name).read_text(encoding="utf-8")
        for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
            joined = re.sub(r"\\\n\s*", " ", block)
            for line in joined.splitlines():
                line = re.sub(r"\s+#.*$", "", line).strip()
                if line.startswith("mlo-train ") and not line.startswith("mlo-train report"):
                    commands.append(line)
    return commands


COMMANDS = mlo_train_commands("README.md", "docs/own_agent.md")


def test_commands_were_found() -> None:
    assert len(COMMANDS) > 10 and any(" -m " in c for c in COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
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
