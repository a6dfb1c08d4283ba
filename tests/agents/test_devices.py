"""The device rule: the game and every game-playing agent compute on ``game.device``.

There is no GPU here, so the rule is checked by construction, on the CPU: a
:class:`~torch.overrides.TorchFunctionMode` watches every torch call that ``mlo_exp`` code makes
while an agent is built and plays, and records

* a tensor factory (``torch.zeros``, ``torch.tensor``, ``torch.rand``, ...) called without
  ``device=``: it would make a CPU tensor whatever the game's device;
* a move off the device (``.cpu()``, ``.numpy()``, ``.to(<other device>)``), except where the
  game hands its results back (:meth:`TensorGame.factors`);
* while playing, a tensor result that is not on ``game.device`` (on a GPU machine, where
  these tests also run with ``cuda``, this is the direct check).
"""

from __future__ import annotations

import sys

import pytest
import torch
from torch.overrides import TorchFunctionMode

from mlo_exp.agents.flipgraph import FlipGraphAgent
from mlo_exp.agents.greedy import GreedyAgent
from mlo_exp.agents.pair_policy import PairPolicyAgent
from mlo_exp.agents.random import RandomAgent
from mlo_exp.env import TensorGame

FACTORIES = {torch.zeros, torch.ones, torch.empty, torch.full, torch.arange, torch.eye,
             torch.tensor, torch.as_tensor, torch.rand, torch.randn, torch.randint,
             torch.randperm, torch.linspace, torch.logspace}
MOVES = {torch.Tensor.cpu, torch.Tensor.numpy, torch.Tensor.to}
RESULT_EXITS = {"factors"}  # TensorGame.factors: the moves as NumPy arrays, by design

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA device here"))]


def _caller():
    """The first frame outside torch (and outside this module) of the current torch call."""
    frame = sys._getframe(2)
    while frame is not None:
        name = frame.f_globals.get("__name__", "")
        if not (name == "torch" or name.startswith("torch.") or name == __name__):
            return frame
        frame = frame.f_back
    return None


class DeviceAudit(TorchFunctionMode):
    """Records device-rule violations of ``mlo_exp`` code (see the module docstring)."""

    def __init__(self, device: torch.device, check_results: bool = False) -> None:
        super().__init__()
        self.device, self.check_results = device, check_results
        self.violations: list[str] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        result = func(*args, **kwargs)
        frame = _caller()
        if frame is None or not frame.f_globals.get("__name__", "").startswith("mlo_exp"):
            return result
        where = f"{frame.f_code.co_filename.rsplit('/', 1)[-1]}:{frame.f_lineno} " \
                f"({frame.f_code.co_name})"
        name = getattr(func, "__name__", str(func))
        if func in FACTORIES and kwargs.get("device") is None:
            self.violations.append(f"torch.{name} without device= at {where}")
        if func in MOVES and frame.f_code.co_name not in RESULT_EXITS:
            target = None if func is not torch.Tensor.to else _target_device(args, kwargs)
            if func is not torch.Tensor.to or (target is not None and target != self.device):
                self.violations.append(f"Tensor.{name} off {self.device} at {where}")
        if self.check_results:
            for tensor in _tensors(result):
                if tensor.device != self.device:
                    self.violations.append(f"{name} made a tensor on {tensor.device} at {where}")
        return result


def _target_device(args, kwargs) -> torch.device | None:
    for value in (*args[1:], kwargs.get("device")):
        if isinstance(value, (str, torch.device)):
            return torch.device(value)
    return None


def _tensors(value):
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _tensors(item)


