"""The command line teaches the project: ``mlo-train --help``, ``mlo-train report`` and the
keys named after Hydra refuses an override (real ``mlo-train`` subprocesses)."""

from __future__ import annotations

import pytest

from tests.conftest import CONF, group_options

GROUPS = sorted(p.name for p in CONF.iterdir() if p.is_dir() and p.name != "hydra")


@pytest.mark.slow
def test_help_names_the_app_its_groups_resume_sweeps_and_searches(run_train) -> None:
    result = run_train("--help", timeout=120)
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert text.startswith("mlo-train: play the matrix-multiplication tensor game")
    assert "powered by Hydra" not in text and "schema/" not in text
    for group in GROUPS:  # every selectable group, with every option, the default first
        lines = text.splitlines()
        start = next(i for i, line in enumerate(lines) if line.startswith(f"  {group}: "))
        end = next(i for i in range(start + 1, len(lines)) if not lines[i].startswith("      "))
        listed = " ".join(lines[start:end])  # the options, however many lines they wrap to
        assert all(option in listed for option in group_options(group)), group
    assert "  agent: pair_policy (default)," in text
    for words in ("== Resume ==", "resume=auto", "== Sweeps, seeds and launchers ==",
                  "hydra/launcher=basic", "joblib", "submitit_local", "slurm",
                  "hparams_search=pair_policy_2x2x2", "mlo-train report <sweep dir>",
                  "objective.seeds"):
        assert words in text, words


@pytest.mark.slow
def test_report_without_a_sweep_dir_says_what_it_needs(run_train, tmp_path) -> None:
    usage = run_train("report", timeout=60)
    assert usage.returncode == 2 and "usage: mlo-train report <sweep dir>" in usage.stderr
    missing = run_train("report", str(tmp_path / "nowhere"), timeout=60)
    assert missing.returncode == 2 and "is not a directory" in missing.stderr
    empty = run_train("report", str(tmp_path), timeout=60)
    assert empty.returncode == 2 and "no job directories" in empty.stderr
    assert "Traceback" not in usage.stderr + missing.stderr + empty.stderr


@pytest.mark.slow
@pytest.mark.parametrize("overrides, line", [
    (["trainer.bogus=1"],
     "mlo-train: trainer has no key 'bogus'; its keys are episodes, stop_at_rank, "
     "time_limit_s"),
    (["agent=greedy", "agent.max_nonzeros=2"],
     "mlo-train: agent has no key 'max_nonzeros'; its keys are batch_size, max_candidates"),
])
def test_an_unknown_key_is_answered_with_the_valid_ones(run_train, tmp_path, overrides,
                                                        line) -> None:
    result = run_train(*overrides, timeout=120)
    assert result.returncode == 1  # Hydra's own refusal, before any run
    assert "not in" in result.stderr  # Hydra's message stays
    assert line in result.stderr.splitlines()
    assert not (tmp_path / "outputs" / "runs").exists()
