"""Checkpoints: what one holds, how it is written and read back, and when a run saves one.

**Files.** ``<run dir>/checkpoints/ckpt_e<episode, 7 digits>.pt`` and
``<run dir>/checkpoints/checkpoint_log.json``. Every file is written whole to a temporary
file in the same directory, flushed, fsynced and renamed (:mod:`mlo_exp.io`), so a crash or a
reader never sees half a file; a kill can at most leave a stale ``.*.tmp`` file behind,
which the next run in that directory removes.

**Payload** (``torch.save`` of a dict; loadable with ``torch.load(weights_only=True)``, so
it holds only tensors, numbers, strings, ``None``, lists and dicts)::

    format, version           "mlo-exp/checkpoint", 1
    run_id, run_name, seed    the run's identity (restored on resume)
    started_at                ISO time the run first started
    job_num, overrides        as in run.json
    identity                  {shape, ring, coefficients, agent}: what the state fits
    config                    the resolved config (a plain dict)
    timestamp                 ISO time of the save
    episode, step             finished episodes, global moves
    run_duration_s            seconds of run time, counting time before any resume
    reason                    periodic | best | end | signal | interrupted, joined by "+"
    agent, trainer            Agent.state_dict(), Trainer.state_dict()
    rng                       python / numpy / torch (and cuda) generator states

**Log.** ``checkpoint_log.json`` holds the run's identity and one entry per checkpoint ever
written (file, reason, episode, step, timestamp, run_duration_s, size, sha256, best_rank,
status ``kept`` or ``deleted``). An entry is marked ``deleted`` before its file is removed.

**Policy** (:class:`CheckpointManager`): save after every ``every_episodes``-th episode,
after an episode that found a new best algorithm, at the end of the run and when SIGINT or
SIGTERM stopped it (``on_signal``; the signals themselves are the run's, see
:mod:`mlo_exp.signals`: the first lets the current episode finish, so the saved state is
exact; a second interrupts at once and the state is saved all the same). Keep the
newest ``keep_last`` plus the best one (the earliest checkpoint holding the lowest rank).

Length: about 580 lines: writing, reading and checking a checkpoint are one file format and
change together; the manager (when to save) is the last section.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import logging
import pickle
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mlo_exp.config import CheckpointConfig
from mlo_exp.io import atomic_write_bytes, atomic_write_text
from mlo_exp.loggers.base import Logger
from mlo_exp.run.trainer import RunSummary, Trainer, TrainerCallback
from mlo_exp.run_context import RunContext

log = logging.getLogger("mlo_exp")

FORMAT_NAME = "mlo-exp/checkpoint"
FORMAT_VERSION = 1
LOG_FORMAT_NAME = "mlo-exp/checkpoint-log"
CHECKPOINT_DIR = "checkpoints"
LOG_NAME = "checkpoint_log.json"
CHECKPOINT_GLOB = "ckpt_e*.pt"
REQUIRED_KEYS = ("run_id", "identity", "episode", "step", "run_duration_s", "agent",
                 "trainer", "rng", "config")


class CheckpointError(Exception):
    """A checkpoint cannot be written, read or used; the message names the file and why."""


# -- what a checkpoint fits --------------------------------------------------------------
def config_identity(config: dict[str, Any]) -> dict[str, Any]:
    """What a checkpoint's state is only valid for: the game and the agent class."""
    env, agent = config.get("env", {}), config.get("agent", {})
    return {
        "shape": [int(x) for x in env.get("shape", [])],
        "ring": str(env.get("ring")),
        "coefficients": [int(x) for x in env.get("coefficients", [])],
        "agent": str(agent.get("_target_")),
    }


def describe_identity(identity: dict[str, Any]) -> str:
    shape = "x".join(str(x) for x in identity.get("shape", []))
    agent = str(identity.get("agent")).rsplit(".", 1)[-1]
    return (f"shape {shape} over {identity.get('ring')} with coefficients "
            f"{identity.get('coefficients')}, agent {agent}")


