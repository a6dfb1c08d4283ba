"""Discovery benchmark: does each agent reach the best known rank, and how fast?

Every (shape, agent, seed) is one real run of the training pipeline (Hydra compose over
``conf/``, :func:`mlo_exp.run.experiment.run`, exact verification of what is kept) under a
wall-clock budget (``trainer.time_limit_s``); a run stops early once it holds an exactly
verified algorithm of the best known rank (the trainer's default ``stop_at_rank``).

Writes ``discovery.md`` and ``discovery.json`` (per shape and agent: seeds, seeds reaching
the best known rank, median and max time to it, median episodes to it, best rank reached,
the best known rank from :func:`mlo_exp.algorithms.reference.best_known_rank`, training
throughput) and one learning-curve figure per shape, ``discovery_<n>x<m>x<p>.png`` (share
of seeds at the best known rank, and each seed's best rank, against wall time).

Budgets: ``quick`` runs <2,2,2> only (two seeds, a few seconds per run, under two minutes in
all); the full mode follows the issue's protocol (10 seeds of at most 10 minutes on <2,2,2>,
one seed of 15 minutes per larger shape; about an hour in all, most of it the larger shapes;
the no-learning ablation on <2,2,2> only). Environment variables override either mode:
``DISCOVERY_SHAPES`` (e.g. ``2x2x2,2x2x3``), ``DISCOVERY_AGENTS`` (names of :data:`AGENTS`),
``DISCOVERY_SEEDS`` (seeds per run of the learning agents), ``DISCOVERY_FIRST_SEED`` (the
first seed of every row, default 0; e.g. 10 for a table on seeds that no tuning saw),
``DISCOVERY_BUDGET_S`` (seconds per learning-agent run), ``DISCOVERY_BASELINE_SEEDS`` and
``DISCOVERY_BASELINE_BUDGET_S``.
Timings are CPU timings on a shared machine; the tables record the load average.

The MCTS agent (issues 14 and 32) has its own rows: ``DISCOVERY_SET=mcts`` runs ``mcts``
(the learning agent, 5 seeds) and its controls (3 seeds each), every row under the same
budget, on <2,2,2> (``DISCOVERY_SHAPES=2x2x3`` or ``2x3x3`` for the larger targets, with their
own budgets), and writes ``discovery_mcts.md``/``.json``/``_<shape>.png`` (beside the tables
of the other agents, which it leaves alone). A learning claim holds only against the best
control of the same table:

* ``mcts_sparse_proposals``: the network replaced by the sparse prior (``proposals=sparse``:
  no network evaluated, no learning); ``mcts_tree_sparse_proposals``: the same with the tree
  (``simulations=32``);
* ``mcts_tree``: the learning agent with the tree (``simulations=32``; the agent's default is
  no tree since the tree lost to it in issue 32's table);
* ``mcts_frozen_pretrained``: the network frozen after the same demonstration pretraining;
* ``mcts_frozen_at_init``: the network frozen at its initialisation (``learning_rate=0``);
* ``mcts_no_demonstrations``;
* ``mcts_prior_share`` (``agent.prior_share=0.5``: half of each resampling step's candidates
  from the sparse prior, beside the network's) and its ablation
  ``mcts_prior_share_frozen_pretrained``;
* ``mcts_wide``: the learning agent with the defaults it had before its throughput change
  (torso 256, decoder 128, 32 steps an episode, 1,500 pretraining steps), not a control.

Its rows add network evaluations/s, network updates/s, proposals/s and simulations/s, and a
figure of the median best rank against wall time per agent. ``DISCOVERY_ABLATION_SEEDS``
sets the seeds of the control rows; ``DISCOVERY_WORKERS`` (default 1) runs that many runs at
once, each in its own process (one torch thread each: the run's ``threads`` key). With
``--quick`` the MCTS rows run a shrunken agent (:data:`QUICK_OVERRIDES`) for 12 s, one seed
a row: a smoke run of the machinery, not a measurement.

``DISCOVERY_SET=pair_policy`` runs ``pair_policy`` and its frozen-network ablation
(``learning_rate=0``), 5 seeds of 10 minutes each, on <2,3,3> (issue 14: does its learning
help beyond <2,2,2>?), and writes ``discovery_pair_policy.md``/``.json``/figures.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from hydra import compose, initialize_config_dir  # noqa: E402
from hydra.core.global_hydra import GlobalHydra  # noqa: E402

from mlo_exp.algorithms.algorithm import Algorithm  # noqa: E402
from mlo_exp.algorithms.reference import best_known_rank  # noqa: E402
from mlo_exp.benchmark.backend import host_cpu_name  # noqa: E402
from mlo_exp.config import config_dir, validate  # noqa: E402
from mlo_exp.run import experiment  # noqa: E402

# The tree rows' simulations per move (the default before issue 32's table; the agent's
# default is now 0, no tree).
TREE_SIMULATIONS = 32
# name -> (agent overrides, is a learning agent: seeds/budget of the learning agents apply)
AGENTS: dict[str, tuple[list[str], bool]] = {
    "pair_policy": (["agent=pair_policy"], True),
    "pair_policy_no_learning": (["agent=pair_policy", "agent.learning_rate=0"], True),
    "greedy": (["agent=greedy"], False),
    "random": (["agent=random"], False),
    "mcts": (["agent=mcts"], True),
    "mcts_sparse_proposals": (["agent=mcts", "agent.proposals=sparse"], True),
    "mcts_tree": (["agent=mcts", f"agent.simulations={TREE_SIMULATIONS}"], True),
    "mcts_tree_sparse_proposals": (["agent=mcts", "agent.proposals=sparse",
                                    f"agent.simulations={TREE_SIMULATIONS}"], True),
    "mcts_frozen_pretrained": (["agent=mcts", "agent.freeze_after_pretraining=true"], True),
    "mcts_frozen_at_init": (["agent=mcts", "agent.learning_rate=0"], True),
    "mcts_no_demonstrations": (["agent=mcts", "agent.demonstrations=false"], True),
    "mcts_no_resampling": (["agent=mcts", "agent.resample_steps=0"], True),
    # Half of each resampling step's candidates from the sparse prior beside the network's,
    # learning and frozen after the same pretraining (its ablation).
    "mcts_prior_share": (["agent=mcts", "agent.prior_share=0.5"], True),
    "mcts_prior_share_frozen_pretrained": (["agent=mcts", "agent.prior_share=0.5",
                                            "agent.freeze_after_pretraining=true"], True),
    # The defaults before issue 32's throughput change (a wider network, more steps): the
    # row that shows what the change bought, side by side.
    "mcts_wide": (["agent=mcts", "agent.hidden=256", "agent.decoder_hidden=128",
                   "agent.train_steps=32", "agent.pretrain_steps=1500"], True),
}
# Named sets of agents (DISCOVERY_SET): the default, the MCTS agent with its controls, and
# pair_policy with its frozen ablation on <2,3,3>.
MCTS_CONTROLS = ["mcts_sparse_proposals", "mcts_tree", "mcts_tree_sparse_proposals",
                 "mcts_frozen_pretrained", "mcts_frozen_at_init", "mcts_no_demonstrations"]
SETS = {"default": ["pair_policy", "pair_policy_no_learning", "greedy", "random"],
        "mcts": ["mcts", *MCTS_CONTROLS],
        "pair_policy": ["pair_policy", "pair_policy_no_learning"]}
# Control rows get DISCOVERY_ABLATION_SEEDS seeds (default 3; 1 with --quick) instead of
# DISCOVERY_SEEDS.
ABLATION_ROWS = {*MCTS_CONTROLS, "mcts_no_resampling", "mcts_wide",
                 "mcts_prior_share_frozen_pretrained"}
# The MCTS set's protocol (issue 32): 5 seeds for mcts, 3 per control, the same budget for
# every row: 10 minutes on <2,2,2>, 15 on <2,2,3>, 60 on <2,3,3> (the shapes beyond <2,2,2>
# only when DISCOVERY_SHAPES names them).
MCTS_PLAN = {"2x2x2": ((5, 600.0), (3, 600.0)), "2x2x3": ((5, 900.0), (3, 900.0)),
             "2x3x3": ((5, 3600.0), (3, 3600.0))}
SET_SHAPES = {"mcts": ["2x2x2"]}  # default shapes of a set (else every shape of its plan)
# pair_policy's frozen-network ablation beyond <2,2,2> (issue 14): 5 seeds, 10 minutes each.
PAIR_POLICY_PLAN = {"2x3x3": ((5, 600.0), (5, 600.0))}
SET_PLANS = {"mcts": MCTS_PLAN, "pair_policy": PAIR_POLICY_PLAN}
ENV_OPTION = {"2x2x2": "matmul_2x2x2", "2x2x3": "matmul_2x2x3", "2x3x3": "matmul_2x3x3",
              "3x3x3": "matmul_3x3x3"}
# Per shape: (seeds, budget_s) for learning agents and for baselines, full mode.
FULL = {"2x2x2": ((10, 600.0), (3, 60.0)), "2x2x3": ((2, 900.0), (1, 60.0)),
        "2x3x3": ((1, 900.0), (1, 60.0)), "3x3x3": ((1, 900.0), (1, 60.0))}
QUICK = {"2x2x2": ((2, 20.0), (2, 8.0))}
# --quick with DISCOVERY_SET=mcts: one seed a row, 12 s each (7 rows, about two minutes).
QUICK_PLANS = {"mcts": {"2x2x2": ((1, 12.0), (1, 12.0))}}
# --quick: the MCTS rows run a shrunken agent, so that a 12 s run plays several episodes;
# a smoke run of the machinery, not a measurement.
QUICK_OVERRIDES = {"mcts": ["agent.pretrain_steps=20", "agent.batch_size=4",
                            "agent.chains=16", "agent.train_steps=4"]}
QUICK_TREE = "agent.simulations=4"  # --quick: the tree rows' simulations
# The ablation (no learning) runs on <2,2,2> only unless DISCOVERY_AGENTS names it.
ABLATIONS = {"pair_policy_no_learning": {"2x2x2"}}
# Larger shapes need a smaller batch of chains to keep one episode short.
SHAPE_OVERRIDES = {"2x2x3": ["agent.batch_size=16"], "2x3x3": ["agent.batch_size=16"],
                   "3x3x3": ["agent.batch_size=8"]}


def _plan(quick: bool) -> list[tuple[str, str, list[int], float]]:
    chosen = os.environ.get("DISCOVERY_SET", "default")
    if chosen not in SETS:
        raise SystemExit(f"DISCOVERY_SET: unknown set {chosen!r}; accepted: {list(SETS)}")
    table = QUICK_PLANS.get(chosen, QUICK) if quick else SET_PLANS.get(chosen, FULL)
    default_shapes = table if quick else SET_SHAPES.get(chosen, table)
    shapes = os.environ.get("DISCOVERY_SHAPES", ",".join(default_shapes)).split(",")
    explicit = "DISCOVERY_AGENTS" in os.environ
    agents = os.environ.get("DISCOVERY_AGENTS", ",".join(SETS[chosen])).split(",")
    for name in shapes:
        if name not in ENV_OPTION:
            raise SystemExit(f"DISCOVERY_SHAPES: unknown shape {name!r}; "
                             f"accepted: {list(ENV_OPTION)}")
    for name in agents:
        if name not in AGENTS:
            raise SystemExit(f"DISCOVERY_AGENTS: unknown agent {name!r}; accepted: {list(AGENTS)}")
    first = int(os.environ.get("DISCOVERY_FIRST_SEED", 0))
    plan = []
    for shape in shapes:
        (seeds, budget), (base_seeds, base_budget) = table.get(shape, FULL[shape])
        for agent in agents:
            if not explicit and chosen == "default" and shape not in ABLATIONS.get(agent,
                                                                                {shape}):
                continue
            learning = AGENTS[agent][1]
            count = int(os.environ.get("DISCOVERY_SEEDS" if learning else
                                       "DISCOVERY_BASELINE_SEEDS",
                                       seeds if learning else base_seeds))
            if agent in ABLATION_ROWS:
                count = int(os.environ.get("DISCOVERY_ABLATION_SEEDS", 1 if quick else 3))
            limit = float(os.environ.get("DISCOVERY_BUDGET_S" if learning else
                                         "DISCOVERY_BASELINE_BUDGET_S",
                                         budget if learning else base_budget))
            plan.append((shape, agent, list(range(first, first + count)), limit))
    return plan


def run_one(shape: str, agent: str, seed: int, budget_s: float, root: Path,
            quick: bool = False) -> dict[str, Any]:
    """One real training run; returns its summary, curve and throughput."""
    row = [QUICK_TREE if quick and o.startswith("agent.simulations=") else o
           for o in AGENTS[agent][0]]
    family = row[0].removeprefix("agent=")
    # The row's own settings win over the quick ones.
    shrink = [o for o in QUICK_OVERRIDES.get(family, []) if quick
              and o.split("=")[0] not in {r.split("=")[0] for r in row}]
    overrides = [f"env={ENV_OPTION[shape]}", *row, *SHAPE_OVERRIDES.get(shape, []), *shrink,
                 f"seed={seed}", f"trainer.time_limit_s={budget_s}", "trainer.episodes=1000000",
                 "logger.progress_bar=false", "logger.print_every_s=1000000"]
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose(config_name="config", overrides=overrides)
    GlobalHydra.instance().clear()
    run_dir = root / f"{shape}_{agent}_s{seed}"
    summary = experiment.run(cfg, validate(cfg), run_dir, overrides=overrides).to_dict()
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()
               if line.strip()] if (run_dir / "metrics.jsonl").exists() else []
    verified_rank = None
    if summary["algorithm_path"]:
        algorithm = Algorithm.load(summary["algorithm_path"])
        if algorithm.verify().ok:  # re-checked here, exactly, from the file the run wrote
            verified_rank = algorithm.rank
    known = best_known_rank([int(x) for x in shape.split("x")])
    reached = next((r["wall_time_s"] for r in records
                    if r.get("best_rank") is not None and known is not None
                    and r["best_rank"] <= known), None)
    wall = max(summary["wall_time_s"], 1e-9)
    last = records[-1] if records else {}
    return {
        "shape": shape, "agent": agent, "seed": seed, "budget_s": budget_s,
        "best_rank": verified_rank, "best_known_rank": known, "time_to_best_known_s": reached,
        "wall_time_s": summary["wall_time_s"], "episodes": summary["episodes"],
        "episodes_per_s": summary["episodes"] / wall, "moves_per_s": summary["moves"] / wall,
        "search_steps_per_s": (last["search_steps"] / wall) if "search_steps" in last else None,
        "evaluations_per_s": (last["network_evaluations"] / wall
                              if "network_evaluations" in last else None),
        "simulations_per_s": (last["simulations"] / wall if "simulations" in last else None),
        "updates_per_s": (last["network_updates"] / wall if "network_updates" in last else None),
        "proposals_per_s": (last["proposals"] / wall if "proposals" in last else None),
        "curve": step_points([(r["wall_time_s"], r.get("best_rank")) for r in records]),
    }


def _run_job(job: tuple[str, str, int, float, str, bool]) -> dict[str, Any]:
    """:func:`run_one` for a worker process (one argument, picklable)."""
    shape, agent, seed, budget_s, root, quick = job
    return run_one(shape, agent, seed, budget_s, Path(root), quick)


def step_points(curve: list[tuple[float, int | None]]) -> list[tuple[float, int | None]]:
    """Best rank against wall time is a step function: keep the points where it changes and
    the last one (a step plot with ``where="post"`` draws the same figure). A random agent's
    tens of thousands of episodes would otherwise make the JSON megabytes long."""
    kept = [point for index, point in enumerate(curve)
            if index == 0 or point[1] != curve[index - 1][1]]
    if curve and (not kept or kept[-1] is not curve[-1]):
        kept.append(curve[-1])
    return kept


def aggregate(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (shape, agent)."""
    rows = []
    for key in dict.fromkeys((r["shape"], r["agent"]) for r in runs):
        group = [r for r in runs if (r["shape"], r["agent"]) == key]
        times = [r["time_to_best_known_s"] for r in group if r["time_to_best_known_s"] is not None]
        ranks = [r["best_rank"] for r in group if r["best_rank"] is not None]
        steps = [r["search_steps_per_s"] for r in group if r["search_steps_per_s"] is not None]
        evaluations = [r["evaluations_per_s"] for r in group
                       if r.get("evaluations_per_s") is not None]
        simulations = [r["simulations_per_s"] for r in group
                       if r.get("simulations_per_s") is not None]
        updates = [r["updates_per_s"] for r in group if r.get("updates_per_s") is not None]
        proposals = [r["proposals_per_s"] for r in group if r.get("proposals_per_s") is not None]
        # a run stops at the best known rank, so its episodes are the episodes it needed
        episodes = [r["episodes"] for r in group if r["time_to_best_known_s"] is not None]
        rows.append({
            "shape": key[0], "agent": key[1], "seeds": len(group),
            "budget_s": group[0]["budget_s"], "reached_best_known": len(times),
            "median_time_s": round(statistics.median(times), 1) if times else None,
            "max_time_s": round(max(times), 1) if times else None,
            "median_episodes": statistics.median(episodes) if episodes else None,
            "best_rank": min(ranks) if ranks else None,
            "best_known_rank": group[0]["best_known_rank"],
            "episodes_per_s": round(statistics.median(r["episodes_per_s"] for r in group), 2),
            "moves_per_s": round(statistics.median(r["moves_per_s"] for r in group)),
            "search_steps_per_s": round(statistics.median(steps), 1) if steps else None,
            "evaluations_per_s": (round(statistics.median(evaluations))
                                  if evaluations else None),
            "simulations_per_s": (round(statistics.median(simulations))
                                  if simulations else None),
            "updates_per_s": round(statistics.median(updates), 2) if updates else None,
            "proposals_per_s": round(statistics.median(proposals)) if proposals else None,
            "time_per_seed_s": [None if r["time_to_best_known_s"] is None
                                else round(r["time_to_best_known_s"], 1) for r in group],
            "best_rank_per_seed": [r["best_rank"] for r in group],
        })
    return rows


