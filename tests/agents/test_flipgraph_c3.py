"""C3-symmetric flip-graph walks: every state an exact, C3-invariant decomposition."""

from __future__ import annotations

import numpy as np
import pytest

from mlo_exp.agents.flipgraph import FlipGraphAgent
from mlo_exp.agents.flipgraph.c3 import diagonal_pairs_start, expand_to_factors, orbits
from mlo_exp.agents.flipgraph.kernel_z2 import pack
from mlo_exp.agents.flipgraph.start import school
from mlo_exp.agents.flipgraph.walks import C3Walks
from mlo_exp.algorithms.algorithm import Algorithm
from mlo_exp.algorithms.operations import cyclic
from mlo_exp.algorithms.tensor import verify
from mlo_exp.config import ConfigError, validate
from mlo_exp.env import TensorGame
from tests.agents.index_checks import assert_index_describes


def make_agent(n, ring="Z2", **settings) -> FlipGraphAgent:
    coefficients = [0, 1] if ring == "Z2" else [-1, 0, 1]
    return FlipGraphAgent(TensorGame((n, n, n), coefficients, ring=ring),
                          **{"seed": 0, "symmetry": "c3", **settings})


def _terms(factors) -> list[tuple]:
    return sorted(tuple(np.concatenate([f[:, r] for f in factors]).tolist())
                  for r in range(factors[0].shape[1]))


def assert_invariant(factors, n):
    """sigma(a, b, c) = (b, c^T, a^T) (operations.cyclic for <n,n,n>) permutes the terms."""
    algorithm = Algorithm((n, n, n), *factors, "Z2")
    image = cyclic(algorithm)
    assert _terms((image.u, image.v, image.w)) == _terms(factors)


@pytest.mark.parametrize(("c3_start", "start_rank", "pair_draw"),
                         [("school", 27, "value"), ("pairs", 32, "value"),
                          ("pairs", 32, "term"), ("pairs", 32, "term-draws")])
def test_walks_stay_exact_and_invariant(c3_start, start_rank, pair_draw):
    agent = make_agent(3, walks=4, flips_per_episode=3000, plateau_flips=300, plus_slack=6,
                       seed=2, c3_start=c3_start, pair_draw=pair_draw)
    assert isinstance(agent.walks, C3Walks) and agent.walks.start_rank == start_rank
    counts = {"reductions": 0, "plus_transitions": 0}
    for _ in range(8):
        result = agent.run_episode()
        for key in counts:
            counts[key] += result.metrics[key]
        for walk in range(agent.settings.walks):
            for factors in (agent.current_factors(walk), agent.best_factors(walk)):
                assert verify(*factors, (3, 3, 3), "Z2").ok
                assert_invariant(factors, 3)
            assert agent.current_factors(walk)[0].shape[1] == agent.walks.rank[walk]
    assert result.rank_used < 27 and verify(*result.factors, (3, 3, 3), "Z2").ok
    assert counts["reductions"] > 0 and counts["plus_transitions"] > 0


def _two_orbits_indexed(mode0: list[int]) -> tuple[np.ndarray, tuple]:
    """Six expanded terms (two orbits) of one walk: mode 0 holds ``mode0``, modes 1 and 2 hold
    no value twice; returned with their index."""
    from mlo_exp.agents.flipgraph.index import insert, new_index

    X = np.zeros((1, 3, 6), dtype=np.uint64)
    X[0, 0] = mode0
    X[0, 1] = np.arange(10, 16)
    X[0, 2] = np.arange(20, 26)
    ix = new_index(1, 6)
    for t in range(6):
        for m in range(3):
            insert(*ix, 0, m, t, X[0, m, t])
    return X, ix


def test_a_term_first_draw_weighs_a_value_by_its_holders():
    """Mode 0 holds value 1 twice and value 2 four times; modes 1 and 2 hold no value twice.
    Term first, value 2 is drawn with weight 4 of 6; from the flippable list, 1 of 2."""
    from mlo_exp.agents.flipgraph.c3 import _draw_pair_by_term
    from mlo_exp.agents.flipgraph.index import draw_pair

    X, ix = _two_orbits_indexed([1, 1, 2, 2, 2, 2])
    q, rng = np.array([2]), np.array([12345], dtype=np.uint64)
    by_term = [_draw_pair_by_term(X, q, ix, rng, 0)[:3] for _ in range(6000)]
    by_value = [draw_pair(ix[1], ix[2], ix[4], ix[5], ix[6], rng, 0) for _ in range(6000)]
    for draws in (by_term, by_value):
        assert all(x == 0 and a != b and X[0, 0, a] == X[0, 0, b] for x, a, b in draws)
    share_term = np.mean([X[0, 0, a] == 2 for _, a, _ in by_term])
    share_value = np.mean([X[0, 0, a] == 2 for _, a, _ in by_value])
    assert abs(share_term - 4 / 6) < 0.03 and abs(share_value - 1 / 2) < 0.03


