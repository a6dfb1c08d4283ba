"""The device rule for the MCTS agent (see ``test_devices``): every tensor it creates names
its device. The tree's statistics (visits, priors) are NumPy arrays by design; the audit here
checks the factories, on the CPU and, where there is one, on a GPU."""

from __future__ import annotations

import pytest

from mlo_exp.agents.mcts import MctsAgent
from mlo_exp.env import TensorGame
from tests.agents.test_devices import DEVICES, DeviceAudit

SMALL = dict(batch_size=2, simulations=2, candidates=3, hidden=16, decoder_hidden=8,
             pretrain_steps=2, train_steps=1, train_batch=8, buffer_size=32, chains=3,
             resample_steps=2, resample_candidates=3, basis_change=1.0, basis_elementary=1.0)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("proposals", ["network", "sparse"])
def test_every_tensor_factory_of_the_mcts_agent_names_its_device(device, proposals):
    game = TensorGame((2, 2, 2), device=device)
    with DeviceAudit(game.device) as audit:
        agent = MctsAgent(game, seed=0, proposals=proposals, **SMALL)
        agent.run_episode()
        agent.load_state_dict(agent.state_dict())
        agent.run_episode()
    factories = [v for v in audit.violations if "without device=" in v]
    assert factories == []