AGENTS = {
    "random": lambda game: RandomAgent(game, seed=0, batch_size=4),
    "greedy": lambda game: GreedyAgent(game, seed=0, batch_size=2),
    "greedy-sampled": lambda game: GreedyAgent(game, seed=0, batch_size=2, max_candidates=200),
    "pair_policy": lambda game: PairPolicyAgent(game, seed=0, batch_size=4, steps_per_episode=3,
                                                max_nonzeros=2),
    "pair_policy-pool": lambda game: PairPolicyAgent(game, seed=0, batch_size=4,
                                                     steps_per_episode=3, max_candidates=300,
                                                     learn_candidates=50, max_nonzeros=None),
}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", sorted(AGENTS))
def test_agents_create_every_tensor_on_the_game_device(name, device):
    game = TensorGame((2, 2, 2), device=device)
    with DeviceAudit(game.device) as audit:
        agent = AGENTS[name](game)
    assert agent.device == game.device and agent.generator.device.type == game.device.type
    with DeviceAudit(game.device, check_results=True) as playing:
        # pair_policy: a warm-up episode, then search and learning
        results = [agent.run_episode() for _ in range(3 if name.startswith("pair") else 1)]
        agent.load_state_dict(agent.state_dict())
        results.append(agent.run_episode())
    assert audit.violations + playing.violations == []
    assert all(r.factors is not None for r in results)
    if name.startswith("pair_policy"):
        assert "policy_loss" in results[-1].metrics  # the learning step ran under the audit too
        assert all(p.device == game.device for p in agent.network.parameters())


@pytest.mark.parametrize("device", DEVICES)
def test_the_game_keeps_to_its_device(device):
    game = TensorGame((2, 2, 2), device=device)
    with DeviceAudit(game.device, check_results=True) as audit:
        state = game.reset(3)
        actions = torch.zeros(3, game.action_dim, dtype=torch.int64, device=game.device)
        actions[:, [0, 4, 8]] = 1
        state, reward, info = game.step(state, actions)
        game.factors(state, 0)
    assert audit.violations == []
    assert reward.device == game.device and info["residual_norm"].device == game.device


CARELESS = """
import torch
from mlo_exp.agents.random import RandomAgent

class Careless(RandomAgent):
    def act(self, state, plan=None):
        careless = torch.zeros(state.batch_size, 1, dtype=torch.int64)  # no device=
        actions = super().act(state, plan).cpu()
        return (actions + careless).to(self.device)
"""


def test_the_audit_sees_a_tensor_made_or_moved_off_the_device():
    """The check itself: an agent that makes a CPU tensor is caught, on any device."""
    namespace = {"__name__": "mlo_exp.agents.careless"}  # audited as the package's own code
    exec(compile(CARELESS, "careless.py", "exec"), namespace)
    game = TensorGame((2, 2, 2))
    with DeviceAudit(game.device) as audit:
        namespace["Careless"](game, seed=0, batch_size=2).run_episode()
    assert any("torch.zeros without device=" in v for v in audit.violations)
    assert any("Tensor.cpu off cpu" in v for v in audit.violations)


def test_agents_refuse_a_device_type_they_cannot_compute_on():
    game = TensorGame((2, 2, 2), device="meta")
    for build in (RandomAgent, GreedyAgent, PairPolicyAgent):
        with pytest.raises(ValueError, match="computes on cpu or cuda; the game's device is meta"):
            build(game, seed=0)


def test_flipgraph_searches_on_the_cpu_whatever_the_game_device():
    game = TensorGame((2, 2, 2), device="meta")
    agent = FlipGraphAgent(game, seed=0, walks=2, flips_per_episode=100, plateau_flips=50)
    assert agent.device == torch.device("cpu") and agent.generator.device.type == "cpu"
    result = agent.run_episode()
    assert result.solved and result.rank_used <= 8


def test_a_cuda_generator_state_resumes_on_the_cpu_reproducibly(caplog):
    """A checkpoint of a GPU run (its generator state is a CUDA one) loads on the CPU: the
    generator continues from a seed derived from it, with a warning, not an error."""
    game = TensorGame((2, 2, 2))
    state = RandomAgent(game, seed=1).state_dict()
    state.update(generator=torch.arange(16, dtype=torch.uint8), generator_device="cuda")
    first, second = RandomAgent(game, seed=5), RandomAgent(game, seed=7)
    first.load_state_dict(state)
    second.load_state_dict(state)
    assert "was a cuda generator" in caplog.text
    assert first.run_episode().reward == second.run_episode().reward
