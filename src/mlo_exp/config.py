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

Length: about 700 lines on purpose: every schema and default in one file is the single
source of truth that ``tests/test_config_defaults.py`` checks the YAML options and bundles
against.
"""

from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

cs = ConfigStore.instance()

# A random token per process for run-directory names: two runs started in the same second
# (or two sweeps) never share a directory. Drawn at import, so a sweep's workers forked from
# the launching process resolve the same sweep directory as it does.
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

    def __reduce__(self):  # picklable: sweep launchers send a failed job's error back
        return type(self), (self.key, self.value, self.accepted)


def _check(condition: bool, key: str, value: Any, accepted: str) -> None:
    if not condition:
        raise ConfigError(key, value, accepted)


def available_memory_bytes() -> int | None:
    """Memory a new allocation can have now: ``MemAvailable`` of ``/proc/meminfo`` (Linux),
    else free physical pages; None where neither can be read (then nothing is refused)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, AttributeError):
        return None


def _gib(size: float) -> str:
    return f"{size / 2**30:.3g} GiB"


def _fits_in_memory(key: str, value: Any, needed: float, what: str) -> None:
    """Refuse ``key=value`` when ``needed`` bytes (for ``what``) exceed the memory available
    now: the run would otherwise start, write its directory and die of a MemoryError."""
    available = available_memory_bytes()
    if available is not None and needed > available:
        raise ConfigError(key, value, f"a smaller value ({what} need about {_gib(needed)}; "
                                      f"{_gib(available)} of memory is available here)")


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
    shape: list[int] = MISSING  # every env option names its shape
    coefficients: list[int] = field(default_factory=lambda: [-1, 0, 1])
    ring: str = "Z"
    max_rank: int | None = None  # None: n*m*p, the school method's rank

    def __post_init__(self) -> None:
        shape = list(self.shape)
        _check(len(shape) == 3, "env.shape", shape, "three integers [n, m, p], each >= 1")
        for index, size in enumerate(shape):
            _check(size >= 1, f"env.shape[{index}]", size, "an integer >= 1")
        _check(self.ring in ("Z", "Z2"), "env.ring", self.ring, "Z or Z2")
        coefficients = list(self.coefficients)
        _check(0 in coefficients and any(c != 0 for c in coefficients), "env.coefficients",
               coefficients, "a list of integers with 0 and at least one non-zero value "
               "(factors are sparse: a move leaves entries out), e.g. [-1, 0, 1]")
        if self.ring == "Z2":
            _check(set(coefficients) <= {0, 1}, "env.coefficients", coefficients,
                   "a subset of [0, 1] when env.ring=Z2")
        _positive("env", "max_rank", self.max_rank, allow_none=True)
        n, m, p = shape
        entries = (n * m) * (m * p) * (n * p)
        # T<n,m,p> is dense int64; a game holds it and at least one residual of that size.
        _fits_in_memory("env.shape", shape, 2 * 8 * entries,
                        f"the tensor T<{n},{m},{p}> ({n * m}x{m * p}x{n * p} int64 "
                        "entries) and a residual")



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
    """Uniform random moves (``mlo_exp.agents.random``)."""


@dataclass
class GreedyAgentConfig(AgentConfig):
    """Steepest descent on the residual norm (``mlo_exp.agents.greedy``)."""

    batch_size: int = 4
    max_candidates: int = 20000

    def __post_init__(self) -> None:
        super().__post_init__()
        _positive("agent", "max_candidates", self.max_candidates)


