"""The shell commands of the README and the docs pages, for tests/test_readme*.py."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def page_commands(page: Path) -> list[str]:
    """A page's shell commands (its ``bash`` blocks): continuation lines joined, comments
    dropped."""
    text = page.read_text(encoding="utf-8")
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        joined = re.sub(r"\s*\\\n\s*", " ", block)
        for line in joined.splitlines():
            line = re.sub(r"\s+#.*$", "", line).strip()
            if line and not line.startswith("#"):
                commands.append(line)
    return commands


def commands_of_pages(pages: list[Path]) -> list[str]:
    """The pages' commands, each once (where it first shows)."""
    return list(dict.fromkeys(c for page in pages for c in page_commands(page)))


def command_id(command: str) -> str:
    """A command's test id: the command itself, or, past the 100 characters pytest allows an
    id (it would name the test ``command<N>``), its first words and a digest of the rest."""
    if len(command) <= 100:
        return command
    head = command[:80].rsplit(" ", 1)[0]
    return f"{head} ... {hashlib.sha256(command.encode()).hexdigest()[:8]}"
