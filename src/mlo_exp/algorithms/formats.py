"""Algorithm files of every format: which reader a file needs, and the writers.

:func:`read_algorithms` is the one entry point for "an algorithm file", recognised by content
(not by extension), one module per format family (each states its convention):

* a zip archive: AlphaTensor's ``.npz`` (members ``n,m,p.npy``,
  :mod:`mlo_exp.algorithms.alphatensor`) or AlphaEvolve's ``U``/``V``/``W`` arrays
  (:mod:`mlo_exp.algorithms.alphaevolve`);
* a JSON object (``{`` then ``"``): ours (``"format": "mlo-exp/algorithm"``,
  :mod:`mlo_exp.algorithms.algorithm`) or Perminov's (keys ``n``, ``m``, ``u``, ``v``, ``w``,
  plain or addition-reduced, :mod:`mlo_exp.algorithms.perminov`);
* text with ``TriadSet(``: the FMM catalogue's Maple files (:mod:`mlo_exp.algorithms.maple`);
* text with ``U = np.array(...)``: AlphaEvolve's Python arrays;
* a line ``n m p R`` then three lines of numbers: Perminov's ``.txt``
  (:mod:`mlo_exp.algorithms.perminov_txt`);
* rows of numbers in three ``#``-separated blocks: fast-matmul's coefficient files
  (:mod:`mlo_exp.algorithms.benson`);
* otherwise either flip-graph text format above.

:data:`WRITERS` writes the interchange formats (:func:`format_algorithm`); each reads back
exactly through :func:`read_algorithms`.
"""

from __future__ import annotations

import json
from pathlib import Path

from mlo_exp.algorithms import alphaevolve, benson, maple, perminov, perminov_txt
from mlo_exp.algorithms.algorithm import FORMAT_NAME, Algorithm, AlgorithmFileError, load_json
from mlo_exp.algorithms.alphatensor import alphatensor_from_bytes
from mlo_exp.algorithms.fliptext import format_matrices, format_products, parse_text
from mlo_exp.algorithms.parsing import (
    decode_text,
    label,
    read_bytes,
    show,
)
from mlo_exp.algorithms.tensor import is_integral

KINDS = ("auto", "npz", "json", "text", "perminov", "perminov-txt", "maple", "alphaevolve",
         "fast-matmul")
# --- any algorithm file ----------------------------------------------------------------------
def read_algorithms(path: str | Path, kind: str = "auto",
                    shape: tuple[int, int, int] | None = None, ring: str | None = None,
                    c_transposed: bool = True) -> list[Algorithm]:
    """Every algorithm in a file (one, or several for an AlphaTensor ``.npz``), not verified.

    ``kind`` is one of :data:`KINDS` (``auto``: by content). ``shape`` selects one algorithm of
    an ``.npz`` and is the shape of a text file (else inferred); ``ring`` is the ring to read
    the algorithm over (for JSON and ``.npz`` it must suit the coefficients). Raises
    :class:`AlgorithmFileError` (one line) for anything that is not an exact reading.
    """
    source = label(path)
    if kind not in KINDS:
        raise AlgorithmFileError(f"{source}: kind {show(kind)}; accepted: {', '.join(KINDS)}")
    data = read_bytes(path)
    name = _name_from(Path(path).stem)
    if kind in ("npz", "alphaevolve") or (kind == "auto" and data[:2] == b"PK"):
        if kind == "alphaevolve" or alphaevolve.is_uvw_npz(data):
            if data[:2] == b"PK":
                return [_shaped(alphaevolve.read_uvw_npz(data, source, ring, name), shape,
                                source)]
        else:
            return _alphatensor(data, source, ring, shape, path)
    text = decode_text(data, source)
    if kind in ("json", "perminov") or (kind == "auto" and _looks_like_json(text)):
        return [_shaped(with_ring(_read_json(text, source, name), ring, source), shape, source)]
    if kind == "maple" or (kind == "auto" and maple.looks_like_triadset(text)):
        return [_shaped(maple.read_triadset(text, source, ring, name), shape, source)]
    if kind == "alphaevolve" or (kind == "auto" and alphaevolve.looks_like_python_uvw(text)):
        return [_shaped(alphaevolve.read_python_uvw(text, source, ring, name), shape, source)]
    if kind == "perminov-txt" or (kind == "auto" and perminov_txt.looks_like_perminov_txt(text)):
        return [_shaped(perminov_txt.read_perminov_txt(text, source, ring, name), shape, source)]
    if kind == "fast-matmul" or (kind == "auto" and benson.looks_like_benson(text)):
        return [_shaped(benson.read_benson(text, source, ring, name), shape, source)]
    return [parse_text(text, shape=shape, ring=ring, c_transposed=c_transposed, source=source,
                       name=name)]


