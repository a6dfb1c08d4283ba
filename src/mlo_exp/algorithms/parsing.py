"""Shared rules for reading algorithm files: bounded sizes, exact numbers, one-line errors.

Every reader of an algorithm file (JSON in :mod:`mlo_exp.algorithms.algorithm`, the text formats in
:mod:`mlo_exp.algorithms.formats`, AlphaTensor ``.npz`` in :mod:`mlo_exp.algorithms.alphatensor`)
goes through these
helpers, so any input either reads exactly or raises :class:`AlgorithmFileError` whose message
is one line: ``<file>: <place>: <what is wrong>; accepted: <what would be>``.

Limits, checked before anything of that size is allocated or computed:

* a file is a regular file (no FIFO, device or directory: they are refused before reading)
  of at most 16 MiB (:data:`MAX_FILE_BYTES`); text is UTF-8 (a leading BOM is allowed);
* each of ``n, m, p`` is in ``1..16`` (:data:`MAX_DIM`), the rank ``R`` in ``1..4096``;
* the exact check holds one ``(n*m * m*p) x R`` table: at most 2**26 entries
  (:data:`MAX_CHECK_CELLS`, 512 MiB as float64), e.g. ``<12,12,12>`` at the school rank 1728,
  ``<16,16,16>`` up to rank 1024;
* a coefficient is an integer or a fraction ``p/q`` (ASCII digits, no exponent, no float
  syntax) with ``|p|`` and ``q`` at most ``2**31 - 1``; the common denominator of one factor
  matrix is at most ``2**256`` (beyond ``2**62`` the check runs in Python integers, under the
  work bound below);
* when the exact check cannot run in machine integers (large scaled coefficients), its work
  ``n*m * m*p * n*p * R`` is at most 2**26 steps (:data:`MAX_BIG_CHECK_WORK`, seconds).

Format-specific limits (line length, nesting, archive members) are in each reader's module.
"""

from __future__ import annotations

import codecs
import math
import os
import re
import stat
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import ClassVar

import numpy as np

MAX_FILE_BYTES = 16 * 2**20
MAX_DIM = 16
MAX_RANK = 4096
MAX_CHECK_CELLS = 2**26
MAX_COEFFICIENT = 2**31 - 1
MAX_COMMON_DENOMINATOR = 2**256  # meta flip-graph schemes reach 2**189 (1/159199, ...)
MAX_BIG_CHECK_WORK = 2**26
MAX_TOKENS = 2**22  # tokens a text reader reads before it refuses the file
_MACHINE_SAFE = 2**62  # mlo_exp.algorithms.tensor's int64 bound for one reconstruction

Number = int | Fraction  # an exact coefficient: an int, or a Fraction when not integral
_NUMBER = re.compile(r"([+-]?)([0-9]+)(?:/([0-9]+))?", re.ASCII)
_MAX_DIGITS = 40  # longer digit strings are refused before int() sees them
ACCEPTED_NUMBER = (f"an integer or a fraction p/q with ASCII digits, |p| and q at most "
                   f"{MAX_COEFFICIENT}")


class AlgorithmFileError(ValueError):
    """An algorithm file that cannot be read: names the file, the place and what is accepted."""


def show(text: str, limit: int = 40) -> str:
    """``repr`` of a piece of user input, shortened: safe inside a one-line message."""
    return repr(text) if len(text) <= limit else repr(text[:limit]) + f"... ({len(text)} chars)"


def label(path: str | Path) -> str:
    """A path as printable one-line text for messages and provenance (odd characters -> ?)."""
    return "".join(c if c.isprintable() else "?" for c in str(path))