# Agent settings a resumed run may change: they do not shape the state it continues.
FREE_AGENT_SETTINGS = frozenset({"threads", "pool_dir", "pool_every"})


def check_compatible(payload: dict[str, Any], config: dict[str, Any], source: Path) -> None:
    """Refuse a checkpoint written for another shape, ring, coefficient set, agent, agent
    settings (but :data:`FREE_AGENT_SETTINGS`) or seed: its state would not be this run's."""
    theirs, ours = payload["identity"], config_identity(config)
    if theirs != ours:
        raise CheckpointError(
            f"checkpoint {source} was written for {describe_identity(theirs)}; this run is "
            f"{describe_identity(ours)}. Accepted: a checkpoint of the same shape, ring, "
            "coefficients and agent (pass the original run's overrides with resume=...)")
    if "seed" in config and payload.get("seed") is not None \
            and int(payload["seed"]) != int(config["seed"]):
        raise CheckpointError(
            f"checkpoint {source} belongs to a run with seed={payload['seed']}; this launch "
            f"has seed={config['seed']}. Accepted: seed={payload['seed']} to continue that run "
            "(a resumed run keeps its seed), or no resume for a new run with this seed")
    saved = (payload.get("config") or {}).get("agent") or {}
    wanted = config.get("agent") or {}
    differing = sorted(key for key in set(saved) | set(wanted)
                       if key not in FREE_AGENT_SETTINGS and saved.get(key) != wanted.get(key))
    if saved and differing:
        changes = ", ".join(f"agent.{key}={saved.get(key)!r} there, {wanted.get(key)!r} here"
                            for key in differing[:4])
        raise CheckpointError(
            f"checkpoint {source} was written with other agent settings ({changes}). "
            "Accepted: the run's own agent settings (pass the original run's overrides "
            "with resume=...)")


