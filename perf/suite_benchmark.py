"""Block-product speed: Strassen, AlphaTensor's and the catalogue's <4,4,4> rank 49 and a
rectangular scheme against the plain product, each beside its classical control.

The same run as ``make benchmark`` (``mlo-benchmark``, fp32, one level, block sums with
shared subexpressions, fused): CuPy on a CUDA device, NumPy on the CPU; the full sizes of
the device (``--full-sizes``: CPU 2048..8192, GPU 4096..16384), then ``<4,2,4>`` rank 26
and Strassen on ``N x N/2`` times ``N/2 x N`` products; 512 and 1024 with one round under
``--quick`` (a smoke test: no intervals). Every scheme row is followed by its classical
control's row (the school scheme of the same block shape, same executor), with 95%
bootstrap intervals, the arithmetic bound and the share of time in block additions; a
loaded host is warned about in the table. Writes ``benchmark.md``/``.json`` (square) and
``benchmark_rect.md``/``.json`` into ``out_dir`` (``perf/`` only for a full run or
``--update``, see ``perf/run.py``); the device line of each table says whether it was a
CPU or a GPU.
"""

from __future__ import annotations

from pathlib import Path

from mlo_exp.benchmark.cli import main as benchmark_main

QUICK_NOTE = ("**quick run (small sizes, one round): a smoke test, not a measurement**"
              "\n\n")


def main(out_dir: Path, quick: bool) -> None:
    budget = ["--repeats", "1", "--max-repeats", "1"] if quick else ["--repeats", "3"]
    square = ["--sizes", "512", "1024"] if quick else ["--full-sizes"]
    rect = ["--shape", "1024x512x1024"] if quick else \
        ["--shape", "2048x1024x2048", "4096x2048x4096", "8192x4096x8192"]
    runs = [("benchmark", ["strassen", "alphatensor-4x4x4", "best-4x4x4", *square]),
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
