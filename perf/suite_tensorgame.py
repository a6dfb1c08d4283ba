"""TensorGame throughput: moves per second, batched, for random moves on several shapes."""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from mlo_exp.agents.random import RandomAgent
from mlo_exp.benchmark.backend import host_cpu_name
from mlo_exp.env import TensorGame


def main(out_dir: Path, quick: bool) -> None:
    seconds = 0.5 if quick else 3.0
    rows = []
    for shape in ((2, 2, 2), (3, 3, 3), (4, 4, 4)):
        for batch in (1, 64, 1024):
            game = TensorGame(shape)
            agent = RandomAgent(game, seed=0, batch_size=batch)
            actions = agent.act(game.reset(batch))
            moves, started = 0, time.perf_counter()
            while time.perf_counter() - started < seconds:
                state = game.reset(batch)
                while not bool(state.done.all()):
                    active = int((~state.done).sum())
                    state, _, _ = game.step(state, actions)
                    moves += active
            elapsed = time.perf_counter() - started
            rows.append({"shape": "x".join(map(str, shape)), "batch": batch,
                         "moves": moves, "seconds": round(elapsed, 3),
                         "moves_per_s": round(moves / elapsed)})
    meta = {"torch": torch.__version__, "threads": torch.get_num_threads(),
            "cpu": host_cpu_name(), "quick": quick}
    (out_dir / "tensorgame.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    lines = ["# TensorGame throughput (random moves, CPU)", "",
             f"torch {meta['torch']}, {meta['threads']} threads, quick={quick}", "",
             "| shape | batch | moves/s |", "|---|---:|---:|"]
    lines += [f"| {r['shape']} | {r['batch']} | {r['moves_per_s']:,} |" for r in rows]
    (out_dir / "tensorgame.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
