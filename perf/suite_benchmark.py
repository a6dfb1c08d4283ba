"""Block-product speed: Strassen and AlphaTensor's <4,4,4> rank 49 against the plain product.

The same run as ``make benchmark`` (``mlo-benchmark``, fp32, one level): CuPy on a CUDA
device, NumPy on the CPU; sizes that fit the device (CPU 2048..8192, GPU 4096..16384), or
512 and 1024 with one repeat under ``--quick``. Writes ``benchmark.md`` and
``benchmark.json`` here; the device line of the table says whether it was a CPU or a GPU.
"""

from __future__ import annotations

from pathlib import Path

from mlo_exp.benchmark.cli import main as benchmark_main


def main(out_dir: Path, quick: bool) -> None:
    budget = ["--sizes", "512", "1024", "--repeats", "1"] if quick else ["--repeats", "3"]
    code = benchmark_main(["strassen", "alphatensor-4x4x4", "--dtype", "float32", *budget,
                           "--markdown", str(out_dir / "benchmark.md"),
                           "--json", str(out_dir / "benchmark.json")])
    if code != 0:
        raise SystemExit(f"perf suite benchmark: mlo-benchmark exited with {code}")
    if quick:
        table = out_dir / "benchmark.md"
        table.write_text("**quick run (sizes 512 and 1024, one repeat): a smoke test, not a "
                         "measurement**\n\n" + table.read_text())
