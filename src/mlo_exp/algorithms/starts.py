"""The best starting scheme the catalogue and the scheme operations can build for a shape.

``agent.start_from=auto`` (resolved by the run, never by an agent): among

* the catalogue's best scheme of the shape itself (``auto`` only),
* the best of each shape one larger along one axis, restricted to this shape (one slice of
  that axis, each in turn, set to zero and removed, vanishing terms dropped:
  :func:`~.operations.restrict`),
* the best of each shape one smaller along one axis, extended with the school terms of the
  missing slice (:func:`~.operations.extend`), and
* the direct sum of the best schemes of two shapes that split one dimension of this one
  (``<3,5,5> = <3,2,5> + <3,3,5>``: :func:`~.operations.direct_sum`, the merge move of the
  meta flip graph of Kauers and Wood),

the one of lowest rank whose ring and coefficients fit the run (over ``Z2`` any integer scheme
counts modulo 2; over ``Z`` only integer schemes within the coefficient bound), else the
school method. Every candidate is verified exactly; its provenance says how it was built.

``agent.start_from=built`` leaves out the shape's own scheme: a start built only from other
shapes' records, from which a search can show that it rediscovers (or beats) the record.

``agent.starts=K`` (K > 1) takes the K lowest-rank distinct candidates instead of one, and the
walks are spread over them: the lowest rank is not always the best start (``<3,4,5>`` over
Z2: the sums of rank 49 stop at 48, two restrictions of rank 50 reach the record 47).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from mlo_exp.algorithms.algorithm import Algorithm
from mlo_exp.algorithms.equivalence import normalised_terms
from mlo_exp.algorithms.library import best, school
from mlo_exp.algorithms.operations import AXES, direct_sum, extend, restrict

log = logging.getLogger("mlo_exp")


def _catalogue_best(shape: tuple[int, int, int], ring: str) -> Algorithm | None:
    try:
        return best(*shape, ring=ring)
    except (KeyError, ValueError):
        return None


def candidates(shape: tuple[int, int, int], ring: str, own: bool = True) -> list[Algorithm]:
    """Every start of the module docstring that exists, unverified against the run's ring;
    ``own=False`` leaves out the catalogue's scheme of ``shape`` itself."""
    found = []
    rings = ("Z2", "Z") if ring == "Z2" else ("Z",)
    for source_ring in rings:
        exact = _catalogue_best(shape, source_ring) if own else None
        if exact is not None:
            found.append(exact)
        for axis in range(3):
            larger = list(shape)
            larger[axis] += 1
            scheme = _catalogue_best(tuple(larger), source_ring)
            if scheme is not None:  # every slice of the axis dropped, the last one first
                found += [restrict(scheme, AXES[axis], drop=[index])
                          for index in reversed(range(larger[axis]))]
            if shape[axis] > 1:
                smaller = list(shape)
                smaller[axis] -= 1
                scheme = _catalogue_best(tuple(smaller), source_ring)
                if scheme is not None:
                    found.append(extend(scheme, AXES[axis]))
            found += _sums(shape, axis, source_ring)
    return found


def _sums(shape: tuple[int, int, int], axis: int, ring: str) -> list[Algorithm]:
    """The direct sums ``<.., a, ..> + <.., d - a, ..>`` along ``axis`` (``d = shape[axis]``)
    of the catalogue's best schemes over ``ring``."""
    sums = []
    for size in range(1, shape[axis] // 2 + 1):
        first, second = list(shape), list(shape)
        first[axis], second[axis] = size, shape[axis] - size
        leading = _catalogue_best(tuple(first), ring)
        trailing = _catalogue_best(tuple(second), ring)
        if leading is not None and trailing is not None:
            sums.append(direct_sum(leading, trailing, AXES[axis]))
    return sums


def best_starts(shape: tuple[int, int, int], ring: str, bound: int, own: bool = True,
                count: int = 1) -> list[Algorithm]:
    """The ``count`` lowest-rank distinct candidates that fit the run (module docstring;
    distinct as schemes over the run's ring: the same terms in any order are one), lowest rank
    first and in the order of :func:`candidates` on ties; the school method when none fits.
    ``ring`` is the run's (``Z`` or ``Z2``), ``bound`` its coefficient bound, ``own`` as in
    :func:`candidates`."""
    fitting, seen = [], set()
    for algorithm in candidates(shape, ring, own):
        if algorithm.ring == "Q" or (ring == "Z" and algorithm.ring != "Z"):
            continue
        factors = [np.asarray(f, dtype=np.int64) for f in (algorithm.u, algorithm.v, algorithm.w)]
        if ring == "Z" and max(int(np.abs(f).max()) for f in factors) > bound:
            continue
        key = tuple(_terms(algorithm, ring))
        if key in seen or not algorithm.verify().ok:
            continue
        seen.add(key)
        fitting.append(algorithm)
    if not fitting:
        return [school(*shape)]
    return sorted(fitting, key=lambda a: a.rank)[:count]  # stable: ties keep their order


def _terms(algorithm: Algorithm, ring: str) -> list:
    """The scheme's terms, each scaled to one form and sorted
    (:func:`~mlo_exp.algorithms.equivalence.normalised_terms`: over ``Z`` the signs of ``u``
    and ``v`` move into ``w``): equal for the same terms in any order; modulo 2 in a ``Z2``
    run."""
    if ring == "Z2" and algorithm.ring != "Z2":
        algorithm = Algorithm(algorithm.shape, np.asarray(algorithm.u) % 2,
                              np.asarray(algorithm.v) % 2, np.asarray(algorithm.w) % 2, "Z2")
    return normalised_terms(algorithm)


def save_starts(algorithms: list[Algorithm], file: Path) -> Path:
    """The path to give ``agent.start_from``: one start saved as ``file`` (a ``.json`` path),
    or several saved one per file, ``00.json``, ``01.json``..., in the folder ``file`` without
    its suffix (the walks read them in name order)."""
    if len(algorithms) == 1:
        return algorithms[0].save(file)
    folder = file.with_suffix("")
    folder.mkdir(parents=True, exist_ok=True)
    for number, algorithm in enumerate(algorithms):
        algorithm.save(folder / f"{number:02d}.json")
    return folder


def best_start(shape: tuple[int, int, int], ring: str, bound: int,
               own: bool = True) -> Algorithm:
    """The lowest-rank candidate that fits the run (:func:`best_starts`), else the school
    method."""
    return best_starts(shape, ring, bound, own)[0]