@dataclass
class FlipGraphAgentConfig(AgentConfig):
    """Flip-graph random walks (``mlo_exp.agents.flipgraph``, whose docstring says what each
    setting does); ``batch_size`` is unused."""

    batch_size: int = 1
    walks: int = 32
    flips_per_episode: int = 200_000  # flip attempts per walk per episode
    plateau_flips: int = 20_000  # flips without a reduction before a plus transition
    plus_slack: int = 3  # plus transitions keep a walk's rank <= its best rank + this...
    max_plus_slack: int = 6  # ...a limit raised by one per fruitless path, up to this
    path_flips: int = 5_000_000  # attempts without a new best before a walk goes back to it
    population: int = 64  # distinct schemes kept per rank at the frontier (restart sources)
    restart_after: int = 20  # episodes without improving before a walk restarts
    coefficient_bound: int | None = None  # over Z: |coefficient| <= this (None: from env)
    start_from: str | None = None  # algorithm file, library name, auto, built (None: school)
    # auto/built: the walks are spread over this many distinct lowest-rank starts (walk w
    # starts from the (w mod starts)-th); the run writes them to a folder (algorithms/starts.py)
    starts: int = 1
    threads: int | None = 1  # Python threads running walk chunks (None: all cores)
    symmetry: str = "none"  # "c3": C3-invariant schemes of <n,n,n> over Z2 (flipgraph_c3)
    # c3 without start_from: "pairs" (diagonal pairs make ceil(n/2) fixed terms, as
    # Moosbauer-Poole) or "school" (the school method: n fixed terms); see flipgraph_c3
    c3_start: str = "pairs"
    # c3: how a flip's pair is drawn: "term" (a uniform term, then a partner: a value weighs
    # as many terms as hold it), "term-draws" (the same, and every term drawn counts towards
    # plateau_flips, as the pre-issue-26 kernel counted its empty attempts) or "value" (every
    # flippable value alike); the comparison: perf/flipgraph_c3_diagnosis.md
    pair_draw: str = "term"
    # Z2: a reduction to a rank the search already reached whose result has fewer than this
    # many flippable values is refused (1: dead ends; 0: none refused); see flipgraph/__init__
    min_flippable: int = 0
    pool_dir: str | None = None  # folder shared by the jobs of one search (None: no pool)
    pool_every: int = 5  # episodes between publishing to / reading from the pool
    # walks on the shape one larger along this axis (n, m or p), each scheme restricted to the
    # run's shape every episode (flipgraph/projection.py); None: walks on the run's shape
    project_from: str | None = None
    library_name: ClassVar[str] = (r"auto|built|strassen|school-\d+x\d+x\d+"
                                   r"|alphatensor-\d+x\d+x\d+(-z2)?|best-\d+x\d+x\d+(-z|-q|-z2)?")

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("walks", "flips_per_episode", "plateau_flips", "restart_after"):
            _positive("agent", name, getattr(self, name))
        _check(self.plus_slack >= 0, "agent.plus_slack", self.plus_slack, "an integer >= 0")
        _check(self.max_plus_slack >= self.plus_slack, "agent.max_plus_slack",
               self.max_plus_slack, f"an integer >= agent.plus_slack ({self.plus_slack})")
        _check(self.path_flips >= 0, "agent.path_flips", self.path_flips,
               "an integer >= 0 (0: paths are not bounded)")
        _positive("agent", "population", self.population)
        _positive("agent", "coefficient_bound", self.coefficient_bound, allow_none=True)
        _positive("agent", "threads", self.threads, allow_none=True)
        _check(self.symmetry in ("none", "c3"), "agent.symmetry", self.symmetry, "none or c3")
        _check(self.c3_start in ("pairs", "school"), "agent.c3_start", self.c3_start,
               "pairs or school")
        _check(self.pair_draw in ("value", "term", "term-draws"), "agent.pair_draw",
               self.pair_draw, "value, term or term-draws")
        _check(self.min_flippable >= 0, "agent.min_flippable", self.min_flippable,
               "an integer >= 0 (0: no reduction refused)")
        _positive("agent", "pool_every", self.pool_every)
        _check(self.project_from in (None, "n", "m", "p"), "agent.project_from",
               self.project_from, "n, m, p or null")
        _check(self.project_from is None or self.symmetry == "none", "agent.project_from",
               self.project_from, "null with agent.symmetry=c3 (the larger shape is not square)")
        _positive("agent", "starts", self.starts)
        _check(self.starts == 1 or self.start_from is not None and (
               str(self.start_from).lower() in ("auto", "built")
               or Path(self.start_from).expanduser().is_dir()),
               "agent.starts", self.starts,
               "1 unless agent.start_from is auto or built (a file is one start)")
        _check(self.starts <= self.walks, "agent.starts", self.starts,
               f"at most agent.walks ({self.walks}): one walk per start at least")
        if self.start_from is not None:  # a library name is resolved by the run
            _check(Path(self.start_from).expanduser().is_file()
                   or Path(self.start_from).expanduser().is_dir()
                   or re.fullmatch(self.library_name, self.start_from, re.IGNORECASE) is not None,
                   "agent.start_from", self.start_from,
                   "an existing algorithm file (.json or flip-graph .txt) or folder of them "
                   "(one start per walk in turn), a library name "
                   "(strassen, school-NxMxP, alphatensor-NxMxP[-z2], best-NxMxP[-q|-z2]) or "
                   "auto (the best start the catalogue and scheme operations build) or built "
                   "(the same without the shape's own scheme)")


