"""The MCTS agent: legal moves, changes of basis mapped back exactly, exact resume."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from mlo_exp.agents.mcts import MctsAgent
from mlo_exp.algorithms.tensor import verify
from mlo_exp.env import TensorGame

SMALL = dict(batch_size=3, simulations=3, candidates=4, hidden=32, decoder_hidden=16,
             pretrain_steps=5, train_steps=2, train_batch=8, buffer_size=64, chains=4,
             resample_steps=3, resample_candidates=4)


def small_agent(seed: int = 0, **overrides) -> MctsAgent:
    return MctsAgent(TensorGame((2, 2, 2)), seed=seed, **{**SMALL, **overrides})


def test_sampled_moves_are_legal_and_canonical():
    agent = small_agent()
    game = agent.game
    _, samples = agent.evaluate(game.target[None], game.target[None].float(),
                                torch.ones(1, 2, 12, dtype=torch.long),
                                torch.zeros(1, dtype=torch.long), game.max_rank)
    moves = agent.values[samples[0]]
    game.validate(moves, len(moves))  # coefficients from the set, right shape
    u, v, w = game.split(moves)
    for factor in (u, v, w):
        assert bool((factor != 0).any(dim=1).all()), "a factor is all zero"
    assert torch.equal(agent.canonical(moves), moves)


def test_an_episode_plays_legal_moves_and_reports_metrics():
    agent = small_agent()
    result = agent.run_episode()
    u, v, w = result.factors
    assert u.shape[0] == 4 and u.shape[1] == result.rank_used
    assert set(np.unique(np.concatenate([u, v, w]))) <= {-1, 0, 1}
    for key in ("policy_loss", "value_loss", "demo_accuracy", "network_evaluations",
                "simulations", "search_root_visits", "play_max_rank"):
        assert key in result.metrics, key
    if result.solved:
        assert verify(u, v, w, (2, 2, 2)).ok


@pytest.mark.parametrize("seed", range(5))
def test_a_solution_on_a_changed_basis_maps_back_exactly(seed):
    agent = small_agent(seed, basis_change=1.0, basis_elementary=1.0)
    basis = agent.random_bases(1)[0]
    assert basis is not None
    for matrix, inverse in zip(basis[:3], basis[3:], strict=True):
        assert torch.equal(matrix @ inverse, torch.eye(len(matrix), dtype=torch.long))
    # Solve the changed target with the school method's moves, mapped into the new basis.
    game = agent.game
    target = agent.transform(game.target, basis)
    terms = []
    for a, b, c in torch.nonzero(game.target).tolist():
        e = [torch.eye(d, dtype=torch.long)[i] for d, i in zip(game.dims, (a, b, c), strict=True)]
        terms.append(torch.cat([basis[0] @ e[0], basis[1] @ e[1], basis[2] @ e[2]]))
    changed = torch.stack(terms)
    u, v, w = (x.T.numpy() for x in game.split(changed))
    assert verify(u, v, w, (2, 2, 2)).ok is False or torch.equal(target, game.target)
    residual = target.clone()
    for move in changed:
        residual -= game.rank_one(move[None])[0]
    assert not residual.any(), "the moves solve the changed target"
    real = agent.map_back(changed, basis)
    u, v, w = (x.T.numpy() for x in game.split(real))
    assert verify(u, v, w, (2, 2, 2)).ok


def test_resume_replays_exactly():
    first = small_agent(seed=3)
    for _ in range(2):
        first.run_episode()
    saved = copy.deepcopy(first.state_dict())  # the live tensors go on changing
    expected = [first.run_episode() for _ in range(2)]
    second = small_agent(seed=99)  # a different seed: everything must come from the state
    second.load_state_dict(saved)
    again = [second.run_episode() for _ in range(2)]
    for a, b in zip(expected, again, strict=True):
        assert a.metrics == b.metrics
        assert a.rank_used == b.rank_used and a.solved == b.solved
        for x, y in zip(a.factors, b.factors, strict=True):
            assert np.array_equal(x, y)
    for key, value in first.network.state_dict().items():
        assert torch.equal(value, second.network.state_dict()[key])


def test_learning_rate_zero_freezes_the_network():
    agent = small_agent(learning_rate=0.0)
    before = {k: v.clone() for k, v in agent.network.state_dict().items()}
    agent.run_episode()
    for key, value in agent.network.state_dict().items():
        assert torch.equal(value, before[key])


def test_ablations_run():
    small_agent(simulations=0).run_episode()
    result = small_agent(demonstrations=False).run_episode()
    assert "demo_policy_loss" not in result.metrics


def test_demonstrations_are_consistent():
    agent = small_agent()
    demos = agent.demonstrations(16)
    values = agent.values
    for b in range(16):
        remaining = values[demos["remaining"][b][demos["mask"][b]]]
        total = sum(agent.game.rank_one(term[None])[0] for term in remaining)
        assert torch.equal(total, demos["residual"][b])
        assert float(demos["value"][b]) == -len(remaining)
        target = values[demos["target"][b]]
        assert any(torch.equal(target, term) for term in remaining)


def school_moves(game: TensorGame) -> torch.Tensor:
    """The school method's ``n*m*p`` single-entry terms as moves ``(R, A)``."""
    n, m, p = game.shape
    terms = []
    for i in range(n):
        for j in range(p):
            for k in range(m):
                u = torch.zeros(n * m, dtype=torch.long)
                v = torch.zeros(m * p, dtype=torch.long)
                w = torch.zeros(n * p, dtype=torch.long)
                u[i * m + k], v[k * p + j], w[i * p + j] = 1, 1, 1
                terms.append(torch.cat([u, v, w]))
    moves = torch.stack(terms)
    assert torch.equal(game.rank_one(moves).sum(dim=0), game.target)  # layout check
    return moves


