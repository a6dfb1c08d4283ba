"""The performance suite behind ``make perf``: runs every ``perf/suite_*.py``.

Each suite module defines ``main(out_dir: Path, quick: bool) -> None`` and writes its own
tables (``.md`` and ``.json``, figures as ``.png``) into ``out_dir``. Speed is measured
here, never asserted in timed tests. ``--only NAME`` runs ``suite_NAME.py`` alone
(repeatable); ``--quick`` shrinks every budget for a smoke run (its tables say so).

Where the tables go (the committed tables under ``perf/`` change only when asked):

* a full run (no ``--quick``) writes the committed tables in this folder, as always
  (``perf/run.py --only discovery`` updates ``perf/discovery.*``);
* a ``--quick`` run writes under ``<outputs>/perf/<date>_<time>_quick/`` (``MLO_OUTPUTS``
  moves the outputs root) and leaves ``perf/`` alone;
* ``--update`` writes this folder in any case; ``--out DIR`` writes ``DIR`` in any case.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def output_dir(quick: bool, update: bool, out: Path | None) -> Path:
    """Where the tables of this run go (module docstring)."""
    if out is not None:
        return out
    if update or not quick:
        return HERE
    root = Path(os.environ.get("MLO_OUTPUTS") or HERE.parent / "outputs")
    return root / "perf" / f"{dt.datetime.now():%Y-%m-%d_%H-%M-%S}_quick"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", default=[], help="suite name (repeatable)")
    parser.add_argument("--quick", action="store_true", help="small budgets (smoke run)")
    parser.add_argument("--update", action="store_true",
                        help="write the committed tables in perf/ (also for --quick)")
    parser.add_argument("--out", type=Path, default=None, help="write the tables here")
    args = parser.parse_args(argv)
    suites = sorted(HERE.glob("suite_*.py"))
    names = [p.stem.removeprefix("suite_") for p in suites]
    unknown = set(args.only) - set(names)
    if unknown:
        print(f"perf: unknown suite(s) {sorted(unknown)}; available: {names}", file=sys.stderr)
        return 2
    out_dir = output_dir(args.quick, args.update, args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    print(f"== perf tables go to {out_dir}", flush=True)
    for path, name in zip(suites, names, strict=True):
        if args.only and name not in args.only:
            continue
        spec = importlib.util.spec_from_file_location(f"perf_suite_{name}", path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # so a suite's functions pickle (process pools)
        assert spec.loader is not None
        spec.loader.exec_module(module)
        started = time.perf_counter()
        print(f"== perf suite {name}", flush=True)
        module.main(out_dir, args.quick)
        print(f"== perf suite {name} done in {time.perf_counter() - started:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