@dataclass
class PairPolicyAgentConfig(AgentConfig):
    """Actor-critic over (u, v) pairs with exact w (see mlo_exp/agents/pair_policy.py)."""

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
    max_nonzeros: int | None = 2  # sparsity prior on u and v; null: any number of entries

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("steps_per_episode", "restart_steps", "max_candidates", "hidden", "heads",
                     "learn_candidates"):
            _positive("agent", name, getattr(self, name))
        _positive("agent", "max_nonzeros", self.max_nonzeros, allow_none=True)
        _check(self.prior_weight >= 0, "agent.prior_weight", self.prior_weight, "a number >= 0")
        _check(self.learning_rate >= 0, "agent.learning_rate", self.learning_rate,
               "a number >= 0 (0: the network never learns, an ablation)")
        _check(self.advantage_temperature > 0, "agent.advantage_temperature",
               self.advantage_temperature, "a number > 0")


@dataclass
class MctsAgentConfig(AgentConfig):
    """Sampled MCTS and pair resampling with a policy-value network, and their controls (see
    mlo_exp/agents/mcts.py)."""

    batch_size: int = 32  # games searched at once per episode
    # Per move; 0: no tree (the move is the proposer's first sample). 0 by default: the tree
    # (e.g. 32) is a control that did not beat it in perf/discovery_mcts.md (issue 32).
    simulations: int = 0
    candidates: int = 16  # moves proposed per expanded node
    c_puct: float = 1.25  # PUCT exploration constant
    temperature: float = 1.0  # policy temperature when sampling candidate moves
    # Sizes and steps chosen for throughput (issue 32): at 256/128 wide, 32 steps an episode
    # and 1500 pretraining steps the learning row was 2.3x slower than the sparse prior.
    # Chosen on <2,2,2> seeds 0-9; measured on seeds 10-19: perf/discovery_mcts_throughput.md.
    hidden: int = 128  # torso width
    decoder_hidden: int = 64  # autoregressive decoder width
    history: int = 2  # last moves the network reads
    learning_rate: float = 1e-3  # Adam; 0: the network stays at its initialisation (a control)
    train_steps: int = 16  # Adam steps after each episode
    train_batch: int = 128  # states per step: half demonstrations, half replay
    demonstrations: bool = True  # false: no synthetic demonstrations, no pretraining
    pretrain_steps: int = 300  # demonstration-only steps before the first game
    demo_max_rank: int | None = None  # terms per demonstration at most; null: the move limit
    demo_nonzeros: int = 2  # the sparse prior: 1..this many non-zero entries per factor
    demo_pool: int = 1  # > 1: half the demonstrations are the most cancelling of this many
    buffer_size: int = 20000  # replay buffer (searched roots and resampling draws)
    basis_change: float = 0.5  # probability that a game is played on a changed basis
    basis_elementary: float = 0.25  # probability of each shear in a change of basis
    basis_shears: int = 1  # elementary matrices per basis matrix, at most
    value_scale: float | None = None  # returns are divided by this; null: the move limit
    resample_steps: int = 50  # per episode; 0: no pair resampling (an ablation)
    chains: int = 64  # sets of pairs resampled at once
    resample_candidates: int = 16  # few: the proposals must be good (learning matters)
    resample_temperature: float = 2.0  # policy temperature of the resampling proposals
    resample_beta: float = 16.0  # a pair is drawn with probability softmax(beta * gain)
    restart_steps: int = 400  # a chain starts afresh after this many steps
    # Who proposes candidate moves: "network" (the policy head; it learns) or "sparse" (the
    # control: the sparse prior of the demonstrations, no network evaluated, no learning).
    proposals: str = "network"
    # Share of each resampling step's candidates drawn from the sparse prior beside the
    # network's (0: all from the network; ignored with proposals=sparse).
    prior_share: float = 0.0
    # true: the network learns from demonstrations before the first game, then never again
    # (the control that tells whether self-play learning adds to the pretraining).
    freeze_after_pretraining: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        _check(self.proposals in ("network", "sparse"), "agent.proposals", self.proposals,
               "network (the policy network proposes and learns) or sparse (the sparse prior "
               "proposes: the control without a network)")
        for name in ("candidates", "hidden", "decoder_hidden", "train_batch", "demo_nonzeros",
                     "buffer_size", "demo_pool", "chains", "resample_candidates",
                     "restart_steps"):
            _positive("agent", name, getattr(self, name))
        for name in ("simulations", "history", "train_steps", "pretrain_steps", "basis_shears",
                     "resample_steps"):
            _check(getattr(self, name) >= 0, f"agent.{name}", getattr(self, name),
                   "an integer >= 0")
        _positive("agent", "demo_max_rank", self.demo_max_rank, allow_none=True)
        _check(self.c_puct > 0, "agent.c_puct", self.c_puct, "a number > 0")
        _check(self.temperature > 0, "agent.temperature", self.temperature, "a number > 0")
        _check(self.resample_temperature > 0, "agent.resample_temperature",
               self.resample_temperature, "a number > 0")
        _check(self.resample_beta >= 0, "agent.resample_beta", self.resample_beta,
               "a number >= 0")
        _check(self.learning_rate >= 0, "agent.learning_rate", self.learning_rate,
               "a number >= 0 (0: the network stays at its initialisation, an ablation)")
        _check(0 <= self.prior_share < 1, "agent.prior_share", self.prior_share,
               "a share in [0, 1) (0: every candidate from the network; proposals=sparse for "
               "the prior alone)")
        for name in ("basis_change", "basis_elementary"):
            _check(0 <= getattr(self, name) <= 1, f"agent.{name}", getattr(self, name),
                   "a probability in [0, 1]")
        _check(self.value_scale is None or self.value_scale > 0, "agent.value_scale",
               self.value_scale, "a number > 0 or null (the game's move limit)")


