import torch

from mlo_exp.agents.random import RandomAgent
from mlo_exp.env import TensorGame


def test_random_moves_are_valid_and_never_have_a_zero_factor():
    game = TensorGame((2, 2, 3))
    agent = RandomAgent(game, seed=0, batch_size=256)
    actions = agent.act(game.reset(256))
    assert actions.shape == (256, game.action_dim)
    assert set(actions.unique().tolist()) <= {-1, 0, 1}
    for factor in game.split(actions):
        assert bool((factor != 0).any(dim=1).all())


def test_random_agent_is_reproducible_and_resumable():
    game = TensorGame((2, 2, 2))
    first = RandomAgent(game, seed=3)
    saved = first.state_dict()
    a = [first.run_episode().reward for _ in range(3)]
    second = RandomAgent(game, seed=99)
    second.load_state_dict(saved)
    b = [second.run_episode().reward for _ in range(3)]
    assert a == b
    assert torch.equal(RandomAgent(game, seed=3).act(game.reset(4)),
                       RandomAgent(game, seed=3).act(game.reset(4)))
