"""Crash-safe file writing: readers and crashes never see half a file.

Whole files are written to a temporary file in the same directory, flushed, fsynced and
renamed over the target (``os.replace`` is atomic on POSIX). Append-only logs write each
record with one ``write`` call on an ``O_APPEND`` descriptor, so lines never interleave
between processes and a crash loses at most the record being written.

Permissions: files are created as a plain ``open()`` would create them, ``0o666`` less the
process umask (``0o644`` under the usual umask ``022``, ``0o600`` under ``077``), so results
on a shared cluster are as readable as the user's other files. A temporary file starts
``0o600`` (``mkstemp``) and is given that mode before it is renamed; replacing a file that
already exists keeps that file's permission bits, again as ``open(path, "w")`` would.
The umask is read from the ``Umask:`` line of ``/proc/self/status`` at each write: setting
it with ``os.umask`` to read it back would, for that instant, give every other thread's new
files the wrong mode. Where ``/proc`` has no such line (not Linux, or Linux before 4.7) the
umask is read once, with that round trip, when this module is imported, and a later change
of the umask is not seen.

Failures: every write here raises :class:`WriteError` (an ``OSError``) when the file system
refuses, naming the path and the cause in plain words (disk full, read-only file system, no
permission, ...); ``str(error)`` is ``"cannot write <path>: <reason>"``, ready for a one-line
message. A failed whole-file write leaves the target as it was and no temporary file behind.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

# Plain words for the causes a user can act on; any other error keeps its own text.
_REASONS = {
    errno.ENOSPC: "disk full",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
    errno.EACCES: "no permission (the file or its directory is not writable)",
    errno.EPERM: "no permission (the file or its directory is not writable)",
    errno.ENOTDIR: "a parent path is not a directory",
    errno.EISDIR: "it is a directory",
    errno.EFBIG: "file too large",
    errno.EIO: "input/output error",
}


class WriteError(OSError):
    """A file could not be written. ``str(error)`` is ``"cannot write <path>: <reason>"``.

    It is an ``OSError`` (``errno``, ``strerror`` = the reason, ``filename`` = the path), so
    code that catches ``OSError`` catches it too; ``path`` is the file that was being
    written, ``reason`` the cause in plain words (e.g. ``"disk full (ENOSPC)"``), and
    ``__cause__`` the original error where there was one. Built with the arguments of
    ``OSError`` (``WriteError(errno, reason, path)``), so it pickles across processes.
    """

    def __init__(self, error_number: int | None, reason: str, path: str | os.PathLike) -> None:
        super().__init__(error_number, reason, os.fspath(path))

    @property
    def path(self) -> Path:
        return Path(self.filename)

    @property
    def reason(self) -> str:
        return str(self.strerror)

    def __str__(self) -> str:
        return f"cannot write {self.filename}: {self.strerror}"

    def __reduce__(self):  # noqa: ANN204 - keep the three arguments, not OSError's two
        return (type(self), (self.errno, self.strerror, self.filename), self.__dict__)


def describe(error: OSError) -> str:
    """The cause of ``error`` in plain words, with the errno name: ``"disk full (ENOSPC)"``."""
    if isinstance(error, WriteError):
        return error.reason
    number = error.errno
    name = errno.errorcode.get(number, "") if number is not None else ""
    text = _REASONS.get(number) or error.strerror or str(error) or type(error).__name__
    return f"{text} ({name})" if name else text


def write_error(path: str | os.PathLike, error: OSError) -> WriteError:
    """``error``, raised while writing ``path``, as a :class:`WriteError` (itself if it is
    one already). Raise it ``from error`` to keep the original."""
    if isinstance(error, WriteError):
        return error
    return WriteError(error.errno, describe(error), path)


@contextlib.contextmanager
def writing(path: str | os.PathLike) -> Iterator[None]:
    """Turn an ``OSError`` in the block into a :class:`WriteError` naming ``path``."""
    try:
        yield
    except WriteError:
        raise
    except OSError as error:
        raise write_error(path, error) from error


def ensure_directory(path: str | os.PathLike, for_file: str | os.PathLike | None = None
                     ) -> Path:
    """``mkdir -p path``; a failure is a :class:`WriteError` naming ``for_file`` (the file
    the directory is made for) or else ``path``. A parent that is a regular file says so
    rather than ``File exists``."""
    path = Path(path)
    named = path if for_file is None else for_file
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError as error:  # exists, but is not a directory
        raise WriteError(errno.ENOTDIR, "a parent path is not a directory (ENOTDIR)",
                         named) from error
    except OSError as error:
        raise write_error(named, error) from error
    return path


def _read_umask() -> int | None:
    """The process umask from ``/proc/self/status`` (Linux 4.7+), or None."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return None


