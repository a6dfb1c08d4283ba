"""The pair-policy agent: candidates, projections, exact w, learning, state, a short run."""

from __future__ import annotations

import copy
import io
import json

import numpy as np
import pytest
import torch

from mlo_exp.agents.base import EpisodeResult
from mlo_exp.agents.pair_policy import PairPolicyAgent, PairPolicyNetwork
from mlo_exp.algorithms.algorithm import Algorithm
from mlo_exp.config import ConfigError, validate
from mlo_exp.env import TensorGame
from mlo_exp.run import experiment
from mlo_exp.run.checkpoint import serialise, to_plain


def school_pairs(n: int, m: int, p: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The school method's pairs ``(e_ij, e_jk)``: test data, never shown to the agent."""
    us, vs = [], []
    for i in range(n):
        for j in range(m):
            for k in range(p):
                u, v = torch.zeros(n * m, dtype=torch.int64), torch.zeros(m * p, dtype=torch.int64)
                u[i * m + j], v[j * p + k] = 1, 1
                us.append(u)
                vs.append(v)
    return torch.stack(us), torch.stack(vs)


@pytest.fixture
def agent() -> PairPolicyAgent:
    """Every non-zero pair (``max_nonzeros=None``; the default sparsity prior keeps 256)."""
    return PairPolicyAgent(TensorGame((2, 2, 2)), seed=0, batch_size=8, steps_per_episode=5,
                           max_nonzeros=None)


def test_the_default_sparsity_prior_keeps_pairs_of_at_most_two_entries():
    agent = PairPolicyAgent(TensorGame((2, 2, 2)), seed=0)
    u, v = agent.candidate_pairs()
    assert len(u) == 16 * 16  # 4 single entries x 2 signs / 2, + 6 pairs x 4 signs / 2
    assert int((u != 0).sum(1).max()) == int((v != 0).sum(1).max()) == 2


def test_candidates_are_every_sign_canonical_nonzero_pair(agent):
    u, v = agent.candidate_pairs()
    assert len(u) == 40 * 40  # (3^4 - 1) / 2 canonical vectors per side
    for side in (u, v):
        assert bool((side != 0).any(dim=1).all())
        first = side[torch.arange(len(side)), (side != 0).int().argmax(dim=1)]
        assert bool((first > 0).all())
    assert len({(tuple(a), tuple(b)) for a, b in zip(u.tolist(), v.tolist(), strict=True)}) == 1600


def test_large_shapes_draw_a_pool_with_every_single_entry_pair():
    agent = PairPolicyAgent(TensorGame((2, 3, 3)), seed=0, batch_size=2, max_candidates=500)
    u, v = agent.candidate_pairs()
    assert len(u) == 500 and bool((u != 0).any(dim=1).all()) and bool((v != 0).any(dim=1).all())
    assert int(((u != 0).sum(1) == 1).logical_and((v != 0).sum(1) == 1).sum()) >= 6 * 9


def test_khatri_rao_follows_the_tensor_layout(agent):
    u, v = torch.tensor([1, 0, -1, 1]), torch.tensor([0, 1, 1, -1])
    expected = np.einsum("a,b->ab", u.numpy(), v.numpy()).reshape(-1)
    assert np.array_equal(agent.khatri_rao(u, v).numpy(), expected)


def test_school_pairs_span_the_target_and_their_w_is_exact(agent):
    u, v = school_pairs(2, 2, 2)
    basis, residual = agent.project(agent.khatri_rao(u, v)[None])
    assert float(residual.abs().max()) < 1e-9
    w = agent.exact_w(u[None].repeat(8, 1, 1), v[None].repeat(8, 1, 1))
    t = torch.as_tensor(agent.game.target)
    rebuilt = torch.einsum("ra,rb,rc->abc", u, v, w[0])
    assert torch.equal(rebuilt, t)


def test_gain_is_the_drop_of_the_projected_residual(agent):
    u, v = agent.candidate_pairs()
    candidates = agent.khatri_rao(u, v)
    chosen = candidates[[3, 100, 777]][None]
    basis, residual = agent.project(chosen)
    logits, gain, value = agent.logits(basis, residual, candidates)
    assert logits.shape == (1, 1600) and value.shape == (1,)
    for k in (0, 5, 901, 1599):
        _, after = agent.project(torch.cat([chosen, candidates[k][None, None]], dim=1))
        drop = float((residual**2).sum() - (after**2).sum())
        assert gain[0, k].item() == pytest.approx(drop, abs=1e-9)
    assert torch.isinf(logits[0, [3, 100, 777]]).all()  # already in the span: masked


def test_an_untrained_network_leaves_the_prior_alone():
    network = PairPolicyNetwork(pair_dim=16, columns=4, hidden=8, heads=2).double()
    with torch.no_grad():
        queries, linear, value = network(torch.randn(3, 16, 4, dtype=torch.float64))
    assert queries.shape == (3, 2, 16) and linear.shape == (3, 16) and value.shape == (3,)
    assert float(queries.abs().max()) == 0 and float(linear.abs().max()) == 0


def test_the_warm_up_episode_solves_with_completion_moves_alone(agent):
    result = agent.run_episode()
    assert result.solved and result.rank_used == 8
    assert Algorithm((2, 2, 2), *result.factors).verify().ok
    assert agent.target_rank == 7  # the search starts one rank lower


def test_an_episode_plays_real_moves_and_learns(agent):
    agent.run_episode()  # warm-up
    before = [p.detach().clone() for p in agent.network.parameters()]
    result = agent.run_episode()
    assert result.games == 8 and result.factors is not None
    u, v, w = result.factors
    assert u.shape == (4, result.rank_used) and w.shape == (4, result.rank_used)
    assert set(np.unique(np.concatenate([u, v, w], axis=None))) <= {-1, 0, 1}
    assert Algorithm((2, 2, 2), u, v, w).verify().ok == result.solved  # solved when exact
    assert {"policy_loss", "value_loss", "target_rank"} <= set(result.metrics)
    after = list(agent.network.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, after, strict=True))