def _file_kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def read_bytes(path: str | Path, limit: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes.

    Non-regular files are refused from ``stat`` before opening; the file is then opened
    non-blocking and checked again on the descriptor, so a FIFO swapped in never blocks.
    """
    path, name = Path(path), label(path)
    accepted = f"accepted: a regular file of at most {limit} bytes"
    try:
        mode = os.stat(path).st_mode
        if not stat.S_ISREG(mode):
            raise AlgorithmFileError(f"{name}: is {_file_kind(mode)}; {accepted}")
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except OSError as error:
        raise AlgorithmFileError(f"{name}: cannot read: {error.strerror}") from None
    try:
        status = os.fstat(fd)
        if not stat.S_ISREG(status.st_mode):
            raise AlgorithmFileError(f"{name}: is {_file_kind(status.st_mode)}; {accepted}")
        if status.st_size > limit:
            raise AlgorithmFileError(f"{name}: {status.st_size} bytes; {accepted}")
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, min(2**20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as error:
        raise AlgorithmFileError(f"{name}: cannot read: {error.strerror}") from None
    finally:
        os.close(fd)
    if size > limit:
        raise AlgorithmFileError(f"{name}: more than {limit} bytes; {accepted}")
    return b"".join(chunks)


def decode_text(data: bytes, source: str) -> str:
    """UTF-8 text (an optional BOM dropped); other bytes are refused with their line."""
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise AlgorithmFileError(
            f"{source}:{line}: byte 0x{data[error.start]:02x} is not UTF-8; accepted: UTF-8 "
            "text (a BOM is allowed) or an AlphaTensor .npz") from None


def parse_number(token: str, where: str) -> Number:
    """A coefficient written ``[+-]digits[/digits]`` (see module docstring for the bounds)."""
    match = _NUMBER.fullmatch(token)
    if match is None:
        raise AlgorithmFileError(f"{where}: coefficient {show(token)}; accepted: "
                                 f"{ACCEPTED_NUMBER}")
    sign, numerator, denominator = match.groups()
    if len(numerator) > _MAX_DIGITS or len(denominator or "") > _MAX_DIGITS:
        raise AlgorithmFileError(f"{where}: coefficient {show(token)} is too long; accepted: "
                                 f"{ACCEPTED_NUMBER}")
    if denominator is not None and int(denominator) == 0:
        raise AlgorithmFileError(f"{where}: coefficient {show(token)} divides by zero; "
                                 f"accepted: {ACCEPTED_NUMBER}")
    value: Number = int(numerator) if denominator is None else Fraction(
        int(numerator), int(denominator))
    return check_coefficient(-value if sign == "-" else value, where, token)


def check_coefficient(value: Number, where: str, written: str | None = None) -> Number:
    """``value`` (an int, or a Fraction when not integral) if within the bounds."""
    if type(value) is int:
        if -MAX_COEFFICIENT <= value <= MAX_COEFFICIENT:
            return value
    else:
        value = value if type(value) is Fraction else Fraction(value)
        if abs(value.numerator) <= MAX_COEFFICIENT and value.denominator <= MAX_COEFFICIENT:
            return value.numerator if value.denominator == 1 else value
    text = written if written is not None else str(value)
    raise AlgorithmFileError(f"{where}: coefficient {show(text)} is too large; accepted: "
                             f"{ACCEPTED_NUMBER}")


def check_dim(value: object, name: str, where: str) -> int:
    """One of ``n, m, p``: an integer (not a bool) in ``1..MAX_DIM``."""
    if type(value) is not int or not 1 <= value <= MAX_DIM:
        shown = (show(value) if isinstance(value, str) else repr(value)
                 if value is None or type(value) in (int, float, bool) else type(value).__name__)
        raise AlgorithmFileError(f"{where}: {name}={shown}; accepted: an integer from 1 to "
                                 f"{MAX_DIM}")
    return value


def check_size(shape: tuple[int, int, int], rank: int, where: str) -> None:
    """Refuse a rank or a shape whose exact check would not fit the limits (module docstring)."""
    n, m, p = (check_dim(x, name, where) for x, name in zip(shape, "nmp", strict=True))
    if not 1 <= rank <= MAX_RANK:
        raise AlgorithmFileError(f"{where}: {rank} terms; accepted: 1 to {MAX_RANK} terms")
    cells = n * m * m * p * rank
    if cells > MAX_CHECK_CELLS:
        raise AlgorithmFileError(
            f"{where}: <{n},{m},{p}> with {rank} terms needs {cells} cells for the exact check; "
            f"accepted: n*m * m*p * rank at most {MAX_CHECK_CELLS}")


def exact_matrix(values: list[Number], rows: int, columns: int) -> np.ndarray:
    """Row-major bounded numbers -> an exact ``(rows, columns)`` array (int64, or objects)."""
    if all(v.denominator == 1 for v in values):
        return np.array([int(v) for v in values], dtype=np.int64).reshape(rows, columns)
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return array.reshape(rows, columns)


def check_exact_cost(shape: tuple[int, int, int], factors: tuple[np.ndarray, ...],
                     where: str) -> None:
    """Refuse factors whose exact check would need slow big integers at a large size.

    ``factors`` hold bounded exact values: int64, float64 binary fractions, or Fractions.
    """
    n, m, p = shape
    rank = factors[0].shape[1]
    bound = rank
    for name, factor in zip("uvw", factors, strict=True):
        if factor.size == 0:
            return
        if factor.dtype.kind in "iu":
            bound *= int(np.abs(factor).max())
            continue
        unique = np.unique(factor) if factor.dtype.kind == "f" else set(factor.ravel().tolist())
        values = [Fraction(float(x)) if isinstance(x, np.floating) else Fraction(x)
                  for x in unique]
        common = 1
        for value in values:
            common = math.lcm(common, value.denominator)
            if common > MAX_COMMON_DENOMINATOR:
                raise AlgorithmFileError(
                    f"{where}: factor {name}: the common denominator of its coefficients "
                    f"exceeds {MAX_COMMON_DENOMINATOR}; accepted: at most that")
        bound *= max(abs(value) for value in values) * common
    work = n * m * m * p * n * p * rank
    if bound >= _MACHINE_SAFE and work > MAX_BIG_CHECK_WORK:
        raise AlgorithmFileError(
            f"{where}: coefficients this large need big-integer arithmetic for the exact check, "
            f"and <{n},{m},{p}> with {rank} terms is {work} steps; accepted: "
            f"n*m * m*p * n*p * rank at most {MAX_BIG_CHECK_WORK} with such coefficients")


_DECIMAL = re.compile(r"([+-]?)([0-9]+)\.([0-9]+)", re.ASCII)
ACCEPTED_DECIMAL = (f"{ACCEPTED_NUMBER}, or a decimal such as 0.5 or -0.125 (no exponent, "
                    f"read exactly)")


def parse_decimal(token: str, where: str) -> Number:
    """A coefficient written as an integer, ``p/q`` or a decimal ``[+-]d.ddd`` (read exactly:
    ``0.5`` is 1/2, ``0.1`` is 1/10; at most 40 digits on each side, no exponent)."""
    match = _DECIMAL.fullmatch(token)
    if match is None:
        try:
            return parse_number(token, where)
        except AlgorithmFileError:
            raise AlgorithmFileError(f"{where}: coefficient {show(token)}; accepted: "
                                     f"{ACCEPTED_DECIMAL}") from None
    sign, whole, fraction = match.groups()
    if len(whole) > _MAX_DIGITS or len(fraction) > _MAX_DIGITS:
        raise AlgorithmFileError(f"{where}: coefficient {show(token)} is too long; accepted: "
                                 f"{ACCEPTED_DECIMAL}")
    value = Fraction(int(whole + fraction), 10 ** len(fraction))
    return check_coefficient(-value if sign == "-" else value, where, token)


def exact_value(value: object, where: str) -> Number:
    """One coefficient of a parsed JSON or Python literal, exactly.

    Accepted: an integer (not a bool), a :class:`~fractions.Fraction` (a decimal literal read
    by :func:`mlo_exp.algorithms.algorithm.load_json` with ``decimals=True``), a float that is
    integral or a binary fraction with denominator at most 2**20 (0.5, 0.125), or a string
    ``p/q`` / decimal; each within the bounds of this module.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float, str, Fraction)):
        kind = "null" if value is None else "a boolean" if isinstance(value, bool) else \
            type(value).__name__
        raise AlgorithmFileError(f"{where}: {kind} is not a number; accepted: {ACCEPTED_DECIMAL}")
    if isinstance(value, str):
        return parse_decimal(value.strip(), where)
    if isinstance(value, float):
        if not math.isfinite(value) or abs(value) > MAX_COEFFICIENT:
            raise AlgorithmFileError(f"{where}: coefficient {value!r}; accepted: "
                                     f"{ACCEPTED_DECIMAL}")
        exact = Fraction(value)
        if exact.denominator > 2**20:
            raise AlgorithmFileError(f"{where}: coefficient {value!r} is not exact as a binary "
                                     f"float; accepted: {ACCEPTED_DECIMAL}")
        value = exact
    return check_coefficient(value, where)  # type: ignore[arg-type]


