"""``mlo-train report``: the across-seeds tables printed, the files written again, the
learning curves of a chosen metric, and bad arguments refused in one line."""

from __future__ import annotations

import json
from pathlib import Path

from mlo_exp.run.sweep.report import report_main

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def make_run(job_dir: Path, job: int, overrides: list[str], losses: list[float]) -> None:
    (job_dir / ".hydra").mkdir(parents=True)
    (job_dir / "job_status.json").write_text(json.dumps(
        {"job": job, "status": "completed", "overrides": overrides}))
    (job_dir / "summary.json").write_text(json.dumps(
        {"run_id": f"r{job}", "seed": job, "best_rank": 8, "best_known_rank": 7,
         "verified": True, "episodes": len(losses), "wall_time_s": 5.0, "status": "success"}))
    records = [{"episode": i + 1, "wall_time_s": i + 0.5, "reward": -8.0, "best_rank": 8,
                "entropy_loss": loss} for i, loss in enumerate(losses)]
    (job_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (job_dir / "episodes.csv").write_text("episode,wall_time_s,reward,best_rank\n" + "".join(
        f"{r['episode']},{r['wall_time_s']},-8,8\n" for r in records))


def test_report_prints_the_tables_and_draws_a_chosen_metric(tmp_path, capsys) -> None:
    for job, agent in enumerate(["a", "a", "b"]):
        make_run(tmp_path / str(job), job, [f"agent.name={agent}", f"seed={job}"],
                 [1.0, 0.5, 0.25])
    assert report_main([str(tmp_path), "--metric", "entropy_loss"]) == 0
    out = capsys.readouterr().out
    assert "median time to rank 7" in out and "seeds reaching rank 8" in out
    assert "| `agent.name=a` | 2/2 = 100%" in out
    assert (tmp_path / "sweep_curves.png").read_bytes().startswith(PNG_SIGNATURE)
    assert "sweep_curves.png" in out


def test_report_refuses_bad_arguments_in_one_line(tmp_path, capsys) -> None:
    assert report_main([str(tmp_path), "--metric"]) == 2
    assert "--metric needs a metric name" in capsys.readouterr().err
    assert report_main([str(tmp_path)]) == 2  # no jobs there
    assert "no job directories" in capsys.readouterr().err
    assert report_main([str(tmp_path / "missing")]) == 2
    assert "is not a directory" in capsys.readouterr().err