cs.store(name="random", group="schema/agent", node=RandomAgentConfig)
cs.store(name="greedy", group="schema/agent", node=GreedyAgentConfig)
cs.store(name="flipgraph", group="schema/agent", node=FlipGraphAgentConfig)
cs.store(name="pair_policy", group="schema/agent", node=PairPolicyAgentConfig)
cs.store(name="mcts", group="schema/agent", node=MctsAgentConfig)


# --- logger -------------------------------------------------------------------------------
@dataclass
class ConsoleLoggerConfig:
    """Progress on the console; the run files (metrics.jsonl, episodes.csv) are always on."""

    _target_: str = MISSING  # in the YAML option
    print_every_s: float = 2.0
    progress_bar: bool = True

    def __post_init__(self) -> None:
        _check(self.print_every_s >= 0, "logger.print_every_s", self.print_every_s,
               "seconds >= 0 (0 prints every episode)")


cs.store(name="console", group="schema/logger", node=ConsoleLoggerConfig)


@dataclass
class WandbLoggerConfig:
    """Weights & Biases. Null ``entity``/``project``/``mode`` fall back to ``WANDB_ENTITY``,
    ``WANDB_PROJECT`` (else ``mlo-exp``) and ``WANDB_MODE`` (else ``online``)."""

    _target_: str = MISSING  # in the YAML option
    entity: str | None = None  # a W&B user or team; null: WANDB_ENTITY or the key's default
    project: str | None = None
    group: str | None = None  # null: the sweep in a multirun, else no group
    tags: list[str] = field(default_factory=list)
    job_type: str = "train"
    notes: str | None = None
    mode: str | None = None  # online, offline, disabled
    init_timeout_s: float = 60.0
    table_every_s: float = 10.0  # how often the cumulative episode table gets new rows
    log_checkpoint_artifacts: bool = True
    system_metrics: bool = True  # W&B's CPU/GPU sampling and host metadata
    finish_timeout_s: float = 120.0  # longest wait for queued W&B work at the end
    episode_table: str = "incremental"  # or "full" (every row each time; W&B server < 0.70)

    def __post_init__(self) -> None:
        _check(self.mode in (None, "online", "offline", "disabled"), "logger.mode", self.mode,
               "online, offline, disabled, or null (WANDB_MODE, else online)")
        _check(self.episode_table in ("incremental", "full"), "logger.episode_table",
               self.episode_table, "incremental or full")
        for name in ("init_timeout_s", "finish_timeout_s"):
            _check(getattr(self, name) > 0, f"logger.{name}", getattr(self, name), "seconds > 0")
        _check(self.table_every_s >= 0, "logger.table_every_s", self.table_every_s,
               "seconds >= 0 (0 adds the rows after every episode)")
        for name in ("entity", "project"):
            value = getattr(self, name)
            _check(value is None or re.fullmatch(r"[^/\\#?%:\s][^/\\#?%:]{0,127}", value)
                   is not None, f"logger.{name}", value,
                   "1-128 characters without / \\ # ? % : (W&B's rule), or null")