# -- RNG states as plain data ----------------------------------------------------------
def capture_rng() -> dict[str, Any]:
    """Python, NumPy and torch global generator states, as weights_only-loadable data."""
    version, internal, gauss = random.getstate()
    name, keys, position, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": {"version": version, "state": list(internal), "gauss": gauss},
        "numpy": {"name": str(name), "keys": torch.from_numpy(keys.astype(np.int64)),
                  "position": int(position), "has_gauss": int(has_gauss),
                  "cached_gaussian": float(cached)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng`."""
    python = state["python"]
    random.setstate((python["version"], tuple(python["state"]), python["gauss"]))
    numpy = state["numpy"]
    np.random.set_state((numpy["name"], numpy["keys"].numpy().astype(np.uint32),
                         numpy["position"], numpy["has_gauss"], numpy["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def to_plain(value: Any) -> Any:
    """Tuples to lists, NumPy scalars and arrays to Python numbers and tensors; so that
    ``torch.load(weights_only=True)`` can read the payload back. Dict keys stay ints where
    they are ints (an optimiser's per-parameter state is keyed by index); others become
    strings."""
    if isinstance(value, dict):
        return {k if isinstance(k, int) and not isinstance(k, bool) else str(k): to_plain(v)
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(value))
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str, torch.Tensor)):
        return value
    raise CheckpointError(f"cannot store a {type(value).__name__} in a checkpoint; "
                          "state_dict values must be tensors, numbers, strings, lists or dicts")


# -- writing and reading ---------------------------------------------------------------
def build_payload(trainer: Trainer, reason: str) -> dict[str, Any]:
    """The checkpoint of ``trainer`` (its agent, loop state, RNGs and run identity) now."""
    run = trainer.run
    trainer_state = trainer.state_dict()
    return to_plain({
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "run_id": run.run_id,
        "run_name": run.run_name,
        "seed": run.seed,
        "started_at": run.started_at,
        "job_num": run.job_num,
        "overrides": list(run.overrides),
        "identity": config_identity(run.config),
        "config": run.config,
        "timestamp": dt.datetime.now().astimezone().isoformat(timespec="milliseconds"),
        "episode": trainer.episode,
        "step": trainer.moves,
        "run_duration_s": float(trainer_state["run_duration_s"]),
        "reason": reason,
        "agent": trainer.agent.state_dict(),
        "trainer": trainer_state,
        "rng": capture_rng(),
    })


def serialise(payload: dict[str, Any]) -> bytes:
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return buffer.getvalue()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_checkpoint(path: str | Path, expected_sha256: str | None = None) -> dict[str, Any]:
    """Read a checkpoint safely; raises :class:`CheckpointError` naming the file and why.

    The sha256 is compared with ``expected_sha256`` (from the log) first, then the file is
    read with ``torch.load(weights_only=True)``, which refuses any pickle that would import
    or call code, and the payload's format and keys are checked.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    if expected_sha256 is not None:
        actual = sha256_file(path)
        code = _code_in_pickle(path) if actual != expected_sha256 else []
        if code:
            raise CheckpointError(
                f"checkpoint {path} refused: it was altered after it was written (sha256 "
                f"differs from {LOG_NAME}) and its pickle would import or call "
                f"{', '.join(code[:3])} (code, not data); it was not run. Accepted: "
                "checkpoints written by mlo-exp")
        if actual != expected_sha256:
            raise CheckpointError(
                f"checkpoint {path} is altered or truncated: sha256 {actual[:12]}... differs "
                f"from {expected_sha256[:12]}... recorded in {LOG_NAME}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        code = _code_in_pickle(path)
        if code:
            raise CheckpointError(
                f"checkpoint {path} refused: its pickle would import or call "
                f"{', '.join(code[:3])} (code, not data), and checkpoints hold data only; "
                "it was not run. Accepted: checkpoints written by mlo-exp") from None
        reason = _unpickler_reason(error) if isinstance(error, pickle.UnpicklingError) \
            else f"{type(error).__name__}: {_first_line(error)}"
        raise CheckpointError(f"checkpoint {path} is unreadable (truncated or corrupt): "
                              f"{reason}") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT_NAME:
        raise CheckpointError(f"checkpoint {path} is not an mlo-exp checkpoint "
                              f"(format {FORMAT_NAME!r} expected)")
    if payload.get("version") != FORMAT_VERSION:
        raise CheckpointError(f"checkpoint {path} has format version {payload.get('version')}; "
                              f"accepted: {FORMAT_VERSION}")
    missing = [key for key in REQUIRED_KEYS if key not in payload]
    if missing:
        raise CheckpointError(f"checkpoint {path} lacks {', '.join(missing)}")
    check_sense(payload, path)
    return payload


def check_sense(payload: dict[str, Any], path: Path) -> None:
    """Refuse a payload whose bytes are whole but whose content makes no sense: counters
    that are not non-negative integers, a run duration that is not a finite number >= 0,
    or a floating-point tensor (weights, optimiser moments) holding NaN or infinity, which
    would crash the next episode (a file altered with its sha256 updated, a run that
    diverged)."""
    for key in ("episode", "step"):
        value = payload[key]
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise CheckpointError(f"checkpoint {path} makes no sense: {key}={value!r} "
                                  "(accepted: an integer >= 0)")
    duration = payload["run_duration_s"]
    if not isinstance(duration, (int, float)) or not np.isfinite(duration) or duration < 0:
        raise CheckpointError(f"checkpoint {path} makes no sense: run_duration_s={duration!r}")
    for where, tensor in _tensors(payload["agent"], "agent"):
        floating = tensor.is_floating_point() or tensor.is_complex()
        if floating and not bool(torch.isfinite(tensor).all()):
            raise CheckpointError(f"checkpoint {path} makes no sense: {where} holds NaN "
                                  "or infinite values")


def _tensors(value: Any, where: str) -> Any:
    """``(dotted place, tensor)`` for every tensor in nested dicts and lists."""
    if isinstance(value, torch.Tensor):
        yield where, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _tensors(item, f"{where}.{key}")
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from _tensors(item, f"{where}[{index}]")


def restore(trainer: Trainer, payload: dict[str, Any], source: Path) -> None:
    """Put a loaded checkpoint's state into ``trainer``, its agent and the global RNGs."""
    try:
        trainer.agent.load_state_dict(payload["agent"])
        trainer.load_state_dict(payload["trainer"])
    except Exception as error:
        raise CheckpointError(f"checkpoint {source} does not fit this run's agent "
                              f"{type(trainer.agent).__name__}: {type(error).__name__}: "
                              f"{_first_line(error)}") from None
    restore_rng(payload["rng"])


def _unpickler_reason(error: BaseException) -> str:
    """The useful line of torch's weights_only error (after ``WeightsUnpickler error:``),
    never its advice to load with ``weights_only=False`` (that would run the file's code)."""
    text = str(error)
    marker = "WeightsUnpickler error:"
    if marker in text:
        tail = text.split(marker, 1)[1].strip()
        return tail.split(". Please use", 1)[0].splitlines()[0].strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()
             and "weights_only" not in line and not line.startswith("Please file")]
    return lines[0] if lines else "safe loading refused its content"


# Names a checkpoint's pickle may import: torch's tensor rebuilding and plain containers.
_SAFE_IMPORT_PREFIXES = ("torch.", "collections.OrderedDict", "builtins.set",
                         "builtins.frozenset", "builtins.bytearray", "builtins.complex",
                         "builtins.slice", "numpy.")
_PICKLE_IMPORTS = ("GLOBAL", "INST", "STACK_GLOBAL")
_PICKLE_TEXT = ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE", "BINUNICODE8", "STRING",
                "BINSTRING", "SHORT_BINSTRING")


def _code_in_pickle(path: Path) -> list[str]:
    """The names outside tensors and containers that ``path``'s pickle (the file itself, or
    the ``data.pkl`` of torch's zip format) would import: non-empty means code. Read with
    :mod:`pickletools` (opcodes only: nothing is unpickled); an unreadable stream gives []."""
    import pickletools
    import zipfile

    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                name = next((n for n in archive.namelist() if n.endswith("data.pkl")), None)
                data = archive.read(name) if name else b""
        else:
            data = path.read_bytes()
    except (OSError, zipfile.BadZipFile, RuntimeError, ValueError):
        return []
    found: list[str] = []
    texts: list[str] = []
    try:
        for opcode, argument, _ in pickletools.genops(data):
            if opcode.name in _PICKLE_TEXT and isinstance(argument, (str, bytes)):
                texts.append(argument if isinstance(argument, str)
                             else argument.decode("latin-1"))
            elif opcode.name in ("GLOBAL", "INST"):
                found.append(str(argument).replace(" ", "."))
            elif opcode.name == "STACK_GLOBAL" and len(texts) >= 2:
                found.append(f"{texts[-2]}.{texts[-1]}")
            elif opcode.name == "STACK_GLOBAL":
                found.append("a name built on the stack")
    except Exception:  # a torn stream: what was read so far still counts
        pass
    return [name for name in dict.fromkeys(found)
            if not name.startswith(_SAFE_IMPORT_PREFIXES)]


def _episode_of(path: Path) -> int:
    try:
        return int(path.stem.removeprefix("ckpt_e"))
    except ValueError:
        return -1


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


# -- the log ----------------------------------------------------------------------------
class CheckpointLog:
    """``checkpoint_log.json``: the run's identity and one entry per checkpoint file."""

    def __init__(self, path: Path, data: dict[str, Any]) -> None:
        self.path, self.data = path, data

    @property
    def entries(self) -> list[dict[str, Any]]:
        return self.data["checkpoints"]

    @classmethod
    def read(cls, path: Path) -> CheckpointLog | None:
        """The parsed log, or None when it is missing or unreadable (with a warning)."""
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("format") != LOG_FORMAT_NAME or not isinstance(data.get("checkpoints"),
                                                                       list):
                raise ValueError(f"not a {LOG_FORMAT_NAME} file")
        except (OSError, ValueError, AttributeError) as error:
            log.warning("checkpoint log %s is unreadable (%s); checkpoints in that directory "
                        "are used without sha256 checks", path, error)
            return None
        return cls(path, data)

    @classmethod
    def create(cls, path: Path, run: RunContext) -> CheckpointLog:
        return cls(path, {"format": LOG_FORMAT_NAME, "version": 1, "run_id": run.run_id,
                          "run_name": run.run_name, "seed": run.seed,
                          "identity": config_identity(run.config), "checkpoints": []})

    def entry(self, file: str) -> dict[str, Any] | None:
        return next((e for e in self.entries if e["file"] == file), None)

    def upsert(self, entry: dict[str, Any]) -> None:
        self.data["checkpoints"] = [e for e in self.entries if e["file"] != entry["file"]]
        self.entries.append(entry)

    def kept(self) -> list[dict[str, Any]]:
        """Entries whose file should exist, newest (highest episode, latest save) first."""
        kept = [e for e in self.entries if e.get("status") == "kept"]
        return sorted(kept, key=lambda e: (e["episode"], e["timestamp"]), reverse=True)

    def write(self) -> None:
        atomic_write_text(self.path, json.dumps(self.data, indent=1) + "\n")


# -- the policy -------------------------------------------------------------------------
class CheckpointManager(TrainerCallback):
    """Saves checkpoints of a run by the policy in the module docstring.

    Built by :func:`mlo_exp.run.experiment.build_components` with ``run=`` and ``logger=``; the
    other arguments come from the ``checkpoint`` config group. Each save is reported through
    ``logger.log_checkpoint``. A save that fails (full disk, unwritable directory) is logged
    as an error naming the file; the earlier checkpoints stay as they were and the run stops
    with status ``failed``.
    """

    def __init__(self, run: RunContext, logger: Logger, **settings: Any) -> None:
        """``settings``: fields of :class:`~mlo_exp.config.CheckpointConfig` (defaults
        there)."""
        s = self.settings = CheckpointConfig(**settings)
        self.run, self.logger = run, logger
        self.every_episodes = s.every_episodes
        self.keep_last = s.keep_last
        self.keep_best = s.keep_best
        self.save_on_new_best = s.on_new_best
        self.save_on_signal = s.on_signal
        self.directory = Path(run.run_dir) / CHECKPOINT_DIR
        self.log_path = self.directory / LOG_NAME
        self.saves = 0
        self.seconds_saving = 0.0
        self.failed: str | None = None
        self._best_pending = False
        self._log: CheckpointLog | None = None

    # -- callbacks ---------------------------------------------------------------------
    def on_run_start(self, trainer: Trainer) -> None:
        self._log = CheckpointLog.read(self.log_path)
        if self._log is not None and self._log.data.get("run_id") != self.run.run_id:
            raise CheckpointError(f"{self.log_path} belongs to run {self._log.data.get('run_id')}"
                                  f", not {self.run.run_id}; refusing to mix two runs' files")
        if self._log is None:
            self._log = CheckpointLog.create(self.log_path, self.run)
        for stale in self.directory.glob(".*.tmp"):  # left by a process killed mid-write
            stale.unlink(missing_ok=True)
        self._adopt_unlisted()

    def _adopt_unlisted(self) -> None:
        """Enter checkpoint files the log lacks (a kill between the file's rename and the
        log write) as ``recovered``, so the keep policy covers them."""
        listed = {e["file"] for e in self._log.entries}
        for path in sorted(self.directory.glob(CHECKPOINT_GLOB)):
            if path.name in listed:
                continue
            entry = {"file": path.name, "reason": "recovered", "size": path.stat().st_size,
                     "sha256": sha256_file(path), "status": "kept"}
            try:
                payload = load_checkpoint(path)
            except CheckpointError as error:
                log.warning("checkpoint %s is not in %s and unusable: %s", path, LOG_NAME, error)
                entry.update(episode=_episode_of(path), status="invalid", timestamp="")
            else:
                best = payload["trainer"].get("best")
                entry.update(episode=payload["episode"], step=payload["step"],
                             timestamp=payload["timestamp"],
                             run_duration_s=round(payload["run_duration_s"], 3),
                             best_rank=best["rank"] if best else None)
            self._log.upsert(entry)

    def on_new_best(self, trainer: Trainer, algorithm: Any, path: Path) -> None:
        # Saved after the episode's record is logged, so metrics and checkpoint agree.
        self._best_pending = self.save_on_new_best

    def on_episode_end(self, trainer: Trainer, record: dict[str, Any]) -> None:
        reasons = []
        if self.every_episodes and trainer.episode % self.every_episodes == 0:
            reasons.append("periodic")
        if self._best_pending:
            reasons.append("best")
        self._best_pending = False
        if reasons and self.failed is None:
            self.save(trainer, "+".join(reasons))

    def on_run_end(self, trainer: Trainer, summary: RunSummary) -> None:
        if trainer.signals.received is not None:
            reason = "signal" if self.save_on_signal else None
        else:
            reason = "interrupted" if summary.status == "interrupted" else "end"
        if self.failed is None and reason is not None:
            self.save(trainer, reason)
        if self.failed is not None:
            summary.status = "failed"
            summary.stop_reason = "checkpoint_failed"
        if self.saves:
            log.info("checkpoints: %d saved in %.3f s (%.2f%% of the run's %.1f s); kept %s",
                     self.saves, self.seconds_saving,
                     100 * self.seconds_saving / max(trainer.run.elapsed(), 1e-9),
                     trainer.run.elapsed(), ", ".join(e["file"] for e in self._log.kept()))

    # -- saving ------------------------------------------------------------------------
    def save(self, trainer: Trainer, reason: str) -> Path | None:
        """Write one checkpoint and update the log; returns its path (None if it failed)."""
        assert self._log is not None, "on_run_start was not called"
        started = time.perf_counter()
        name = f"ckpt_e{trainer.episode:07d}.pt"
        path = self.directory / name
        previous = self._log.entry(name)
        if previous is not None and previous.get("status") == "kept" \
                and previous["episode"] == trainer.episode and previous["reason"] != reason:
            reason = "+".join(dict.fromkeys(previous["reason"].split("+") + [reason]))
        try:
            payload = build_payload(trainer, reason)
            data = serialise(payload)
            atomic_write_bytes(path, data)
            entry = {
                "file": name, "reason": reason, "episode": payload["episode"],
                "step": payload["step"], "timestamp": payload["timestamp"],
                "run_duration_s": round(payload["run_duration_s"], 3), "size": len(data),
                "sha256": hashlib.sha256(data).hexdigest(), "best_rank": trainer.best_rank,
                "status": "kept",
            }
            self._log.upsert(entry)
            self._log.write()
            self._prune()
        except OSError as error:
            self._fail(trainer, path, error)
            return None
        self.saves += 1
        self.seconds_saving += time.perf_counter() - started
        event = {"run_id": self.run.run_id, **entry, "path": str(path)}
        self.logger.log_checkpoint(event, path)
        return path

    def _prune(self) -> None:
        """Keep the newest ``keep_last`` and the best; mark the rest deleted, then delete."""
        kept = self._log.kept()
        protected = {e["file"] for e in kept[: self.keep_last]}
        ranked = [e for e in kept if e.get("best_rank") is not None]
        if self.keep_best and ranked:
            best = min(ranked, key=lambda e: (e["best_rank"], e["episode"]))
            protected.add(best["file"])
        doomed = [e for e in kept if e["file"] not in protected]
        if not doomed:
            return
        for entry in doomed:
            entry["status"] = "deleted"
        self._log.write()
        for entry in doomed:
            (self.directory / entry["file"]).unlink(missing_ok=True)

    def _fail(self, trainer: Trainer, path: Path, error: OSError) -> None:
        earlier = [e["file"] for e in self._log.kept()] if self._log else []
        self.failed = f"{type(error).__name__}: {error}"
        log.error("cannot write checkpoint %s (%s). The run stops; the earlier checkpoints are "
                  "intact: %s", path, self.failed, ", ".join(earlier) or "none")
        trainer.request_stop("checkpoint_failed")