def _umask_at_import() -> int:
    if (mask := _read_umask()) is not None:
        return mask
    mask = os.umask(0o022)  # the racy round trip, once, while the import runs
    os.umask(mask)
    return mask


_IMPORT_UMASK = _umask_at_import()


def current_umask() -> int:
    """The process umask, read without changing it (see the module docstring)."""
    mask = _read_umask()
    return _IMPORT_UMASK if mask is None else mask


def new_file_mode() -> int:
    """The mode a plain ``open(path, "w")`` gives a new file: ``0o666`` less the umask."""
    return 0o666 & ~current_umask()


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Replace ``path`` with ``data`` atomically; the directory is created if missing.

    Raises :class:`WriteError` on failure, after removing its temporary file; the target is
    then as it was before the call.
    """
    path = Path(path)
    ensure_directory(path.parent, for_file=path)
    with writing(path):
        try:
            mode = os.stat(path).st_mode & 0o777  # replacing a file keeps its permissions
        except OSError:
            mode = new_file_mode()
        fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp",
                                         dir=path.parent)
        try:
            # A file system without permissions (some network/FUSE mounts) refuses chmod;
            # that must not cost the write.
            with contextlib.suppress(OSError):
                os.fchmod(fd, mode)
            with os.fdopen(fd, "wb") as handle:
                fd = -1  # the file object owns (and closes) it now
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, path)
        except BaseException:
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
            with contextlib.suppress(OSError):  # a read-only file system refuses this too
                os.unlink(temporary)
            raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Text version of :func:`atomic_write_bytes` (UTF-8)."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def append_line(path: str | Path, line: str) -> None:
    """Append one newline-terminated record with a single ``write`` (see module docstring).

    Raises :class:`WriteError` on failure. A short write (a disk that filled up in the
    middle of the record) counts as one: the torn part is cut off again when nothing was
    appended after it, so the file keeps whole lines (readers skip a torn last line anyway).
    """
    data = (line.rstrip("\n") + "\n").encode("utf-8")
    with writing(path):
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)  # less the umask
        try:
            written = os.write(fd, data)
            if written != len(data):
                end = os.lseek(fd, 0, os.SEEK_CUR)  # just after this record's bytes
                failure = short_write_error(fd, written, len(data))  # before the cut
                with contextlib.suppress(OSError):
                    if os.fstat(fd).st_size == end:  # nothing appended after it since
                        os.ftruncate(fd, end - written)
                raise failure
        finally:
            os.close(fd)


def short_write_error(fd: int, written: int, wanted: int) -> OSError:
    """The cause of a short write on ``fd``: a write of one more byte at its end, right
    after the short write, tells (the kernel gives a short count first and the error only
    on the next call: ``EFBIG`` for a file-size limit, ``ENOSPC`` for a full disk); ENOSPC
    when that write succeeds (the byte is cut off again). The file's end is where the short
    write left it."""
    try:
        end = os.lseek(fd, 0, os.SEEK_END)
        if os.write(fd, b"\0") == 1:
            os.ftruncate(fd, end)
    except OSError as error:
        if error.errno is not None:
            return OSError(error.errno, f"only {written} of {wanted} bytes written "
                           f"({os.strerror(error.errno)})")
    return OSError(errno.ENOSPC, f"only {written} of {wanted} bytes written")
