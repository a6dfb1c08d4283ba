"""Pair algebra: what is linear in a decomposition once its ``(u, v)`` pairs are fixed.

Shared by ``pair_policy`` and ``mcts`` (one solver, one projection, one gain).

Unfold the target ``T<n,m,p>`` (layout of :mod:`mlo_exp.algorithms.tensor`) as
``M = T.reshape(nm*mp, np)``. Terms ``(u_r, v_r, w_r)``, ``r < R``, decompose ``T`` exactly
when ``M = S @ W.T`` with ``S[:, r] = vec(u_r (x) v_r)`` (the **Khatri-Rao** product of the
pairs) and ``W[:, r] = w_r``. So, given the pairs, ``W`` solves a linear system, and the
pairs can complete a decomposition only when ``M``'s columns lie in ``span(S)``.

Conventions (every function here):

* a **pair vector** is ``vec(u (x) v)``, float64, ``(..., X)`` with ``X = nm*mp``;
* a **basis** ``(B, X, k)`` has orthonormal columns, or zero columns (a pair already in the
  span adds none);
* the **projected residual** (``relaxed`` in ``mcts``) ``(B, X, np)`` is ``M`` minus its
  projection on the span of the pairs: what is left when every ``w`` is re-fitted over the
  reals. It is orthogonal to its basis, and zero exactly when the pairs span ``M``.
"""

from __future__ import annotations

import torch

SPAN_EPS = 1e-6  # |s_perp|^2 <= SPAN_EPS |s|^2: the pair s is (numerically) in the span
SOLVED_EPS = 1e-9  # |residual|^2 <= SOLVED_EPS |M|^2: the pairs span M
_GRID = 1e6  # least-squares values are snapped to a 1e-6 grid before rounding to the set