def test_a_term_first_draw_counts_the_terms_it_drew():
    """Only terms 0 and 1 share a value (mode 0), so 2 of the 18 (term, mode) draws find a
    partner: about 9 draws per pair, the count ``pair_draw=term-draws`` adds to the plateau
    (a term drawn without a partner was an empty attempt before issue 26)."""
    from mlo_exp.agents.flipgraph.c3 import _draw_pair_by_term

    X, ix = _two_orbits_indexed([1, 1, 2, 3, 4, 5])
    q, rng = np.array([2]), np.array([2024], dtype=np.uint64)
    draws = [_draw_pair_by_term(X, q, ix, rng, 0) for _ in range(4000)]
    assert all({a, b} == {0, 1} for _, a, b, _ in draws)
    assert abs(np.mean([drawn for *_, drawn in draws]) - 9) < 0.6


@pytest.mark.parametrize(("n", "orbit_count", "fixed_count"),
                         [(2, 4, 1), (4, 24, 2), (5, 44, 3), (6, 76, 3)])
def test_the_diagonal_pairs_start(n, orbit_count, fixed_count):
    # One fixed term (D_P, D_P, D_P) per part {0,1}, {2,3}, ...: the ranks 3 x orbits + 2 for
    # <4,4,4> (47 = 3 x 15 + 2) and + 3 for <5,5,5> (93 = 3 x 30 + 3) become reachable.
    factors = diagonal_pairs_start(n)
    assert verify(*factors, (n, n, n), "Z2").ok
    assert_invariant(factors, n)
    reps, fixed = orbits(*factors, n)
    assert (len(reps), len(fixed)) == (orbit_count, fixed_count)
    diagonal = [i * n + i for i in range(n)]
    for a in fixed:  # each a diagonal D_P with one or two ones
        bits = [b for b in range(n * n) if a >> b & 1]
        assert set(bits) <= set(diagonal) and len(bits) in (1, 2)
    agent = make_agent(n, walks=1, flips_per_episode=10)
    assert agent.walks.start_rank == 3 * orbit_count + fixed_count


@pytest.mark.parametrize("n", [2, 3, 5])
def test_the_expansion_lists_each_orbit_as_a_term_and_its_two_images(n):
    # Random representatives and fixed terms: orbit o is columns 3o, 3o+1, 3o+2, each the
    # cyclic image (operations.cyclic) of the one before; the fixed terms (a, a, a^T) follow.
    rng = np.random.default_rng(n)
    R = rng.integers(1, 1 << (n * n), (3, 6), dtype=np.uint64)
    FX = rng.integers(1, 1 << (n * n), 3, dtype=np.uint64)
    u, v, w = expand_to_factors(R, FX, 5, 2, n)
    assert u.shape == v.shape == w.shape == (n * n, 17)
    for o in range(5):
        assert [int(pack(f[:, [3 * o]])[0]) for f in (u, v, w)] == [int(x) for x in R[:, o]]
        for k in (1, 2):  # sigma(a, b, c) = (b, c^T, a^T), the matrices n x n
            a, b, c = (f[:, 3 * o + k - 1].reshape(n, n) for f in (u, v, w))
            image = (b, c.T, a.T)
            assert all((x.ravel() == f[:, 3 * o + k]).all()
                       for x, f in zip(image, (u, v, w), strict=True))
    for f, a in enumerate(FX[:2]):
        column = 15 + f
        assert int(pack(u[:, [column]])[0]) == int(pack(v[:, [column]])[0]) == int(a)
        transposed = w[:, column].reshape(n, n).T.ravel()
        assert int(pack(transposed[:, None])[0]) == int(a)


def test_orbits_of_the_school_method_and_a_refusal():
    reps, fixed = orbits(*school(4, 4, 4), 4)
    assert (len(reps), len(fixed)) == (20, 4)  # (64 - 4) / 3 orbits, i = j = k fixed
    one = np.zeros((4, 1), dtype=np.int64)
    one[0] = 1
    other = np.zeros((4, 1), dtype=np.int64)
    other[1] = 1
    with pytest.raises(ValueError, match="not C3-invariant"):
        orbits(one, other, one, 2)


def test_resume_is_exact():
    agent = make_agent(3, walks=2, flips_per_episode=2000, plateau_flips=300)
    agent.run_episode()
    state = agent.state_dict()
    first = agent.run_episode()
    clone = make_agent(3, walks=2, flips_per_episode=2000, plateau_flips=300, seed=9)
    clone.load_state_dict(state)
    second = clone.run_episode()
    assert first.rank_used == second.rank_used and first.moves == second.moves
    assert all(np.array_equal(a, b) for a, b in zip(first.factors, second.factors, strict=True))


