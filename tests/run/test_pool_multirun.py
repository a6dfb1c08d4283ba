"""One flip-graph search over the jobs of a real Hydra multirun (``agent.pool_dir``): a job
picks up the scheme another job found, through the joblib and the submitit_local launchers,
and a job killed mid-run loses nothing the pool had."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from mlo_exp.algorithms.algorithm import Algorithm

# <3,3,3> mod 2: job 0 (100k flips per walk and episode) reaches 23 in a fraction of a
# second; job 1 (one flip per walk and episode, ~10^3 flips a second) would need minutes,
# so it can only get there through the pool. Both stop at 23.
POOL_SEARCH = ("agent=flipgraph", "env=matmul_3x3x3", "env.ring=Z2", "env.coefficients=[0,1]",
               "agent.walks=2", "agent.pool_every=1", "agent.restart_after=1",
               "trainer.stop_at_rank=23", "trainer.time_limit_s=120", "trainer.episodes=1000000",
               "benchmark=none", "checkpoint=none", "plot=none", "logger.progress_bar=false")


def terms(algorithm: Algorithm) -> list[tuple[int, ...]]:
    factors = (np.asarray(algorithm.u), np.asarray(algorithm.v), np.asarray(algorithm.w))
    return sorted(tuple(np.concatenate([f[:, r] for f in factors]).tolist())
                  for r in range(algorithm.rank))


def job_dirs(outputs: Path) -> dict[str, Path]:
    """``flips_per_episode`` of each job -> its run directory."""
    found = {}
    for run_json in (outputs / "multirun").rglob("run.json"):
        overrides = json.loads((run_json.parent / "job_status.json").read_text())["overrides"]
        (flips,) = [o.split("=")[1] for o in overrides if o.startswith("agent.flips_per_episode")]
        found[flips] = run_json.parent
    return found


def assert_the_weak_job_took_the_strong_jobs_scheme(outputs: Path, pool: Path) -> None:
    jobs = job_dirs(outputs)
    assert set(jobs) == {"100000", "1"}
    published = sorted(pool.glob("rank0023-*.json"))
    assert published, sorted(p.name for p in pool.iterdir())
    pool_scheme = Algorithm.load(published[0])
    assert pool_scheme.verify().ok and pool_scheme.ring == "Z2"
    for flips, run_dir in jobs.items():
        summary = json.loads((run_dir / "summary.json").read_text())
        assert summary["best_rank"] == 23, (flips, summary)
        found = Algorithm.load(run_dir / "algorithm.json")
        assert found.verify().ok and found.rank == 23
    # the weak job's 23 is the strong job's scheme, term for term: it came through the pool
    assert terms(Algorithm.load(jobs["1"] / "algorithm.json")) == terms(pool_scheme)


@pytest.mark.slow
def test_two_joblib_jobs_share_one_search(run_train, tmp_path) -> None:
    pool = tmp_path / "pool"
    result = run_train("-m", *POOL_SEARCH, "agent.flips_per_episode=100000,1",
                       f"agent.pool_dir={pool}", "hydra/launcher=joblib",
                       "hydra.launcher.n_jobs=2", timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert_the_weak_job_took_the_strong_jobs_scheme(tmp_path / "outputs", pool)


@pytest.mark.slow
def test_the_same_search_on_submitit_local(run_train, tmp_path) -> None:
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    pool = tmp_path / "pool"
    result = run_train("-m", *POOL_SEARCH, "agent.flips_per_episode=100000,1",
                       f"agent.pool_dir={pool}", "hydra/launcher=submitit_local",
                       "hydra.launcher.timeout_min=5", timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert list((tmp_path / "outputs").rglob(".submitit"))  # it really went through submitit
    assert_the_weak_job_took_the_strong_jobs_scheme(tmp_path / "outputs", pool)


@pytest.mark.slow
def test_a_killed_job_loses_nothing_the_pool_had(run_train, tmp_path) -> None:
    # A job that would run for minutes publishes its 23 and is killed (SIGKILL, no clean-up);
    # every pool file still reads and verifies, and a new job starts from the pool's 23.
    pool = tmp_path / "pool"
    environment = {**os.environ, "MLO_OUTPUTS": str(tmp_path / "outputs"),
                   "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    endless = [o for o in POOL_SEARCH if not o.startswith("trainer.stop_at_rank")]
    command = [str(Path(sys.executable).with_name("mlo-train")), *endless,
               "trainer.stop_at_rank=1", "agent.flips_per_episode=20000",
               f"agent.pool_dir={pool}"]  # stop_at_rank=1: it never stops by itself
    job = subprocess.Popen(command, cwd=tmp_path, env=environment, start_new_session=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 90
        while not list(pool.glob("rank0023-*.json")) and time.monotonic() < deadline:
            assert job.poll() is None, job.stderr.read().decode()[-2000:]
            time.sleep(0.2)
        time.sleep(1.0)  # let it publish (or not) and keep walking
    finally:
        os.killpg(job.pid, signal.SIGKILL)
        job.wait(timeout=30)
    assert job.returncode == -signal.SIGKILL, (job.returncode, job.stderr.read().decode()[-2000:])
    schemes = sorted(pool.glob("rank*.json"))  # what a reader of the pool sees
    assert [f.name for f in schemes if f.name.startswith("rank0023-")]
    for file in schemes:  # no half-written scheme: every one is whole and verifies
        assert Algorithm.load(file).verify().ok
    # a kill inside a write can leave only its hidden temporary file, which readers skip
    assert all(f.name.startswith(".") and f.suffix == ".tmp"
               for f in set(pool.iterdir()) - set(schemes))
    after = run_train(*POOL_SEARCH, "agent.flips_per_episode=1", f"agent.pool_dir={pool}",
                      timeout=120)
    assert after.returncode == 0, after.stderr[-3000:]
    (summary,) = [json.loads(p.read_text()) for p in (tmp_path / "outputs").rglob("summary.json")]
    assert summary["best_rank"] == 23 and summary["episodes"] <= 2
