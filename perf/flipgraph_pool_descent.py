"""Pool descent over Z2, one rank at a time: does it reach further than the agent's walks?

The agent's walks descend depth first: a walk that reduces keeps walking from its new scheme,
and stalled walks restart from a population of the best rank. The pool-based search of
flip-cpd (Khoruzhii, Gelß, Pokutta 2025; the method as described in its documentation, not
its code) descends breadth first: at rank ``r`` it keeps a pool of distinct schemes; every
attempt starts at a uniformly drawn member and walks (flips, a plus transition after
``plus_lim`` flips without a reduction or when no flip is possible) until a reduction or
``path_limit`` flips; the reduced schemes fill the pool of rank ``r - 1`` (``pool_size`` of
them, or what ``max_attempts`` attempts found), and only then does the descent move on. This
probe runs that loop on the agent's Z2 kernel (the same flips, reductions and plus
transitions) and writes the rank reached over time::

    PYTHONPATH=src .venv/bin/python perf/flipgraph_pool_descent.py 4x4x4 SECONDS SEED [OUT.json]
    PYTHONPATH=src .venv/bin/python perf/flipgraph_pool_descent.py --table OUT.md RUN.json...

Every scheme it reports is verified exactly; schemes in which no flip is possible (dead
ends) are kept out of the pools (``--keep-dead-ends`` keeps them, as flip-cpd does).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
from probe_table import write_table_if_asked

from mlo_exp.agents.flipgraph import kernel_z2
from mlo_exp.agents.flipgraph.population import is_dead_end, scheme_key
from mlo_exp.agents.flipgraph.start import school
from mlo_exp.agents.flipgraph.walks import COUNTS, Z2Walks
from mlo_exp.algorithms.algorithm import Algorithm
from mlo_exp.config import FlipGraphAgentConfig
from mlo_exp.env import TensorGame

WALKS = 16  # attempts in flight (one thread runs them in turn)
CHUNK = 20_000  # flips per attempt between two looks at it
POOL_SIZE = 200
MAX_ATTEMPTS = 1000  # per rank, once one scheme of the next rank is known
PATH_LIMIT = 1_000_000
PLUS_LIM = 50_000


def descend(shape: tuple[int, int, int], seconds: float, seed: int,
            keep_dead_ends: bool = False) -> dict:
    """The pool descent from the school method for ``seconds``; returns the best rank, when
    each rank was first reached, and the attempts and pool sizes per rank."""
    game = TensorGame(shape, [0, 1], ring="Z2")
    settings = FlipGraphAgentConfig(walks=WALKS, flips_per_episode=CHUNK,
                                    plateau_flips=PLUS_LIM, plus_slack=6, max_plus_slack=6,
                                    path_flips=0)
    rng = np.random.default_rng(seed)
    seeds = rng.integers(1, 2**63 - 1, size=WALKS, dtype=np.int64).astype(np.uint64)
    start = school(*shape)
    walks = Z2Walks(game, settings, start, seeds)
    pool: list = [start]
    pool_rank = start[0].shape[1]
    next_pool: dict[str, tuple] = {}
    attempts = 0
    started_rank = np.zeros(WALKS, dtype=np.int64)  # each attempt's start, its rank to beat
    flips_used = np.zeros(WALKS, dtype=np.int64)  # each attempt's attempts at flips so far
    levels: list[dict] = []
    first_reached = {pool_rank: 0.0}
    counts = np.zeros((WALKS, len(COUNTS)), dtype=np.int64)
    outcomes = dict.fromkeys(("kept", "dead_end", "duplicate", "path_limit"), 0)
    flips = 0

    def begin(walk: int) -> None:
        nonlocal attempts
        factors = pool[int(rng.integers(len(pool)))]
        walks.load(walk, factors)
        walks.reset_counters(walk)
        started_rank[walk] = factors[0].shape[1]
        flips_used[walk] = 0
        attempts += 1

    for walk in range(WALKS):
        begin(walk)
    walks.rebuild()
    began = time.perf_counter()
    level_began = began
    while time.perf_counter() - began < seconds:
        walks.advance(0, WALKS, counts, stop_below=pool_rank)
        flips += int(counts[:, 0].sum())
        flips_used += counts[:, 0] + counts[:, 3] + counts[:, 5]  # attempts made
        for walk in range(WALKS):
            reduced = walks.best_rank[walk] < started_rank[walk]
            if reduced:
                factors = walks.best_factors(walk)
                key = scheme_key(factors, "Z2")
                if not keep_dead_ends and is_dead_end(factors, "Z2"):
                    outcomes["dead_end"] += 1
                elif key in next_pool:
                    outcomes["duplicate"] += 1
                else:
                    outcomes["kept"] += 1
                    next_pool[key] = factors
            elif flips_used[walk] >= PATH_LIMIT:
                outcomes["path_limit"] += 1
            if reduced or flips_used[walk] >= PATH_LIMIT:
                begin(walk)
                kernel_z2.rebuild(walks.F, walks.rank, *walks.index, walk)
        full = len(next_pool) >= POOL_SIZE
        if full or (next_pool and attempts >= MAX_ATTEMPTS):
            now = time.perf_counter() - began
            best = min(f[0].shape[1] for f in next_pool.values())
            levels.append({"rank": pool_rank - 1, "pool": len(next_pool), "attempts": attempts,
                           "seconds": round(now - (level_began - began), 1), **outcomes})
            print(f"{now:8.1f} s  rank {pool_rank - 1}: {len(next_pool)} schemes from "
                  f"{attempts} attempts (best {best}; {outcomes})", flush=True)
            for factors in next_pool.values():
                first_reached.setdefault(factors[0].shape[1], round(now, 1))
            pool = list(next_pool.values())
            pool_rank = max(f[0].shape[1] for f in pool)
            next_pool, attempts, level_began = {}, 0, time.perf_counter()
            outcomes = dict.fromkeys(outcomes, 0)
            for walk in range(WALKS):
                begin(walk)
            walks.rebuild()
    best = min(pool + list(next_pool.values()), key=lambda f: f[0].shape[1])
    verified = Algorithm(shape, *best, "Z2").verify().ok
    return {"shape": "x".join(map(str, shape)), "seed": seed, "seconds": seconds,
            "best_rank": best[0].shape[1] if verified else None, "verified": verified,
            "first_reached": first_reached, "levels": levels, "flips": flips,
            "pool_at_end": len(pool), "next_pool_at_end": len(next_pool),
            "outcomes_at_end": outcomes,
            "attempts_at_end": attempts, "keep_dead_ends": keep_dead_ends,
            "settings": {"walks": WALKS, "chunk": CHUNK, "pool_size": POOL_SIZE,
                         "max_attempts": MAX_ATTEMPTS, "path_limit": PATH_LIMIT,
                         "plus_lim": PLUS_LIM}}


def markdown(rows: list[dict], host: str) -> str:
    """One table: per run the best rank and when each rank was first reached; per rank the
    attempts and what became of them."""
    lines = ["# Pool descent over Z2 (`perf/flipgraph_pool_descent.py`)", "",
             f"{host}, one thread per run. Settings: {rows[0]['settings']}. Dead ends (no flip "
             "possible) are kept out of the pools. Every best rank is exactly verified.", "",
             "| shape | seed | budget s | best rank | first reached (rank: s) | flips |",
             "|---|---:|---:|---:|---|---:|"]
    for row in rows:
        reached = ", ".join(f"{rank}: {at:g}" for rank, at in row["first_reached"].items())
        lines.append(f"| {row['shape']} | {row['seed']} | {row['seconds']:g} | "
                     f"{row['best_rank']} | {reached} | {row['flips']:,} |")
    lines += ["", "Per rank: the attempts until the pool of the next rank was full (or "
              "`max_attempts` passed with one found), and what became of them: kept (a new "
              "distinct scheme), a dead end, a duplicate, or `path_limit` flips without a "
              "reduction. The last line of a run: the attempts after its last full pool.", "",
              "| shape | seed | rank | attempts | kept | dead end | duplicate | path limit | "
              "seconds |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for row in rows:
        for level in row["levels"]:
            lines.append(f"| {row['shape']} | {row['seed']} | {level['rank']} | "
                         f"{level['attempts']} | {level['kept']} | {level['dead_end']} | "
                         f"{level['duplicate']} | {level['path_limit']} | {level['seconds']} |")
        end = row["outcomes_at_end"]
        lines.append(f"| {row['shape']} | {row['seed']} | {row['best_rank'] - 1} (open) | "
                     f"{row['attempts_at_end']} | {end['kept']} | {end['dead_end']} | "
                     f"{end['duplicate']} | {end['path_limit']} | - |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    if write_table_if_asked(sys.argv, markdown):
        sys.exit(0)
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    shape = tuple(int(x) for x in args[0].split("x"))
    row = descend(shape, float(args[1]), int(args[2]), "--keep-dead-ends" in sys.argv)
    print(json.dumps({k: v for k, v in row.items() if k != "levels"}))
    if len(args) > 3:
        Path(args[3]).write_text(json.dumps(row, indent=1) + "\n")