def test_refusals(compose_config):
    with pytest.raises(ValueError, match="square shape over Z2"):
        FlipGraphAgent(TensorGame((2, 2, 3), [0, 1], ring="Z2"), seed=0, symmetry="c3")
    with pytest.raises(ValueError, match="square shape over Z2"):
        make_agent(2, ring="Z")
    assert validate(compose_config(["agent=flipgraph", "agent.symmetry=c3"])).agent.symmetry \
        == "c3"
    with pytest.raises(ConfigError, match="agent.symmetry"):
        validate(compose_config(["agent=flipgraph", "agent.symmetry=c4"]))
    with pytest.raises(ConfigError, match="agent.c3_start.*pairs or school"):
        validate(compose_config(["agent=flipgraph", "agent.c3_start=diagonal"]))
    with pytest.raises(ConfigError, match="agent.pair_draw.*value, term or term-draws"):
        validate(compose_config(["agent=flipgraph", "agent.pair_draw=edge"]))


def test_symmetric_jobs_share_through_the_pool(tmp_path):
    settings = {"walks": 2, "pool_dir": str(tmp_path / "pool"), "pool_every": 1,
                "restart_after": 1, "plateau_flips": 300}
    first = make_agent(3, flips_per_episode=5000, seed=3, **settings)
    for _ in range(5):
        reached = first.run_episode().rank_used
    first.run_episode()
    assert reached < 27 and sorted((tmp_path / "pool").glob("rank*.json"))
    second = make_agent(3, flips_per_episode=1, seed=4, **settings)
    result = second.run_episode()
    assert result.metrics["pool_restarts"] >= 1 and result.rank_used <= reached
    assert verify(*result.factors, (3, 3, 3), "Z2").ok
    for walk in range(second.settings.walks):
        assert_invariant(second.current_factors(walk), 3)


def test_the_index_describes_the_expanded_terms_exactly():
    # Flips (index updated in place), reductions, plus transitions and path resets (rebuilt)
    # interleave; after each episode the hash index holds exactly the live orbits' images.
    agent = make_agent(4, walks=3, flips_per_episode=4000, plateau_flips=300, plus_slack=3,
                       max_plus_slack=6, path_flips=3000, seed=5)
    walks = agent.walks
    for _ in range(6):
        result = agent.run_episode()
        for walk in range(agent.settings.walks):
            live = 3 * int(walks.q[walk])
            assert_index_describes(walks.index, walk,
                                   [walks.X[walk, mode, :live] for mode in range(3)])
    assert result.metrics["useless_share"] < 0.5


def _reducible_pairs(X: np.ndarray, orbits_live: int) -> set[tuple[int, int]]:
    """Pairs of orbits whose expanded terms share two or more factors (a reduction)."""
    terms = X[:, :3 * orbits_live].T
    return {(i // 3, j // 3) for i in range(len(terms)) for j in range(i + 1, len(terms))
            if i // 3 != j // 3 and int((terms[i] == terms[j]).sum()) >= 2}


def test_a_c3_plus_transition_leaves_no_orbit_pair_that_a_reduction_would_undo():
    """After a plus transition the scheme is exact, invariant and three terms longer, and no
    two of the orbits it touched (the two it changed, the new one) share two factors in any
    pair of their terms: splitting one orbit in two would leave such a pair, and the next
    flip on it would take the step straight back."""
    from mlo_exp.agents.flipgraph.c3 import expand_to_factors, plus_c3, rebuild_c3

    for seed in range(1, 12):
        agent = make_agent(4, walks=1, seed=seed)
        walks = agent.walks
        R, X, q, index = walks.R, walks.X, walks.q, walks.index
        rebuild_c3(R, X, q, index, 0, 4)
        before = R[0].copy()
        assert plus_c3(R, X, q, index, np.array([seed * 7919], dtype=np.uint64), 0, 4)
        factors = expand_to_factors(R[0], walks.FX[0], int(q[0]), int(walks.s[0]), 4)
        assert factors[0].shape[1] == walks.start_rank + 3
        assert verify(*factors, (4, 4, 4), "Z2").ok
        assert_invariant(factors, 4)
        new = int(q[0]) - 1
        touched = {o for o in range(new) if not np.array_equal(R[0, :, o], before[:, o])}
        assert len(touched) == 2
        touched.add(new)
        reducible = _reducible_pairs(X[0], int(q[0]))
        assert not {pair for pair in reducible if set(pair) <= touched}, seed