def test_gain_is_the_drop_of_the_relaxed_residual():
    agent = small_agent(seed=5)
    others = agent._random_chains(6)[:, :5]
    state = agent._chain_states(others)
    moves = agent._random_chains(6)[:, :3]
    gain = agent._gains(state["basis"], state["relaxed"], moves)
    before = (state["relaxed"] ** 2).sum(dim=(1, 2))
    wider = torch.cat([state["basis"], torch.zeros(6, state["basis"].shape[1], 1,
                                                  dtype=torch.float64)], dim=2)
    for k in range(3):
        column = torch.full((6,), 5)
        _, after = agent.project_out(wider, state["relaxed"], column, moves[:, k])
        drop = before - (after**2).sum(dim=(1, 2))
        expected = torch.where(gain[:, k] < 0, torch.zeros_like(drop), drop)
        assert torch.allclose(gain[:, k].clamp_min(0), expected, atol=1e-9)


def test_a_completing_pair_is_found_and_the_solution_is_exact():
    agent = small_agent()
    moves = school_moves(agent.game)
    others, last = moves[None, 1:], moves[0]
    state = agent._chain_states(others)
    wrong = agent._random_chains(1)[0, :1]
    options = torch.stack([wrong[0], last])[None]
    gain = agent._gains(state["basis"], state["relaxed"], options)
    left = (state["relaxed"] ** 2).sum() - gain[0]
    assert float(left[1]) < 1e-9 and float(left[0]) > 1e-3
    solution = agent.exact_solution(torch.cat([others[0], last[None]]), agent.game.target)
    assert solution is not None
    u, v, w = (f.T.numpy() for f in torch.split(solution, agent.game.dims, dim=1))
    assert verify(u, v, w, (2, 2, 2)).ok


def test_resampling_keeps_chains_in_the_state():
    agent = small_agent()
    agent.run_episode()
    state = agent.state_dict()
    assert state["chains"].shape[0] == 4 and state["chains"].shape[2] == agent.action_dim
    result = small_agent(resample_steps=0).run_episode()
    assert "resample_closest" not in result.metrics
