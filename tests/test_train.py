"""End-to-end: the real ``mlo-train`` entry point in a subprocess."""

import csv
import json

import pytest

from tests.conftest import run_dirs

pytestmark = pytest.mark.slow


def test_default_run_writes_every_file_with_its_run_id(run_train, tmp_path):
    result = run_train("trainer.episodes=3", "seed=1")
    assert result.returncode == 0, result.stderr
    (run_dir,) = run_dirs(tmp_path / "outputs")
    run = json.loads((run_dir / "run.json").read_text())
    run_id = run["run_id"]
    # printed first
    first_line = next(line for line in result.stdout.splitlines() if line.strip())
    assert f"run_id {run_id}" in first_line
    for name in (".hydra/config.yaml", "train.log", "metrics.jsonl", "episodes.csv",
                 "algorithm.json", "algorithm.txt", "summary.json"):
        assert (run_dir / name).is_file(), name
    assert run_id in (run_dir / "train.log").read_text()
    metrics = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [m["episode"] for m in metrics] == [1, 2, 3]
    assert all(m["run_id"] == run_id for m in metrics)
    rows = list(csv.DictReader((run_dir / "episodes.csv").open()))
    assert {r["run_id"] for r in rows} == {run_id}
    algorithm = json.loads((run_dir / "algorithm.json").read_text())
    assert algorithm["provenance"]["run_id"] == run_id and algorithm["rank"] == 8
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["run_id"] == run_id and summary["verified"] and summary["best_rank"] == 8
    for expected in ("best rank", "exactly verified  yes", "wall time", "run dir"):
        assert expected in result.stdout


@pytest.mark.parametrize(
    ("override", "code", "message"),
    [
        ("env.shape=[0,2,2]", 2, "env.shape[0]=0 is invalid; accepted: an integer >= 1"),
        ("agent=nope", 1, "Could not find 'agent/nope'"),
        ("env=matmul_2x2x2_z2", 2,
         "agent='PairPolicyAgent' is invalid; accepted: pair_policy plays"),
        ("env.max_rank=abc", 1, "could not be converted to Integer"),
    ],
)
def test_bad_config_exits_non_zero_with_a_message_and_leaves_no_run_dir(
        run_train, tmp_path, override, code, message):
    result = run_train(override)
    assert result.returncode == code
    assert message in result.stderr + result.stdout
    assert "Traceback" not in result.stderr
    assert run_dirs(tmp_path / "outputs") == []
    leftovers = [p for p in (tmp_path / "outputs").rglob("*") if p.is_file()]
    assert leftovers == []
