"""Sweeps: real multiruns through the joblib and submitit_local launchers, the summary they
leave in the sweep directory, the SLURM launcher config, and the summary's file reader."""

from __future__ import annotations

import csv
import json
import math
import shutil
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, OmegaConf

from mlo_exp.config import config_dir
from mlo_exp.run.sweep import (
    comparison_figure,
    job_dirs,
    read_job,
    read_rows,
    run_objective,
    seed_groups,
    time_to_rank,
    write_summary,
)

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
    for name in ("sweep_summary.png", "sweep_curves.png"):
        figure = (sweep_dir / name).read_bytes()
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


def test_no_speedup_for_a_run_that_found_only_the_school_rank(tmp_path: Path) -> None:
    """A rank-8 <2,2,2> 'algorithm' is the school method: its measured ratio is noise."""
    own = {"algorithm": "matmul2x2x2__greedy__s0-rank8", "size": 1024, "speedup": 1.15}
    school = {**SUMMARY, "best_rank": 8, "shape": [2, 2, 2]}
    job = make_job(tmp_path, 0, school, {"benchmark/benchmark.json": json.dumps(
        {"rows": [own]})})
    assert read_job(job).speedup is None
    strassen = make_job(tmp_path / "b", 0, {**school, "best_rank": 7},
                        {"benchmark/benchmark.json": json.dumps({"rows": [own]})})
    assert read_job(strassen).speedup == pytest.approx(1.15)


def test_unreadable_files_are_reported_not_fatal(tmp_path: Path) -> None:
    make_job(tmp_path, 0, SUMMARY)
    make_job(tmp_path, 1, "{not json")
    make_job(tmp_path, 2, None)  # crashed before writing anything
    paths = write_summary(tmp_path)
    assert [p.name for p in paths] == ["sweep_summary.csv", "sweep_summary.md",
                                       "sweep_summary.json", "sweep_summary.png",
                                       "sweep_curves.png", "sweep_seeds.csv"]
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


