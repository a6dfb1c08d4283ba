"""The ``--table OUT.md RUN.json...`` mode shared by the flip-graph probes of ``perf/``."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path


def write_table_if_asked(argv: list[str], markdown: Callable[[list[dict], str], str]) -> bool:
    """With ``argv = [script, "--table", OUT.md, RUN.json...]``: ``markdown(runs, host CPU)``
    written to ``OUT.md``, and True; otherwise False (a run to do)."""
    if len(argv) < 2 or argv[1] != "--table":
        return False
    from mlo_exp.benchmark.backend import host_cpu_name

    rows = [json.loads(Path(p).read_text()) for p in argv[3:]]
    Path(argv[2]).write_text(markdown(rows, host_cpu_name()))
    return True