def test_unsolved_chains_are_completed_with_valid_moves(agent):
    agent.target_rank = 3  # three pairs cannot span <2,2,2>: completion moves must follow
    agent.chain_u = agent.chain_v = None
    agent.search(agent.candidate_pairs())
    chains = agent.plan_episode()
    assert chains.rank == 3 and chains.w.shape == (8, 3, 4)
    trajectory = agent.play(agent.game.reset(agent.batch_size), chains)
    final = trajectory.final
    assert bool(((final.moves == agent.game.max_rank) | final.solved).all())
    residual_before = float(agent.game.target.double().norm())
    assert float(trajectory.final.residual.double().flatten(1).norm(dim=1).min()) < residual_before


def through_a_checkpoint(state: dict) -> dict:
    """``state`` as a resumed run gets it: made plain, saved, loaded with weights_only."""
    return torch.load(io.BytesIO(serialise(to_plain(state))), weights_only=True)


def same_episodes(a: list[EpisodeResult], b: list[EpisodeResult]) -> bool:
    return all(x.reward == y.reward and x.metrics == y.metrics and x.moves == y.moves
               and all(np.array_equal(f, g) for f, g in zip(x.factors, y.factors, strict=True))
               for x, y in zip(a, b, strict=True))


def small_agent(seed: int, **kwargs) -> PairPolicyAgent:
    return PairPolicyAgent(TensorGame((2, 2, 2)), seed=seed, batch_size=4, steps_per_episode=3,
                           max_nonzeros=2, **kwargs)


@pytest.mark.parametrize("pool", [False, True], ids=["enumerated", "sampled-pool"])
def test_state_dict_round_trip_mid_run_then_the_same_episodes(pool):
    """Saved after a few learning episodes, through the checkpoint format, into an agent
    built with another seed: the next episodes (several Adam updates) are the same."""
    extra = {"max_candidates": 100, "learn_candidates": 30} if pool else {}
    first = small_agent(3, **extra)
    for _ in range(4):
        first.run_episode()
    assert first.target_rank > 0 and first.optimizer.state  # past the warm-up, Adam has state
    state = through_a_checkpoint(first.state_dict())
    expected = [first.run_episode() for _ in range(5)]
    second = small_agent(99, **extra)
    second.load_state_dict(state)
    assert same_episodes([second.run_episode() for _ in range(5)], expected)
    assert all(torch.equal(a, b) for a, b in zip(first.network.parameters(),
                                                 second.network.parameters(), strict=True))
    assert {"network", "optimizer", "generator", "chain_u", "target_rank"} <= set(state)


def test_state_dict_is_a_snapshot():
    agent = small_agent(0)
    agent.run_episode()
    agent.run_episode()
    state = agent.state_dict()
    saved = [t.clone() for t in state["network"].values()]
    moments = copy.deepcopy(state["optimizer"]["state"])
    agent.run_episode()
    assert all(torch.equal(a, b) for a, b in zip(state["network"].values(), saved, strict=True))
    assert all(torch.equal(moments[k]["exp_avg"], v["exp_avg"])
               for k, v in state["optimizer"]["state"].items())