# -- across seeds ------------------------------------------------------------------------------
def seeds_rows(sweep_dir: Path) -> list[dict[str, str]]:
    with (sweep_dir / "sweep_seeds.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def first_time_at(run_dir: Path, rank: int) -> float | None:
    """Independently of the summary code: the wall time of the first episodes.csv row whose
    best rank is at most ``rank``."""
    with (run_dir / "episodes.csv").open(newline="") as handle:
        for row in csv.DictReader(handle):
            if row["best_rank"] and int(row["best_rank"]) <= rank:
                return float(row["wall_time_s"])
    return None


@pytest.mark.slow
def test_seeds_aggregate_of_a_real_multirun_and_report_redoes_it(run_train, tmp_path) -> None:
    result = run_train("-m", "env=matmul_2x2x2", "agent=greedy,random", "seed=1,2,3",
                       "trainer.episodes=4", "trainer.time_limit_s=60", "benchmark=none",
                       "checkpoint=none", "plot=none", "logger.progress_bar=false",
                       timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    sweep_dir = sweep_dir_of(tmp_path / "outputs")
    jobs = {int(p.name): p for p in sweep_dir.iterdir() if p.is_dir() and p.name.isdigit()}
    assert sorted(jobs) == [0, 1, 2, 3, 4, 5]
    summaries = {n: json.loads((d / "summary.json").read_text()) for n, d in jobs.items()}
    greedy = [n for n in jobs if "agent=greedy" in " ".join(
        json.loads((jobs[n] / "job_status.json").read_text())["overrides"])]
    random = sorted(set(jobs) - set(greedy))
    rows = seeds_rows(sweep_dir)
    # one row per setting and target rank: the best known rank 7 and greedy's best, 8
    assert {(r["group"].split()[1], r["target_rank"]) for r in rows} == {
        (a, t) for a in ("agent=greedy", "agent=random") for t in ("7", "8")}
    at = {(r["group"].split()[1], int(r["target_rank"])): r for r in rows}

    # greedy: every seed reached 8, none 7; recomputed here from the jobs' own files
    ranks = [summaries[n]["best_rank"] for n in greedy]
    assert ranks == [8, 8, 8] and summaries[greedy[0]]["best_known_rank"] == 7
    g8, g7 = at[("agent=greedy", 8)], at[("agent=greedy", 7)]
    assert (g8["seeds"], g8["reached"], float(g8["share"])) == ("3", "3", 1.0)
    times = sorted(first_time_at(jobs[n], 8) for n in greedy)
    assert float(g8["median_time_s"]) == pytest.approx(times[1])  # 2 of 3 by then
    assert (g7["reached"], float(g7["share"]), g7["median_time_s"]) == ("0", 0.0, "inf")
    assert float(g7["share_high"]) > 0.4  # 0 of 3 seeds does not prove "never"
    # random: finds nothing in 4 episodes; counted as misses at both ranks, not dropped
    assert all(summaries[n]["best_rank"] is None for n in random)
    for rank in (7, 8):
        r = at[("agent=random", rank)]
        assert (r["seeds"], r["reached"], r["median_time_s"]) == ("3", "0", "inf")

    markdown = (sweep_dir / "sweep_summary.md").read_text()
    assert "**Rank 7 (the best known rank)**" in markdown and "**Rank 8**" in markdown
    assert "| `agent=greedy` | 0/3 = 0% [0%, 56%] | > 60 [> 60, > 60] | not reached |" \
        in markdown
    # a plain multirun computes no objective (only a search reads it)
    assert all(r["objective"] == "" for r in summary_rows(sweep_dir))

    # mlo-train report writes the same numbers again from the jobs' files
    before = (sweep_dir / "sweep_seeds.csv").read_text()
    for name in ("sweep_seeds.csv", "sweep_summary.md", "sweep_summary.png"):
        (sweep_dir / name).unlink()
    report = run_train("report", str(sweep_dir), timeout=120)
    assert report.returncode == 0, report.stderr
    assert (sweep_dir / "sweep_seeds.csv").read_text() == before
    assert "`agent=greedy`" in report.stdout and "0/3 = 0% [0%, 56%]" in report.stdout
    assert "median time to rank 8" in report.stdout
    assert (sweep_dir / "sweep_summary.png").read_bytes().startswith(PNG_SIGNATURE)


def make_seed_job(sweep_dir: Path, num: int, overrides: list[str], best_rank: int | None,
                  curve: list[tuple[float, int | None]], status: str = "completed") -> Path:
    job = sweep_dir / str(num)
    (job / ".hydra").mkdir(parents=True)
    (job / "job_status.json").write_text(json.dumps(
        {"job": num, "overrides": overrides, "status": status}))
    if status == "failed":
        return job
    seed = int(next(o for o in overrides if o.startswith("seed=")).split("=")[1])
    (job / "summary.json").write_text(json.dumps(
        {**SUMMARY, "best_rank": best_rank, "seed": seed, "verified": best_rank is not None,
         "wall_time_s": 10.0, "episodes": len(curve)}))
    lines = ["run_id,episode,moves,wall_time_s,reward,residual_norm,rank_used,solved,best_rank"]
    lines += [f"x,{i + 1},8,{t},-8,0,8,True,{'' if b is None else b}"
              for i, (t, b) in enumerate(curve)]
    (job / "episodes.csv").write_text("\n".join(lines) + "\n")
    return job


def test_seed_groups_count_misses_at_common_target_ranks(tmp_path: Path) -> None:
    a = ["agent=pair_policy", "agent.learning_rate=0.001"]
    b = ["agent=pair_policy", "agent.learning_rate=0.0123456789012345"]
    make_seed_job(tmp_path, 0, [*a, "seed=1"], 7, [(1.0, 8), (2.0, 7)])
    make_seed_job(tmp_path, 1, [*a, "seed=2"], 7, [(1.0, 8), (3.0, 8), (6.0, 7)])
    make_seed_job(tmp_path, 2, [*a, "seed=3"], 8, [(0.5, 8), (9.0, 8)])
    make_seed_job(tmp_path, 3, [*a, "seed=4"], 7, [(4.0, 7)])
    make_seed_job(tmp_path, 4, [*b, "seed=1"], 8, [(1.5, 8)])
    make_seed_job(tmp_path, 5, [*b, "seed=2"], None, [], status="failed")
    first, second = seed_groups(read_rows(tmp_path))
    assert first.group == "agent=pair_policy agent.learning_rate=0.001"
    assert first.seeds == [1, 2, 3, 4] and first.best_known_rank == 7
    # both settings at the same ranks: the best known 7 and the best found by any, 7 and 8
    assert [t.target_rank for t in first.targets] == [t.target_rank for t in second.targets] \
        == [7, 8]
    seven = first.target(7)
    assert (seven.reached, seven.share, seven.times_s) == (3, 0.75, [2.0, 6.0, math.inf, 4.0])
    assert seven.median_time_s == 4.0  # by 4 s half the seeds had it (the miss counted)
    assert seven.episodes == [2, 3, math.inf, 1] and seven.median_episodes == 2
    eight = first.target(8)
    assert (eight.reached, eight.median_time_s) == (4, 1.0)
    # the second setting: one seed reached 8, one failed; fewer than half reached 7
    assert (second.seeds, second.failed, second.best_rank) == ([1, 2], 1, 8)
    s7, s8 = second.target(7), second.target(8)
    assert (s7.reached, s7.share, s7.median_time_s) == (0, 0.0, math.inf)
    assert (s8.reached, s8.median_time_s) == (1, 1.5)  # 1 of 2 is half
    write_summary(tmp_path)
    markdown = (tmp_path / "sweep_summary.md").read_text()
    assert "Shared by every job: `agent=pair_policy`." in markdown
    assert "| `agent.learning_rate=0.001` | 3/4 = 75% [30%, 95%] | 4 [2, > 10] | 2 |" in markdown
    # readable labels: a search's 17-digit float to 3 significant digits
    assert "| `agent.learning_rate=0.0123` (1 failed) | 0/2 = 0% [0%, 66%] | > 10 " in markdown
    assert "0123456789" not in markdown.split("## Jobs")[0]


def top_down_labels(axis) -> list[str]:
    """The y tick labels of ``axis``, from the top of the panel down."""
    pairs = zip(axis.get_yticks(), axis.get_yticklabels(), strict=True)
    return [label.get_text() for _, label in sorted(pairs, key=lambda p: -p[0])]


def test_summary_figure_names_the_target_rank_on_every_axis(tmp_path: Path) -> None:
    for num, (agent, seed, rank) in enumerate([("greedy", 1, 8), ("greedy", 2, 8),
                                               ("random", 1, None)]):
        make_seed_job(tmp_path, num, [f"agent={agent}", f"seed={seed}", "trainer.episodes=9"],
                      rank, [(0.5 + num, rank)])
    rows = read_rows(tmp_path)
    figure = comparison_figure(rows)
    rank_axis, share_axis, *success, reward_axis = figure.axes
    assert rank_axis.get_title() == "best rank per run (lower is better)"
    assert rank_axis.get_xlabel() == "best verified rank (dashed: best known 7)"
    # rows are labelled by the overrides that vary, never by job number or shared overrides
    assert top_down_labels(rank_axis) == [
        "agent=greedy seed=1", "agent=greedy seed=2", "agent=random seed=1"]
    low, high = rank_axis.get_xlim()
    assert 5 <= low < 7 and 9 < high <= 10  # around the ranks, not from 0: 7 vs 8 is visible
    assert "none found" in [t.get_text() for t in rank_axis.texts]
    assert top_down_labels(share_axis) == ["agent=greedy", "agent=random"]
    assert "rank <= 7" in share_axis.get_xlabel() and "rank <= 8" in share_axis.get_xlabel()
    # one row of panels per target rank (7: best known, 8: greedy's), time and episodes
    assert len(success) == 4
    for axis, rank, unit in zip(success, (7, 7, 8, 8), ("run time (s)", "episode") * 2,
                                strict=True):
        assert axis.get_ylabel() == f"share of seeds at rank <= {rank}"
        assert axis.get_title().startswith(f"rank <= {rank}") and axis.get_xlabel() == unit
    # greedy's curve at rank 8 climbs to 1 (both seeds), random's stays at 0 (a miss)
    greedy_line, random_line = [l for l in success[2].get_lines() if l.get_label()
                                in ("agent=greedy", "agent=random")]
    assert greedy_line.get_ydata()[-1] == 1.0 and max(random_line.get_ydata()) == 0.0
    assert reward_axis.get_xlabel() == "episode" and reward_axis.get_ylabel() == "reward"
    legend = reward_axis.get_legend()
    assert [t.get_text() for t in legend.get_texts()] == [
        "agent=greedy (2 seeds)", "agent=random (1 seed)"]
    box = legend.get_bbox_to_anchor().transformed(reward_axis.transAxes.inverted())
    assert box.y0 < 0  # below the panel: it covers no curve


def test_summary_figure_of_a_failed_sweep_says_why(tmp_path: Path) -> None:
    for num in (0, 1):
        job = make_seed_job(tmp_path, num, [f"seed={num}"], None, [], status="failed")
        status = json.loads((job / "job_status.json").read_text())
        (job / "job_status.json").write_text(json.dumps(
            {**status, "error": "ConfigError: trainer.episodes=0 is invalid"}))
    figure = comparison_figure(read_rows(tmp_path))
    texts = [t.get_text() for t in figure.texts]
    assert not figure.axes
    assert "2 jobs, 2 failed; no job recorded an episode" in texts
    assert any("trainer.episodes=0 is invalid" in t for t in texts)


def test_time_to_rank_and_the_objective() -> None:
    curve = [(1.0, None), (2.0, 9), (3.5, 8), (7.0, 7)]
    assert time_to_rank(curve, 8) == 3.5 and time_to_rank(curve, 7) == 7.0
    assert time_to_rank(curve, 6) is None and time_to_rank(curve, None) is None
    # reached: the time; missed: budget * (1 + gap), nothing found: gap from school rank + 1
    assert run_objective(7, 7.0, target=7, budget_s=30, school_rank=8) == 7.0
    assert run_objective(8, None, target=7, budget_s=30, school_rank=8) == 60.0
    assert run_objective(None, None, target=7, budget_s=30, school_rank=8) == 90.0
    assert run_objective(10, None, target=7, budget_s=30, school_rank=8) == 120.0


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("srun") is not None, reason="a SLURM cluster is here")
def test_slurm_launcher_without_slurm_says_so_in_one_line(run_train, tmp_path) -> None:
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    result = run_train("-m", *TINY, "seed=1,2", "hydra/launcher=slurm", timeout=120)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    (line,) = [l for l in result.stderr.splitlines() if l.startswith("mlo-train:")]
    assert "needs a SLURM cluster" in line and "hydra/launcher=submitit_local" in line
    assert not list((tmp_path / "outputs").rglob("sweep_summary.*"))  # no empty summary
    assert not list((tmp_path / "outputs").rglob("run.json"))  # no job ran
