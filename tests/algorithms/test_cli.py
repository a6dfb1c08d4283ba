"""``mlo-algorithms`` as a user runs it: a real subprocess per command."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from mlo_exp.algorithms import cli as algorithms_cli
from mlo_exp.algorithms.algorithm import Algorithm
from mlo_exp.algorithms.fliptext import format_products
from mlo_exp.algorithms.library import alphatensor, strassen

CLI = str(Path(sys.executable).with_name("mlo-algorithms"))


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([CLI, *args], capture_output=True, text=True, timeout=60, cwd=cwd)


def test_import_text_with_lift_then_verify_show_list(tmp_path):
    source = tmp_path / "333-23-mod2.txt"
    source.write_text(format_products(alphatensor(3, 3, 3, "Z2")))
    done = cli("import", str(source), "--out", "lib", "--lift", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    imported = Algorithm.load(tmp_path / "lib" / "333-23-mod2.json")
    lifted = Algorithm.load(tmp_path / "lib" / "333-23-mod2-lifted.json")
    assert (imported.ring, lifted.ring) == ("Z2", "Z")
    assert lifted.verify().ok and lifted.rank == 23
    again = cli("import", str(source), "--out", "lib", cwd=tmp_path)
    assert again.returncode == 2 and "would overwrite" in again.stderr
    assert cli("verify", "lib/333-23-mod2-lifted.json", cwd=tmp_path).returncode == 0
    wrong = cli("verify", "lib/333-23-mod2.json", "--ring", "Z", cwd=tmp_path)
    assert wrong.returncode == 1 and "NOT a decomposition" in wrong.stdout
    shown = cli("show", "strassen", cwd=tmp_path)
    assert "m1 = (a11 + a22) * (b11 + b22)" in shown.stdout
    run_dir = tmp_path / "outputs" / "runs" / "r1"
    strassen().save(run_dir / "algorithm.json")
    listing = cli("list", cwd=tmp_path)
    assert listing.returncode == 0
    assert "alphatensor-4x4x4-z2" in listing.stdout and "runs/r1" in listing.stdout


def test_import_npz_and_refuse_a_wrong_file(tmp_path):
    from mlo_exp.algorithms.alphatensor import default_data_dir

    done = cli("import", str(default_data_dir() / "factorizations_f2.npz"), "--out", "z2",
               cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert len(list((tmp_path / "z2").glob("*.json"))) == 20
    bad = tmp_path / "bad.txt"
    bad.write_text("(a11+a22)*(b11)*(c11)\n")
    refused = cli("import", str(bad), "--out", "lib", "--shape", "2", "2", "2", cwd=tmp_path)
    assert refused.returncode == 1 and "not correct" in refused.stderr
    assert not (tmp_path / "lib").exists()
    garbage = cli("show", "no-such-algorithm", cwd=tmp_path)
    assert garbage.returncode == 2 and "accepted" in garbage.stderr


def test_export_python_computes_the_product(tmp_path):
    done = cli("export", "alphatensor-2x3x4", "--format", "python", "--out", "mm.py",
               cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    spec = importlib.util.spec_from_file_location("mm", tmp_path / "mm.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rng = np.random.default_rng(0)
    a, b = rng.integers(-9, 9, (4, 9)), rng.integers(-9, 9, (9, 8))  # 2x2 blocks
    assert np.array_equal(module.matmul(a, b), a @ b)
    exported = json.loads(cli("export", "strassen", cwd=tmp_path).stdout)
    assert Algorithm.from_dict(exported).verify().ok
    text = cli("export", "strassen", "--format", "text", cwd=tmp_path).stdout
    assert text.splitlines()[0] == "(a11+a22)*(b11+b22)*(c11+c22)"


def test_verify_reads_the_packaged_npz_files(tmp_path):
    from mlo_exp.algorithms.alphatensor import default_data_dir

    done = cli("verify", str(default_data_dir() / "factorizations_f2.npz"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 20 and all("exact decomposition" in line for line in lines)
    wrong = cli("verify", str(default_data_dir() / "factorizations_f2.npz"), "--ring", "Z",
                cwd=tmp_path)
    assert wrong.returncode == 1 and "alphatensor-4x4x4-z2" in wrong.stdout
    one = cli("export", str(default_data_dir() / "factorizations_f2.npz"), cwd=tmp_path)
    assert one.returncode == 2 and "holds 20 algorithms" in one.stderr


def test_unreadable_inputs_are_one_line_and_exit_2(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for args in (("verify", str(fifo)), ("import", str(fifo), "--out", "lib"),
                 ("verify", str(tmp_path)), ("verify", "school-17x1x1"),
                 ("import", "x.txt", "--out", "lib", "--shape", "2", "\u0662", "2")):
        done = cli(*args, cwd=tmp_path)
        assert done.returncode == 2, (args, done.stderr)
        assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    assert "is a FIFO" in cli("verify", str(fifo), cwd=tmp_path).stderr


def test_output_that_cannot_be_written_is_one_line_and_nothing_is_left(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    for args in (("import", str(default_npz("f2")), "--out", "file/lib"),
                 ("export", "strassen", "--out", "file/s.json")):
        done = cli(*args, cwd=tmp_path)
        assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
        assert done.stderr.count("\n") == 1 and "cannot write file/" in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def default_npz(kind: str) -> Path:
    from mlo_exp.algorithms.alphatensor import default_data_dir

    return default_data_dir() / f"factorizations_{kind}.npz"


def test_a_full_disk_mid_import_leaves_nothing_half_written(tmp_path, monkeypatch, capsys):
    import errno

    from mlo_exp.io import atomic_write_text

    calls = []

    def full_after_three(path, text):
        calls.append(path)
        if len(calls) > 3:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return atomic_write_text(path, text)

    monkeypatch.setattr(algorithms_cli, "atomic_write_text", full_after_three)
    out = tmp_path / "deep" / "lib"
    code = algorithms_cli.main(["import", str(default_npz("f2")), "--out", str(out)])
    error = capsys.readouterr().err
    assert code == 2 and len(calls) == 4
    assert error.count("\n") == 1 and "No space left on device; nothing written" in error
    assert not (tmp_path / "deep").exists()  # the three files and the folders made are gone
    calls.clear()
    code = algorithms_cli.main(["export", "strassen", "--out", str(tmp_path / "a" / "s.json")])
    assert code == 0 and (tmp_path / "a" / "s.json").exists()
    calls[:] = [None] * 3
    code = algorithms_cli.main(["export", "strassen", "--out", str(tmp_path / "b.json")])
    assert code == 2 and not (tmp_path / "b.json").exists()
    assert "export: cannot write" in capsys.readouterr().err


def test_export_every_interchange_format_and_read_it_back(tmp_path):
    from mlo_exp.algorithms.formats import WRITERS

    for name, (_, suffix) in WRITERS.items():
        out = tmp_path / f"s{suffix}"
        done = cli("export", "alphatensor-2x3x4", "--format", name, "--out", str(out),
                   "--force", cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        verified = cli("verify", str(out), cwd=tmp_path)
        assert verified.returncode == 0 and "exact decomposition" in verified.stdout, name
        assert cli("same", str(out), "alphatensor-2x3x4", cwd=tmp_path).stdout.endswith(
            "same\n"), name
