"""One source of truth for every default: the schema dataclasses in ``config.py`` hold the
defaults, each YAML option holds its ``_target_`` and only what differs from its schema, and
the constructors take what they are given (their settings are the schema built from it)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml
from hydra.core.config_store import ConfigStore
from hydra.utils import instantiate
from omegaconf import MISSING, OmegaConf

from mlo_exp import config
from mlo_exp.env import TensorGame
from mlo_exp.run_context import RunContext
from tests.conftest import CONF, group_options

SETTING_GROUPS = ("agent", "logger", "checkpoint", "plot", "benchmark")


def schema_of(option_file: Path) -> dict | None:
    """The defaults of the schema an option extends (``/schema/<group>@_here_: name``)."""
    data = yaml.safe_load(option_file.read_text()) or {}
    for entry in data.get("defaults", []):
        if isinstance(entry, dict):
            for key, name in entry.items():
                if key.startswith("/schema/"):
                    group = key[1:].split("@")[0]
                    node = ConfigStore.instance().repo
                    for part in group.split("/"):
                        node = node[part]
                    return OmegaConf.to_container(node[f"{name}.yaml"].node)
    return None


def option_files() -> list[Path]:
    return sorted(p for group in (*SETTING_GROUPS, "env", "trainer")
                  for p in (CONF / group).glob("*.yaml"))


@pytest.mark.parametrize("path", option_files(), ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_no_option_restates_a_schema_default(path):
    data = yaml.safe_load(path.read_text()) or {}
    schema = schema_of(path)
    if path.parent.name == "env":
        schema = OmegaConf.to_container(OmegaConf.structured(config.EnvConfig))
    elif path.parent.name == "trainer":
        schema = OmegaConf.to_container(OmegaConf.structured(config.TrainerConfig))
    assert schema is not None, f"{path} extends no schema"
    restated = [key for key, value in data.items()
                if key not in ("defaults", "_target_") and schema.get(key, MISSING) == value]
    assert restated == [], f"{path} restates the schema's defaults of {restated}"
    assert schema.get("_target_") in (MISSING, None), "the _target_ belongs to the option"


def test_no_schema_names_a_target():
    for name, schema in vars(config).items():
        if dataclasses.is_dataclass(schema) and "_target_" in schema.__dataclass_fields__:
            default = schema.__dataclass_fields__["_target_"].default
            assert default in (MISSING, None), f"{name} states its _target_ ({default})"


def build(group: str, node, tmp_path: Path):
    if group == "agent":
        return instantiate(node, game=TensorGame([2, 2, 2]), seed=0, _convert_="all")
    if group == "logger":
        return instantiate(node, _convert_="all")
    factory = instantiate(node, _partial_=True, _convert_="all")
    return factory(run=RunContext.create(tmp_path, 0, ["test"]), logger=None)


@pytest.mark.parametrize(("group", "option"),
                         [(g, o) for g in SETTING_GROUPS for o in group_options(g)
                          if o not in ("none", "many")])
def test_every_option_reaches_its_constructor(compose_config, tmp_path, group, option):
    """Composed, validated, instantiated: the object's settings are the composed values,
    one changed on the command line included."""
    cfg = compose_config([f"{group}={option}"])
    config.validate(cfg)
    node = cfg[group]
    built = build(group, node, tmp_path)
    composed = {k: v for k, v in OmegaConf.to_container(node, resolve=True).items()
                if k != "_target_"}
    settings = {f.name: getattr(built.settings, f.name)
                for f in dataclasses.fields(built.settings) if f.name != "_target_"}
    assert settings == composed
    key = next(k for k, v in composed.items()
               if isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 1)
    changed = compose_config([f"{group}={option}", f"{group}.{key}={composed[key] + 1}"])
    assert getattr(build(group, changed[group], tmp_path).settings, key) == composed[key] + 1


@pytest.mark.parametrize("bundle", group_options("experiment"))
def test_no_experiment_bundle_restates_what_its_options_give(compose_config, bundle):
    """A bundle sets only what differs from its chosen options (``override /agent: X`` and the
    like) with their schemas: a restated default would be a second copy of it."""
    data = yaml.safe_load((CONF / "experiment" / f"{bundle}.yaml").read_text()) or {}
    chosen = [f"{key.split('/')[-1]}={value}" for entry in data.get("defaults", [])
              if isinstance(entry, dict) for key, value in entry.items()
              if key.startswith("override /")]
    without = OmegaConf.to_container(compose_config(chosen), resolve=False)
    restated = [f"{group}.{key}" for group, node in data.items()
                if isinstance(node, dict) and isinstance(without.get(group), dict)
                for key, value in node.items() if without[group].get(key, MISSING) == value]
    restated += [key for key, value in data.items()
                 if key != "defaults" and not isinstance(value, dict)
                 and without.get(key, MISSING) == value]
    assert restated == [], f"experiment/{bundle} restates {restated}"


def test_the_game_takes_its_defaults_from_the_env_schema():
    schema = config.EnvConfig(shape=[2, 2, 2])
    game = TensorGame([2, 2, 2])
    assert (list(game.coefficients), game.ring) == (sorted(schema.coefficients), schema.ring)