def plot_median(runs: list[dict[str, Any]], shape: str, path: Path) -> None:
    """Median (over seeds) best verified rank against wall time, one line per agent; a seed
    without a verified algorithm yet counts as the school method's rank + 1."""
    group = [r for r in runs if r["shape"] == shape]
    n, m, p = (int(x) for x in shape.split("x"))
    none = n * m * p + 1
    figure, axis = plt.subplots(figsize=(7, 4))
    for index, agent in enumerate(dict.fromkeys(r["agent"] for r in group)):
        mine = [r for r in group if r["agent"] == agent]
        # A run stops between episodes, so it may end a little after its budget.
        end = max(max(r["budget_s"], r["wall_time_s"]) for r in mine)
        grid = [end * i / 400 for i in range(401)]

        def at(run: dict[str, Any], t: float) -> int:
            best = none
            for when, rank in run["curve"]:
                if when <= t and rank is not None:
                    best = rank
            return best

        medians = [statistics.median(at(r, t) for r in mine) for t in grid]
        axis.step(grid, medians, where="post", color=f"C{index}",
                  label=f"{agent} ({len(mine)} seeds)")
    known = group[0]["best_known_rank"]
    if known is not None:
        axis.axhline(known, color="black", linestyle=":", label=f"best known ({known})")
    axis.axhline(none, color="grey", linestyle="--", linewidth=0.8,
                 label=f"{none}: nothing verified yet")
    axis.set_xlabel("wall time (s)")
    axis.set_ylabel("median best verified rank")
    axis.set_title(f"<{shape.replace('x', ',')}>: median best rank over seeds (CPU)")
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def plot(runs: list[dict[str, Any]], shape: str, path: Path) -> None:
    """Share of seeds at the best known rank, and every seed's best rank, against time."""
    group = [r for r in runs if r["shape"] == shape]
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(7, 6), sharex=True)
    for index, agent in enumerate(dict.fromkeys(r["agent"] for r in group)):
        colour = f"C{index}"
        mine = [r for r in group if r["agent"] == agent]
        budget = max(r["budget_s"] for r in mine)
        times = sorted(r["time_to_best_known_s"] for r in mine if r["time_to_best_known_s"])
        xs = [0.0, *times, budget]
        ys = [0.0, *[(i + 1) / len(mine) for i in range(len(times))], len(times) / len(mine)]
        top.step(xs, ys, where="post", color=colour, label=f"{agent} ({len(mine)} seeds)")
        for seed_index, run in enumerate(mine):
            points = [(t, b) for t, b in run["curve"] if b is not None]
            if points:
                t, b = zip(*points, strict=True)
                bottom.step(t, b, where="post", color=colour, alpha=0.6,
                            label=agent if seed_index == 0 else None)
    known = group[0]["best_known_rank"]
    if known is not None:
        bottom.axhline(known, color="black", linestyle=":", label=f"best known ({known})")
    top.set_ylabel("share of seeds at best known rank")
    bottom.set_ylabel("best verified rank")
    bottom.set_xlabel("wall time (s)")
    top.set_title(f"<{shape.replace('x', ',')}> discovery (CPU)")
    top.legend(fontsize=8)
    bottom.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def main(out_dir: Path, quick: bool) -> None:
    logging.getLogger("mlo_exp").setLevel(logging.WARNING)
    plan = _plan(quick)
    meta = {"device": f"CPU ({host_cpu_name()}), no GPU used",
            "torch": torch.__version__,
            "cpu_count": os.cpu_count(), "load_average_at_start": os.getloadavg(),
            "quick": quick, "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            "budget_overrides": {k: v for k, v in sorted(os.environ.items())
                                 if k.startswith("DISCOVERY_")}}
    name = "discovery" if os.environ.get("DISCOVERY_SET", "default") == "default" \
        else f"discovery_{os.environ['DISCOVERY_SET']}"
    workers = int(os.environ.get("DISCOVERY_WORKERS", 1))
    jobs = [(shape, agent, seed, budget) for shape, agent, seeds, budget in plan
            for seed in seeds]
    runs: list[dict[str, Any]] = []

    def finished(result: dict[str, Any]) -> None:
        print(f"  {result['shape']} {result['agent']} seed {result['seed']}: best rank "
              f"{result['best_rank']} (best known {result['best_known_rank']}), time to it "
              f"{result['time_to_best_known_s']} s", flush=True)
        runs.append(result)
        partial = {"meta": {**meta, "partial": f"{len(runs)} of {len(jobs)} runs"}, "runs": runs}
        (out_dir / f"{name}.partial.json").write_text(json.dumps(partial, indent=1))

    with tempfile.TemporaryDirectory(prefix="mlo-discovery-") as root:
        if workers > 1:  # each run in its own process (forked), `workers` at a time
            context = multiprocessing.get_context("fork")
            with context.Pool(workers, maxtasksperchild=1) as pool:  # a fresh process per run
                for result in pool.imap_unordered(_run_job, [(*job, root, quick)
                                                             for job in jobs]):
                    finished(result)
            order = {job: index for index, job in enumerate(jobs)}
            runs.sort(key=lambda r: order[(r["shape"], r["agent"], r["seed"], r["budget_s"])])
        else:
            for job in jobs:
                finished(run_one(*job, Path(root), quick))
    (out_dir / f"{name}.partial.json").unlink(missing_ok=True)
    meta["load_average_at_end"] = os.getloadavg()
    meta["torch_threads"] = torch.get_num_threads()  # after the runs: agents may set it
    meta["workers"] = workers
    rows = aggregate(runs)
    (out_dir / f"{name}.json").write_text(json.dumps({"meta": meta, "rows": rows,
                                                      "runs": runs}, indent=1))
    for shape in dict.fromkeys(r["shape"] for r in runs):
        plot(runs, shape, out_dir / f"{name}_{shape}.png")
        plot_median(runs, shape, out_dir / f"{name}_{shape}_median.png")
    lines = ["# Discovery benchmark" + ("" if name == "discovery" else f" ({name})"), "",
             f"{meta['device']}; torch {meta['torch']}, {meta['torch_threads']} threads, "
             f"{meta['cpu_count']} cores, {workers} run(s) at a time; load average at start "
             f"{meta['load_average_at_start']}, at end {meta['load_average_at_end']}; "
             f"quick={quick}. A rank counts only after exact verification of the algorithm "
             "file the run wrote. Budget overrides: "
             f"{meta['budget_overrides'] or 'none'}.", "",
             "| shape | agent | seeds | budget (s) | reached best known | time per seed (s) "
             "| median time (s) | max time (s) | median episodes to it | best rank "
             "| best rank per seed | best known "
             "| episodes/s | moves/s | search steps/s | network evaluations/s "
             "| network updates/s | proposals/s | simulations/s |",
             "|---|---|---:|---:|---:|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|"
             "---:|---:|"]
    for r in rows:
        per_seed = ", ".join("-" if t is None else str(t) for t in r["time_per_seed_s"])
        ranks = ", ".join("-" if b is None else str(b) for b in r["best_rank_per_seed"])
        cells = [r["shape"], r["agent"], r["seeds"], r["budget_s"], r["reached_best_known"],
                 per_seed, r["median_time_s"], r["max_time_s"], r["median_episodes"],
                 r["best_rank"], ranks, r["best_known_rank"], r["episodes_per_s"], r["moves_per_s"],
                 r["search_steps_per_s"], r["evaluations_per_s"], r.get("updates_per_s"),
                 r.get("proposals_per_s"), r["simulations_per_s"]]
        lines.append("| " + " | ".join("-" if c is None else str(c) for c in cells) + " |")
    shapes = list(dict.fromkeys(r["shape"] for r in runs))
    lines += ["", "Learning curves: " + ", ".join(
        f"`{name}_{s}.png`, `{name}_{s}_median.png`" for s in shapes), ""]
    (out_dir / f"{name}.md").write_text("\n".join(lines))
    print("\n".join(lines))