@dataclass
class TensorBoardLoggerConfig:
    """TensorBoard event files in ``<run_dir>/tensorboard`` (``tensorboard --logdir``)."""

    _target_: str = MISSING  # in the YAML option
    subdir: str = "tensorboard"
    flush_secs: float = 10.0

    def __post_init__(self) -> None:
        _check(self.flush_secs > 0, "logger.flush_secs", self.flush_secs, "seconds > 0")
        _check(bool(self.subdir) and "/" not in self.subdir and self.subdir not in (".", ".."),
               "logger.subdir", self.subdir, "a plain directory name inside the run dir")


@dataclass
class ManyLoggersConfig:
    """Several backends at once: ``backends`` maps a name to a logger option's config."""

    _target_: str = MISSING  # in the YAML option
    _recursive_: bool = False  # each backend is built on its own, so one failing is isolated
    backends: dict[str, Any] = field(default_factory=dict)


cs.store(name="wandb", group="schema/logger", node=WandbLoggerConfig)
cs.store(name="tensorboard", group="schema/logger", node=TensorBoardLoggerConfig)
cs.store(name="many", group="schema/logger", node=ManyLoggersConfig)


# --- checkpoint ---------------------------------------------------------------------------
@dataclass
class DisabledComponentConfig:
    """``none``: the component is switched off."""

    _target_: str | None = None


@dataclass
class CheckpointConfig:
    """Checkpoints under ``<run dir>/checkpoints/`` (see :mod:`mlo_exp.run.checkpoint`).

    Saved after every ``every_episodes``-th episode (0: never periodically), after an
    episode with a new best algorithm (``on_new_best``), at the end, and on SIGINT/SIGTERM
    (``on_signal``). The newest ``keep_last`` are kept, plus the best one (``keep_best``).
    """

    _target_: str = MISSING  # in the YAML option
    every_episodes: int = 10
    keep_last: int = 3
    keep_best: bool = True
    on_new_best: bool = True
    on_signal: bool = True

    def __post_init__(self) -> None:
        _check(self.every_episodes >= 0, "checkpoint.every_episodes", self.every_episodes,
               "an integer >= 0 (0: no periodic checkpoints)")
        _positive("checkpoint", "keep_last", self.keep_last)


