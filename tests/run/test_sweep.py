"""Sweeps: real multiruns through the joblib and submitit_local launchers, the summary they
leave in the sweep directory, the SLURM launcher config, and the summary's file reader."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, OmegaConf

from mlo_exp.config import config_dir
from mlo_exp.run.sweep import job_dirs, read_job, write_summary

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TINY = ("experiment=smoke", "logger.progress_bar=false", "trainer.time_limit_s=60")


@pytest.fixture
def compose_hydra():
    """Compose with the ``hydra`` node kept (launcher and callback settings live there)."""

    def _compose(overrides: list[str]) -> DictConfig:
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
            return compose("config", overrides=overrides, return_hydra_config=True)

    yield _compose
    GlobalHydra.instance().clear()


def sweep_dir_of(outputs: Path) -> Path:
    (sweep_dir,) = [p.parent for p in (outputs / "multirun").rglob("multirun.yaml")]
    return sweep_dir


def summary_rows(sweep_dir: Path) -> list[dict[str, str]]:
    with (sweep_dir / "sweep_summary.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def assert_summary_files(sweep_dir: Path) -> None:
    assert (sweep_dir / "sweep_summary.md").read_text().startswith("# Sweep summary")
    figure = (sweep_dir / "sweep_summary.png").read_bytes()
    assert figure.startswith(PNG_SIGNATURE) and len(figure) > 5000


@pytest.mark.slow
def test_joblib_multirun_keeps_jobs_apart_and_lists_a_failed_job(run_train, tmp_path) -> None:
    # Three jobs, two at a time; the middle one has an invalid value and must fail alone.
    result = run_train("-m", *TINY, "seed=5", "trainer.episodes=2,0,3",
                       "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", timeout=240)
    assert result.returncode == 1, result.stderr[-3000:]  # Hydra re-raises the failed job
    assert "trainer.episodes=0 is invalid" in result.stderr
    sweep_dir = sweep_dir_of(tmp_path / "outputs")
    jobs = {p.name: p for p in sweep_dir.iterdir() if p.is_dir() and p.name.isdigit()}
    assert sorted(jobs) == ["0", "1", "2"]
    run_ids = {n: json.loads((jobs[n] / "run.json").read_text())["run_id"] for n in ("0", "2")}
    assert run_ids["0"] != run_ids["2"]
    for name in ("0", "2"):  # each job's files in its own directory, naming its own run_id
        assert json.loads((jobs[name] / "summary.json").read_text())["run_id"] == run_ids[name]
        assert (jobs[name] / "training.png").read_bytes().startswith(PNG_SIGNATURE)
    rows = {r["job"]: r for r in summary_rows(sweep_dir)}
    assert [rows[n]["status"] for n in ("0", "1", "2")] == ["success", "failed", "success"]
    assert {rows["0"]["run_id"], rows["2"]["run_id"]} == set(run_ids.values())
    assert rows["2"]["episodes"] == "3" and rows["2"]["solved"] == "True"
    assert "trainer.episodes=0" in rows["1"]["overrides"]
    assert "ConfigError" in rows["1"]["error"] and "trainer.episodes" in rows["1"]["error"]
    assert_summary_files(sweep_dir)
    assert "| 1 | failed |" in (sweep_dir / "sweep_summary.md").read_text()


@pytest.mark.slow
def test_submitit_local_multirun_writes_the_summary(run_train, tmp_path) -> None:
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    result = run_train("-m", *TINY, "seed=1,2", "trainer.episodes=2", "plot=none",
                       "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=5",
                       timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    sweep_dir = sweep_dir_of(tmp_path / "outputs")
    assert (sweep_dir / ".submitit").is_dir()  # it really went through submitit
    rows = summary_rows(sweep_dir)
    assert [r["status"] for r in rows] == ["success", "success"]
    assert len({r["run_id"] for r in rows}) == 2 and all(r["run_id"] for r in rows)
    seeds = [[o for o in r["overrides"].split() if o.startswith("seed=")] for r in rows]
    assert seeds == [["seed=1"], ["seed=2"]]
    assert_summary_files(sweep_dir)


def test_sweep_callback_is_registered_for_every_run(compose_hydra) -> None:
    cfg = compose_hydra([])
    assert cfg.hydra.callbacks.sweep_summary._target_ == "mlo_exp.run.sweep.SweepSummaryCallback"
    assert OmegaConf.to_container(cfg.hydra.sweep)["subdir"] == "${hydra.job.num}"


def test_slurm_launcher_composes_with_overridable_resources(compose_hydra, tmp_path) -> None:
    cfg = compose_hydra(["hydra/launcher=slurm", "hydra.launcher.partition=gpu",
                         "hydra.launcher.timeout_min=30", "hydra.launcher.gpus_per_node=2",
                         "hydra.launcher.cpus_per_task=8"])
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("submitit_launcher.SlurmLauncher")
    assert (launcher.partition, launcher.timeout_min, launcher.gpus_per_node,
            launcher.cpus_per_task) == ("gpu", 30, 2, 8)
    # The same names submitit itself turns into an sbatch script (no cluster needed for that).
    from submitit.slurm import slurm

    params = OmegaConf.to_container(launcher, resolve=False)
    equivalent = slurm.SlurmExecutor._equivalence_dict()
    skip = {"_target_", "submitit_folder", "max_num_timeout", "name"}
    sbatch = {equivalent.get(k, k): v for k, v in params.items() if k not in skip}
    sbatch["mem"] = slurm._convert_mem(sbatch["mem"])
    script = slurm._make_sbatch_string(command="mlo-train", folder=tmp_path, **sbatch)
    for line in ("#SBATCH --partition=gpu", "#SBATCH --time=30", "#SBATCH --gpus-per-node=2",
                 "#SBATCH --cpus-per-task=8", "#SBATCH --mem=16GB"):
        assert line in script


def test_slurm_launcher_defaults_compose(compose_hydra) -> None:
    launcher = compose_hydra(["hydra/launcher=slurm"]).hydra.launcher
    assert launcher.partition is None and launcher.gpus_per_node == 1
    folder = OmegaConf.to_container(launcher)["submitit_folder"]
    assert folder == "${hydra.sweep.dir}/.submitit/%j"  # inside the sweep dir, per job


# -- the summary reader on hand-made job directories -------------------------------------
def make_job(sweep_dir: Path, num: int, summary: dict | str | None,
             files: dict[str, str] | None = None) -> Path:
    job = sweep_dir / str(num)
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text(f"- seed={num}\n")
    if summary is not None:
        text = summary if isinstance(summary, str) else json.dumps(summary)
        (job / "summary.json").write_text(text)
    for name, text in (files or {}).items():
        path = job / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return job


SUMMARY = {"run_id": "20260101-000000-abcdef01", "best_rank": 7, "best_known_rank": 7,
           "verified": True, "episodes": 4, "wall_time_s": 1.5, "status": "success"}


def test_benchmark_speedup_is_read_where_present(tmp_path: Path) -> None:
    own = {"algorithm": "matmul2x2x2__greedy__s0-rank8", "source_run_id": SUMMARY["run_id"]}
    benchmark = {"run_id": SUMMARY["run_id"], "rows": [
        {**own, "size": 256, "speedup": 0.9}, {**own, "size": 4096, "speedup": 1.31},
        {**own, "size": 1024, "speedup": 1.5},  # the largest size counts, not the best row
        {"algorithm": "strassen", "source_run_id": SUMMARY["run_id"], "size": 8192,
         "speedup": 2.0}]}  # a comparison entry
    job = make_job(tmp_path, 0, SUMMARY, {"benchmark/benchmark.json": json.dumps(benchmark)})
    row = read_job(job)
    assert row.speedup == pytest.approx(1.31) and row.status == "success" and not row.error
    assert row.overrides == "seed=0" and row.solved is True and row.best_rank == 7


def test_unreadable_files_are_reported_not_fatal(tmp_path: Path) -> None:
    make_job(tmp_path, 0, SUMMARY)
    make_job(tmp_path, 1, "{not json")
    make_job(tmp_path, 2, None)  # crashed before writing anything
    paths = write_summary(tmp_path)
    assert [p.name for p in paths] == ["sweep_summary.csv", "sweep_summary.md",
                                       "sweep_summary.json", "sweep_summary.png"]
    rows = {r["job"]: r for r in summary_rows(tmp_path)}
    assert rows["0"]["status"] == "success" and rows["0"]["best_rank"] == "7"
    assert rows["1"]["status"] == "failed" and "summary.json unreadable" in rows["1"]["error"]
    assert rows["2"]["status"] == "failed" and "crashed" in rows["2"]["error"]


def test_jobs_are_found_under_custom_subdirs_in_job_order(tmp_path: Path) -> None:
    make_job(tmp_path / "agent=random", 1, SUMMARY)
    nested = make_job(tmp_path / "agent=greedy" / "seed=2", 7, SUMMARY)
    (nested / "job_status.json").write_text(json.dumps(
        {"job": 0, "status": "completed", "overrides": ["agent=greedy", "seed=2"]}))
    (tmp_path / ".submitit" / "123").mkdir(parents=True)  # launcher files are not jobs
    rows = [read_job(d) for d in job_dirs(tmp_path)]
    assert [(r.job, r.overrides) for r in rows] == [(0, "agent=greedy seed=2"), (1, "seed=1")]
