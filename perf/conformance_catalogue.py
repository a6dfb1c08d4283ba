"""Conformance of the readers with the public scheme collection: ``make conformance``.

Every scheme file of dronperminov/FastMatrixMultiplication (MIT) for shapes with ``p <= 8``
(all folders, ``schemes/known`` and ``schemes/results``, every format) goes through the code
of ``mlo-algorithms verify`` (:func:`mlo_exp.algorithms.cli.resolve`, then exact
verification). The table counts, per folder and format, the files that read, that verify at
the rank their name states, that read but are wrong, and those refused, with the refusals
grouped by their message (numbers and paths taken out). ``--collection`` is a checkout (a
folder holding ``schemes/``) or a bare git directory (the files are exported from ``HEAD``).

Writes ``perf/catalogue_conformance.md`` and ``.json`` (``--out`` elsewhere), atomically.
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mlo_exp.algorithms.algorithm import AlgorithmFileError
from mlo_exp.algorithms.cli import resolve
from mlo_exp.io import atomic_write_text

HERE = Path(__file__).resolve().parent
INDEXES = {"schemes/status.json", "schemes/reduced_known.json"}  # lists of schemes, not schemes
MAX_P = 8
# refusals looked at by hand: what is wrong in the file (the same schemes verify from the
# collection's other files, status.json lists them as duplicates)
KNOWN_DEFECTS = {
    "schemes/known/jakobmoosbauer_symmetric_flips/555m93_lifted.exp":
        "lines 40-42 misplace brackets: `(-a13 (-b13 + b33 - b53) (+c11 ...))` wraps a term "
        "whose first factor is not closed, lines 41 and 42 close one bracket more than they "
        "open; the scheme is Moosbauer-555-93-mod0.exp, which verifies",
    "schemes/known/jakobmoosbauer_symmetric_flips/666m153_lifted.exp":
        "lines 38, 73, 97, 100 misplace a bracket: `(-a55(+b56-b66)(-c65-c66))` closes the "
        "first factor at the end of the line; the scheme is Moosbauer-666-153-mod0.exp, which "
        "verifies",
}


def named_shape(path: str) -> tuple[int, ...] | None:
    """The shape a path names: ``2x3x5_..``, ``Moosbauer-235-25``, ``meta_flip_graph/235/``."""
    name = path.rsplit("/", 1)[-1]
    for pattern, text in ((r"([0-9]+)x([0-9]+)x([0-9]+)", name),
                          (r"(?<![0-9])([2-9])([2-9])([2-9])(?:-|m|r)", name),
                          (r"/([2-9])([2-9])([2-9])/", path)):
        match = re.search(pattern, text)
        if match:
            return tuple(int(x) for x in match.groups())
    return None


def named_rank(path: str) -> int | None:
    """The rank a file name states (``_m25``, ``-25-``, ``m93_``, ``r153``), if any."""
    name = path.rsplit("/", 1)[-1]
    match = (re.search(r"_m([0-9]+)", name) or re.search(r"[2-9]{3}-([0-9]+)", name)
             or re.search(r"[2-9]{3}[mr]([0-9]+)", name))
    return int(match.group(1)) if match else None


def collection_files(collection: Path, work: Path) -> tuple[Path, list[str], str]:
    """(root, scheme files with p <= 8 relative to it, commit or 'checkout')."""
    if (collection / "HEAD").is_file() and (collection / "objects").is_dir():
        git = ["git", f"--git-dir={collection}"]
        commit = subprocess.run(git + ["rev-parse", "HEAD"], capture_output=True, text=True,
                                check=True).stdout.strip()
        listed = subprocess.run(git + ["ls-tree", "-r", "--name-only", "HEAD", "schemes"],
                                capture_output=True, text=True, check=True).stdout.split("\n")
        wanted = [p for p in listed if p and p not in INDEXES and _small(p)]
        archive = subprocess.run(git + ["archive", "HEAD", "--", *wanted], capture_output=True,
                                 check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(work)], input=archive, check=True)
        return work, wanted, commit
    root = collection
    files = sorted(p.relative_to(root).as_posix() for p in (root / "schemes").rglob("*")
                   if p.is_file())
    wanted = [p for p in files if p not in INDEXES and _small(p)]
    return root, wanted, "checkout"


def _small(path: str) -> bool:
    """p <= 8 by the name; a file whose name tells no shape (an .npz) is read to see."""
    shape = named_shape(path)
    return shape is None or max(shape) <= MAX_P


def reason(message: str, path: Path) -> str:
    """A refusal message without the file, numbers and the 'accepted' tail (for grouping)."""
    text = message.replace(str(path), "FILE").split("; accepted", 1)[0]
    text = re.sub(r"FILE:[0-9]+", "FILE:LINE", text)
    text = re.sub(r"'[^']*'", "'...'", text)
    return re.sub(r"[0-9]+", "N", text)


def check_file(root: Path, relative: str) -> list[dict]:
    """One row per scheme of the file (an .npz holds many), p <= 8 only."""
    path = root / relative
    parts = relative.split("/")
    folder = "/".join(parts[1:3]) if len(parts) > 3 else parts[1]
    kind = "reduced.json" if relative.endswith("_reduced.json") else path.suffix.lstrip(".")
    base = {"file": relative, "folder": folder, "format": kind}
    start = time.perf_counter()
    try:
        algorithms = resolve(str(path))  # what mlo-algorithms verify reads
    except AlgorithmFileError as error:
        return [{**base, "outcome": "refused", "reason": reason(str(error), path),
                 "message": str(error).replace(str(root) + "/", ""),
                 "seconds": time.perf_counter() - start}]
    except Exception as error:  # a defect of ours, not of the file: counted, not hidden
        return [{**base, "outcome": "crashed", "reason": f"{type(error).__name__}: {error}",
                 "message": f"{type(error).__name__}: {error}",
                 "seconds": time.perf_counter() - start}]
    rows = []
    stated = named_rank(relative)
    for algorithm in algorithms:
        if max(algorithm.shape) > MAX_P:
            continue
        try:
            check = algorithm.verify()
        except Exception as error:  # a defect of ours: counted, not hidden
            rows.append({**base, "outcome": "crashed", "reason": f"{type(error).__name__}: "
                         f"{error}", "message": f"{type(error).__name__}: {error}",
                         "seconds": time.perf_counter() - start})
            continue
        rank_ok = stated is None or kind == "npz" or algorithm.rank == stated
        outcome = ("verified" if check.ok and rank_ok else
                   "verified, rank differs from the name" if check.ok else "read, not correct")
        rows.append({**base, "outcome": outcome, "shape": list(algorithm.shape),
                     "rank": algorithm.rank, "stated_rank": stated, "ring": algorithm.ring,
                     "plan_additions": (algorithm.plan.additions()
                                        if algorithm.plan is not None else None),
                     "seconds": time.perf_counter() - start})
    return rows


def markdown(rows: list[dict], meta: dict) -> str:
    lines = [
        "# Conformance: the public scheme collection through `mlo-algorithms verify`",
        "",
        f"Collection: dronperminov/FastMatrixMultiplication (MIT), commit `{meta['commit']}`; "
        f"every scheme file for shapes with p <= {MAX_P} ({meta['files']} files, "
        f"{len(rows)} schemes: an `.npz` holds several), all folders and formats. Each file is "
        "read by the code of `mlo-algorithms verify` (`cli.resolve`) and verified exactly; "
        "'verified' means correct at the rank the file name states (files whose names state "
        "no rank: at the rank read). Produced by `make conformance` "
        f"(`perf/conformance_catalogue.py`) on {meta['date']}, {meta['seconds']:.0f} s on a "
        f"shared 2-core machine (load average {meta['load']}); "
        f"{'the full set' if not meta['sample'] else meta['sample']}.",
        "",
        "| folder | format | files | schemes | verified | rank differs | not correct | refused "
        "| crashed |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    groups: dict[tuple[str, str], collections.Counter] = collections.defaultdict(
        collections.Counter)
    files: dict[tuple[str, str], set] = collections.defaultdict(set)
    for row in rows:
        groups[row["folder"], row["format"]][row["outcome"]] += 1
        files[row["folder"], row["format"]].add(row["file"])
    total: collections.Counter = collections.Counter()
    for key in sorted(groups):
        count = groups[key]
        total.update(count)
        lines.append(f"| {key[0]} | {key[1]} | {len(files[key])} | {sum(count.values())} | "
                     f"{count['verified']} | {count['verified, rank differs from the name']} | "
                     f"{count['read, not correct']} | {count['refused']} | {count['crashed']} |")
    lines.append(f"| **all** | | **{meta['files']}** | **{sum(total.values())}** | "
                 f"**{total['verified']}** | **{total['verified, rank differs from the name']}**"
                 f" | **{total['read, not correct']}** | **{total['refused']}** | "
                 f"**{total['crashed']}** |")
    refused = [row for row in rows if row["outcome"] == "refused"]
    lines += ["", f"## Refused ({len(refused)}), grouped by reason", ""]
    by_reason: dict[str, list[dict]] = collections.defaultdict(list)
    for row in refused:
        by_reason[row["reason"]].append(row)
    for text, members in sorted(by_reason.items(), key=lambda item: -len(item[1])):
        lines.append(f"- {len(members)} x `{text}`; e.g. `{members[0]['message'][:300]}`")
        lines += [f"  - `{row['file']}`: {KNOWN_DEFECTS[row['file']]}" for row in members
                  if row["file"] in KNOWN_DEFECTS]
    if not refused:
        lines.append("(none)")
    crashed = [row for row in rows if row["outcome"] == "crashed"]
    lines += ["", f"## Crashed ({len(crashed)}): defects of this project", ""]
    lines += [f"- `{row['file']}`: {row['message'][:300]}" for row in crashed] or ["(none)"]
    odd = [row for row in rows if row["outcome"] not in ("verified", "refused", "crashed")]
    lines += ["", f"## Read but not verified at the stated rank ({len(odd)})", ""]
    lines += [f"- `{row['file']}`: {row['outcome']} (rank {row['rank']}, name says "
              f"{row['stated_rank']}, ring {row['ring']})" for row in odd] or ["(none)"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--collection", type=Path, required="--render" not in (argv or sys.argv),
                        help="a checkout of the collection or its bare git directory")
    parser.add_argument("--out", type=Path, default=HERE, help="folder for the tables")
    parser.add_argument("--every", type=int, default=1,
                        help="check every k-th file only (a sample; the table says so)")
    parser.add_argument("--render", action="store_true",
                        help="only rewrite the .md from the .json of an earlier run")
    args = parser.parse_args(argv)
    if args.render:
        saved = json.loads((args.out / "catalogue_conformance.json").read_text())
        atomic_write_text(args.out / "catalogue_conformance.md",
                          markdown(saved["rows"], saved["meta"]))
        return 0
    if not args.collection.exists():
        print(f"conformance: {args.collection} does not exist; accepted: a checkout of "
              "dronperminov/FastMatrixMultiplication or its git directory", file=sys.stderr)
        return 2
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as work:
        root, files, commit = collection_files(args.collection, Path(work))
        files = files[::args.every]
        rows: list[dict] = []
        for number, relative in enumerate(files, 1):
            rows += check_file(root, relative)
            if number % 100 == 0:
                print(f"{number}/{len(files)} files, {time.perf_counter() - start:.0f} s",
                      flush=True)
    meta = {"commit": commit, "files": len(files), "seconds": time.perf_counter() - start,
            "date": f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC",
            "load": " ".join(f"{x:.1f}" for x in os.getloadavg()),
            "sample": "" if args.every == 1 else f"a sample: every {args.every}th file"}
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out / "catalogue_conformance.json", "{\"meta\": " + json.dumps(meta)
                      + ",\n\"rows\": [\n" + ",\n".join(json.dumps(row) for row in rows)
                      + "\n]}\n")  # one row per line
    atomic_write_text(args.out / "catalogue_conformance.md", markdown(rows, meta))
    print(markdown(rows, meta))
    return 0


if __name__ == "__main__":
    sys.exit(main())
