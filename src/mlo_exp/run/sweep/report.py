"""``mlo-train report <sweep dir>``: the sweep summary written again from the jobs' files."""

from __future__ import annotations

import sys
from pathlib import Path

from mlo_exp.run.sweep.jobs import JOB_STATUS_FILE, job_dirs, read_rows

REPORT_USAGE = """usage: mlo-train report <sweep dir> [--no-figure] [--metric NAME ...]

Write the sweep summary of a finished (or partly finished) multirun again from the files its
jobs left: sweep_summary.{md,csv,json,png}, sweep_seeds.csv and sweep_curves.png in <sweep
dir>, and print the across-seeds tables: per setting and target rank, the share of seeds
that reached it (95% bootstrap CI) and the median time to it, misses counted (`> budget`
when fewer than half the seeds got there).

  --no-figure     no PNGs
  --metric NAME   a metric of metrics.jsonl for sweep_curves.png (repeatable; default:
                  reward and the losses the runs logged)"""


def report_main(arguments: list[str]) -> int:
    """``mlo-train report <sweep dir>``; returns the exit code (2 for a bad argument)."""
    from mlo_exp.run.sweep.seeds import seed_groups
    from mlo_exp.run.sweep.summary import seeds_markdown, write_summary

    if not arguments or arguments[0] in ("-h", "--help"):
        print(REPORT_USAGE, file=sys.stdout if arguments else sys.stderr)
        return 0 if arguments else 2
    figure, metrics, names = True, [], []
    rest = list(arguments)
    while rest:
        argument = rest.pop(0)
        if argument == "--no-figure":
            figure = False
        elif argument == "--metric":
            if not rest or rest[0].startswith("-"):
                print(f"mlo-train report: --metric needs a metric name (a key of "
                      f"metrics.jsonl, e.g. reward)\n{REPORT_USAGE}", file=sys.stderr)
                return 2
            metrics.append(rest.pop(0))
        else:
            names.append(argument)
    if len(names) != 1 or names[0].startswith("-"):
        print(f"mlo-train report: expected one sweep directory, got {' '.join(arguments)}\n"
              f"{REPORT_USAGE}", file=sys.stderr)
        return 2
    sweep_dir = Path(names[0]).expanduser()
    if not sweep_dir.is_dir():
        print(f"mlo-train report: {sweep_dir} is not a directory. Accepted: a multirun's sweep "
              "directory, e.g. outputs/multirun/<date>/<time>_<token>", file=sys.stderr)
        return 2
    if not job_dirs(sweep_dir):
        print(f"mlo-train report: no job directories in {sweep_dir} (none holds .hydra/ or "
              f"{JOB_STATUS_FILE}). Accepted: a multirun's sweep directory", file=sys.stderr)
        return 2
    try:
        paths = write_summary(sweep_dir, figure=figure, metrics=metrics or None)
    except OSError as error:
        print(f"mlo-train report: cannot write in {sweep_dir}: {error}", file=sys.stderr)
        return 1
    rows = read_rows(sweep_dir)
    print(f"{len(rows)} runs in {sweep_dir}\n")
    print("\n".join(seeds_markdown(seed_groups(rows), rows)))
    print("\nwritten: " + ", ".join(p.name for p in paths))
    return 0
