"""Block-product speed: Strassen, AlphaTensor's <4,4,4> rank 49 and a rectangular scheme
against the plain product.

The same run as ``make benchmark`` (``mlo-benchmark``, fp32, one level, block sums with
shared subexpressions): CuPy on a CUDA device, NumPy on the CPU; sizes that fit the device
(CPU 2048..8192, GPU 4096..16384), then ``<4,2,4>`` rank 26 and Strassen on ``N x N/2``
times ``N/2 x N`` products; 512 and 1024 with one repeat under ``--quick``. Writes
``benchmark.md``/``.json`` (square) and ``benchmark_rect.md``/``.json`` into ``out_dir``
(``perf/`` only for a full run or ``--update``, see ``perf/run.py``); the device line of
each table says whether it was a CPU or a GPU.
"""

from __future__ import annotations

from pathlib import Path

from mlo_exp.benchmark.cli import main as benchmark_main

QUICK_NOTE = ("**quick run (small sizes, one repeat): a smoke test, not a measurement**"
              "\n\n")


def main(out_dir: Path, quick: bool) -> None:
    budget = ["--repeats", "1"] if quick else ["--repeats", "3"]
    square = ["--sizes", "512", "1024"] if quick else []
    rect = ["--shape", "1024x512x1024"] if quick else \
        ["--shape", "2048x1024x2048", "4096x2048x4096", "8192x4096x8192"]
    runs = [("benchmark", ["strassen", "alphatensor-4x4x4", *square]),
            ("benchmark_rect", ["strassen", "alphatensor-4x2x4", *rect])]
    for stem, arguments in runs:
        code = benchmark_main([*arguments, "--dtype", "float32", *budget,
                               "--markdown", str(out_dir / f"{stem}.md"),
                               "--json", str(out_dir / f"{stem}.json")])
        if code != 0:
            raise SystemExit(f"perf suite benchmark: mlo-benchmark exited with {code}")
        if quick:
            table = out_dir / f"{stem}.md"
            table.write_text(QUICK_NOTE + table.read_text())
