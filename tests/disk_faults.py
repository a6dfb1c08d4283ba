"""Test helpers for write failures: injected errno at the lowest write calls, and real
full or read-only file systems (a small tmpfs, where this machine lets the tests mount one).

Injection: :func:`fail_writes` makes ``os.write``, ``os.fsync``, ``os.replace`` and
``tempfile.mkstemp`` raise ``OSError(number)`` for files whose name contains a given text (the
name is read back from the descriptor), so a test can break one output and leave the run's
other files alone.

Real file systems: :func:`small_tmpfs` mounts a tmpfs of a few KiB (a disk that really fills
up); :func:`read_only` remounts one read-only, which refuses writes with ``EROFS`` even as
root, where ``chmod 0o555`` stops nothing. Mounting needs root with mount rights; elsewhere
a non-root user gets a ``chmod 0o555`` directory instead, and otherwise the test is skipped.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest


def _fd_name(fd: int) -> str:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return ""


def fail_writes(monkeypatch: pytest.MonkeyPatch, name: str, number: int = errno.ENOSPC,
                sites: tuple[str, ...] = ("write", "fsync", "replace", "mkstemp")) -> None:
    """Make the write calls in ``sites`` fail with ``number`` for files named like ``name``."""
    def failure() -> OSError:
        return OSError(number, os.strerror(number))

    if "write" in sites:
        real_write = os.write

        def write(fd: int, data: bytes) -> int:
            if name in _fd_name(fd):
                raise failure()
            return real_write(fd, data)

        monkeypatch.setattr(os, "write", write)
    if "fsync" in sites:
        real_fsync = os.fsync

        def fsync(fd: int) -> None:
            if name in _fd_name(fd if isinstance(fd, int) else fd.fileno()):
                raise failure()
            real_fsync(fd)

        monkeypatch.setattr(os, "fsync", fsync)
    if "replace" in sites:
        real_replace = os.replace

        def replace(source, target, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
            if name in os.fspath(target):
                raise failure()
            return real_replace(source, target, *args, **kwargs)

        monkeypatch.setattr(os, "replace", replace)
    if "mkstemp" in sites:
        real_mkstemp = tempfile.mkstemp

        def mkstemp(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            if name in str(kwargs.get("prefix", "")):
                raise failure()
            return real_mkstemp(*args, **kwargs)

        monkeypatch.setattr(tempfile, "mkstemp", mkstemp)


def _mount(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["mount", *args], capture_output=True, text=True, check=False)


@contextlib.contextmanager
def small_tmpfs(path: Path, size: str = "64k") -> Iterator[Path]:
    """A tmpfs of ``size`` at ``path`` (skips the test where mounting is not allowed)."""
    if not sys.platform.startswith("linux") or shutil.which("mount") is None:
        pytest.skip("needs Linux mount")
    path.mkdir(parents=True, exist_ok=True)
    done = _mount("-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path))
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[Path]:
    """``path`` (an existing directory with its files) made read-only for this process: a
    read-only bind mount where allowed, else ``chmod 0o555`` for a non-root user, else skip."""
    done = _mount("--bind", str(path), str(path))
    if done.returncode == 0:
        done = _mount("-o", "remount,bind,ro", str(path))
        try:
            if done.returncode != 0:
                pytest.skip(f"cannot remount read-only here: {done.stderr.strip()}")
            yield path
        finally:
            subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)
        return
    if os.geteuid() == 0:
        pytest.skip("cannot mount here, and root writes through chmod 0o555")
    mode = path.stat().st_mode
    path.chmod(0o555)
    try:
        yield path
    finally:
        path.chmod(mode)
