"""``mlo_exp.io``: permissions that follow the umask, and write failures as ``WriteError``
(injected at the lowest write calls, and on a real full or read-only file system)."""

from __future__ import annotations

import errno
import json
import os
import pickle
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from mlo_exp import io
from mlo_exp.io import WriteError, append_line, atomic_write_bytes, atomic_write_text
from tests.disk_faults import fail_writes, read_only, small_tmpfs


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


# -- permissions ------------------------------------------------------------------------------
@pytest.mark.parametrize(("umask", "expected"), [(0o022, 0o644), (0o077, 0o600),
                                                 (0o002, 0o664)])
def test_new_files_follow_the_umask_in_a_fresh_process(tmp_path: Path, umask: int,
                                                       expected: int) -> None:
    script = (
        "import json, os, sys\n"
        "from pathlib import Path\n"
        "from mlo_exp.io import append_line, atomic_write_text, current_umask\n"
        "d = Path(sys.argv[1])\n"
        "atomic_write_text(d / 'summary.json', '{}')\n"
        "append_line(d / 'metrics.jsonl', '{}')\n"
        "print(json.dumps({'umask': current_umask()}))\n")
    done = subprocess.run(
        [sys.executable, "-c", f"import os; os.umask({umask}); exec({script!r})",
         str(tmp_path)], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout)["umask"] == umask  # read without changing it
    assert _mode(tmp_path / "summary.json") == expected
    assert _mode(tmp_path / "metrics.jsonl") == expected


def test_umask_set_in_this_process_is_seen_at_the_next_write(tmp_path: Path) -> None:
    previous = os.umask(0o077)
    try:
        atomic_write_bytes(tmp_path / "private.bin", b"x")
        os.umask(0o022)
        atomic_write_bytes(tmp_path / "shared.bin", b"x")
    finally:
        os.umask(previous)
    assert _mode(tmp_path / "private.bin") == 0o600
    assert _mode(tmp_path / "shared.bin") == 0o644


def test_replacing_a_file_keeps_its_permissions(tmp_path: Path) -> None:
    target = tmp_path / "algorithm.json"
    target.write_text("old")
    target.chmod(0o640)
    atomic_write_text(target, "new")
    assert target.read_text() == "new" and _mode(target) == 0o640


def test_without_proc_the_umask_read_at_import_is_used(monkeypatch: pytest.MonkeyPatch,
                                                       tmp_path: Path) -> None:
    monkeypatch.setattr(io, "_read_umask", lambda: None)
    monkeypatch.setattr(io, "_IMPORT_UMASK", 0o027)
    assert io.new_file_mode() == 0o640
    atomic_write_bytes(tmp_path / "f", b"x")
    assert _mode(tmp_path / "f") == 0o640


# -- the error type ---------------------------------------------------------------------------
def test_write_error_names_path_and_cause_and_is_an_oserror() -> None:
    error = io.write_error("/runs/r1/summary.json", OSError(errno.ENOSPC, "No space left"))
    assert isinstance(error, OSError) and error.errno == errno.ENOSPC
    assert str(error) == "cannot write /runs/r1/summary.json: disk full (ENOSPC)"
    assert error.path == Path("/runs/r1/summary.json") and error.reason == "disk full (ENOSPC)"
    again = pickle.loads(pickle.dumps(error))  # crosses process boundaries (sweep jobs)
    assert type(again) is WriteError and str(again) == str(error)
    assert "read-only file system (EROFS)" in str(io.write_error("x", OSError(errno.EROFS, "")))
    assert "no permission" in str(io.write_error("x", PermissionError(errno.EACCES, "")))
    assert io.write_error("y", error) is error


# -- injected failures, whole-file writes ---------------------------------------------------
@pytest.mark.parametrize("site", ["mkstemp", "fsync", "replace"])
@pytest.mark.parametrize("number", [errno.ENOSPC, errno.EROFS])
def test_a_failed_atomic_write_keeps_the_old_file_and_leaves_no_temp(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, site: str, number: int) -> None:
    target = tmp_path / "summary.json"
    atomic_write_text(target, "before")
    fail_writes(monkeypatch, "summary.json", number, sites=(site,))
    with pytest.raises(WriteError) as caught:
        atomic_write_text(target, "after")
    assert caught.value.errno == number and caught.value.path == target
    assert str(caught.value).startswith(f"cannot write {target}: ")
    assert isinstance(caught.value.__cause__, OSError)
    assert target.read_text() == "before"
    assert _leftovers(tmp_path) == []


def test_parent_that_is_a_regular_file(tmp_path: Path) -> None:
    (tmp_path / "file.txt").write_text("")
    for target in (tmp_path / "file.txt" / "x.json", tmp_path / "file.txt" / "sub" / "x.json"):
        with pytest.raises(WriteError) as caught:
            atomic_write_text(target, "{}")
        assert caught.value.errno == errno.ENOTDIR
        assert "not a directory" in str(caught.value)


# -- injected failures, appends ----------------------------------------------------------------
def test_a_failed_append_raises_write_error_and_keeps_earlier_lines(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    log = tmp_path / "metrics.jsonl"
    append_line(log, "1")
    fail_writes(monkeypatch, "metrics.jsonl", errno.ENOSPC, sites=("write",))
    with pytest.raises(WriteError, match=r"metrics.jsonl: disk full \(ENOSPC\)"):
        append_line(log, "2")
    assert log.read_text() == "1\n"


def test_a_short_append_is_an_error_and_its_torn_bytes_are_cut(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    log = tmp_path / "episodes.csv"
    append_line(log, "a,b")
    real_write = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: real_write(fd, data[:3]))
    with pytest.raises(WriteError, match="disk full"):
        append_line(log, "1,2,3,4")
    monkeypatch.undo()
    assert log.read_text() == "a,b\n"


# -- real file systems -------------------------------------------------------------------------
def test_a_really_full_disk(tmp_path: Path) -> None:
    with small_tmpfs(tmp_path / "disk", "64k") as disk:
        target = disk / "checkpoint.pt"
        atomic_write_bytes(target, b"small")
        with pytest.raises(WriteError) as caught:
            atomic_write_bytes(target, os.urandom(256 * 1024))
        assert caught.value.errno == errno.ENOSPC and "disk full" in str(caught.value)
        assert target.read_bytes() == b"small" and _leftovers(disk) == []
        log = disk / "metrics.jsonl"
        line = json.dumps({"episode": 0, "pad": "x" * 200})
        with pytest.raises(WriteError, match="disk full"):
            for _ in range(10_000):
                append_line(log, line)
        assert all(json.loads(x)["pad"] for x in log.read_text().splitlines())  # whole lines


def test_a_really_read_only_directory(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    atomic_write_text(run_dir / "run.json", "{}")
    with read_only(run_dir):
        for write in (lambda: atomic_write_text(run_dir / "run.json", "changed"),
                      lambda: atomic_write_text(run_dir / "new" / "x.json", "{}"),
                      lambda: append_line(run_dir / "metrics.jsonl", "{}")):
            with pytest.raises(WriteError) as caught:
                write()
            assert caught.value.errno in (errno.EROFS, errno.EACCES)
            assert "read-only file system" in str(caught.value) \
                or "no permission" in str(caught.value)
        assert (run_dir / "run.json").read_text() == "{}" and _leftovers(run_dir) == []