cs.store(name="none", group="schema/checkpoint", node=DisabledComponentConfig)
cs.store(name="default", group="schema/checkpoint", node=CheckpointConfig)


# --- benchmark ----------------------------------------------------------------------------
BENCHMARK_BACKENDS = ("auto", "cupy", "numpy")
BENCHMARK_DTYPES = ("float32", "float64")
BENCHMARK_MATRICES = 6  # N x N matrices a benchmark holds at once, at most (an estimate)
BENCHMARK_STRATEGIES = ("auto", "stream", "batched")
BENCHMARK_PLANS = ("reduced", "file", "naive")  # see mlo_exp.algorithms.additions


@dataclass
class BenchmarkConfig:
    """The post-run benchmark stage (``mlo_exp/benchmark/stage.py``) and ``mlo-benchmark``.

    ``sizes``: square sizes ``N`` (``N x N`` times ``N x N``); null picks sizes that fit the
    device (CPU: small, so a default run stays quick; GPU: 4096..16384 as memory allows).
    ``backend=cupy`` needs CuPy and a CUDA device (checked here, never a silent fallback).
    ``allow_tf32``: let CuPy use TF32 for fp32 products (algorithm and baseline alike).
    ``compare``: library algorithms benchmarked alongside the run's best (e.g. [strassen]).
    ``registry``: also append the rows to the SQLite results registry in the outputs root.
    ``plan``: ``reduced`` evaluates the block sums with shared subexpressions (and an
    equivalent scheme with fewer additions where one is known), or with an addition-reduced
    file's own plan when that has fewer; ``file`` uses such a file's plan as it is (else as
    ``reduced``); ``naive`` sums term by term.
    ``chain``: consecutive calls per timed sample (time / chain); null: 1 on the CPU, 10 on
    a GPU (short kernels are timed over several calls, as AlphaTensor's benchmark does).
    """

    _target_: str = MISSING  # in the YAML option
    backend: str = "auto"
    sizes: list[int] | None = None
    dtype: str = "float32"
    levels: int = 1
    warmup: int = 1
    repeats: int = 3
    strategy: str = "auto"
    allow_tf32: bool = False
    compare: list[str] = field(default_factory=list)
    registry: bool = True
    plan: str = "reduced"
    chain: int | None = None

    def __post_init__(self) -> None:
        _check(self.backend in BENCHMARK_BACKENDS, "benchmark.backend", self.backend,
               ", ".join(BENCHMARK_BACKENDS))
        _check(self.dtype in BENCHMARK_DTYPES, "benchmark.dtype", self.dtype,
               ", ".join(BENCHMARK_DTYPES))
        _check(self.strategy in BENCHMARK_STRATEGIES, "benchmark.strategy", self.strategy,
               ", ".join(BENCHMARK_STRATEGIES))
        _positive("benchmark", "levels", self.levels)
        _positive("benchmark", "repeats", self.repeats)
        _positive("benchmark", "chain", self.chain, allow_none=True)
        _check(self.plan in BENCHMARK_PLANS, "benchmark.plan", self.plan,
               ", ".join(BENCHMARK_PLANS))
        _check(self.warmup >= 0, "benchmark.warmup", self.warmup, "an integer >= 0")
        if self.sizes is not None:
            _check(len(self.sizes) > 0, "benchmark.sizes", self.sizes,
                   "a non-empty list of integers >= 1, or null for sizes that fit the device")
            for index, size in enumerate(self.sizes):
                _check(size >= 1, f"benchmark.sizes[{index}]", size, "an integer >= 1")
                if self.backend != "cupy":  # host memory (a GPU's is the stage's to check)
                    item = 4 if self.dtype == "float32" else 8
                    _fits_in_memory(f"benchmark.sizes[{index}]", size,
                                    BENCHMARK_MATRICES * item * size * size,
                                    f"{size}x{size} {self.dtype} matrices (A, B, the "
                                    "products and their blocks)")
        # compare's names and backend=cupy's device are checked by the stage itself
        # (mlo_exp.run.benchmark_stage), which knows the library and the devices.


