"""The MCTS agent: legal moves, changes of basis mapped back exactly, exact resume, and the
controls (sparse proposals, the network frozen after pretraining)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from mlo_exp.agents import pair_algebra
from mlo_exp.agents.mcts import MctsAgent
from mlo_exp.agents.mcts_network import sample_moves
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
    assert torch.equal(agent.space.canonical(moves), moves)


def test_a_draw_of_u_and_v_only_is_the_prefix_of_the_full_draw():
    agent = small_agent(seed=3)
    game, du, dv = agent.game, *agent.dims[:2]
    residual = game.target[None].expand(5, -1, -1, -1)
    with torch.inference_mode():
        context, _ = agent.network(agent.features(
            residual, residual.float(), torch.ones(5, 2, 12, dtype=torch.long),
            torch.zeros(5, dtype=torch.long), game.max_rank))
        tensors = torch.stack([residual.float(), residual.float()], dim=1)
        draws = [sample_moves(agent.network, agent.space, context, tensors, 7,
                              torch.Generator().manual_seed(11), 1.0, length=length)
                 for length in (None, du + dv)]
    assert torch.equal(draws[1][..., :du + dv], draws[0][..., :du + dv])
    assert bool((draws[1][..., du + dv:] == 0).all())


def _propose_on_the_target(agent: MctsAgent) -> torch.Tensor:
    """8 resampling proposals for each of 4 copies of the game's starting state."""
    game = agent.game
    return agent.propose(game.target[None].expand(4, -1, -1, -1),
                         game.target[None].float().expand(4, -1, -1, -1),
                         torch.zeros(4, 2, 12, dtype=torch.long),
                         torch.zeros(4, dtype=torch.long), game.max_rank, 8, 1.0)


def test_resampling_proposals_are_network_pairs_with_w_from_the_sparse_prior():
    """The resampler re-fits ``w``: the network draws ``u, v``, ``w`` is the sparse prior's."""
    agent = small_agent(demo_nonzeros=1)
    samples = _propose_on_the_target(agent)
    assert samples.shape == (4, 8, 12)
    moves = agent.values[samples]
    assert torch.equal(agent.space.canonical(moves), moves)
    u, v, w = torch.split(moves, agent.dims, dim=-1)
    assert bool(((w != 0).sum(dim=-1) == 1).all())  # the prior's w: one non-zero entry
    assert bool((u != 0).any(dim=-1).all()) and bool((v != 0).any(dim=-1).all())
    assert agent.evaluations == agent.proposals == 4


def test_a_prior_share_puts_the_sparse_priors_pairs_beside_the_networks():
    agent = small_agent(demo_nonzeros=1, prior_share=0.5)
    samples = _propose_on_the_target(agent)
    assert samples.shape == (4, 8, 12)
    u, v, _ = torch.split(agent.values[samples], agent.dims, dim=-1)
    # the last half: the prior's, one non-zero entry per factor (demo_nonzeros=1)
    assert bool(((u[:, 4:] != 0).sum(dim=-1) == 1).all())
    assert bool(((v[:, 4:] != 0).sum(dim=-1) == 1).all())
    assert agent.evaluations == agent.proposals == 4  # one network call, for 4 pairs a state
    with pytest.raises(ValueError, match="prior_share"):
        small_agent(prior_share=1.0)


def test_an_episode_plays_legal_moves_and_reports_metrics():
    agent = small_agent()
    result = agent.run_episode()
    u, v, w = result.factors
    assert u.shape[0] == 4 and u.shape[1] == result.rank_used
    assert set(np.unique(np.concatenate([u, v, w]))) <= {-1, 0, 1}
    for key in ("policy_loss", "value_loss", "demo_accuracy", "network_evaluations",
                "simulations", "search_root_visits", "play_max_rank"):
        assert key in result.metrics, key
    assert verify(u, v, w, (2, 2, 2)).ok == result.solved  # solved exactly when exact


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


