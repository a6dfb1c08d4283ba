"""``logger=many``: several backends from one option, each built and failing on its own."""

# Fixtures come from logger_fixtures (imported, since a tests/loggers/conftest.py would
# shadow tests/conftest.py); pytest fixture arguments re-bind their names by design.
# ruff: noqa: F811

from __future__ import annotations

import pytest

from mlo_exp.config import ConfigError, validate
from mlo_exp.run import experiment
from mlo_exp.run_context import RunContext
from tests.loggers.logger_fixtures import offline_wandb, run_context  # noqa: F401


def member_names(cfg, run: RunContext) -> list[str]:
    group = experiment.build_logger(cfg, run)
    return [type(m).__name__ for m in group.loggers]


def test_many_builds_every_backend_plus_console_and_files(compose_config, run_context):
    cfg = compose_config(["logger=many", "logger.backends.wandb.mode=offline"])
    assert member_names(cfg, run_context) == ["FilesLogger", "ConsoleLogger", "WandbLogger",
                                              "TensorBoardLogger"]
    cfg = compose_config(["logger=many", "~logger.backends.wandb"])
    assert member_names(cfg, run_context) == ["FilesLogger", "ConsoleLogger",
                                              "TensorBoardLogger"]


def test_many_isolates_a_backend_that_cannot_be_built(compose_config, run_context):
    cfg = compose_config(["logger=many", "logger.backends.tensorboard._target_=no.such.Logger"])
    group = experiment.build_logger(cfg, run_context)
    assert [type(m).__name__ for m in group.loggers] == ["FilesLogger", "ConsoleLogger",
                                                         "WandbLogger"]
    assert group.failures["tensorboard"].startswith("setup: ")


@pytest.mark.parametrize("override, key", [
    ("logger.mode=sometimes", "logger.mode"),
    ("logger.init_timeout_s=0", "logger.init_timeout_s"),
    ("logger.entity=my/team", "logger.entity"),
])
def test_bad_wandb_settings_name_the_key(compose_config, override, key):
    with pytest.raises(ConfigError) as caught:
        validate(compose_config(["logger=wandb", override]))
    assert caught.value.key == key and "accepted" in str(caught.value)


def test_wandb_defaults_compose(compose_config):
    settings = validate(compose_config(["logger=wandb", "logger.entity=my-team",
                                        "logger.tags=[a,b]"]))
    assert settings.logger.entity == "my-team" and settings.logger.tags == ["a", "b"]
    assert settings.logger.mode is None  # WANDB_MODE, else online
