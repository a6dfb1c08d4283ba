"""Best rank over time of ``<5,5,5>`` C3 searches, seed by seed (the diagnosis of
``perf/flipgraph_c3_diagnosis.md``; not part of ``make perf``).

    python perf/flipgraph_c3_curves.py SRC LABEL SECONDS SEEDS SETTINGS_JSON

``SRC``: the ``src`` folder whose ``mlo_exp`` runs (e.g. a ``git worktree`` of an older
commit, to compare code side by side); settings are the suite's C3 settings of 2026-12-06
(walks 8, 20000 attempts an episode, plateau 50000, plus slack 6) updated by
``SETTINGS_JSON``. Prints one JSON line per seed: the best rank at 30, 60, 120, 240, 360, ...
seconds of wall time, the flips made and the final best rank.
"""

import json
import sys
import time

src, label, seconds, seeds, extra = (sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4],
                                     json.loads(sys.argv[5]))
sys.path.insert(0, src)
from mlo_exp.agents.flipgraph import FlipGraphAgent  # noqa: E402
from mlo_exp.env import TensorGame  # noqa: E402

settings = {"walks": 8, "flips_per_episode": 20_000, "plateau_flips": 50_000, "plus_slack": 6,
            "symmetry": "c3", **extra}
for seed in [int(s) for s in seeds.split(",")]:
    agent = FlipGraphAgent(TensorGame((5, 5, 5), [0, 1], ring="Z2"), seed=seed, threads=1,
                           **settings)
    started, best, curve, flips = time.perf_counter(), 10**9, [], 0
    marks = [30, 60, 120, 240, 360, 480, 600, 900, 1200, 1800]
    while (elapsed := time.perf_counter() - started) < seconds:
        result = agent.run_episode()
        flips += result.moves
        best = min(best, result.rank_used)
        while marks and elapsed >= marks[0]:
            curve.append((marks.pop(0), best))
    curve.append((round(elapsed), best))
    print(json.dumps({"label": label, "seed": seed, "curve": curve, "flips": flips,
                      "final": best}), flush=True)