VARIANTS = {"learning": {}, "sparse_proposals": {"proposals": "sparse"},
            "frozen_pretrained": {"freeze_after_pretraining": True},
            "frozen_at_init": {"learning_rate": 0.0}, "no_tree": {"simulations": 0},
            "no_demonstrations": {"demonstrations": False}, "prior_share": {"prior_share": 0.5}}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_resume_replays_exactly(variant):
    first = small_agent(seed=3, **VARIANTS[variant])
    for _ in range(2):
        first.run_episode()
    saved = copy.deepcopy(first.state_dict())  # the live tensors go on changing
    expected = [first.run_episode() for _ in range(2)]
    # A different seed: everything must come from the state.
    second = small_agent(seed=99, **VARIANTS[variant])
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
    result = small_agent(simulations=0).run_episode()
    assert result.metrics["simulations"] == 0 and result.metrics["network_evaluations"] > 0
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
    resampler = agent.resampler
    others = resampler.random_chains(6, 5)
    state = resampler.chain_states(others)
    moves = resampler.random_chains(6, 3)
    gain = resampler.gains(state["basis"], state["relaxed"], moves)
    before = (state["relaxed"] ** 2).sum(dim=(1, 2))
    wider = torch.cat([state["basis"], torch.zeros(6, state["basis"].shape[1], 1,
                                                  dtype=torch.float64)], dim=2)
    for k in range(3):
        column = torch.full((6,), 5)
        pair = pair_algebra.khatri_rao(moves[:, k, :4], moves[:, k, 4:8])
        _, after = pair_algebra.add_pair(wider, state["relaxed"], column, pair)
        drop = before - (after**2).sum(dim=(1, 2))
        expected = torch.where(gain[:, k] < 0, torch.zeros_like(drop), drop)
        assert torch.allclose(gain[:, k].clamp_min(0), expected, atol=1e-9)


def test_a_completing_pair_is_found_and_the_solution_is_exact():
    agent = small_agent()
    moves = school_moves(agent.game)
    others, last = moves[None, 1:], moves[0]
    state = agent.resampler.chain_states(others)
    wrong = agent.resampler.random_chains(1, 1)[0]
    options = torch.stack([wrong[0], last])[None]
    gain = agent.resampler.gains(state["basis"], state["relaxed"], options)
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


# -- the controls -----------------------------------------------------------------------------
def test_sparse_proposals_evaluate_no_network_and_learn_nothing():
    agent = small_agent(proposals="sparse", demo_nonzeros=2)
    before = {k: v.clone() for k, v in agent.network.state_dict().items()}
    results = [agent.run_episode() for _ in range(2)]
    for key, value in agent.network.state_dict().items():
        assert torch.equal(value, before[key])
    last = results[-1].metrics
    assert last["network_evaluations"] == 0 and last["network_updates"] == 0
    assert last["proposals"] > 0 and last["simulations"] > 0
    assert not any("loss" in key for key in last) and agent.buffer_count == 0
    # The proposals are the sparse prior: legal, canonical, 1..demo_nonzeros entries a factor.
    values, samples = agent.evaluate(agent.game.target[None], agent.game.target[None].float(),
                                     torch.zeros(1, 2, 12, dtype=torch.long),
                                     torch.zeros(1, dtype=torch.long), agent.game.max_rank, 64)
    assert float(values.abs().max()) == 0.0
    moves = agent.values[samples[0]]
    assert torch.equal(agent.space.canonical(moves), moves)
    for factor in agent.game.split(moves):
        nonzero = (factor != 0).sum(dim=1)
        assert bool(((nonzero >= 1) & (nonzero <= 2)).all())


def test_the_network_frozen_after_pretraining_pretrains_then_never_changes():
    agent = small_agent(freeze_after_pretraining=True, pretrain_steps=4)
    initial = {k: v.clone() for k, v in agent.network.state_dict().items()}
    first = agent.run_episode()
    assert "pretrain_demo_policy_loss" in first.metrics and "policy_loss" not in first.metrics
    assert first.metrics["network_updates"] == 4 and first.metrics["network_evaluations"] > 0
    assert any(not torch.equal(v, initial[k]) for k, v in agent.network.state_dict().items())
    pretrained = {k: v.clone() for k, v in agent.network.state_dict().items()}
    second = agent.run_episode()
    assert second.metrics["network_updates"] == 4 and agent.buffer_count == 0
    for key, value in agent.network.state_dict().items():
        assert torch.equal(value, pretrained[key])


def test_the_learning_agent_counts_its_updates():
    agent = small_agent(pretrain_steps=3, train_steps=2)
    metrics = agent.run_episode().metrics
    assert metrics["network_updates"] == 3 + 2
    assert metrics["network_evaluations"] == metrics["proposals"] > 0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")
