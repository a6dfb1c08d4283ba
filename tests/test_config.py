"""Compose tests over every option of every group, and the value checks."""

import pytest
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

from mlo_exp.config import ConfigError, RunConfig, validate
from tests.conftest import group_options

GROUPS = ["env", "agent", "logger", "checkpoint", "plot", "benchmark", "trainer", "experiment"]


def test_defaults_compose_and_validate(compose_config):
    cfg = compose_config()
    settings = validate(cfg)
    assert isinstance(settings, RunConfig)
    assert settings.env.shape == [2, 2, 2] and settings.env.coefficients == [-1, 0, 1]


@pytest.mark.parametrize(("group", "option"),
                         [(g, o) for g in GROUPS for o in group_options(g)])
def test_every_group_option_composes_and_validates(compose_config, group, option):
    cfg = compose_config([f"{group}={option}"])
    validate(cfg)
    if group != "experiment":
        assert OmegaConf.select(cfg, group) is not None


@pytest.mark.parametrize("group", [g for g in GROUPS if g != "experiment"])
def test_every_group_has_options(group):
    assert group_options(group)


def test_overrides_reach_the_config(compose_config):
    cfg = compose_config(["env.shape=[2,2,3]", "seed=4", "agent=random", "agent.batch_size=8"])
    settings = validate(cfg)
    assert settings.env.shape == [2, 2, 3] and settings.seed == 4
    assert cfg.agent._target_.endswith("RandomAgent") and settings.agent.batch_size == 8


@pytest.mark.parametrize(
    ("override", "key", "accepted"),
    [
        ("env.shape=[0,2,2]", "env.shape[0]", "an integer >= 1"),
        ("env.shape=[2,2]", "env.shape", "three integers"),
        ("env.coefficients=[]", "env.coefficients", "at least one non-zero"),
        ("env.coefficients=[0]", "env.coefficients", "at least one non-zero"),
        ("env.max_rank=0", "env.max_rank", "an integer >= 1 or null"),
        ("env.ring=Q", "env.ring", "Z or Z2"),
        ("trainer.episodes=0", "trainer.episodes", "an integer >= 1"),
        ("trainer.time_limit_s=-1", "trainer.time_limit_s", "seconds > 0"),
        ("agent.batch_size=0", "agent.batch_size", "an integer >= 1"),
        ("seed=-1", "seed", "an integer >= 0"),
        ("device=tpu", "device", "cpu, cuda or cuda:N"),
        ("tag=has space", "tag", "letters, digits"),
    ],
)
def test_invalid_values_name_the_key_the_value_and_what_is_accepted(
        compose_config, override, key, accepted):
    cfg = compose_config([override])
    with pytest.raises(ConfigError) as error:
        validate(cfg)
    assert error.value.key == key
    assert accepted in str(error.value)
    assert str(error.value).startswith(f"{key}=")


@pytest.mark.parametrize(
    ("override", "message"),
    [("agent=nope", "Could not find 'agent/nope'"),
     ("env.max_rank=abc", "could not be converted to Integer"),
     ("env.shpe=[2,2]", "Key 'shpe' not in 'EnvConfig'")],
)
def test_hydra_rejects_unknown_options_keys_and_types(compose_config, override, message):
    with pytest.raises(ConfigCompositionException) as error:
        compose_config([override])
    assert message in str(error.value) + str(error.value.__cause__)


def test_schemas_are_not_selectable_options():
    assert "greedy" in group_options("agent")
    assert not any(option.endswith("schema") for option in group_options("agent"))
