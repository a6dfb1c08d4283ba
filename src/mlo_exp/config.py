"""Structured-config schemas, registered in Hydra's ConfigStore.

Hydra checks types and unknown keys against these dataclasses while composing; the value
checks that types cannot express (a shape entry < 1, an empty coefficient set, ...) run in
``__post_init__`` when :func:`validate` turns the composed config into objects. Every
failure is a :class:`ConfigError` naming the key, the value and what is accepted.

Groups mirror code folders: ``conf/agent/<name>.yaml`` extends the schema stored here as
``schema/agent/<name>`` (``defaults: [/schema/agent@_here_: <name>]``) and sets
``_target_`` to the class in ``mlo_exp/agents/<name>.py``. Schemas live in the ``schema/``
groups so they never show up as selectable options.

Layout of this file: one section per config group; each section keeps its schemas and
their ConfigStore registrations together.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

cs = ConfigStore.instance()

# A random token per process for run-directory names: two runs started in the same second
# (or two sweeps) never share a directory.
_PROCESS_TOKEN = secrets.token_hex(3)
OmegaConf.register_new_resolver("mlo_token", lambda: _PROCESS_TOKEN, replace=True)


def config_dir() -> Path:
    """The ``conf/`` directory: inside the installed package, else the source checkout's."""
    packaged = Path(__file__).resolve().parent / "conf"
    return packaged if packaged.is_dir() else Path(__file__).resolve().parents[2] / "conf"


class ConfigError(ValueError):
    """A user-caused configuration mistake: ``key``, ``value`` and what is ``accepted``."""

    def __init__(self, key: str, value: Any, accepted: str) -> None:
        self.key, self.value, self.accepted = key, value, accepted
        super().__init__(f"{key}={value!r} is invalid; accepted: {accepted}")


def _check(condition: bool, key: str, value: Any, accepted: str) -> None:
    if not condition:
        raise ConfigError(key, value, accepted)


