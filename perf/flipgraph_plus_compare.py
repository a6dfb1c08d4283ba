"""Time to each new best rank of one Z2 flip-graph search, for comparing two versions of the
code side by side (the plus-transition check of ``perf/flipgraph_plus_transition.md``; not
part of ``make perf``).

    PYTHONPATH=SRC python perf/flipgraph_plus_compare.py LABEL SHAPE TARGET SEED SECONDS [k=v ...]

``SRC``: the ``src`` folder whose ``mlo_exp`` runs (e.g. a ``git worktree`` of an older
commit; ``mlo_exp`` is a namespace package, so ``PYTHONPATH`` picks it). Settings: the
suite's plain 30-minute settings (16 walks, 100000 attempts an episode, plateau 20000, plus
slack 3) updated by the ``k=v`` arguments. One thread; a first episode (the kernel's compile
or cache load) is not timed. Prints one JSON line: the kernel file that ran, the time and rank
of every new best, the time to ``TARGET`` (null: not within ``SECONDS``), plus transitions
and flips made.
"""

import json
import sys
import time

from mlo_exp.agents.flipgraph import FlipGraphAgent, kernel_z2
from mlo_exp.env import TensorGame

label, shape, target, seed, seconds = (sys.argv[1], tuple(int(x) for x in sys.argv[2].split("x")),
                                       int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]))
extra = {key: int(value) if value.lstrip("-").isdigit() else value
         for key, value in (argument.split("=") for argument in sys.argv[6:])}
settings = {"walks": 16, "flips_per_episode": 100_000, "plateau_flips": 20_000, "plus_slack": 3,
            **extra}
agent = FlipGraphAgent(TensorGame(shape, [0, 1], ring="Z2"), seed=seed, threads=1, **settings)
agent.run_episode()  # compile or load the kernel
started, best, marks, reached, pluses, flips = time.perf_counter(), 10**9, [], None, 0, 0
while time.perf_counter() - started < seconds:
    result = agent.run_episode()
    pluses += result.metrics["plus_transitions"]
    flips += result.moves
    if result.rank_used < best:
        best = result.rank_used
        marks.append((round(time.perf_counter() - started, 1), best))
    if best <= target:
        reached = round(time.perf_counter() - started, 1)
        break
print(json.dumps({"label": label, "kernel": kernel_z2.__file__, "shape": sys.argv[2],
                  "seed": seed, "reached": reached, "best": best, "marks": marks,
                  "pluses": pluses, "flips": flips}), flush=True)
