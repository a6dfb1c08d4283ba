import numpy as np
import pytest

from mlo_exp.agents.greedy import GreedyAgent
from mlo_exp.algorithms.algorithm import Algorithm
from mlo_exp.env import TensorGame


@pytest.mark.parametrize(("shape", "ring", "coefficients"),
                         [((2, 2, 2), "Z", (-1, 0, 1)), ((2, 2, 3), "Z", (-1, 0, 1)),
                          ((2, 2, 2), "Z2", (0, 1))])
def test_greedy_reaches_the_school_rank_with_a_verified_algorithm(shape, ring, coefficients):
    game = TensorGame(shape, coefficients, ring=ring)
    result = GreedyAgent(game, seed=0, batch_size=2).run_episode()
    n, m, p = shape
    assert result.solved and result.rank_used == n * m * p
    assert Algorithm(shape, *result.factors, ring=ring).verify().ok


def test_greedy_samples_candidates_when_enumeration_is_too_large():
    game = TensorGame((3, 3, 3))
    agent = GreedyAgent(game, seed=0, batch_size=1, max_candidates=500)
    assert agent._enumerated is None
    result = agent.run_episode()
    assert result.solved and result.rank_used == 27


def test_bad_settings():
    with pytest.raises(ValueError, match="max_candidates"):
        GreedyAgent(TensorGame((2, 2, 2)), seed=0, max_candidates=0)


def test_greedy_resumes_exactly_from_its_state():
    """The sampled candidates come from the generator: its state is all greedy carries."""
    game = TensorGame((3, 3, 3))
    first = GreedyAgent(game, seed=0, batch_size=1, max_candidates=300)
    first.run_episode()
    state = first.state_dict()
    expected = [first.run_episode().factors for _ in range(2)]
    second = GreedyAgent(game, seed=9, batch_size=1, max_candidates=300)
    second.load_state_dict(state)
    for factors, again in zip(expected, (second.run_episode().factors for _ in range(2)),
                              strict=True):
        assert all(np.array_equal(a, b) for a, b in zip(factors, again, strict=True))