@pytest.mark.parametrize("variant", ["learning", "sparse_proposals"])
def test_the_agent_runs_on_cuda(variant):
    """device=cuda: the network, the games, the tree's batched leaves and the chains on the GPU;
    a CUDA checkpoint continues on CUDA with the same games (the losses up to the float
    non-determinism of CUDA's backward passes)."""
    game = TensorGame((2, 2, 2), device="cuda")
    agent = MctsAgent(game, seed=0, **{**SMALL, **VARIANTS[variant]})
    result = agent.run_episode()
    assert all(p.device.type == "cuda" for p in agent.network.parameters())
    assert agent.resampler.chains.device.type == "cuda"
    assert agent.buffer["relaxed"].device.type == "cuda"
    assert verify(*result.factors, (2, 2, 2)).ok == result.solved
    saved = copy.deepcopy(agent.state_dict())
    expected = agent.run_episode()
    again = MctsAgent(game, seed=7, **{**SMALL, **VARIANTS[variant]})
    again.load_state_dict(saved)
    replayed = again.run_episode()
    assert replayed.rank_used == expected.rank_used and replayed.solved == expected.solved
    for x, y in zip(replayed.factors, expected.factors, strict=True):
        assert np.array_equal(x, y)
    for key, value in expected.metrics.items():
        if "loss" in key or "accuracy" in key:
            assert replayed.metrics[key] == pytest.approx(value, rel=1e-3, abs=0.05), key
        else:
            assert replayed.metrics[key] == value, key


def test_the_controls_are_plain_config(compose_config):
    from mlo_exp.config import ConfigError, validate

    cfg = compose_config(["agent=mcts", "agent.proposals=sparse",
                          "agent.freeze_after_pretraining=true"])
    settings = validate(cfg).agent
    assert settings.proposals == "sparse" and settings.freeze_after_pretraining is True
    with pytest.raises(ConfigError) as error:
        validate(compose_config(["agent=mcts", "agent.proposals=dense"]))
    message = str(error.value)
    assert "agent.proposals='dense'" in message and "network" in message and "sparse" in message


@pytest.mark.parametrize("variant", ["learning", "sparse_proposals", "frozen_pretrained"])
def test_a_checkpointed_run_resumes_exactly(variant, compose_config, tmp_path, monkeypatch):
    """Through the real run and its checkpoint files: stop at 2 episodes, resume to 3, and the
    episodes equal those of an uninterrupted run of 3 (wall times aside)."""
    import json

    from mlo_exp.config import validate
    from mlo_exp.run import experiment

    monkeypatch.setenv("MLO_OUTPUTS", str(tmp_path / "outputs"))
    settings = [f"agent.{k}={str(v).lower() if isinstance(v, bool) else v}"
                for k, v in {**SMALL, **VARIANTS[variant]}.items()]
    base = ["agent=mcts", *settings, "trainer.time_limit_s=null", "trainer.stop_at_rank=1",
            "logger.print_every_s=1000", "checkpoint.every_episodes=2", "benchmark=none"]

    def train(name: str, *overrides: str):
        cfg = compose_config([*base, *overrides])
        return experiment.run(cfg, validate(cfg), tmp_path / "outputs" / "runs" / name,
                              overrides=list(overrides))

    def rows(run_dir) -> list[dict]:
        lines = (tmp_path / "outputs" / "runs" / run_dir / "metrics.jsonl").read_text()
        return [{k: v for k, v in json.loads(line).items() if k not in ("wall_time_s", "run_id")}
                for line in lines.splitlines()]

    train("whole", "trainer.episodes=3")
    first = train("first", "trainer.episodes=2")
    resumed = train("again", "trainer.episodes=3", f"resume={first.run_id}")
    assert resumed.episodes == 3 and resumed.run_dir == first.run_dir
    assert len(rows("whole")) == 3 and rows("first") == rows("whole")


def test_an_episode_reports_progress_from_inside_both_searches():
    # The trainer rate-limits these to a console line; here every call is kept.
    agent = small_agent(proposals="sparse")
    reports: list[dict] = []
    agent.progress_callback = reports.append
    agent.run_episode()
    simulations = [r["simulations"] for r in reports if "simulations" in r]
    assert simulations and simulations == sorted(simulations) and simulations[-1] > 0
    steps = [r["resample_step"] for r in reports if "resample_step" in r]
    assert steps == list(range(1, len(steps) + 1)) and len(steps) == agent.settings.resample_steps
