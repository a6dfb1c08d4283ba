"""The pair algebra shared by pair_policy and mcts: layout, projections, gains, exact w."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mlo_exp.agents import pair_algebra
from mlo_exp.algorithms.tensor import matmul_tensor


def school_terms(n: int, m: int, p: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The school method's ``n*m*p`` single-entry terms ``(u, v, w)``, each ``(R, dim)``."""
    u, v, w = [], [], []
    for i in range(n):
        for j in range(p):
            for k in range(m):
                u.append(np.eye(n * m, dtype=np.int64)[i * m + k])
                v.append(np.eye(m * p, dtype=np.int64)[k * p + j])
                w.append(np.eye(n * p, dtype=np.int64)[i * p + j])
    return tuple(torch.as_tensor(np.array(x)) for x in (u, v, w))


def target(n: int, m: int, p: int) -> torch.Tensor:
    return torch.as_tensor(matmul_tensor(n, m, p))


def test_khatri_rao_follows_the_tensor_layout():
    u, v = torch.tensor([1, 0, -1, 1]), torch.tensor([0, 1, 1, -1])
    expected = np.einsum("a,b->ab", u.numpy(), v.numpy()).reshape(-1)
    assert np.array_equal(pair_algebra.khatri_rao(u, v).numpy(), expected)
    u, v, w = school_terms(2, 2, 3)
    rebuilt = pair_algebra.khatri_rao(u, v).T @ w.double()  # M = S @ W.T
    assert torch.equal(rebuilt, pair_algebra.unfold(target(2, 2, 3)))


@pytest.mark.parametrize("shape", [(2, 2, 2), (2, 2, 3), (2, 3, 3)])
def test_the_school_pairs_give_the_exact_w(shape):
    u, v, w = school_terms(*shape)
    values = torch.tensor([-1, 0, 1])
    assert torch.equal(pair_algebra.fit_w(u, v, pair_algebra.unfold(target(*shape)), values), w)
    terms = pair_algebra.exact_terms(u, v, target(*shape), values)
    assert terms is not None and all(torch.equal(a, b) for a, b in zip(terms, (u, v, w),
                                                                          strict=True))
    assert pair_algebra.exact_terms(u[1:], v[1:], target(*shape), values) is None  # one short


def test_incremental_and_qr_projections_agree_and_span_the_target():
    u, v, _ = school_terms(2, 2, 2)
    pairs = pair_algebra.khatri_rao(u, v)[None]  # (1, 8, X)
    m = pair_algebra.unfold(target(2, 2, 2))
    for count in (0, 3, 8):
        _, by_qr = pair_algebra.project(pairs[:, :count], m)
        basis = torch.zeros(1, 4 * 4, 8, dtype=torch.float64)
        by_steps = m[None].clone()
        for j in range(count):
            basis, by_steps = pair_algebra.add_pair(basis, by_steps, torch.tensor([j]),
                                                    pairs[:, j])
        assert torch.allclose(by_qr, by_steps, atol=1e-12)
        assert bool(pair_algebra.spans(by_qr, float((m**2).sum()))) == (count == 8)


def test_a_pair_already_in_the_span_adds_nothing():
    u, v, _ = school_terms(2, 2, 2)
    pairs = pair_algebra.khatri_rao(u, v)
    m = pair_algebra.unfold(target(2, 2, 2))
    basis, residual = pair_algebra.project(pairs[None, :2], m)
    wider = torch.cat([basis, torch.zeros(1, 16, 1, dtype=torch.float64)], dim=2)
    again, after = pair_algebra.add_pair(wider, residual, torch.tensor([2]),
                                         (pairs[0] - 2 * pairs[1])[None])
    assert float(again[0, :, 2].abs().max()) == 0 and torch.equal(after, residual)


@pytest.mark.parametrize("shared", [True, False])
def test_gain_is_the_drop_of_the_projected_residual(shared):
    generator = torch.Generator().manual_seed(0)
    m = pair_algebra.unfold(target(2, 2, 2))
    u = torch.randint(-1, 2, (12, 4), generator=generator)
    v = torch.randint(-1, 2, (12, 4), generator=generator)
    candidates = pair_algebra.khatri_rao(u, v)
    chosen = candidates[:3][None].repeat(2, 1, 1)
    basis, residual = pair_algebra.project(chosen, m)
    pool = candidates if shared else candidates[None].repeat(2, 1, 1)
    gain, in_span = pair_algebra.gains(basis, residual, pool)
    assert gain.shape == in_span.shape == (2, 12) and bool(in_span[:, :3].all())
    for k in range(3, 12):
        if bool(in_span[0, k]):
            continue
        _, after = pair_algebra.project(torch.cat([chosen, candidates[k][None, None].repeat(
            2, 1, 1)], dim=1), m)
        drop = (residual**2).sum(dim=(1, 2)) - (after**2).sum(dim=(1, 2))
        assert torch.allclose(gain[:, k], drop, atol=1e-9)


def test_rounding_to_the_set_is_stable_at_ties():
    values = torch.tensor([-1, 0, 1])
    solution = torch.tensor([0.5 + 1e-12, 0.5 - 1e-12, -0.5, 0.9999999, 3.0], dtype=torch.float64)
    assert pair_algebra.nearest_in_set(solution, values).tolist() == [0, 0, -1, 1, 1]
    assert pair_algebra.integral_in_set(solution[None, 3:4], values).tolist() == [True]
    assert pair_algebra.integral_in_set(solution[None, :1], values).tolist() == [False]
