import json
import random
import re

import numpy as np
import torch

from mlo_exp.run_context import RunContext, new_run_id, seed_everything


def test_run_ids_are_unique_and_wandb_safe():
    ids = {new_run_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(re.fullmatch(r"\d{8}-\d{6}-[0-9a-f]{8}", i) for i in ids)


def test_seed_everything_replays_python_numpy_and_torch():
    draws = []
    for _ in range(2):
        seed_everything(7)
        draws.append((random.random(), np.random.rand(), torch.rand(1).item()))
    assert draws[0] == draws[1]


def test_run_context_writes_run_json(tmp_path):
    run = RunContext.create(tmp_path, 3, ["matmul2x2x2", "greedy"], overrides=["seed=3"])
    assert run.run_name.startswith("matmul2x2x2__greedy__s3__")
    assert run.run_name.endswith(run.run_id)
    data = json.loads(run.write().read_text())
    assert data["run_id"] == run.run_id and data["overrides"] == ["seed=3"]
    run.time_offset_s = 1000.0  # a resumed run counts the time before the resume
    assert 1000.0 <= run.elapsed() < 1000.0 + 60
