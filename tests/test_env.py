import numpy as np
import pytest
import torch

from mlo_exp.algorithms.library import school, strassen
from mlo_exp.env import TensorGame


def _moves(algorithm):
    stacked = np.concatenate([algorithm.u, algorithm.v, algorithm.w])
    return torch.as_tensor(stacked.T.astype(np.int64))


def test_strassen_solves_2x2_in_exactly_seven_moves():
    game = TensorGame((2, 2, 2))
    state = game.reset(1)
    total = 0.0
    for r, move in enumerate(_moves(strassen())):
        assert not bool(state.done[0])
        state, reward, info = game.step(state, move[None])
        total += float(reward[0])
        assert int(info["rank_used"][0]) == r + 1
    assert bool(state.solved[0]) and bool(state.done[0])
    assert float(game.info(state)["residual_norm"][0]) == 0.0
    assert total == -7.0
    # The game hands back exactly the moves played.
    u, v, w = game.factors(state, 0)
    s = strassen()
    assert np.array_equal(u, s.u) and np.array_equal(v, s.v) and np.array_equal(w, s.w)


def test_batched_games_advance_independently():
    game = TensorGame((2, 2, 2))
    moves = _moves(strassen())
    state = game.reset(2)
    other = _moves(school(2, 2, 2))[0]
    for move in moves:
        state, _, _ = game.step(state, torch.stack([move, other]))
    assert state.solved.tolist() == [True, False]
    assert state.moves.tolist() == [7, 7]


def test_finished_games_ignore_moves_and_earn_nothing():
    game = TensorGame((2, 2, 2), max_rank=8)
    state = game.reset(1)
    for move in _moves(strassen()):
        state, _, _ = game.step(state, move[None])
    residual = state.residual.clone()
    state, reward, _ = game.step(state, _moves(strassen())[:1])
    assert float(reward[0]) == 0.0 and int(state.moves[0]) == 7
    assert torch.equal(state.residual, residual)


def test_terminal_penalty_when_the_move_limit_is_reached():
    game = TensorGame((2, 2, 2), max_rank=2)
    state = game.reset(1)
    move = _moves(school(2, 2, 2))[0][None]
    state, reward, _ = game.step(state, move)
    assert float(reward[0]) == -1.0 and not bool(state.done[0])
    state, reward, info = game.step(state, _moves(school(2, 2, 2))[1][None])
    assert bool(state.done[0]) and not bool(state.solved[0])
    # The residual has 6 entries left; its first-mode slices have ranks summing to 6 - ...
    bound = float(TensorGame.residual_rank_bound(state.residual)[0])
    assert bound > 0
    assert float(reward[0]) == -1.0 - bound
    assert float(info["residual_norm"][0]) == pytest.approx(6**0.5)


def test_z2_game_reduces_modulo_two():
    game = TensorGame((2, 2, 2), coefficients=(0, 1), ring="Z2")
    state = game.reset(1)
    for move in _moves(strassen()) % 2:
        state, _, _ = game.step(state, move[None])
    assert bool(state.solved[0])
    assert set(state.residual.unique().tolist()) <= {0, 1}


def test_malformed_actions_raise_clear_errors():
    game = TensorGame((2, 2, 2))
    state = game.reset(1)
    with pytest.raises(ValueError, match=r"expected \(1, 12\)"):
        game.step(state, torch.zeros(1, 11, dtype=torch.int64))
    bad = torch.zeros(1, 12, dtype=torch.int64)
    bad[0, 5] = 2
    accepted = r"coefficient 2 at position 5; accepted coefficients: \[-1, 0, 1\]"
    with pytest.raises(ValueError, match=accepted):
        game.step(state, bad)
    with pytest.raises(ValueError, match="integers"):
        game.step(state, torch.full((1, 12), 0.5))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"coefficients": (0,)}, "non-zero"), ({"max_rank": 0}, "max_rank"),
     ({"ring": "Q"}, "ring"), ({"ring": "Z2", "coefficients": (-1, 1)}, "Z2")],
)
def test_bad_game_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TensorGame((2, 2, 2), **kwargs)


def test_actions_on_another_device_are_refused():
    game = TensorGame((2, 2, 2))
    actions = torch.zeros(1, game.action_dim, dtype=torch.int64, device="meta")
    with pytest.raises(ValueError, match="actions are on meta; the game plays on cpu"):
        game.step(game.reset(1), actions)


def test_a_device_torch_cannot_use_is_refused_when_the_game_is_built():
    bad = f"cuda:{torch.cuda.device_count()}" if torch.cuda.is_available() else "cuda"
    with pytest.raises(ValueError, match=f"device='{bad}' is not usable here.*accepted: cpu"):
        TensorGame((2, 2, 2), device=bad)
