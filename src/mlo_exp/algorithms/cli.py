"""``mlo-algorithms``: the algorithm library on the command line.

Commands (an ``ALGORITHM`` is a library name — ``strassen``, ``school-NxMxP``,
``alphatensor-NxMxP[-z2]``, ``best-NxMxP[-q|-z2]`` (the catalogue's best) — or a file,
recognised by content (:mod:`mlo_exp.algorithms.formats`: our JSON, Perminov's JSON, the
flip-graph text and ``.m`` lists, Maple ``TriadSet``, AlphaEvolve's ``U``/``V``/``W``,
fast-matmul's coefficients, or an AlphaTensor ``.npz``, which holds several)):

* ``best NxMxP [--ring Z|Q|Z2]`` — the best scheme the catalogue
  (:mod:`mlo_exp.algorithms.catalogue`) knows for the shape: rank, ring, coefficient set,
  additions, source; exit 1 when it has none.
* ``list [--runs DIR] [--all]`` — the catalogue as a table of shapes x rings (catalogue rank /
  best known rank, gaps marked; shapes up to 6 unless ``--all``), then the library algorithms
  and those discovered under ``DIR`` (default ``$MLO_OUTPUTS`` or ``./outputs``).
* ``same FILE1 FILE2`` — the easy invariants of two schemes (:mod:`mlo_exp.algorithms.equivalence`)
  and a verdict: ``different`` (exit 1), ``same`` or ``maybe equivalent`` (exit 0).
* ``show ALGORITHM`` — the formulas (``m1 = (a11 + a22) * (b11 + b22)`` ...).
* ``verify ALGORITHM [--ring R]`` — exact verification of each algorithm; exit 1 when one is
  not correct.
* ``import FILE (--out DIR | --into-catalogue) [--format auto|npz|json|text|...] [--ring R]
  [--shape N M P] [--c-plain] [--lift] [--force]`` — any file read above (an ``.npz``: one JSON
  per algorithm; ``--shape`` takes one); every algorithm is verified exactly before anything
  is written; ``--lift`` also writes the integer lift of a Z2 algorithm
  (:mod:`mlo_exp.algorithms.lifting`). Existing files are not overwritten without ``--force``.
  ``--into-catalogue`` adds them to the user catalogue (``$MLO_CATALOGUE`` or
  ``<outputs>/catalogue``) unless it holds the same scheme already.
* ``export ALGORITHM --format json|text|m|perminov|maple|alphaevolve|fast-matmul|python
  [--out FILE]`` — an interchange format (:data:`mlo_exp.algorithms.formats.WRITERS`), or a
  standalone Python function ``matmul(A, B)`` (NumPy only) computing ``C = A @ B`` with the
  algorithm, one level, on blocks.
* ``product A B``, ``sum A B --axis n|m|p``, ``permute A --to NxMxP``, ``extend A --axis
  n|m|p [--by K]``, ``restrict A --axis n|m|p [--by K] [--drop I...]`` (``[--out FILE]
  [--force]``) — schemes from schemes (:mod:`mlo_exp.algorithms.operations`), each
  verified exactly.
* ``lift A [--method hensel|sign] [--out FILE]`` — a Z2 scheme lifted to the integers
  (:mod:`mlo_exp.algorithms.lifting`); exit 1 when no lift is found.

Exit codes: 0 success, 1 verification failed (a wrong algorithm), 2 unreadable or malformed
input, bad usage, or output that cannot be written (one line on stderr naming the file, the
place and what is accepted). Files are written atomically, all or none: after a write error
(read-only folder, full disk) the files and folders this command created are removed.

Length: about 550 lines: one short section per subcommand, sharing the argument parser and
the error messages.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sys
from fractions import Fraction
from pathlib import Path
from typing import NoReturn

import numpy as np

from mlo_exp.algorithms.additions import addition_counts
from mlo_exp.algorithms.algorithm import Algorithm, AlgorithmFileError
from mlo_exp.algorithms.alphatensor import default_data_dir, load_alphatensor
from mlo_exp.algorithms.catalogue import add_to_catalogue, format_table, load_catalogue, warn
from mlo_exp.algorithms.equivalence import compare
from mlo_exp.algorithms.formats import KINDS, WRITERS, format_algorithm, read_algorithms, with_ring
from mlo_exp.algorithms.library import lookup, strassen
from mlo_exp.algorithms.lifting import LiftError, lift_z2
from mlo_exp.algorithms.parsing import MAX_DIM, check_size, label
from mlo_exp.algorithms.reference import best_known_rank
from mlo_exp.io import atomic_write_text

_SCHOOL = re.compile(r"school-([0-9]+)x([0-9]+)x([0-9]+)", re.ASCII)


class UsageError(ValueError):
    """Bad input from the user, or output that cannot be written (exit 2)."""


def resolve(name: str, ring: str | None = None) -> list[Algorithm]:
    """The algorithms a name stands for: a file's (several for an .npz) or a library one.

    ``ring`` reads them over that ring (see :func:`mlo_exp.algorithms.formats.with_ring`).
    """
    try:
        path = Path(name).expanduser()
    except RuntimeError:  # "~user" with no such user
        path = Path(name)
    if os.path.lexists(path):
        return read_algorithms(path, ring=ring)
    school = _SCHOOL.fullmatch(name.lower())
    if school:  # bound the size before the library builds it
        shape = tuple(int(x) for x in school.groups())
        check_size(shape, shape[0] * shape[1] * shape[2], name)  # type: ignore[arg-type]
    try:
        algorithm = lookup(name)
    except KeyError as error:
        raise UsageError(f"{name!r} is neither a file nor a library name; "
                         f"{error.args[0].split('; ', 1)[-1]}") from None
    return [with_ring(algorithm, ring, name)]


def resolve_one(name: str, command: str) -> Algorithm:
    """Exactly one algorithm (``show``/``export`` of an .npz need a library name instead)."""
    found = resolve(name)
    if len(found) != 1:
        raise UsageError(f"{command}: {label(name)} holds {len(found)} algorithms; accepted: one "
                         "algorithm (for AlphaTensor's, a name such as alphatensor-3x3x3)")
    return found[0]


def _dimension(text: str) -> int:
    """An ``--shape`` entry: ASCII digits, 1 to MAX_DIM."""
    if not re.fullmatch(r"[0-9]{1,3}", text, re.ASCII) or not 1 <= int(text) <= MAX_DIM:
        raise argparse.ArgumentTypeError(f"{text!r}; accepted: an integer from 1 to {MAX_DIM}")
    return int(text)


def write_files(files: list[tuple[Path, str]], command: str) -> None:
    """Write every file atomically, or none: on an error (read-only folder, full disk) the
    files this call created and the folders it made are removed, and UsageError says so."""
    existed = {path: path.exists() for path, _ in files}
    folders = [folder for path, _ in files for folder in (path.parent, *path.parent.parents)
               if not folder.exists()]
    written: list[Path] = []
    try:
        for path, text in files:
            atomic_write_text(path, text)
            written.append(path)
    except OSError as error:
        for path in written:
            if not existed[path]:
                with contextlib.suppress(OSError):
                    path.unlink()
        for folder in sorted(set(folders), key=lambda f: len(f.parts), reverse=True):
            with contextlib.suppress(OSError):
                folder.rmdir()
        replaced = sum(existed[path] for path in written)
        failed = label(files[len(written)][0])
        raise UsageError(f"{command}: cannot write {failed}: {error.strerror or error}; nothing "
                         "written" + (f" ({replaced} existing files were already replaced)"
                                      if replaced else "")) from None


# --- list ------------------------------------------------------------------------------------
def library_algorithms() -> list[Algorithm]:
    algorithms = [strassen()]
    for file, ring in (("factorizations_r.npz", "Q"), ("factorizations_f2.npz", "Z2")):
        path = default_data_dir() / file
        if path.exists():
            found = load_alphatensor(path, ring=ring)
            algorithms += [found[key] for key in sorted(found)]
    return algorithms


def discovered_algorithms(root: Path) -> list[tuple[Path, Algorithm]]:
    found = []
    for path in sorted(root.rglob("algorithm.json")) if root.is_dir() else []:
        try:
            found.append((path, Algorithm.load(path)))
        except AlgorithmFileError as error:
            print(f"skipping {error}", file=sys.stderr)
    return found


def _row(name: str, algorithm: Algorithm) -> str:
    known = best_known_rank(algorithm.shape, "Z2" if algorithm.ring == "Z2" else "Z")
    gap = "" if known is None else f"{algorithm.rank - known:+d}"
    shape = "x".join(map(str, algorithm.shape))
    return (f"{name:<42} {shape:>7} {algorithm.ring:>4} {algorithm.rank:>5} "
            f"{known or '-':>6} {gap:>4}")


def command_list(args: argparse.Namespace) -> int:
    catalogue = load_catalogue()
    warn(catalogue.warnings)
    print(f"catalogue ({len(catalogue.entries)} schemes, {len(catalogue.duplicates)} "
          "duplicates counted once)")
    print(format_table(catalogue, None if args.all else 8) + "\n")
    header = f"{'name':<42} {'shape':>7} {'ring':>4} {'rank':>5} {'best':>6} {'gap':>4}"
    print("library\n" + header)
    for algorithm in library_algorithms():
        print(_row(algorithm.name, algorithm))
    root = Path(args.runs or os.environ.get("MLO_OUTPUTS") or "outputs")
    found = discovered_algorithms(root)
    print(f"\ndiscovered under {root} ({len(found)})\n" + header)
    for path, algorithm in found:
        print(_row(str(path.parent.relative_to(root)) if path.is_relative_to(root) else str(path),
                   algorithm))
    return 0


# --- best / same -------------------------------------------------------------------------------
def _shape_argument(text: str) -> tuple[int, int, int]:
    """``NxMxP`` (or ``N,M,P``), each 1 to MAX_DIM."""
    parts = re.split(r"[x,]", text.lower())
    if len(parts) != 3 or not all(re.fullmatch(r"[0-9]{1,3}", x, re.ASCII) for x in parts) \
            or not all(1 <= int(x) <= MAX_DIM for x in parts):
        raise argparse.ArgumentTypeError(f"{text!r}; accepted: NxMxP such as 4x5x6, each 1 to "
                                         f"{MAX_DIM}")
    return tuple(int(x) for x in parts)  # type: ignore[return-value]


def command_best(args: argparse.Namespace) -> int:
    catalogue = load_catalogue()
    warn(catalogue.warnings)
    n, m, p = args.shape
    entry = catalogue.best((n, m, p), args.ring)
    known = best_known_rank((n, m, p), args.ring)
    if entry is None:
        print(f"<{n},{m},{p}> over {args.ring}: the catalogue has no scheme"
              + (f" (best known rank {known})" if known else ""))
        return 1
    algorithm = entry.algorithm
    ring = algorithm.ring + (f" (valid over {args.ring} too)" if algorithm.ring != args.ring
                             else "")
    gap = "" if known is None else (" (the best known rank)" if entry.rank <= known
                                    else f" (best known: {known})")
    print(f"<{n},{m},{p}> over {args.ring}: rank {entry.rank}{gap}\n"
          f"  ring: {ring}\n"
          f"  coefficients: {entry.coefficients()}\n"
          f"  additions: {entry.additions()}"
          + (" (with its addition plan)" if algorithm.plan is not None else " (naive)") + "\n"
          f"  source: {entry.source}\n"
          f"  file: {entry.origin}\n"
          f"  name: best-{n}x{m}x{p}" + ("" if args.ring == "Z" else f"-{args.ring.lower()}")
          + " (mlo-algorithms show/export, mlo-benchmark)")
    return 0


def command_same(args: argparse.Namespace) -> int:
    first, second = (resolve_one(name, "same") for name in (args.first, args.second))
    result = compare(first, second)
    for line in result.lines:
        print(line)
    print(result.verdict)
    return 1 if result.verdict == "different" else 0


# --- show / verify ---------------------------------------------------------------------------
def command_show(args: argparse.Namespace) -> int:
    for algorithm in resolve(args.algorithm):
        n, m, p = algorithm.shape
        print(f"# {algorithm.name}: <{n},{m},{p}> rank {algorithm.rank} over {algorithm.ring}")
        if algorithm.ring != "Z2":  # block additions per level, as the benchmark runs them
            counts = addition_counts(algorithm)
            print(f"# additions per level: {counts['naive']} term by term, "
                  f"{counts['reduced']} with shared subexpressions")
        print(algorithm.formulas())
    return 0


def command_verify(args: argparse.Namespace) -> int:
    wrong = 0
    for algorithm in resolve(args.algorithm, args.ring):
        check = algorithm.verify()
        print(f"{algorithm.name}: {check.describe()}")
        wrong += not check.ok
    return 1 if wrong else 0


# --- import ----------------------------------------------------------------------------------
def command_import(args: argparse.Namespace) -> int:
    source = label(args.file)
    if not args.out and not args.into_catalogue:
        raise UsageError("import: where to? accepted: --out DIR, --into-catalogue, or both")
    algorithms = read_algorithms(args.file, kind=args.format, ring=args.ring,
                                 shape=tuple(args.shape) if args.shape else None,
                                 c_transposed=not args.c_plain)
    out = Path(args.out or ".")
    planned: list[tuple[Path, Algorithm]] = []
    for algorithm in algorithms:
        check = algorithm.verify()
        if not check.ok:
            print(f"import: {algorithm.name} from {source} is not correct, nothing written: "
                  f"{check.describe()}", file=sys.stderr)
            return 1
        algorithm.provenance.setdefault("verified", f"exact over {algorithm.ring}")
        name = _safe(str(algorithm.provenance.get("name") or Path(args.file).stem))
        planned.append((out / f"{name}.json", algorithm))
        if args.lift and algorithm.ring == "Z2":
            try:
                lifted = lift_z2(algorithm)
                planned.append((out / f"{name}-lifted.json", lifted))
            except LiftError as error:
                print(f"import: not lifted: {error}", file=sys.stderr)
    if not args.out:
        return _into_catalogue([algorithm for _, algorithm in planned])
    paths = [path for path, _ in planned]
    if len(set(paths)) != len(paths):
        raise UsageError(f"import: two algorithms of {source} would be written to the same "
                         "file; nothing written")
    clashes = [str(path) for path in paths if path.exists()]
    if clashes and not args.force:
        print(f"import: would overwrite {', '.join(clashes)}; nothing written (use --force)",
              file=sys.stderr)
        return 2
    write_files([(path, json.dumps(a.to_dict(), indent=1) + "\n") for path, a in planned],
                "import")
    for path, algorithm in planned:
        print(f"wrote {path} ({algorithm.name}, rank {algorithm.rank}, {algorithm.ring}, verified)")
    return _into_catalogue([algorithm for _, algorithm in planned]) if args.into_catalogue else 0


def _into_catalogue(algorithms: list[Algorithm]) -> int:
    """Add verified algorithms to the user catalogue; one already there is reported."""
    catalogue = load_catalogue()
    for algorithm in algorithms:
        try:
            path, existing = add_to_catalogue(algorithm, catalogue=catalogue)
        except OSError as error:
            raise UsageError(f"import: cannot write into the catalogue: "
                             f"{error.strerror or error}") from None
        if path is None:
            print(f"catalogue: {algorithm.name} is already there ({existing.origin})")
        else:
            print(f"catalogue: added {path} ({algorithm.name}, rank {algorithm.rank}, "
                  f"{algorithm.ring})")
    return 0


def _safe(name: str) -> str:
    """A file stem from an algorithm name: letters, digits, ``-_.``; at most 100 characters."""
    safe = "".join(c if c.isascii() and (c.isalnum() or c in "-_.") else "_" for c in name)
    return safe.strip(".")[:100] or "algorithm"


# --- export ----------------------------------------------------------------------------------
def python_source(algorithm: Algorithm, function: str = "matmul") -> str:
    """A standalone Python function computing ``C = A @ B`` with ``algorithm`` (one level)."""
    n, m, p = algorithm.shape

    def combination(coefficients: np.ndarray, names: list[str]) -> str:
        parts = []
        for value, name in zip(coefficients, names, strict=True):
            value = Fraction(value)
            if value == 0:
                continue
            magnitude = abs(value)
            text = name if magnitude == 1 else (
                f"{magnitude.numerator} * {name}" if magnitude.denominator == 1
                else f"({magnitude.numerator} / {magnitude.denominator}) * {name}")
            parts.append(("- " if value < 0 else "+ ") + text)
        if not parts:
            return "0"
        joined = " ".join(parts)
        return joined[2:] if joined.startswith("+ ") else "-" + joined[2:]

    a_names = [f"a[{i}][{j}]" for i in range(n) for j in range(m)]
    b_names = [f"b[{j}][{k}]" for j in range(m) for k in range(p)]
    lines = [
        f'"""C = A @ B with {algorithm.name}: <{n},{m},{p}>, rank {algorithm.rank}, over '
        f'{algorithm.ring}. Generated by mlo-algorithms export."""',
        "",
        "import numpy as np",
        "",
        "",
        f"def {function}(A, B):",
        f'    """One level of a {algorithm.rank}-multiplication algorithm on blocks.',
        "",
        f"    A is (n*r, m*s) and B is (m*s, p*t) with (n, m, p) = ({n}, {m}, {p}); each is split",
        "    into n x m (m x p) blocks; block products use ``@``."
        + (" Correct modulo 2 only: the result is reduced modulo 2." if algorithm.ring == "Z2"
           else ""),
        '    """',
        "    A, B = np.asarray(A), np.asarray(B)",
        f"    if (A.shape[0] % {n} or A.shape[1] % {m} or B.shape[1] % {p}",
        "            or A.shape[1] != B.shape[0]):",
        "        raise ValueError(",
        f'            f"shapes {{A.shape}} @ {{B.shape}} do not split into <{n},{m},{p}> blocks")',
        f"    r, s, t = A.shape[0] // {n}, A.shape[1] // {m}, B.shape[1] // {p}",
        f"    a = [[A[i * r:(i + 1) * r, j * s:(j + 1) * s] for j in range({m})]",
        f"         for i in range({n})]",
        f"    b = [[B[j * s:(j + 1) * s, k * t:(k + 1) * t] for k in range({p})]",
        f"         for j in range({m})]",
    ]
    for r in range(algorithm.rank):
        lines.append(f"    m{r + 1} = ({combination(algorithm.u[:, r], a_names)}) @ "
                     f"({combination(algorithm.v[:, r], b_names)})")
    m_names = [f"m{r + 1}" for r in range(algorithm.rank)]
    lines.append(f"    C = np.zeros(({n} * r, {p} * t), dtype=np.result_type(A, B, m1))")
    for i in range(n):
        for k in range(p):
            lines.append(f"    C[{i} * r:{i + 1} * r, {k} * t:{k + 1} * t] = "
                         f"{combination(algorithm.w[i * p + k, :], m_names)}")
    lines.append("    return C % 2" if algorithm.ring == "Z2" else "    return C")
    return "\n".join(lines) + "\n"