cs.store(name="none", group="schema/benchmark", node=DisabledComponentConfig)
cs.store(name="default", group="schema/benchmark", node=BenchmarkConfig)


# --- plot ---------------------------------------------------------------------------------
@dataclass
class LivePlotConfig:
    """Live and final training figures (reward, residual norm, rank used per episode)."""

    _target_: str = MISSING  # in the YAML option
    live: bool = True  # a window when a display exists (single runs); else a PNG
    refresh_s: float = 5.0  # at least this long between live draws
    max_share: float = 0.02  # live drawing takes at most this share of wall time
    max_points: int = 2000  # points drawn per curve (long runs are thinned)
    filename: str = "training.png"  # in the run directory
    dpi: int = 90

    def __post_init__(self) -> None:
        _check(self.refresh_s > 0, "plot.refresh_s", self.refresh_s, "seconds > 0")
        _check(0 < self.max_share <= 1, "plot.max_share", self.max_share,
               "a fraction in (0, 1], e.g. 0.02")
        _check(self.max_points >= 10, "plot.max_points", self.max_points, "an integer >= 10")
        _check(re.fullmatch(r"[A-Za-z0-9_.-]+\.png", self.filename) is not None,
               "plot.filename", self.filename, "a file name ending in .png, no directories")
        _check(20 <= self.dpi <= 600, "plot.dpi", self.dpi, "an integer in [20, 600]")


cs.store(name="none", group="schema/plot", node=DisabledComponentConfig)
cs.store(name="live", group="schema/plot", node=LivePlotConfig)


# --- trainer ------------------------------------------------------------------------------
@dataclass
class TrainerConfig:
    """The episode loop's budget: the run stops at whichever set limit comes first, and
    ``summary.json``'s ``stop_reason`` says which (``target_rank``, ``episodes``,
    ``time_limit``, ``signal_*``, ...). Limits are checked between episodes, so a run ends
    after the episode during which its time ran out. Null switches a limit off; a time
    limit alone means time (``episodes`` is null by default), at least one of the two must
    be set."""

    episodes: int | None = None
    time_limit_s: float | None = 90.0
    # Stop once a verified algorithm of at most this rank is found. None: the best known rank
    # for the shape (reference data), so a run that matches the record ends early.
    stop_at_rank: int | None = None

    def __post_init__(self) -> None:
        _positive("trainer", "episodes", self.episodes, allow_none=True)
        _check(self.time_limit_s is None or self.time_limit_s > 0, "trainer.time_limit_s",
               self.time_limit_s, "seconds > 0, or null for no limit")
        _check(self.episodes is not None or self.time_limit_s is not None,
               "trainer.time_limit_s", self.time_limit_s,
               "seconds > 0 when trainer.episodes is null (a run needs one budget)")
        _positive("trainer", "stop_at_rank", self.stop_at_rank, allow_none=True)