def factor_dims(rows: tuple[int, int, int], where: str) -> tuple[int, int, int]:
    """``(n, m, p)`` from the row counts ``(n*m, m*p, n*p)`` of three factor matrices."""
    nm, mp, np_ = rows
    for n in range(1, MAX_DIM + 1):
        if nm % n == 0 and np_ % n == 0:
            m, p = nm // n, np_ // n
            if m * p == mp and 1 <= m <= MAX_DIM and 1 <= p <= MAX_DIM:
                return n, m, p
    raise AlgorithmFileError(f"{where}: factor matrices with {nm}, {mp} and {np_} rows fit no "
                             f"<n,m,p>; accepted: n*m, m*p and n*p rows, each size 1 to "
                             f"{MAX_DIM}")


class TokenStream:
    """The tokens of ``text``, for the text readers' small recursive-descent parsers.

    A subclass sets ``pattern`` (named groups; ``space`` and ``comment`` are skipped, a
    newline in ``space`` counts a line) and ``accepted`` (the end of every error message);
    ``keyword_kinds`` are the token kinds :meth:`take` matches by their text. ``current`` is
    ``(kind, text, line)``; ``("end", "", line)`` after the last token. At most
    ``MAX_TOKENS`` tokens are read; every error names the file and line."""

    pattern: ClassVar[re.Pattern[str]]
    accepted: ClassVar[str]
    keyword_kinds: ClassVar[tuple[str, ...]] = ("op",)

    def __init__(self, text: str, source: str) -> None:
        self.text, self.source, self.count = text, source, 0
        self.tokens = self._scan()
        self.current = self.advance()

    def _scan(self) -> Iterator[tuple[str, str, int]]:
        position, line, length = 0, 1, len(self.text)
        while position < length:
            match = self.pattern.match(self.text, position)
            if match is None:
                raise AlgorithmFileError(
                    f"{self.source}:{line}: cannot read "
                    f"{show(self.text[position:position + 20])}; {self.accepted}")
            kind = match.lastgroup or ""
            if kind == "space":
                line += match.group().count("\n")
            elif kind != "comment":
                yield kind, match.group(), line
            position = match.end()
        yield "end", "", line

    def advance(self) -> tuple[str, str, int]:
        """The next token (also returned)."""
        self.count += 1
        if self.count > MAX_TOKENS:
            raise AlgorithmFileError(f"{self.source}: more than {MAX_TOKENS} tokens; accepted: "
                                     "at most that")
        return next(self.tokens)

    def error(self, message: str) -> AlgorithmFileError:
        kind, value, line = self.current
        shown = "the end of the file" if kind == "end" else show(value)
        return AlgorithmFileError(f"{self.source}:{line}: {message}, found {shown}; "
                                  f"{self.accepted}")

    def take(self, value: str) -> bool:
        """Move past the current token when it is ``value`` (of a keyword kind)."""
        if self.current[1] == value and self.current[0] in self.keyword_kinds:
            self.current = self.advance()
            return True
        return False

    def expect(self, value: str, what: str) -> None:
        if not self.take(value):
            raise self.error(f"expected {what}")


def npy_header(stream: object, where: str, accepted: str) -> tuple[tuple, bool, np.dtype]:
    """``(shape, fortran_order, dtype)`` of a ``.npy`` stream (versions 1.0 and 2.0 only),
    read without loading data or unpickling; else an :class:`AlgorithmFileError`."""
    from numpy.lib import format as npy_format

    try:
        version = npy_format.read_magic(stream)
        if version == (1, 0):
            return npy_format.read_array_header_1_0(stream)
        if version == (2, 0):
            return npy_format.read_array_header_2_0(stream)
        raise ValueError(f"version {version}")
    except (ValueError, TypeError, OverflowError) as error:
        raise AlgorithmFileError(f"{where}: not a .npy array ({error}); {accepted}") from None
