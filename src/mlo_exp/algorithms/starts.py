"""The best starting scheme the catalogue and the scheme operations can build for a shape.

``agent.start_from=auto`` (resolved by the run, never by an agent): among

* the catalogue's best scheme of the shape itself,
* the best of each shape one larger along one axis, restricted to this shape (the last slice
  of that axis set to zero, vanishing terms dropped: :func:`~.operations.restrict`), and
* the best of each shape one smaller along one axis, extended with the school terms of the
  missing slice (:func:`~.operations.extend`),

the one of lowest rank whose ring and coefficients fit the run (over ``Z2`` any integer scheme
counts modulo 2; over ``Z`` only integer schemes within the coefficient bound), else the
school method. Every candidate is verified exactly; its provenance says how it was built.
"""

from __future__ import annotations

import logging

import numpy as np

from mlo_exp.algorithms.algorithm import Algorithm
from mlo_exp.algorithms.library import best, school
from mlo_exp.algorithms.operations import AXES, extend, restrict

log = logging.getLogger("mlo_exp")


def _catalogue_best(shape: tuple[int, int, int], ring: str) -> Algorithm | None:
    try:
        return best(*shape, ring=ring)
    except (KeyError, ValueError):
        return None


def candidates(shape: tuple[int, int, int], ring: str) -> list[Algorithm]:
    """Every start of the module docstring that exists, unverified against the run's ring."""
    found = []
    rings = ("Z2", "Z") if ring == "Z2" else ("Z",)
    for source_ring in rings:
        exact = _catalogue_best(shape, source_ring)
        if exact is not None:
            found.append(exact)
        for axis in range(3):
            larger = list(shape)
            larger[axis] += 1
            scheme = _catalogue_best(tuple(larger), source_ring)
            if scheme is not None:
                found.append(restrict(scheme, AXES[axis]))
            if shape[axis] > 1:
                smaller = list(shape)
                smaller[axis] -= 1
                scheme = _catalogue_best(tuple(smaller), source_ring)
                if scheme is not None:
                    found.append(extend(scheme, AXES[axis]))
    return found


def best_start(shape: tuple[int, int, int], ring: str, bound: int) -> Algorithm:
    """The lowest-rank candidate that fits the run (module docstring), else the school
    method; ``ring`` is the run's (``Z`` or ``Z2``), ``bound`` its coefficient bound."""
    fitting = []
    for algorithm in candidates(shape, ring):
        if algorithm.ring == "Q" or (ring == "Z" and algorithm.ring != "Z"):
            continue
        factors = [np.asarray(f, dtype=np.int64) for f in (algorithm.u, algorithm.v, algorithm.w)]
        if ring == "Z" and max(int(np.abs(f).max()) for f in factors) > bound:
            continue
        if not algorithm.verify().ok:
            continue
        fitting.append(algorithm)
    chosen = min(fitting, key=lambda a: a.rank, default=None)
    if chosen is None:
        return school(*shape)
    return chosen