def command_export(args: argparse.Namespace) -> int:
    algorithm = resolve_one(args.algorithm, "export")
    if args.format == "python":
        text = python_source(algorithm)
    else:
        try:
            text = format_algorithm(algorithm, args.format)
        except ValueError as error:
            raise UsageError(f"export: {error}") from None
    if args.out:
        out = Path(args.out)
        if out.exists() and not args.force:
            raise UsageError(f"export: {label(out)} exists; nothing written (use --force)")
        write_files([(out, text)], "export")
        print(f"wrote {out}")
    else:
        sys.stdout.write(text)
    return 0



# --- schemes from schemes (mlo_exp.algorithms.operations) and lifting ------------------------
def command_derive(args: argparse.Namespace) -> int:
    """``product``, ``permute``, ``extend``, ``restrict``, ``sum``: a verified scheme, written
    as JSON to ``--out`` (or the formulas' summary line only, without ``--out``)."""
    from mlo_exp.algorithms import operations

    command = args.command
    try:
        if command == "product":
            result = operations.product(resolve_one(args.first, command),
                                        resolve_one(args.second, command))
        elif command == "sum":
            result = operations.direct_sum(resolve_one(args.first, command),
                                           resolve_one(args.second, command), args.axis)
        elif command == "permute":
            result = operations.permute(resolve_one(args.algorithm, command), args.to)
        elif command == "extend":
            result = operations.extend(resolve_one(args.algorithm, command), args.axis, args.by)
        else:
            result = operations.restrict(resolve_one(args.algorithm, command), args.axis, args.by,
                                         args.drop)
    except operations.OperationError as error:
        raise UsageError(f"{command}: {error}") from None
    return _write_derived(result, args)