def _alphatensor(data: bytes, source: str, ring: str | None,
                 shape: tuple[int, int, int] | None, path: str | Path) -> list[Algorithm]:
    found = alphatensor_from_bytes(data, source, ring, name=Path(path).name)
    if shape is None:
        return [found[key] for key in sorted(found)]
    if tuple(shape) not in found:
        known = " ".join(",".join(map(str, key)) for key in sorted(found))
        raise AlgorithmFileError(f"{source}: no algorithm for {_shape(shape)}; accepted: "
                                 f"one of {known}")
    return [found[tuple(shape)]]  # type: ignore[index]


def _read_json(text: str, source: str, name: str | None) -> Algorithm:
    """Our JSON or Perminov's, told apart by their keys."""
    data = load_json(text, source)
    if perminov.looks_like_perminov(data):
        return perminov.read_perminov(text, source, name)
    if isinstance(data, dict) and "format" not in data:
        raise AlgorithmFileError(
            f"{source}: a JSON object with neither 'format' nor Perminov's keys n, m, u; "
            f"accepted: {FORMAT_NAME!r} JSON (see mlo-algorithms export) or a Perminov scheme "
            '{"n": [n, m, p], "m": R, "u": ..., "v": ..., "w": ...}')
    return Algorithm.from_dict(data, source)


def _shaped(algorithm: Algorithm, shape: tuple[int, int, int] | None,
            source: str) -> Algorithm:
    if shape is not None and tuple(shape) != algorithm.shape:
        raise AlgorithmFileError(f"{source}: holds {_shape(algorithm.shape)}; accepted: the "
                                 f"shape asked for, {_shape(shape)}")
    return algorithm


def read_algorithm_file(path: str | Path, shape: tuple[int, int, int] | None = None,
                        ring: str | None = None, c_transposed: bool = True) -> Algorithm:
    """The one algorithm of a file (see :func:`read_algorithms`; ``shape`` picks from a .npz)."""
    found = read_algorithms(path, shape=shape, ring=ring, c_transposed=c_transposed)
    if len(found) != 1:
        raise AlgorithmFileError(f"{label(path)}: holds {len(found)} algorithms; accepted here: "
                                 "one (give a shape to pick one of an .npz)")
    return found[0]


def with_ring(algorithm: Algorithm, ring: str | None, source: str) -> Algorithm:
    """``algorithm`` over ``ring`` (unchanged when ``None``); fractions only over ``Q``."""
    if ring is None or ring == algorithm.ring:
        return algorithm
    if ring in ("Z", "Z2") and not all(is_integral(x) for x in (algorithm.u, algorithm.v,
                                                                   algorithm.w)):
        raise AlgorithmFileError(f"{source}: ring {ring} asked for, but the coefficients include "
                                 "fractions; accepted: ring Q")
    return Algorithm(algorithm.shape, algorithm.u, algorithm.v, algorithm.w, ring,
                     dict(algorithm.provenance), plan=algorithm.plan)


def _shape(shape: tuple[int, ...]) -> str:
    return "<" + ",".join(map(str, shape)) + ">"


def _looks_like_json(text: str) -> bool:
    """A JSON object starts with ``{`` then ``"`` (or ``}``); ``{{`` starts matrices."""
    stripped = text.lstrip()
    return stripped.startswith("{") and stripped[1:].lstrip()[:1] in ('"', "}")


def _name_from(stem: str) -> str | None:
    return stem if stem and stem.isprintable() else None


# --- writing ---------------------------------------------------------------------------------
def format_json(algorithm: Algorithm) -> str:
    """Our JSON (``mlo-exp/algorithm`` version 1)."""
    return json.dumps(algorithm.to_dict(), indent=1) + "\n"


#: the interchange formats written: name -> (writer, usual file suffix)
WRITERS = {
    "json": (format_json, ".json"),
    "text": (format_products, ".exp"),
    "m": (format_matrices, ".m"),
    "perminov": (perminov.format_perminov, ".json"),
    "maple": (maple.format_triadset, ".mpl"),
    "alphaevolve": (alphaevolve.format_python_uvw, ".py"),
    "fast-matmul": (benson.format_benson, ".txt"),
}


def format_algorithm(algorithm: Algorithm, name: str) -> str:
    """``algorithm`` written in the interchange format ``name`` (a key of :data:`WRITERS`)."""
    if name not in WRITERS:
        raise ValueError(f"format {name!r}; accepted: {', '.join(WRITERS)}")
    return WRITERS[name][0](algorithm)