def _positive(group: str, name: str, value: Any, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    _check(value is not None and value >= 1, f"{group}.{name}", value,
           "an integer >= 1" + (" or null" if allow_none else ""))


# --- env ----------------------------------------------------------------------------------
@dataclass
class EnvConfig:
    """The TensorGame: decompose ``T<shape>`` with coefficients from ``coefficients``."""

    group: ClassVar[str] = "env"
    name: str = "matmul"
    shape: list[int] = field(default_factory=lambda: [2, 2, 2])
    coefficients: list[int] = field(default_factory=lambda: [-1, 0, 1])
    ring: str = "Z"
    max_rank: Optional[int] = None  # None: n*m*p, the school method's rank

    def __post_init__(self) -> None:
        shape = list(self.shape)
        _check(len(shape) == 3, "env.shape", shape, "three integers [n, m, p], each >= 1")
        for index, size in enumerate(shape):
            _check(size >= 1, f"env.shape[{index}]", size, "an integer >= 1")
        _check(self.ring in ("Z", "Z2"), "env.ring", self.ring, "Z or Z2")
        coefficients = list(self.coefficients)
        _check(any(c != 0 for c in coefficients), "env.coefficients", coefficients,
               "a list with at least one non-zero integer, e.g. [-1, 0, 1]")
        if self.ring == "Z2":
            _check(set(coefficients) <= {0, 1}, "env.coefficients", coefficients,
                   "a subset of [0, 1] when env.ring=Z2")
        _positive("env", "max_rank", self.max_rank, allow_none=True)



# --- agent --------------------------------------------------------------------------------
@dataclass
class AgentConfig:
    """Fields every agent takes; each agent's schema adds its own."""

    _target_: str = MISSING
    batch_size: int = 16

    def __post_init__(self) -> None:
        _positive("agent", "batch_size", self.batch_size)


@dataclass
class RandomAgentConfig(AgentConfig):
    _target_: str = "mlo_exp.agents.random.RandomAgent"


@dataclass
class GreedyAgentConfig(AgentConfig):
    _target_: str = "mlo_exp.agents.greedy.GreedyAgent"
    batch_size: int = 4
    max_candidates: int = 20000

    def __post_init__(self) -> None:
        super().__post_init__()
        _positive("agent", "max_candidates", self.max_candidates)


@dataclass
class PairPolicyAgentConfig(AgentConfig):
    """Actor-critic over (u, v) pairs with exact w (see mlo_exp/agents/pair_policy.py)."""

    _target_: str = "mlo_exp.agents.pair_policy.PairPolicyAgent"
    batch_size: int = 64
    steps_per_episode: int = 25
    restart_steps: int = 600
    prior_weight: float = 16.0
    max_candidates: int = 20000
    hidden: int = 128
    heads: int = 4
    learning_rate: float = 1e-3
    advantage_temperature: float = 1.0
    learn_candidates: int = 2048
    threads: Optional[int] = 1  # torch intra-op threads for the process; null: leave as is
    max_nonzeros: Optional[int] = 2  # sparsity prior on u and v; null: any number of entries

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("steps_per_episode", "restart_steps", "max_candidates", "hidden", "heads",
                     "learn_candidates"):
            _positive("agent", name, getattr(self, name))
        _positive("agent", "threads", self.threads, allow_none=True)
        _positive("agent", "max_nonzeros", self.max_nonzeros, allow_none=True)
        _check(self.prior_weight >= 0, "agent.prior_weight", self.prior_weight, "a number >= 0")
        _check(self.learning_rate >= 0, "agent.learning_rate", self.learning_rate,
               "a number >= 0 (0: the network never learns, an ablation)")
        _check(self.advantage_temperature > 0, "agent.advantage_temperature",
               self.advantage_temperature, "a number > 0")


cs.store(name="random", group="schema/agent", node=RandomAgentConfig)
cs.store(name="greedy", group="schema/agent", node=GreedyAgentConfig)
cs.store(name="pair_policy", group="schema/agent", node=PairPolicyAgentConfig)


# --- logger -------------------------------------------------------------------------------
@dataclass
class ConsoleLoggerConfig:
    """Progress on the console; the run files (metrics.jsonl, episodes.csv) are always on."""

    _target_: str = "mlo_exp.loggers.console.ConsoleLogger"
    print_every_s: float = 2.0
    progress_bar: bool = True

    def __post_init__(self) -> None:
        _check(self.print_every_s >= 0, "logger.print_every_s", self.print_every_s,
               "seconds >= 0 (0 prints every episode)")


cs.store(name="console", group="schema/logger", node=ConsoleLoggerConfig)


# --- checkpoint ---------------------------------------------------------------------------
@dataclass
class DisabledComponentConfig:
    """``none``: the component is switched off."""

    _target_: Optional[str] = None


cs.store(name="none", group="schema/checkpoint", node=DisabledComponentConfig)


# --- benchmark ----------------------------------------------------------------------------
cs.store(name="none", group="schema/benchmark", node=DisabledComponentConfig)


# --- plot ---------------------------------------------------------------------------------
cs.store(name="none", group="schema/plot", node=DisabledComponentConfig)


# --- trainer ------------------------------------------------------------------------------
@dataclass
class TrainerConfig:
    """The episode loop's budget. The run stops at whichever limit comes first."""

    episodes: int = 200
    time_limit_s: Optional[float] = 90.0
    # Stop once a verified algorithm of at most this rank is found. None: the best known rank
    # for the shape (reference data), so a run that matches the record ends early.
    stop_at_rank: Optional[int] = None

    def __post_init__(self) -> None:
        _positive("trainer", "episodes", self.episodes)
        _check(self.time_limit_s is None or self.time_limit_s > 0, "trainer.time_limit_s",
               self.time_limit_s, "seconds > 0, or null for no limit")
        _positive("trainer", "stop_at_rank", self.stop_at_rank, allow_none=True)



# --- the whole run ------------------------------------------------------------------------
@dataclass
class RunConfig:
    """The composed config: one node per group plus run-wide keys."""

    env: EnvConfig = MISSING
    agent: Any = MISSING
    logger: Any = MISSING
    checkpoint: Any = MISSING
    benchmark: Any = MISSING
    plot: Any = MISSING
    trainer: TrainerConfig = MISSING
    seed: int = 0
    device: str = "cpu"
    # Extra words for the run name (cleanrl style: env__agent__seed__tag).
    tag: Optional[str] = None

    def __post_init__(self) -> None:
        _check(self.seed >= 0, "seed", self.seed, "an integer >= 0")
        _check(re.fullmatch(r"cpu|cuda(:\d+)?", self.device) is not None, "device", self.device,
               "cpu, cuda or cuda:N")
        if self.tag is not None:
            _check(re.fullmatch(r"[A-Za-z0-9_.-]{1,40}", self.tag) is not None, "tag", self.tag,
                   "1-40 letters, digits, '.', '_' or '-'")
        if self.trainer.stop_at_rank is not None and self.env.max_rank is not None:
            _check(self.trainer.stop_at_rank <= self.env.max_rank, "trainer.stop_at_rank",
                   self.trainer.stop_at_rank, f"at most env.max_rank ({self.env.max_rank})")


cs.store(name="config_schema", node=RunConfig)


def validate(cfg: DictConfig) -> RunConfig:
    """Run every value check; returns the config as objects or raises :class:`ConfigError`."""
    try:
        return OmegaConf.to_object(cfg)  # type: ignore[return-value]
    except ConfigError:
        raise
    except Exception as error:  # OmegaConf wraps errors raised in __post_init__
        cause = error.__cause__ or error.__context__
        while cause is not None and not isinstance(cause, ConfigError):
            cause = cause.__cause__ or cause.__context__
        if isinstance(cause, ConfigError):
            raise cause from None
        raise
