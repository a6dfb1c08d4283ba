"""Probes of where AlphaTensor's rank-47 scheme for ``<4,4,4>`` over Z2 sits in the flip graph
(the figures of docs/flipgraph.md, "Refused reductions and the basin of 47"; not part of
``make perf``: one-off probes printed to stdout, no table).

    .venv/bin/python perf/flipgraph_basin_47.py neighbours SECONDS at47|school
    .venv/bin/python perf/flipgraph_basin_47.py scramble K SECONDS SEED
    .venv/bin/python perf/flipgraph_basin_47.py hop K SECONDS SEED DESCENT_SECONDS

``neighbours``: one walk (plus limit 3 above its best, no bounded paths) from the rank-47
scheme or from the school method; after every 1000 attempts the number of flippable values
(factor values held by two or more terms) of its current scheme, summarised per rank.
``scramble``: 16 walks at the rank-47 scheme climb ``K`` ranks by plus transitions with every
reduction refused (``min_flippable`` huge, floor 0) and flip there (2000 x 200 attempts); the
plain search (the perf targets' settings) then descends from where they are for ``SECONDS``:
the best rank it finds back, and whether its walks' bests are dead ends.
``hop``: the same from the school side, repeated (basin hopping): the plain search descends
for ``DESCENT_SECONDS``, its walks' best schemes climb ``K`` ranks as in ``scramble``, a fresh
plain search descends from there, and so on for ``SECONDS`` (stops at rank 48 or lower).
"""

import sys
import time

import numpy as np

from mlo_exp.agents.flipgraph import FlipGraphAgent
from mlo_exp.agents.flipgraph.population import is_dead_end
from mlo_exp.algorithms.library import alphatensor
from mlo_exp.env import TensorGame

GAME = TensorGame((4, 4, 4), [0, 1], ring="Z2")
WALKS = 16


def rank47() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    scheme = alphatensor(4, 4, 4, ring="Z2")
    return scheme.u % 2, scheme.v % 2, scheme.w % 2


def neighbours(seconds: float, start: str) -> None:
    agent = FlipGraphAgent(GAME, seed=5, threads=1, walks=1, flips_per_episode=1000,
                           plateau_flips=20_000, plus_slack=3, max_plus_slack=3, path_flips=0)
    if start == "at47":
        agent.walks.load(0, rank47())
        agent.walks.rebuild()
    flippable: dict[int, list[int]] = {}
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        agent.walks.advance(0, 1, np.zeros((1, 6), dtype=np.int64))
        count = int(agent.walks.index[-1][0])  # nd: length of the flippable list
        flippable.setdefault(int(agent.walks.rank[0]), []).append(count)
    for rank, counts in sorted(flippable.items()):
        values = np.array(counts)
        print(f"rank {rank}: {len(values)} samples, flippable values median "
              f"{np.median(values):.0f} (min {values.min()}, max {values.max()}), "
              f"share with at most one {np.mean(values <= 1):.3f}")


def climbed(starts: list, climb: int, seed: int) -> list:
    """Every scheme of ``starts`` after ``climb`` plus transitions and flips with every
    reduction refused (``min_flippable`` huge, floor 0), 2000 x 200 attempts a walk."""
    mixer = FlipGraphAgent(GAME, seed=seed, threads=1, walks=WALKS, flips_per_episode=200,
                           plateau_flips=20, plus_slack=climb, max_plus_slack=climb,
                           path_flips=0, min_flippable=10**6)
    mixer.walks.floor = 0
    for walk, factors in enumerate(starts):
        mixer.walks.load(walk, factors)
    mixer.walks.rebuild()
    for _ in range(2000):
        mixer.walks.advance(0, WALKS, np.zeros((WALKS, 6), dtype=np.int64))
    return [mixer.walks.current_factors(walk) for walk in range(WALKS)]


def plain_search(starts: list, seed: int) -> FlipGraphAgent:
    """The perf targets' plain search with its walks at ``starts``."""
    agent = FlipGraphAgent(GAME, seed=seed, threads=1, walks=WALKS, flips_per_episode=100_000,
                           plateau_flips=20_000, plus_slack=3)
    for walk, factors in enumerate(starts):
        agent.walks.load(walk, factors)
    agent.walks.rebuild()
    return agent


def scramble(climb: int, seconds: float, seed: int) -> None:
    starts = climbed([rank47()] * WALKS, climb, seed)
    agent = plain_search(starts, seed)
    print(f"K {climb}: start ranks {sorted(int(f[0].shape[1]) for f in starts)}", flush=True)
    started, best = time.perf_counter(), None
    while time.perf_counter() - started < seconds:
        agent.run_episode()
        lowest = int(agent.walks.best_rank.min())
        if best is None or lowest < best:
            best = lowest
            print(f"  {time.perf_counter() - started:6.1f} s: best {best}", flush=True)
    dead = sum(is_dead_end(agent.walks.best_factors(walk), "Z2") for walk in range(WALKS))
    print(f"K {climb}: best {best}, walks' bests {sorted(agent.walks.best_rank.tolist())}, "
          f"dead ends among them {dead}")


def hop(climb: int, seconds: float, seed: int, descent_seconds: float) -> None:
    agent = FlipGraphAgent(GAME, seed=seed, threads=1, walks=WALKS, flips_per_episode=100_000,
                           plateau_flips=20_000, plus_slack=3)
    started, best, round_ = time.perf_counter(), None, 0
    while time.perf_counter() - started < seconds:
        descent = time.perf_counter()
        while time.perf_counter() - descent < descent_seconds:
            agent.run_episode()
        bests = sorted(agent.walks.best_rank.tolist())
        best = bests[0] if best is None else min(best, bests[0])
        print(f"{time.perf_counter() - started:6.1f} s, round {round_}: walks' bests "
              f"{bests[0]}-{bests[-1]}, best so far {best}", flush=True)
        if best <= 48:
            break
        round_ += 1
        starts = climbed([agent.walks.best_factors(w) for w in range(WALKS)], climb,
                         seed * 1000 + round_)
        agent = plain_search(starts, seed * 1000 + round_)
    print(f"K {climb}: best {best} after {round_ + 1} descents")


if __name__ == "__main__":
    if sys.argv[1] == "neighbours":
        neighbours(float(sys.argv[2]), sys.argv[3])
    elif sys.argv[1] == "scramble":
        scramble(int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]))
    else:
        hop(int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]))