def test_a_checkpoint_written_before_the_fix_resumes_exactly():
    """Older checkpoints hold the optimiser's per-parameter keys as strings ("0", ...) and no
    ``generator_device``: they load with Adam's moments and step counts intact."""
    first = small_agent(3)
    for _ in range(3):
        first.run_episode()
    state = through_a_checkpoint(first.state_dict())
    state["optimizer"]["state"] = {str(k): v for k, v in state["optimizer"]["state"].items()}
    state.pop("generator_device", None)  # not written before the device rule either
    expected = [first.run_episode() for _ in range(3)]
    second = small_agent(5)
    second.load_state_dict(state)
    assert len(second.optimizer.state) == len(list(second.network.parameters()))
    assert same_episodes([second.run_episode() for _ in range(3)], expected)


def test_missing_search_keys_take_a_fresh_agents_values():
    first = small_agent(3)
    first.run_episode()
    state = first.state_dict()
    for key in ("chain_u", "chain_v", "chain_age", "total_steps"):
        del state[key]
    second = small_agent(3)
    second.load_state_dict(state)
    assert second.chain_u is None and second.total_steps == 0
    assert second.target_rank == first.target_rank
    second.run_episode()  # builds fresh chains at the saved target rank


def test_optimizer_state_for_unknown_parameters_is_refused():
    agent = small_agent(0)
    agent.run_episode()
    agent.run_episode()
    state = agent.state_dict()
    state["optimizer"]["state"] = {"first": state["optimizer"]["state"][0]}
    with pytest.raises(ValueError, match="optimizer state for unknown parameters"):
        small_agent(0).load_state_dict(state)


def test_over_z2_the_agent_says_what_to_use():
    with pytest.raises(ValueError, match="env.ring=.Z2.*agent=flipgraph"):
        PairPolicyAgent(TensorGame((2, 2, 2), coefficients=(0, 1), ring="Z2"), seed=0)


def test_config_rejects_bad_values(compose_config):
    cfg = compose_config(["agent=pair_policy", "agent.prior_weight=-1"])
    with pytest.raises(ConfigError, match="agent.prior_weight"):
        validate(cfg)
    cfg = compose_config(["agent=pair_policy", "agent.steps_per_episode=0"])
    with pytest.raises(ConfigError, match="agent.steps_per_episode"):
        validate(cfg)


def test_a_short_training_run_ends_with_a_verified_algorithm(compose_config, tmp_path):
    overrides = ["agent=pair_policy", "trainer.episodes=4", "agent.batch_size=32",
                 "logger.progress_bar=false"]
    cfg = compose_config(overrides)
    summary = experiment.run(cfg, validate(cfg), tmp_path / "run")
    assert summary.verified and summary.best_rank is not None and summary.best_rank <= 8
    algorithm = Algorithm.load(summary.algorithm_path)
    assert algorithm.verify().ok and algorithm.rank == summary.best_rank
    assert algorithm.provenance["agent"] == "PairPolicyAgent"


@pytest.mark.slow
def test_mlo_train_defaults_to_pair_policy_and_keeps_a_verified_algorithm(run_train, tmp_path):
    result = run_train("trainer.episodes=3", "logger.progress_bar=false")
    assert result.returncode == 0, result.stderr[-2000:]
    summaries = list((tmp_path / "outputs").rglob("summary.json"))
    assert len(summaries) == 1
    summary = json.loads(summaries[0].read_text())
    assert summary["agent"] == "PairPolicyAgent" and summary["verified"]
    assert Algorithm.load(summary["algorithm_path"]).verify().ok


def test_max_nonzeros_keeps_only_sparse_factors():
    agent = PairPolicyAgent(TensorGame((2, 2, 3)), seed=0, batch_size=2, max_nonzeros=2)
    u, v = agent.candidate_pairs()
    assert len(u) == 16 * 36  # per side: single entries, plus pairs of entries up to sign
    assert int((u != 0).sum(dim=1).max()) == 2 and int((v != 0).sum(dim=1).max()) == 2
    sampled = PairPolicyAgent(TensorGame((3, 3, 3)), seed=0, batch_size=2, max_nonzeros=3,
                              max_candidates=300)
    u, v = sampled.candidate_pairs()
    assert sampled.enumerated is None and int((v != 0).sum(dim=1).max()) <= 3
