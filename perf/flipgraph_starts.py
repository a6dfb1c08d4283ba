"""Starts built from other formats: does a walk from them reach below the school method's?

The school method's walks on ``<4,4,4>`` over Z2 stop at 49 (the region of Strassen squared);
AlphaTensor's 47 sits at the bottom of a funnel about six ranks deep
(``docs/flipgraph.md``). This probe starts the agent's plain Z2 search (the target settings
of :mod:`suite_flipgraph`) from schemes that the scheme operations build out of other
formats, each a different region of the flip graph, and writes the rank reached over time:

* ``school``: the control, the school method;
* ``extend-3x4x4``: the catalogue's ``<3,4,4>`` (38) extended by the 16 school terms of the
  missing row (rank 54);
* ``sum-2x4x4``: the direct sum of two copies of the catalogue's ``<2,4,4>`` (26), rank 52;
* ``c3-released``: the best scheme of a ``symmetry=c3`` search of ``C3_SECONDS`` (same seed),
  walked on without the symmetry;
* ``extend-4x4x4`` (for ``<4,4,5>``): the catalogue's ``<4,4,4>`` over Z2 (AlphaTensor's 47)
  extended by 16 school terms (rank 63);
* ``extend-4x4x5`` (for ``<4,5,5>``): the catalogue's ``<4,4,5>`` (61) extended by the 20
  school terms of the missing column (rank 81);
* ``sum-AxBxC+DxExF`` (any shape): the direct sum of the catalogue's best schemes of two
  smaller shapes that differ in one dimension and add up to the target shape along it (e.g.
  ``sum-3x2x5+3x3x5`` for ``<3,5,5>``: 25 + 36 = 61), the merge move of the meta flip graph;
* ``built`` (any shape): what ``agent.start_from=built`` picks
  (:func:`mlo_exp.algorithms.starts.best_start` without the shape's own scheme);
* ``project-n``/``-m``/``-p`` (any shape): the walks move over the shape one larger along that
  axis from its catalogue best, and every episode report their best restriction to the shape
  (``agent.project_from``, every slice tried).

Run one start and seed, then the table of the runs::

    PYTHONPATH=src .venv/bin/python perf/flipgraph_starts.py 4x4x4 START SECONDS SEED OUT.json
    PYTHONPATH=src .venv/bin/python perf/flipgraph_starts.py --table OUT.md RUN.json...

Every reported rank is verified exactly (:func:`suite_flipgraph.search`).
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

from probe_table import write_table_if_asked
from suite_flipgraph import C3_SETTINGS, PLAIN_SETTINGS, search

from mlo_exp.agents.flipgraph import FlipGraphAgent, projection
from mlo_exp.algorithms.algorithm import Algorithm
from mlo_exp.algorithms.library import best
from mlo_exp.algorithms.operations import direct_sum, extend
from mlo_exp.algorithms.reference import best_known_rank
from mlo_exp.algorithms.starts import best_start
from mlo_exp.env import TensorGame

C3_SECONDS = 60.0


def _c3_best(shape: tuple[int, int, int], seed: int) -> Algorithm:
    """The best scheme of a ``symmetry=c3`` search of :data:`C3_SECONDS`."""
    agent = FlipGraphAgent(TensorGame(shape, [0, 1], ring="Z2"), seed=seed, threads=1,
                           **C3_SETTINGS)
    started, found = time.perf_counter(), None
    while time.perf_counter() - started < C3_SECONDS:
        result = agent.run_episode()
        if found is None or result.rank_used < found[0]:
            found = (result.rank_used, result.factors)
    return Algorithm(shape, *found[1], "Z2")


# name -> builder(seed) -> Algorithm; the school control has no builder
STARTS = {
    "school": None,
    "extend-3x4x4": lambda seed: extend(best(3, 4, 4, ring="Z"), "n"),
    "sum-2x4x4": lambda seed: direct_sum(best(2, 4, 4, ring="Z"), best(2, 4, 4, ring="Z"), "n"),
    "c3-released": lambda seed: _c3_best((4, 4, 4), seed),
    "extend-4x4x4": lambda seed: extend(best(4, 4, 4, ring="Z2"), "p"),
    "extend-4x4x5": lambda seed: extend(best(4, 4, 5, ring="Z"), "m"),
}


def _sum_start(name: str, shape: tuple[int, int, int]) -> Algorithm:
    """``sum-AxBxC+DxExF``: the direct sum of the two shapes' best schemes (over Z, read modulo 2
    by the walk) along the dimension in which they add up to ``shape``."""
    parts = [tuple(int(x) for x in part.split("x")) for part in name[len("sum-"):].split("+")]
    axes = [axis for axis in range(3) if len(parts) == 2
            and parts[0][axis] + parts[1][axis] == shape[axis]
            and all(parts[0][o] == parts[1][o] == shape[o] for o in range(3) if o != axis)]
    if not axes:
        raise SystemExit(f"start {name!r}: two shapes that add up to {shape} along one axis")
    return direct_sum(best(*parts[0], ring="Z"), best(*parts[1], ring="Z"), axes[0])


def _start(shape: tuple[int, int, int], start: str, seed: int
           ) -> tuple[Algorithm | None, tuple[int, int, int], dict]:
    """``start``'s scheme (None: the school method), the shape the walks move over, and the
    settings it adds."""
    if start.startswith("project-"):  # the walks' shape: one larger along the axis
        axis = start[len("project-"):]
        walked = projection.larger_shape(shape, axis)
        return best(*walked, ring="Z"), walked, {"project_from": axis}
    if start == "built":
        return best_start(shape, "Z2", 1, own=False), shape, {}
    if start.startswith("sum-"):
        return _sum_start(start, shape), shape, {}
    builder = STARTS[start]
    return (None if builder is None else builder(seed)), shape, {}


def run(shape: tuple[int, int, int], start: str, seconds: float, seed: int) -> dict:
    """The plain Z2 search from ``start`` for ``seconds`` (best known rank as its aim)."""
    algorithm, walked, extra = _start(shape, start, seed)
    settings = {**PLAIN_SETTINGS, **extra}
    with tempfile.TemporaryDirectory(prefix="flipgraph_starts_") as directory:
        if algorithm is not None:
            if tuple(algorithm.shape) != walked or not algorithm.verify().ok:
                raise SystemExit(f"start {start!r} does not build a valid <{walked}> scheme")
            settings["start_from"] = str(algorithm.save(Path(directory) / "start.json"))
        row = search(shape, "Z2", best_known_rank(shape, "Z2"), seconds, seed, **settings)
    return {**row, "start": start, "start_rank": algorithm and algorithm.rank}


def markdown(rows: list[dict], host: str) -> str:
    """One row per run: the start, its rank, the best rank and when it was first reached."""
    lines = [
        "# Flip-graph starts built from other formats (Z2, plain search)", "",
        f"{host}; one core per run, the target settings of `suite_flipgraph`"
        f" ({PLAIN_SETTINGS}). `c3-released` first runs a `symmetry=c3` search for "
        f"{C3_SECONDS:g} s (not counted in the budget).", "",
        "| shape | start | start rank | seed | budget s | best rank | first reached at s "
        "| flips/CPU-s | best known (Z2) |",
        "|---|---|---:|---:|---:|---:|---|---:|---:|",
    ]
    for r in rows:
        reached = r.get("first_reached") or {}
        times = ", ".join(f"{rank}: {t:g}" for rank, t in
                          sorted(reached.items(), key=lambda kv: -int(kv[0])))
        lines.append(f"| `<{r['shape'].replace('x', ',')}>` | {r['start']} | "
                     f"{r['start_rank'] or '-'} | {r['seed']} | {r['budget_s']:g} | "
                     f"{r['best_rank']} | {times} | {r['flips_per_cpu_s']:,} | "
                     f"{r['target']} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    if write_table_if_asked(sys.argv, markdown):
        sys.exit(0)
    shape = tuple(int(x) for x in sys.argv[1].split("x"))
    if sys.argv[2] not in STARTS and sys.argv[2] != "built" \
            and not sys.argv[2].startswith(("sum-", "project-")):
        raise SystemExit(f"unknown start {sys.argv[2]!r}; accepted: {list(STARTS)}, built, "
                         "sum-AxBxC+DxExF or project-n/m/p")
    row = run(shape, sys.argv[2], float(sys.argv[3]), int(sys.argv[4]))
    print(json.dumps(row))
    if len(sys.argv) > 5:
        Path(sys.argv[5]).write_text(json.dumps(row, indent=1) + "\n")
