"""The performance suite behind ``make perf``: runs every ``perf/suite_*.py``.

Each suite module defines ``main(out_dir: Path, quick: bool) -> None`` and writes its own
tables (``.md`` and ``.json``, figures as ``.png``) into ``out_dir`` (this folder). Speed is
measured here, never asserted in timed tests. ``--only NAME`` runs ``suite_NAME.py`` alone;
``--quick`` shrinks every budget for a smoke run (its tables say so).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", default=[], help="suite name (repeatable)")
    parser.add_argument("--quick", action="store_true", help="small budgets (smoke run)")
    args = parser.parse_args()
    suites = sorted(HERE.glob("suite_*.py"))
    names = [p.stem.removeprefix("suite_") for p in suites]
    unknown = set(args.only) - set(names)
    if unknown:
        print(f"perf: unknown suite(s) {sorted(unknown)}; available: {names}", file=sys.stderr)
        return 2
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
        module.main(HERE, args.quick)
        print(f"== perf suite {name} done in {time.perf_counter() - started:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
