"""Schemes for the product at hand: library names for any order of a shape's sides.

AlphaTensor's file holds one algorithm per shape up to the order of its sides (``<2,4,4>``,
not ``<4,2,4>`` or ``<4,4,2>``). The symmetries of the matrix-multiplication tensor give the
others exactly, with the same rank (:func:`mlo_exp.algorithms.operations.permute`: the
transpose ``(AB)^T = B^T A^T`` and the cyclic symmetry of ``trace(ABC)``).
:func:`resolve_scheme` accepts ``alphatensor-NxMxP`` for any order (and every name
``lookup`` knows), and products of names, ``FIRST*SECOND`` (e.g. ``best-3x2x3*strassen``:
the ``<6,4,6>`` rank-105 scheme that applies ``<3,2,3>`` to the blocks and Strassen to
their products, evaluated as one level with shared subexpressions); each derived scheme is
verified exactly before it is returned.
:func:`fitting_schemes` lists the library schemes whose block shape fits a product
``N1 x N2`` times ``N2 x N3`` (the sides divide, or nearly: at most a few percent of padding).
"""

from __future__ import annotations

import itertools

from mlo_exp.algorithms.algorithm import Algorithm
from mlo_exp.algorithms.library import lookup
from mlo_exp.algorithms.operations import permute, product


def resolve_scheme(name: str) -> Algorithm:
    """A library name, ``alphatensor-NxMxP`` in any order of its sides included, or a
    product ``FIRST*SECOND`` of such names (module docstring). KeyError (the library's
    message) when nothing fits."""
    if "*" in name:
        factors = [resolve_scheme(part.strip()) for part in name.split("*")]
        scheme = factors[0]
        for factor in factors[1:]:
            scheme = product(scheme, factor)  # verified exactly by the operation
        scheme.provenance["name"] = name
        return scheme
    try:
        return lookup(name)
    except KeyError as error:
        parts = name.lower().split("-")
        if parts[0] != "alphatensor" or len(parts) != 2:
            raise
        try:
            shape = tuple(int(x) for x in parts[1].split("x"))
        except ValueError:
            raise error from None
        if len(shape) != 3:
            raise
        for order in sorted(set(itertools.permutations(shape))):
            if order == shape:
                continue
            try:
                base = lookup(f"alphatensor-{'x'.join(map(str, order))}")
            except KeyError:
                continue
            scheme = permute(base, shape)  # type: ignore[arg-type]
            scheme.provenance["name"] = f"alphatensor-{parts[1]}"
            return scheme
        raise


def fitting_schemes(dims: tuple[int, int, int], names: list[str],
                    padding: float = 0.05) -> list[str]:
    """Those of ``names`` whose block shape divides ``dims`` (or pads each side by at most
    ``padding``), in the order given."""
    fitting = []
    for name in names:
        shape = resolve_scheme(name).shape
        waste = max((-(-d // s) * s - d) / d for d, s in zip(dims, shape, strict=True))
        if waste <= padding:
            fitting.append(name)
    return fitting
