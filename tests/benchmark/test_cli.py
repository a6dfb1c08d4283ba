"""``mlo-benchmark``: targets (library names, files, run dirs), refusal, bad input, report."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlo_exp.algorithms.library import strassen
from mlo_exp.benchmark.backend import cuda_available
from mlo_exp.benchmark.cli import main
from mlo_exp.benchmark.store import ResultsStore
from tests.disk_faults import fail_writes, read_only

QUICK = ["--sizes", "12", "--repeats", "1", "--warmup", "0"]


@pytest.fixture(autouse=True)
def outputs(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setenv("MLO_OUTPUTS", str(tmp_path / "outputs"))
    return tmp_path / "outputs"


def test_library_name_gets_its_own_benchmark_id(outputs: Path, capsys):
    assert main(["strassen", "school-2x2x2", *QUICK]) == 0
    out = capsys.readouterr().out
    (record_file,) = (outputs / "benchmarks").rglob("benchmark.json")
    record = json.loads(record_file.read_text())
    benchmark_id = record["benchmark_id"]
    assert f"benchmark {benchmark_id}" in out and "strassen" in out and "school-2x2x2" in out
    assert [r["algorithm"] for r in record["rows"]] == ["strassen", "school-2x2x2"]
    assert all(r["source_run_id"] is None and r["run_id"] == benchmark_id
               for r in record["rows"])
    assert (record_file.parent / "speedup.png").exists()
    assert [r["benchmark_id"] for r in ResultsStore().rows()] == [benchmark_id] * 2
    assert main(["report", "--last", "1"]) == 0
    report = capsys.readouterr().out
    assert "strassen" in report and benchmark_id[-12:] in report


def test_algorithm_file_records_its_source_run(tmp_path: Path, capsys):
    algorithm = strassen()
    algorithm.provenance["run_id"] = "20260101-000000-0badc0de"
    path = algorithm.save(tmp_path / "found.json")
    markdown = tmp_path / "table.md"
    assert main([str(path), *QUICK, "--no-registry", "--markdown", str(markdown)]) == 0
    assert "| strassen | 7 | 1 | stream | 15/18 | 12x12x12 |" in markdown.read_text()
    assert "CPU" in markdown.read_text() or "GPU" in markdown.read_text()
    assert not ResultsStore().path.exists()


def test_unverifiable_algorithm_is_refused_with_the_residual(tmp_path: Path, capsys):
    algorithm = strassen()
    algorithm.w[0, 0] = 0
    path = algorithm.save(tmp_path / "broken.json")
    assert main([str(path), *QUICK]) == 2
    error = capsys.readouterr().err
    assert "exact verification failed" in error and "wrong entries" in error


@pytest.mark.parametrize(("target", "message"), [
    ("strasen", "is not a run directory, a run_id"),
    ("20260101-000000-00000000", "no run directory under"),
    ("missing.json", "no such file"),
])
def test_bad_targets_exit_2_naming_what_is_accepted(target, message, capsys):
    assert main([target, *QUICK]) == 2
    assert message in capsys.readouterr().err


def test_invalid_algorithm_file_and_bad_settings_exit_2(tmp_path: Path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "something-else"}')
    assert main([str(bad), *QUICK]) == 2
    assert "'something-else'" in capsys.readouterr().err  # the format it found
    assert main(["strassen", "--sizes", "0"]) == 2
    assert "benchmark.sizes[0]=0" in capsys.readouterr().err


@pytest.mark.skipif(cuda_available(), reason="this machine has a CUDA device")
def test_cupy_backend_without_a_device_exits_2(capsys):
    assert main(["strassen", *QUICK, "--backend", "cupy"]) == 2
    assert "benchmark.backend=cupy but CuPy" in capsys.readouterr().err


# -- outputs that cannot be written -------------------------------------------------------------
def _cli() -> list[str]:
    script = Path(sys.executable).with_name("mlo-benchmark")
    return [str(script)] if script.exists() else [sys.executable, "-m", "mlo_exp.benchmark.cli"]


def test_real_cli_registry_that_cannot_be_created_prints_the_table_then_one_line(
        tmp_path: Path):
    # The outputs root is a regular file: the registry under it fails for real (ENOTDIR).
    (tmp_path / "file.txt").write_text("not a directory")
    env = {**os.environ, "MLO_OUTPUTS": str(tmp_path / "file.txt")}
    done = subprocess.run([*_cli(), "strassen", *QUICK, "--out", str(tmp_path / "out"),
                           "--json", str(tmp_path / "b.json")],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    refused = [x for x in done.stderr.splitlines() if x.startswith("mlo-benchmark:")]
    registry = tmp_path / "file.txt" / "benchmarks.sqlite"
    assert refused == [f"mlo-benchmark: cannot write {registry}: a parent path is not a "
                       "directory (ENOTDIR)"]
    assert "strassen" in done.stdout and f"results: {tmp_path / 'out'}" in done.stdout
    assert (tmp_path / "out" / "benchmark.json").is_file()  # the other outputs are written
    assert json.loads((tmp_path / "b.json").read_text())["rows"][0]["algorithm"] == "strassen"
    assert (tmp_path / "file.txt").read_text() == "not a directory"


def test_each_refused_output_is_one_line_and_the_others_are_written(
        outputs: Path, tmp_path: Path, monkeypatch, capsys):
    fail_writes(monkeypatch, "benchmark.json", errno.ENOSPC)  # the results directory
    (tmp_path / "file.txt").write_text("")
    markdown = tmp_path / "file.txt" / "table.md"
    assert main(["strassen", *QUICK, "--markdown", str(markdown)]) == 1
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert any(x.startswith("mlo-benchmark: cannot write ") and x.endswith(
        "benchmark.json: disk full (ENOSPC)") for x in lines)
    assert f"mlo-benchmark: cannot write {markdown}: a parent path is not a directory " \
           "(ENOTDIR)" in lines
    assert "strassen" in captured.out and "results:" not in captured.out
    assert not list(outputs.rglob("*.png"))  # the directory's plots are skipped with it
    assert len(ResultsStore().rows()) == 1  # the registry was still written


def test_read_only_outputs_root(outputs: Path, tmp_path: Path, capsys):
    assert main(["strassen", *QUICK]) == 0
    capsys.readouterr()
    with read_only(outputs):
        # report only reads: it works in a read-only directory
        assert main(["report"]) == 0
        assert "strassen" in capsys.readouterr().out
        # a benchmark still prints its table; the refused registry is one line and exit 1
        assert main(["strassen", *QUICK, "--out", str(tmp_path / "out")]) == 1
        captured = capsys.readouterr()
        assert "strassen" in captured.out and "results:" in captured.out
        assert [x for x in captured.err.splitlines() if x.startswith("mlo-benchmark:")] == [
            f"mlo-benchmark: cannot write {outputs / 'benchmarks.sqlite'}: "
            + ("read-only file system (SQLITE_CANTOPEN)" if os.geteuid() == 0
               else "no permission (the directory is not writable) (SQLITE_CANTOPEN)")]
        # --no-registry: nothing is refused
        assert main(["strassen", *QUICK, "--out", str(tmp_path / "out2"),
                     "--no-registry"]) == 0


def test_report_on_a_registry_it_cannot_read(tmp_path: Path, capsys):
    broken = tmp_path / "broken.sqlite"
    broken.write_bytes(b"garbage" * 1000)
    assert main(["report", "--database", str(broken)]) == 1
    assert capsys.readouterr().err.strip() == (
        f"mlo-benchmark report: cannot read {broken}: not an SQLite database (file is not a "
        "database) (SQLITE_NOTADB)")


def test_settings_side_by_side_and_rectangular_shapes(outputs: Path, tmp_path: Path, capsys):
    markdown = tmp_path / "side.md"
    code = main(["strassen", "alphatensor-4x2x4", "--shape", "16x8x16", "20x10x20",
                 "--levels", "1", "2", "--strategy", "stream", "batched", "--repeats", "1",
                 "--warmup", "0", "--no-registry", "--markdown", str(markdown)])
    assert code == 0
    out = capsys.readouterr().out
    assert "break-even against the plain product" in out and "86/114" in out
    text = markdown.read_text()
    assert "| algorithm | problem | L1 stream | L1 batched | L2 stream | L2 batched |" in text
    assert "| alphatensor-4x2x4 | 20x10x20 |" in text and "## Break-even" in text
    assert "## Speedup over the classical control" in text and "How to read" in text
    assert text.count("| ↳ control school-2x2x2 | 8 |") == 2 * 2 * 2  # sizes x levels x strats
    assert text.count("| ↳ control school-4x2x4 | 32 |") == 2 * 2 * 2
    (result,) = (outputs / "benchmarks").rglob("benchmark.json")
    payload = json.loads(result.read_text())
    assert len(payload["rows"]) == 2 * 2 * 2 * 2
    assert {r["problem"] for r in payload["rows"]} == {"16x8x16", "20x10x20"}
    assert len(payload["break_even"]) == 8


@pytest.mark.parametrize(("arguments", "message"), [
    (["--shape", "16x8"], "accepted: N1xN2xN3"),
    (["--tf32", "on", "--backend", "numpy"], "allow_tf32 needs CuPy"),
    (["--plan", "clever"], "invalid choice"),
    (["--chain", "0"], "benchmark.chain"),
    (["--max-repeats", "0"], "--max-repeats 0; accepted: an integer >= 1"),
    (["--ci-width", "0"], "--ci-width 0.0; accepted: a number > 0"),
    (["--sums", "magic"], "invalid choice"),
])
def test_bad_new_settings_exit_2(arguments, message, capsys):
    with pytest.raises(SystemExit) if message == "invalid choice" else contextlib.nullcontext():
        assert main(["strassen", *QUICK, "--no-registry", *arguments]) == 2
    assert message in capsys.readouterr().err


def test_cpu_sizes_follow_the_time_budget():
    from mlo_exp.benchmark.backend import select_backend
    from mlo_exp.benchmark.measure import pick_cpu_sizes

    numpy_backend = select_backend("numpy")
    sizes, rate = pick_cpu_sizes(numpy_backend, "float32", 2, 1e-9, 1, 3)
    assert sizes == [256] and rate > 0
    assert pick_cpu_sizes(numpy_backend, "float32", 1, 1e12, 1, 3)[0] == [2048, 4096, 8192]
    middle = pick_cpu_sizes(numpy_backend, "float32", 1, 60, 1, 3)[0]
    assert middle == [middle[0], 2 * middle[0], 4 * middle[0]] or middle[0] == 256


def test_without_sizes_a_cpu_run_says_which_sizes_fit_the_budget(outputs: Path, capsys,
                                                                 caplog):
    caplog.set_level("INFO", logger="mlo_exp")
    assert main(["strassen", "--time-budget", "0.000001", "--repeats", "1",
                 "--warmup", "0", "--no-registry"]) == 0
    assert "sizes 256: expected to finish in about 0 s" in caplog.text
    assert "256x256x256" in capsys.readouterr().out


def test_ctrl_c_prints_the_partial_table_not_a_traceback(outputs: Path):
    """A real SIGINT to a real ``mlo-benchmark`` once its first size is measured: the rows
    so far are printed and written, exit code 130, no traceback."""
    import signal
    import time

    env = {**os.environ, "MLO_OUTPUTS": str(outputs),
           "PYTHONPATH": os.pathsep.join(sys.path)}
    process = subprocess.Popen(
        [sys.executable, "-m", "mlo_exp.benchmark.cli", "strassen", "--sizes", "32", "3000",
         "--repeats", "50", "--max-repeats", "50", "--warmup", "0", "--no-registry"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    assert process.stderr is not None
    seen = []
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        seen.append(line)
        if "strassen 32x32x32:" in line or not line:
            break
    time.sleep(0.5)  # inside the 3000 size now
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=240)
    err = "".join(seen) + err
    assert process.returncode == 130, err
    assert "Traceback" not in err
    assert "interrupted; the 1 row(s) measured so far follow" in err
    assert "(interrupted: partial)" in out and "32x32x32" in out and "3000x3000" not in out
    (result,) = (outputs / "benchmarks").rglob("benchmark.json")
    payload = json.loads(result.read_text())
    assert payload["status"] == "interrupted" and len(payload["rows"]) == 1
