"""``make faults``: the long fault campaign on the real ``mlo-train`` entry point (issue 25).

Every case is one attempt: a real ``mlo-train`` process (or several) put through one fault,
and a check of what the project promises for it (exit code, no traceback, the summary,
files intact, exact resume, time bounds). Categories:

* ``kill_resume``: SIGKILL after a random metrics row (fixed seed), ``resume=auto``, every
  row equal to the uninterrupted run's: each agent, over Z and Z2, the C3 walks (finding 1);
* ``signals``: SIGTERM at launch (several delays), during the episodes, twice (SIGINT),
  during the benchmark stage and after the summary (finding 2): exit 0 within seconds and
  an ``interrupted`` summary (or, before the interpreter ran any project code, killed with
  nothing written);
* ``wandb``: a server on 127.0.0.1 that accepts connections and never answers: a few
  seconds beyond the run's budget, and a SIGTERM ends the wait within seconds (finding 3);
* ``hostile_values``: values for numeric keys that pass the schema's types (huge, zero,
  negative, NaN, infinite): refused by name (exit 2, no folder left) or run to a clean end,
  never a traceback (finding 4);
* ``checkpoints``: another seed, a NaN checkpoint with its sha256 updated, a truncated one,
  pickles that would run code, no usable checkpoint at all (findings 5 and 7);
* ``disk``: a full disk before the start (a real tmpfs), a file-size limit mid-run and in
  the benchmark stage, a read-only run directory (finding 6);
* ``race``: a second launch into one run directory 0.2-0.8 s after the first, and a refused
  launch into a directory holding another launch's record (finding 8).

``python perf/faults.py [--out perf/faults.md] [--only CATEGORY ...] [--seed N]`` writes the
table (attempts, clean, failures by category; every failure with its detail) and prints it.
The machine's load average is recorded before and after: timings here are wall-clock on
whatever else the machine runs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.run.test_faults import (  # noqa: E402  (the CI module's helpers, one definition)
    FLIPGRAPH_Z2,
    PAIR_POLICY,
    QUICK,
    WITH_BENCHMARK,
    environment,
    file_size_limit,
    finish,
    launch,
    line_count,
    nan_checkpoint,
    rows,
    wait_until,
)

CASES: list[tuple[str, str, Callable[[Path, random.Random], None]]] = []


def case(category: str, name: str) -> Callable:
    def register(function: Callable[[Path, random.Random], None]) -> Callable:
        CASES.append((category, name, function))
        return function

    return register


def clean_text(code: int, text: str, allowed: tuple[int, ...] = (0,)) -> None:
    assert code in allowed, f"exit {code}: {text[-800:]}"
    assert "Traceback" not in text, text[-1500:]


def summary_of(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())


# -- kill_resume ---------------------------------------------------------------------------
RESUMABLE = {
    "random Z": [*QUICK, "seed=5"],
    "greedy Z": ["agent=greedy", "agent.batch_size=2", "plot=none", "benchmark=none",
                 "logger.print_every_s=1000", "seed=5"],
    "pair_policy Z": [o for o in PAIR_POLICY if not o.startswith("checkpoint.")],
    "mcts Z": ["agent=mcts", "agent.simulations=4", "agent.batch_size=2", "agent.hidden=32",
               "agent.pretrain_steps=20", "agent.train_steps=2", "agent.resample_steps=5",
               "agent.chains=4", "plot=none", "benchmark=none", "logger.print_every_s=1000",
               "seed=5"],
    "flipgraph Z": [*FLIPGRAPH_Z2[:1], "env=matmul_3x3x3", *FLIPGRAPH_Z2[2:]],
    "flipgraph Z2 (finding 1)": FLIPGRAPH_Z2,
    "flipgraph Z2 c3 (finding 1)": [*FLIPGRAPH_Z2, "agent.symmetry=c3"],
    "flipgraph Z2 <3,3,3> (finding 1)": [*FLIPGRAPH_Z2[:1], "env=matmul_3x3x3",
                                         "env.ring=Z2", "env.coefficients=[0,1]",
                                         *FLIPGRAPH_Z2[2:]],
}


def kill_resume(overrides: list[str], work: Path, rng: random.Random) -> None:
    episodes = 14
    overrides = [o for o in overrides if not o.startswith(("trainer.episodes",
                                                            "checkpoint.every"))]
    overrides += [f"trainer.episodes={episodes}", "checkpoint.every_episodes=1",
                  "trainer.time_limit_s=null", "trainer.stop_at_rank=1"]
    root, whole, killed = work / "outputs", work / "whole", work / "killed"
    code, text = finish(launch(root, *overrides, f"hydra.run.dir={whole}"))
    clean_text(code, text)
    kill_after = rng.randint(2, episodes - 2)
    process = launch(root, *overrides, f"hydra.run.dir={killed}")
    wait_until(lambda: line_count(killed / "metrics.jsonl") >= kill_after
               or process.poll() is not None, what=f"{kill_after} rows")
    process.send_signal(signal.SIGKILL)
    process.wait()
    code, text = finish(launch(root, *overrides, f"hydra.run.dir={killed}", "resume=auto"))
    clean_text(code, text)
    expected, resumed = rows(whole / "metrics.jsonl"), rows(killed / "metrics.jsonl")
    differing = [r["episode"] for r, s in zip(expected, resumed, strict=False) if r != s]
    assert len(expected) == len(resumed) and not differing, (
        f"killed after row {kill_after}: {len(expected)} vs {len(resumed)} rows, rows "
        f"{differing[:10]} differ")


for _name, _overrides in RESUMABLE.items():
    case("kill_resume", f"{_name}: SIGKILL at a random row, resume=auto")(
        lambda work, rng, _o=_overrides: kill_resume(_o, work, rng))


# -- signals -------------------------------------------------------------------------------
LONG = [*QUICK, "trainer.episodes=null", "trainer.time_limit_s=120", "trainer.stop_at_rank=1"]


def signal_at_launch(delay: float, work: Path) -> None:
    run_dir = work / "run"
    process = launch(work / "outputs", *LONG, f"hydra.run.dir={run_dir}")
    time.sleep(delay)
    signalled = time.monotonic()
    process.send_signal(signal.SIGTERM)
    code, text = finish(process, timeout=90)
    assert time.monotonic() - signalled < 30, "took more than 30 s"
    if code == -signal.SIGTERM:  # before the interpreter ran mlo-exp's first line
        assert not run_dir.exists(), "killed at launch, yet files were written"
        return
    clean_text(code, text)
    summary = summary_of(run_dir)
    assert summary["status"] == "interrupted", summary


for _delay in (0.0, 0.02, 0.1, 0.3, 1.0, 3.0):
    case("signals", f"SIGTERM {_delay:g} s after launch (finding 2)")(
        lambda work, rng, _d=_delay: signal_at_launch(_d, work))


@case("signals", "SIGTERM during the episodes")
def signal_in_episodes(work: Path, rng: random.Random) -> None:
    run_dir = work / "run"
    process = launch(work / "outputs", *LONG, f"hydra.run.dir={run_dir}")
    wait_until(lambda: line_count(run_dir / "metrics.jsonl") >= rng.randint(1, 20),
               what="rows")
    signalled = time.monotonic()
    process.send_signal(signal.SIGTERM)
    code, text = finish(process)
    clean_text(code, text)
    assert time.monotonic() - signalled < 10, "took more than 10 s"
    assert summary_of(run_dir)["status"] == "interrupted"


@case("signals", "SIGINT twice during the episodes")
def double_sigint(work: Path, rng: random.Random) -> None:
    run_dir = work / "run"
    process = launch(work / "outputs", *LONG, f"hydra.run.dir={run_dir}")
    wait_until(lambda: line_count(run_dir / "metrics.jsonl") >= 2, what="rows")
    process.send_signal(signal.SIGINT)
    time.sleep(0.01)
    process.send_signal(signal.SIGINT)
    code, text = finish(process)
    clean_text(code, text)
    assert summary_of(run_dir)["status"] == "interrupted"


@case("signals", "SIGTERM during the benchmark stage (finding 2)")
def signal_in_benchmark(work: Path, rng: random.Random) -> None:
    run_dir = work / "run"
    process = launch(work / "outputs", *WITH_BENCHMARK, "benchmark.sizes=[2048,4096]",
                     "benchmark.repeats=5", f"hydra.run.dir={run_dir}")
    wait_until(lambda: (run_dir / "train.log").is_file()
               and "benchmark: " in (run_dir / "train.log").read_text(), what="the stage")
    time.sleep(rng.uniform(0, 1))
    signalled = time.monotonic()
    process.send_signal(signal.SIGTERM)
    code, text = finish(process)
    clean_text(code, text)
    assert time.monotonic() - signalled < 8, "took more than 8 s"
    summary = summary_of(run_dir)
    assert summary["status"] == "interrupted", summary


@case("signals", "SIGTERM every 10 ms from the summary to the exit (finding 2)")
def signals_after_summary(work: Path, rng: random.Random) -> None:
    run_dir = work / "run"
    process = launch(work / "outputs", *QUICK, "trainer.episodes=3",
                     f"hydra.run.dir={run_dir}")
    wait_until(lambda: (run_dir / "summary.json").is_file() or process.poll() is not None,
               what="summary.json")
    while process.poll() is None:
        process.send_signal(signal.SIGTERM)
        time.sleep(0.01)
    code, text = finish(process)
    clean_text(code, text)
    assert summary_of(run_dir)["episodes"] == 3


# -- wandb ---------------------------------------------------------------------------------
def silent_wandb_env(work: Path) -> tuple[object, dict[str, str]]:
    from tests.loggers.test_wandb_timeout import SilentServer

    server = SilentServer()
    return server, environment(work / "outputs", WANDB_BASE_URL=server.url,
                               WANDB_MODE="online", WANDB_API_KEY="0123456789" * 4)


WANDB_RUN = [o for o in QUICK if not o.startswith("logger.")] + [
    "logger=wandb", "trainer.episodes=null", "trainer.stop_at_rank=1"]


@case("wandb", "a silent server: a 5 s run ends within seconds of its budget (finding 3)")
def wandb_silent(work: Path, rng: random.Random) -> None:
    server, env = silent_wandb_env(work)
    try:
        started = time.monotonic()
        code, text = finish(launch(work / "outputs", *WANDB_RUN, "trainer.time_limit_s=5",
                                   f"hydra.run.dir={work / 'run'}", env=env))
        clean_text(code, text)
        elapsed = time.monotonic() - started
        assert elapsed < 5 + 35, f"{elapsed:.0f} s for a 5 s run"  # start-up included
    finally:
        server.stop()


@case("wandb", "a silent server and a SIGTERM: ends within seconds (finding 3)")
def wandb_signal(work: Path, rng: random.Random) -> None:
    server, env = silent_wandb_env(work)
    run_dir = work / "run"
    try:
        process = launch(work / "outputs", *WANDB_RUN, "trainer.time_limit_s=60",
                         f"hydra.run.dir={run_dir}", env=env)
        wait_until(lambda: line_count(run_dir / "metrics.jsonl") >= 1, what="a row")
        signalled = time.monotonic()
        process.send_signal(signal.SIGTERM)
        code, text = finish(process)
        clean_text(code, text)
        assert time.monotonic() - signalled < 12, "took more than 12 s"
        assert summary_of(run_dir)["status"] == "interrupted"
    finally:
        server.stop()


# -- hostile values --------------------------------------------------------------------------
HOSTILE_RUNS = [
    ("env.shape=[50,50,50]", "finding 4"), ("benchmark.sizes=[100000000]", "finding 4"),
    ("env.shape=[0,2,2]", ""), ("env.max_rank=0", ""), ("trainer.episodes=-1", ""),
    ("trainer.time_limit_s=nan", ""), ("trainer.time_limit_s=-inf", ""),
    ("trainer.time_limit_s=1e308", ""), ("trainer.stop_at_rank=0", ""),
    ("seed=-1", ""), ("seed=18446744073709551616", ""), ("checkpoint.keep_last=0", ""),
    ("checkpoint.every_episodes=-5", ""), ("agent.batch_size=0", ""),
    ("agent.batch_size=1000000000000", ""), ("benchmark.repeats=0", ""),
    ("benchmark.sizes=[0]", ""), ("benchmark.levels=1000", ""), ("threads=0", ""),
    ("logger.print_every_s=nan", ""),
]


def hostile_run(override: str, work: Path) -> None:
    root, run_dir = work / "outputs", work / "run"
    base = [o for o in QUICK if not o.startswith("benchmark=")]
    extra = ["agent=flipgraph", "env=matmul_2x2x2", "agent.start_from=strassen",
             "agent.walks=1"] if override.startswith("benchmark.") else []
    code, text = finish(launch(root, *base, *extra, "trainer.episodes=2",
                               f"hydra.run.dir={run_dir}", override), timeout=240)
    clean_text(code, text, (0, 1, 2))
    if code == 2:
        assert "accepted" in text or "Accepted" in text, text[-500:]
        assert not run_dir.exists() and not root.exists(), "a refused run left a folder"
    elif code == 1:
        assert "mlo-train" in text or "Error" in text, text[-500:]  # Hydra's type check


for _override, _finding in HOSTILE_RUNS:
    case("hostile_values", f"{_override}{f' ({_finding})' if _finding else ''}")(
        lambda work, rng, _o=_override: hostile_run(_o, work))


# -- checkpoints -----------------------------------------------------------------------------
def first_run(work: Path) -> Path:
    run_dir = work / "run"
    code, text = finish(launch(work / "outputs", *PAIR_POLICY, "trainer.episodes=4",
                               f"hydra.run.dir={run_dir}"))
    clean_text(code, text)
    return run_dir


def resume(work: Path, run_dir: Path, *extra: str) -> tuple[int, str]:
    return finish(launch(work / "outputs", *PAIR_POLICY, "trainer.episodes=6", *extra,
                         f"hydra.run.dir={run_dir}", "resume=auto"))


@case("checkpoints", "resume=auto with another seed is refused (finding 5)")
def other_seed(work: Path, rng: random.Random) -> None:
    run_dir = first_run(work)
    log = (run_dir / "train.log").read_bytes()
    code, text = resume(work, run_dir, "seed=4")
    clean_text(code, text, (2,))
    assert "seed=3" in text and "seed=4" in text, text[-400:]
    assert (run_dir / "train.log").read_bytes() == log, "train.log changed (finding 7)"


@case("checkpoints", "a NaN checkpoint with its sha256 updated: the previous one (finding 5)")
def nan_newest(work: Path, rng: random.Random) -> None:
    run_dir = first_run(work)
    nan_checkpoint(run_dir / "checkpoints" / "ckpt_e0000004.pt")
    code, text = resume(work, run_dir)
    clean_text(code, text)
    assert summary_of(run_dir)["episodes"] == 6 and "NaN" in text


@case("checkpoints", "a truncated newest checkpoint: the previous one")
def truncated_newest(work: Path, rng: random.Random) -> None:
    run_dir = first_run(work)
    path = run_dir / "checkpoints" / "ckpt_e0000004.pt"
    path.write_bytes(path.read_bytes()[: rng.randint(1, path.stat().st_size - 1)])
    code, text = resume(work, run_dir)
    clean_text(code, text)
    assert summary_of(run_dir)["episodes"] == 6


@case("checkpoints", "pickles that would run code: named as such, never run (finding 7)")
def malicious(work: Path, rng: random.Random) -> None:
    import pickle

    class Exploit:
        def __reduce__(self):  # noqa: ANN204
            return (os.system, (f"touch {work / 'PWNED'}",))

    run_dir = first_run(work)
    newest = run_dir / "checkpoints" / "ckpt_e0000004.pt"
    variants = [b"(S'touch PWNED'\nios\nsystem\n.", pickle.dumps(Exploit(), protocol=4),
                pickle.dumps(Exploit(), protocol=2)]
    for data in variants:
        newest.write_bytes(data)
        code, text = finish(launch(work / "outputs", *PAIR_POLICY, "trainer.episodes=6",
                                   f"resume={newest}"))
        clean_text(code, text, (2,))
        assert "would import or call" in text and "system" in text, text[-500:]
        assert "weights_only" not in text and "corrupt" not in text, text[-500:]
    assert not (work / "PWNED").exists() and not (work.parent / "PWNED").exists()


@case("checkpoints", "no usable checkpoint: refused naming each, train.log as it was "
                     "(findings 5, 7)")
def none_usable(work: Path, rng: random.Random) -> None:
    run_dir = first_run(work)
    for path in (run_dir / "checkpoints").glob("ckpt_e*.pt"):
        nan_checkpoint(path)
    log = (run_dir / "train.log").read_bytes()
    code, text = resume(work, run_dir)
    clean_text(code, text, (2,))
    assert "Refused: ckpt_e0000004.pt (makes no sense" in text, text[-500:]
    assert (run_dir / "train.log").read_bytes() == log, "train.log changed"


# -- disk -------------------------------------------------------------------------------------
def mount_tmpfs(path: Path, size: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True).returncode == 0


@case("disk", "a full disk before the start: no folder, one message (finding 6)")
def full_before_start(work: Path, rng: random.Random) -> None:
    disk = work / "disk"
    if not mount_tmpfs(disk, "64k"):
        raise Skipped("cannot mount a tmpfs here")
    try:
        (disk / "filler").write_bytes(b"\0" * rng.choice([56, 60, 64]) * 1024)
        for overrides, root in (([f"hydra.run.dir={disk / 'run'}"], work / "outputs"),
                                ([], disk / "outputs")):
            code, text = finish(launch(root, *QUICK, "trainer.episodes=2", *overrides))
            clean_text(code, text, (1,))
            assert "disk full" in text, text[-400:]
            assert sorted(p.name for p in disk.iterdir()) == ["filler"], "a folder was left"
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)


@case("disk", "a disk that fills up during the episodes (tmpfs)")
def full_mid_run(work: Path, rng: random.Random) -> None:
    disk = work / "disk"
    if not mount_tmpfs(disk, "1200k"):
        raise Skipped("cannot mount a tmpfs here")
    try:
        run_dir = disk / "run"
        code, text = finish(launch(work / "outputs", *LONG, "checkpoint.every_episodes=1",
                                   "checkpoint.keep_last=50", f"hydra.run.dir={run_dir}"))
        clean_text(code, text, (1,))
        assert "disk full" in text, text[-400:]
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)


@case("disk", "a file-size limit mid-run: 'file too large' (finding 6)")
def efbig(work: Path, rng: random.Random) -> None:
    code, text = finish(launch(work / "outputs", *QUICK, "trainer.episodes=100000",
                               "checkpoint=none", "trainer.stop_at_rank=1",
                               f"hydra.run.dir={work / 'run'}",
                               preexec_fn=file_size_limit(rng.randint(8_000, 40_000))))
    clean_text(code, text, (1,))
    assert "file too large (EFBIG)" in text and "ENOSPC" not in text, text[-400:]


@case("disk", "a write failing in the benchmark stage: the run is failed (finding 6)")
def benchmark_write(work: Path, rng: random.Random) -> None:
    run_dir = work / "run"
    code, text = finish(launch(work / "outputs", *WITH_BENCHMARK, "checkpoint=none",
                               "benchmark.sizes=[64,128]", f"hydra.run.dir={run_dir}",
                               preexec_fn=file_size_limit(20_000)))
    clean_text(code, text, (1,))
    assert summary_of(run_dir)["status"] == "failed"
    bench = run_dir / "benchmark" / "benchmark.json"
    assert not bench.exists() or json.loads(bench.read_text())["status"] != "success"


# -- race -------------------------------------------------------------------------------------
@case("race", "a second launch 0.2-0.8 s after the first, 4 tries (finding 8)")
def racing(work: Path, rng: random.Random) -> None:
    for trial in range(4):
        run_dir = work / f"run{trial}"
        overrides = ["trainer.stop_at_rank=6", "trainer.time_limit_s=6", "benchmark=none",
                     "plot=none", f"hydra.run.dir={run_dir}"]
        first = launch(work / "outputs", *overrides)
        time.sleep(rng.uniform(0.2, 0.8))
        second = launch(work / "outputs", *overrides)
        codes = sorted([finish(second)[0], finish(first)[0]])
        assert codes == [0, 2], f"try {trial}: exit codes {codes}"
        record = sorted(p.name for p in (run_dir / ".hydra").iterdir())
        assert record == ["config.yaml", "hydra.yaml", "overrides.yaml"], (trial, record)


@case("race", "a refused launch into another launch's start-up record (finding 8)")
def refused_into_record(work: Path, rng: random.Random) -> None:
    from tests.run.test_faults import (
        test_a_refused_launch_leaves_a_directory_it_did_not_create_as_it_was as check,
    )

    check(work)


# -- the runner -------------------------------------------------------------------------------
class Skipped(Exception):
    """The case cannot run on this machine (e.g. no tmpfs): counted apart, not as clean."""


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def run_cases(selected: list[tuple[str, str, Callable]], seed: int) -> list[dict]:
    results = []
    for index, (category, name, function) in enumerate(selected):
        rng = random.Random(f"{seed}-{category}-{name}")
        work = Path(tempfile.mkdtemp(prefix=f"faults-{index:03d}-"))
        started = time.monotonic()
        try:
            function(work, rng)
            outcome, detail = "clean", ""
        except Skipped as skip:
            outcome, detail = "skipped", str(skip)
        except BaseException as error:  # noqa: BLE001 - a case's failure is a result
            if isinstance(error, KeyboardInterrupt):
                raise
            outcome = "failed"
            detail = f"{type(error).__name__}: {error}"[:600]
            if not isinstance(error, AssertionError):
                detail += " | " + traceback.format_exc(limit=2)[-300:]
        finally:
            shutil.rmtree(work, ignore_errors=True)
        seconds = time.monotonic() - started
        results.append({"category": category, "case": name, "outcome": outcome,
                        "detail": detail, "seconds": round(seconds, 1)})
        print(f"[{outcome:7}] {category:15} {name} ({seconds:.1f} s)"
              + (f"\n          {detail}" if detail else ""), flush=True)
    return results


def markdown(results: list[dict], seed: int, load_before: str, load_after: str,
             seconds: float) -> str:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, cwd=ROOT).stdout.strip()
    categories = list(dict.fromkeys(r["category"] for r in results))
    lines = [
        "# Fault campaign (`make faults`, perf/faults.py)",
        "",
        f"Commit `{commit}`, {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, seed {seed}, "
        f"{len(results)} attempts in {seconds:.0f} s on {os.cpu_count()} CPU cores "
        f"(load average {load_before} before, {load_after} after: a shared machine, so "
        "the wall times below are loaded ones). Each attempt is a real `mlo-train` process "
        "(or several) put through one fault; see the module docstring for what is checked.",
        "",
        "| category | attempts | clean | failed | skipped |",
        "|---|---:|---:|---:|---:|",
    ]
    for category in categories:
        mine = [r for r in results if r["category"] == category]
        counts = {k: sum(r["outcome"] == k for r in mine) for k in ("clean", "failed",
                                                                     "skipped")}
        lines.append(f"| {category} | {len(mine)} | {counts['clean']} | {counts['failed']} "
                     f"| {counts['skipped']} |")
    total = {k: sum(r["outcome"] == k for r in results) for k in ("clean", "failed",
                                                                  "skipped")}
    lines += [f"| **all** | {len(results)} | {total['clean']} | {total['failed']} | "
              f"{total['skipped']} |", "", "## Attempts", "",
              "| category | case | outcome | s |", "|---|---|---|---:|"]
    for r in results:
        lines.append(f"| {r['category']} | {r['case']} | {r['outcome']} | {r['seconds']} |")
    failures = [r for r in results if r["outcome"] != "clean"]
    if failures:
        lines += ["", "## Not clean", ""]
        for r in failures:
            detail = r["detail"].replace("\n", " ").replace("|", "/")
            lines.append(f"* {r['category']} / {r['case']}: {r['outcome']}: {detail}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "perf" / "faults.md")
    parser.add_argument("--only", nargs="*", help="categories to run (default: all)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    selected = [c for c in CASES if not args.only or c[0] in args.only]
    load_before, started = load_average(), time.monotonic()
    results = run_cases(selected, args.seed)
    text = markdown(results, args.seed, load_before, load_average(),
                    time.monotonic() - started)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)
    return 0 if all(r["outcome"] == "clean" for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