def command_lift(args: argparse.Namespace) -> int:
    """A Z2 scheme lifted to the integers (sign solve, or Hensel lifting modulo 2^k)."""
    algorithm = resolve_one(args.algorithm, "lift")
    try:
        result = lift_z2(algorithm, method=args.method, seed=args.seed)
    except LiftError as error:
        print(f"lift: {' '.join(str(error).splitlines())}")
        return 1
    return _write_derived(result, args)


def _write_derived(result: Algorithm, args: argparse.Namespace) -> int:
    n, m, p = result.shape
    line = (f"{args.command}: <{n},{m},{p}> rank {result.rank} over {result.ring}, verified "
            f"exactly ({result.name})")
    if args.out:
        out = Path(args.out)
        if out.exists() and not args.force:
            raise UsageError(f"{args.command}: {label(out)} exists; nothing written (use --force)")
        write_files([(out, json.dumps(result.to_dict(), indent=1) + "\n")], args.command)
        line += f" -> {out}"
    print(line)
    return 0


# --- entry point -------------------------------------------------------------------------------
class _Parser(argparse.ArgumentParser):
    """argparse, with its usage errors on one line (exit 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="mlo-algorithms", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    listing = sub.add_parser("list", help="library and discovered algorithms with ranks")
    listing.add_argument("--runs", help="folder searched for algorithm.json (default outputs/)")
    listing.add_argument("--all", action="store_true", help="every shape, not only up to 8")
    listing.set_defaults(handler=command_list)
    best = sub.add_parser("best", help="the catalogue's best scheme for a shape")
    best.add_argument("shape", type=_shape_argument, help="NxMxP, e.g. 4x5x6")
    best.add_argument("--ring", choices=["Z", "Q", "Z2"], default="Z")
    best.set_defaults(handler=command_best)
    same = sub.add_parser("same", help="are two schemes the same? (easy invariants)")
    same.add_argument("first")
    same.add_argument("second")
    same.set_defaults(handler=command_same)
    show = sub.add_parser("show", help="formulas of an algorithm")
    show.add_argument("algorithm")
    show.set_defaults(handler=command_show)
    verify = sub.add_parser("verify", help="exact verification (exit 1 when wrong)")
    verify.add_argument("algorithm")
    verify.add_argument("--ring", choices=["Z", "Q", "Z2"])
    verify.set_defaults(handler=command_verify)
    importing = sub.add_parser("import", help="npz / text / JSON -> verified JSON files")
    importing.add_argument("file")
    importing.add_argument("--out", help="folder for the JSON files")
    importing.add_argument("--into-catalogue", action="store_true",
                           help="add to the user catalogue ($MLO_CATALOGUE or outputs/catalogue)")
    importing.add_argument("--format", choices=list(KINDS), default="auto")
    importing.add_argument("--ring", choices=["Z", "Q", "Z2"])
    importing.add_argument("--shape", type=_dimension, nargs=3, metavar=("N", "M", "P"),
                           help="shape of a text file, or the one algorithm to take from an .npz")
    importing.add_argument("--c-plain", action="store_true",
                           help="text files index c as c[i,k] (default: c[k,i], as published)")
    importing.add_argument("--lift", action="store_true", help="also write Z2 -> Z lifts")
    importing.add_argument("--force", action="store_true", help="overwrite existing files")
    importing.set_defaults(handler=command_import)
    export = sub.add_parser("export", help="an interchange format or a Python function")
    export.add_argument("algorithm")
    export.add_argument("--format", choices=[*WRITERS, "python"], default="json")
    export.add_argument("--out", help="file to write (default: stdout)")
    export.add_argument("--force", action="store_true", help="overwrite an existing --out")
    export.set_defaults(handler=command_export)
    derive = {"product": ("first", "second"), "sum": ("first", "second"),
              "permute": ("algorithm",), "extend": ("algorithm",), "restrict": ("algorithm",)}
    helps = {"product": "<n,m,p> x <n',m',p'> -> <nn',mm',pp'> (rank R R')",
             "sum": "direct sum: <n1,m,p> + <n2,m,p> -> <n1+n2,m,p> (--axis n|m|p)",
             "permute": "the same scheme for another order of its shape (--to NxMxP)",
             "extend": "<n,m,p> -> <n,m,p+1> adding school terms (--axis n|m|p, --by)",
             "restrict": "<n,m,p+1> -> <n,m,p> by zeroing the last row (--axis, --by) or the "
                         "rows --drop I [I ...]"}
    for verb, positional in derive.items():
        parser_ = sub.add_parser(verb, help=helps[verb])
        for name in positional:
            parser_.add_argument(name)
        if verb in ("sum", "extend", "restrict"):
            parser_.add_argument("--axis", choices=["n", "m", "p"], required=True)
        if verb in ("extend", "restrict"):
            parser_.add_argument("--by", type=int, default=1)
        if verb == "restrict":
            parser_.add_argument("--drop", type=int, nargs="+", metavar="I",
                                 help="the indices along --axis to remove (default: the last "
                                      "--by ones)")
        if verb == "permute":
            parser_.add_argument("--to", type=_shape_argument, required=True, metavar="NxMxP")
        parser_.add_argument("--out", help="JSON file to write (default: only a summary line)")
        parser_.add_argument("--force", action="store_true", help="overwrite an existing --out")
        parser_.set_defaults(handler=command_derive)
    lift = sub.add_parser("lift", help="Z2 scheme -> integer scheme (exit 1 when none found)")
    lift.add_argument("algorithm")
    lift.add_argument("--method", choices=["auto", "sign", "hensel"], default="auto")
    lift.add_argument("--seed", type=int, default=0)
    lift.add_argument("--out", help="JSON file to write (default: only a summary line)")
    lift.add_argument("--force", action="store_true", help="overwrite an existing --out")
    lift.set_defaults(handler=command_lift)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; a reading error or bad usage is one line on stderr and exit 2."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except (UsageError, AlgorithmFileError) as error:
        message = " ".join(str(error).splitlines())
        print(f"mlo-algorithms {args.command}: {message}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `mlo-algorithms show ... | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