# --- objective ----------------------------------------------------------------------------
@dataclass
class ObjectiveConfig:
    """What ``mlo-train`` returns to a sweeper (``hparams_search``; see
    :func:`mlo_exp.run.sweep.trial_objective`): the median over ``seeds`` runs (seeds
    ``seed``, ``seed + 1``, ... in ``<run dir>/seed<k>/``) of the time to the target rank, a
    miss scoring ``budget * (1 + rank gap)``."""

    seeds: int = 1

    def __post_init__(self) -> None:
        _positive("objective", "seeds", self.seeds)


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
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    seed: int = 0
    device: str = "cpu"
    # torch intra-op threads of the run's process (null: torch's default). The game's tensors
    # are small: on a loaded 2-core machine a second thread made pair_policy's steps about ten
    # times slower (38 vs 3 steps/s), and sweeps run one job per core.
    threads: int | None = 1
    # Extra words for the run name (cleanrl style: env__agent__seed__tag).
    tag: str | None = None
    # Continue a run from a checkpoint: null, auto, a run_id, a run directory or a .pt file
    # (see mlo_exp.run.resume).
    resume: str | None = None

    def __post_init__(self) -> None:
        _check(self.resume is None or str(self.resume).strip() != "", "resume", self.resume,
               "null, auto, a run_id, a run directory or a path to a .pt checkpoint")
        _check(0 <= self.seed < 2**32, "seed", self.seed,
               "an integer >= 0 and < 2**32 (NumPy's seed range)")
        n, m, p = self.env.shape
        batch = getattr(self.agent, "batch_size", None)
        if isinstance(batch, int) and batch >= 1:
            # Each game of a batch holds a residual as large as the target (int64).
            _fits_in_memory("agent.batch_size", batch, 8 * batch * (n * m) * (m * p) * (n * p),
                            f"{batch} residuals of T<{n},{m},{p}>")
        walks = getattr(self.agent, "walks", None)
        if isinstance(walks, int) and walks >= 1:
            # A flip-graph walk: its scheme, its best scheme and index, each rank x 3 factors
            # (at most n*m*p + slack terms, a factor in at most 8 bytes per entry).
            _fits_in_memory("agent.walks", walks,
                            8 * 4 * walks * 3 * (n * m * p + 64) * max(n * m, m * p, n * p),
                            f"{walks} flip-graph walks of T<{n},{m},{p}>")
        _check(self.threads is None or self.threads >= 1, "threads", self.threads,
               "an integer >= 1, or null for torch's default")
        _check(re.fullmatch(r"cpu|cuda(:\d+)?", self.device) is not None, "device", self.device,
               "cpu, cuda or cuda:N")
        if self.device != "cpu":
            reason = _cuda_device_missing(self.device)
            _check(reason is None, "device", self.device, f"cpu here, because {reason}")
        if self.tag is not None:
            _check(re.fullmatch(r"[A-Za-z0-9_.-]{1,40}", self.tag) is not None, "tag", self.tag,
                   "1-40 letters, digits, '.', '_' or '-'")
        if self.trainer.stop_at_rank is not None and self.env.max_rank is not None:
            _check(self.trainer.stop_at_rank <= self.env.max_rank, "trainer.stop_at_rank",
                   self.trainer.stop_at_rank, f"at most env.max_rank ({self.env.max_rank})")


cs.store(name="config_schema", node=RunConfig)


def _cuda_device_missing(device: str) -> str | None:
    """Why torch cannot use ``device`` (``cuda`` or ``cuda:N``) here, or None when it can."""
    import torch

    if not torch.cuda.is_available():
        return "torch sees no CUDA device on this machine"
    index = int(device.partition(":")[2] or 0)
    if index >= torch.cuda.device_count():
        return f"torch sees {torch.cuda.device_count()} CUDA device(s), numbered from 0"
    return None


def reject_unknown_keys(node: Any, path: str = "") -> None:
    """Raise :class:`ConfigError` for a key the schema of its node does not define (Hydra's
    ``+group.key=value`` adds one without complaint; it would be silently ignored)."""
    if not isinstance(node, DictConfig):
        return
    schema = OmegaConf.get_type(node)
    fields = getattr(schema, "__dataclass_fields__", None)
    for key in node:
        name = f"{path}{key}"
        if fields is not None and key not in fields:
            accepted = sorted(k for k in fields if not k.startswith("_"))
            raise ConfigError(name, node[key] if not OmegaConf.is_missing(node, key) else None,
                              f"no such key; the keys of {path.rstrip('.') or 'the config'} "
                              f"are {', '.join(accepted)}")
        if fields is not None and key in fields and not OmegaConf.is_missing(node, key):
            reject_unknown_keys(node._get_node(key), f"{name}.")


def validate(cfg: DictConfig) -> RunConfig:
    """Run every value check; returns the config as objects or raises :class:`ConfigError`."""
    reject_unknown_keys(cfg)
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