def khatri_rao(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``vec(u (x) v)``: ``u (..., nm)``, ``v (..., mp)`` -> ``(..., nm*mp)`` float64
    (row-major: entry ``i*mp + j`` is ``u_i v_j``)."""
    return (u[..., :, None] * v[..., None, :]).flatten(-2).double()


def unfold(target: torch.Tensor) -> torch.Tensor:
    """``T (nm, mp, np)`` -> ``M (nm*mp, np)`` float64."""
    return target.reshape(-1, target.shape[-1]).double()


def project(pairs: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Orthonormal basis ``(B, X, k)`` of the pair vectors ``(B, k, X)`` (QR) and the
    projected residual ``(B, X, np)`` of ``M = target (X, np)``.

    The pairs must be linearly independent (``pair_policy`` keeps them so); for sets that
    may not be, build the basis pair by pair with :func:`add_pair`."""
    batch, count, size = pairs.shape
    if count == 0:
        basis = torch.zeros(batch, size, 0, dtype=torch.float64, device=pairs.device)
        return basis, target.expand(batch, -1, -1).clone()
    basis, _ = torch.linalg.qr(pairs.transpose(1, 2))
    return basis, target - basis @ (basis.transpose(1, 2) @ target)


def add_pair(basis: torch.Tensor, residual: torch.Tensor, column: torch.Tensor,
             pair: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Gram-Schmidt step: put pair vectors ``pair (B, X)`` into bases ``(B, X, k)`` at
    ``column (B,)`` and project them out of the residuals ``(B, X, np)``.

    A pair already in the span (its part outside it below ``SPAN_EPS``) adds a zero column
    and leaves the residual as it is. Returns new tensors (the inputs are not changed)."""
    perp = pair - (basis @ (basis.transpose(1, 2) @ pair[..., None]))[..., 0]
    norm = perp.norm(dim=1, keepdim=True)
    fresh = norm > SPAN_EPS**0.5 * pair.norm(dim=1, keepdim=True)
    unit = torch.where(fresh, perp / norm.clamp_min(1e-12), torch.zeros_like(perp))
    basis = basis.clone()
    basis[torch.arange(len(unit), device=unit.device), :, column] = unit
    return basis, residual - unit[:, :, None] * (unit[:, None, :] @ residual)


def gains(basis: torch.Tensor, residual: torch.Tensor, candidates: torch.Tensor
          ) -> tuple[torch.Tensor, torch.Tensor]:
    """How much adding each candidate pair lowers ``|residual|_F^2``, and which are in the span.

    ``candidates``: ``(K, X)`` (the same for every state) or ``(B, K, X)``. Returns
    ``gain (B, K) = sum_c <s, r_c>^2 / |s_perp|^2`` (``s_perp``: ``s`` minus its projection
    on the basis; ``<s_perp, r_c> = <s, r_c>`` as the residual is orthogonal to the basis)
    and ``in_span (B, K)`` bool (their gain is meaningless: mask it)."""
    if candidates.dim() == 2:
        norm2 = (candidates**2).sum(dim=1)[None]
        overlap = torch.einsum("kx,bxc->bkc", candidates, residual)
        inside = torch.einsum("bxj,kx->bkj", basis, candidates)
    else:
        norm2 = (candidates**2).sum(dim=2)
        overlap = candidates @ residual
        inside = candidates @ basis
    perp2 = norm2 - (inside**2).sum(dim=2)
    in_span = perp2 <= SPAN_EPS * norm2
    return (overlap**2).sum(dim=2) / perp2.clamp_min(SPAN_EPS), in_span


def spans(residual: torch.Tensor, target_norm2: float) -> torch.Tensor:
    """``(B,)`` bool: the projected residuals ``(B, X, np)`` are zero (a float test; an exact
    check in integers decides)."""
    return (residual**2).sum(dim=(1, 2)) <= SOLVED_EPS * target_norm2


def solve_w(pairs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Least-squares ``W`` of ``M = S @ W.T``: pair vectors ``(..., R, X)``, ``target (X, np)``
    -> ``(..., R, np)`` float64. The pseudo-inverse: the minimum-norm solution also when the
    pairs are dependent, on every device."""
    return torch.linalg.pinv(pairs.transpose(-1, -2)) @ target


def nearest_in_set(solution: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """Each entry of ``solution`` rounded to the nearest of ``values`` (sorted, 1-D), as
    ``values``' dtype. Snapped to a 1e-6 grid first: LAPACK's last bits vary between calls, and
    a value such as 0.5 must round the same way every time (ties go to the lower value)."""
    snapped = torch.round(solution * _GRID) / _GRID
    return values[(snapped[..., None] - values.double()).abs().argmin(dim=-1)]


def integral_in_set(solution: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """``(B,)`` bool: every entry of ``solution (B, ...)`` is (within 1e-6) one of ``values``."""
    nearest = nearest_in_set(solution, values).double()
    return ((solution - nearest).abs() < 1e-6).flatten(1).all(dim=1)


def fit_w(u: torch.Tensor, v: torch.Tensor, target: torch.Tensor, values: torch.Tensor
          ) -> torch.Tensor:
    """``W (..., R, np)`` for the pairs ``u (..., R, nm)``, ``v (..., R, mp)``: the least-squares
    solution for ``M = target (X, np)``, rounded to the nearest of ``values`` (int64). When
    the pairs span ``M`` and the solution is integral in the set, this is the exact ``W``."""
    return nearest_in_set(solve_w(khatri_rao(u, v), target), values).long()


def exact_terms(u: torch.Tensor, v: torch.Tensor, target: torch.Tensor, values: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
    """The terms ``(u, v, w)`` with ``w`` from :func:`fit_w` if they decompose ``target
    (nm, mp, np)`` exactly (checked in integers), terms with ``w = 0`` dropped; else None.
    ``u (R, nm)``, ``v (R, mp)`` integers."""
    w = fit_w(u, v, unfold(target), values)
    keep = (w != 0).any(dim=1)
    u, v, w = u[keep], v[keep], w[keep]
    if not len(w):
        return None
    total = (u[:, :, None, None] * v[:, None, :, None] * w[:, None, None, :]).sum(dim=0)
    return (u, v, w) if torch.equal(total, target.long()) else None
