"""Results across seeds that cannot mislead: shares, censored medians, bootstrap intervals.

Pure NumPy on one convention. For one setting (the runs whose overrides differ only in
``seed``) and one **target rank** r, every seed gives a time to r: the wall time (s of run
time) of its first episode whose best verified rank was at most r, or ``+inf`` for a seed
that never got there (a **miss**, censored: all we know is that it took longer than the run
was watched, its ``observed_s``). The same holds for episodes to r.

* :func:`success_curve`: the share of seeds at rank <= r by time t (by episode e): the
  performance profile of rliable with tau = time. Misses stay in the denominator, so a
  setting with one lucky seed out of five never looks like a setting that always succeeds.
* :func:`censored_median`: the smallest t with share(t) >= 1/2, the Kaplan-Meier median
  without drop-outs. ``+inf`` when fewer than half the seeds reached r: the median is then
  only known to exceed the budget, and is printed as ``> <budget>``, never as the median of
  the seeds that succeeded.
* :func:`share_interval`: the Wilson score interval of a share (k of n seeds), for the share
  at the end of the budget and pointwise for the curves (:func:`curve_interval`). A
  percentile bootstrap of a share is degenerate at 0/n and n/n (3 of 3 seeds would give
  [100 %, 100 %]); Wilson's interval says what 3 seeds can: 3/3 is [44 %, 100 %].
* :func:`bootstrap_interval`: percentile bootstrap over seeds (resampled with replacement,
  a fixed generator seed, so a summary written twice is identical) for any statistic, here
  the censored median time.

Every number names its target rank: settings are compared at the same r (never one setting's
time to 8 beside another's time to 7). :func:`target_ranks` picks the ranks a sweep reports:
the best known rank and each setting's best rank found, the lowest few.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from mlo_exp.run.sweep.jobs import JobRow

RESAMPLES = 2000
CONFIDENCE = 0.95
BOOTSTRAP_SEED = 0
MAX_TARGETS = 3  # target ranks reported per sweep (the lowest ones)


def success_curve(times: Sequence[float], grid: Sequence[float]) -> np.ndarray:
    """Share of seeds with time <= t for each t of ``grid`` (``times``: one per seed, misses
    ``+inf``). An empty ``times`` gives zeros."""
    values = np.asarray(times, dtype=float)
    points = np.asarray(grid, dtype=float)
    if values.size == 0:
        return np.zeros(points.shape)
    return (values[None, :] <= points[:, None]).mean(axis=1)


def censored_median(times: Sequence[float]) -> float:
    """The smallest time by which at least half the seeds reached the target (``+inf`` when
    fewer than half did; ``nan`` for no seeds). Misses (``+inf``) count, they are not
    dropped."""
    values = np.sort(np.asarray(times, dtype=float))
    if values.size == 0:
        return math.nan
    return float(values[math.ceil(values.size / 2) - 1])


def share_reached(times: Sequence[float]) -> float:
    """Share of seeds that reached the target at all (finite time)."""
    values = np.asarray(times, dtype=float)
    return float(np.isfinite(values).mean()) if values.size else math.nan


def share_interval(reached: int | np.ndarray, seeds: int,
                   confidence: float = CONFIDENCE) -> tuple[Any, Any]:
    """Wilson score interval (low, high) of the share ``reached / seeds`` (arrays of
    ``reached`` give arrays); ``(nan, nan)`` for no seeds."""
    if seeds == 0:
        return math.nan, math.nan
    z = float(_normal_quantile(1 - (1 - confidence) / 2))
    share = np.asarray(reached, dtype=float) / seeds
    denominator = 1 + z * z / seeds
    centre = (share + z * z / (2 * seeds)) / denominator
    half = z * np.sqrt(share * (1 - share) / seeds + z * z / (4 * seeds * seeds)) / denominator
    low, high = np.clip(centre - half, 0, 1), np.clip(centre + half, 0, 1)
    low = np.where(share == 0, 0.0, low)  # exact at the ends (no rounding residue)
    high = np.where(share == 1, 1.0, high)
    if np.ndim(low) == 0:
        return float(low), float(high)
    return low, high


def _normal_quantile(p: float) -> float:
    """The standard normal quantile (``statistics.NormalDist``)."""
    from statistics import NormalDist

    return NormalDist().inv_cdf(p)


def bootstrap_interval(values: Sequence[float], statistic: Callable[[np.ndarray], float],
                       resamples: int = RESAMPLES, confidence: float = CONFIDENCE,
                       seed: int = BOOTSTRAP_SEED) -> tuple[float, float]:
    """Percentile bootstrap interval of ``statistic`` over ``values`` (one per seed),
    resampled with replacement. ``+inf`` values (misses) are resampled like any other; an
    interval bound of ``+inf`` means "not reached by half the seeds" in that share of the
    resamples. ``(nan, nan)`` for no values."""
    data = np.asarray(values, dtype=float)
    if data.size == 0:
        return math.nan, math.nan
    generator = np.random.default_rng(seed)
    picks = generator.integers(0, data.size, size=(resamples, data.size))
    stats = np.array([statistic(data[row]) for row in picks], dtype=float)
    alpha = (1 - confidence) / 2
    # 'lower'/'higher' keep bounds on observed values (and +inf where it is one)
    low = float(np.quantile(stats, alpha, method="lower"))
    high = float(np.quantile(stats, 1 - alpha, method="higher"))
    return low, high


def curve_interval(times: Sequence[float], grid: Sequence[float],
                   confidence: float = CONFIDENCE) -> tuple[np.ndarray, np.ndarray]:
    """Pointwise band (low, high) of :func:`success_curve` on ``grid``: at each t the
    Wilson interval of the share of seeds reached by t (:func:`share_interval`)."""
    data = np.asarray(times, dtype=float)
    points = np.asarray(grid, dtype=float)
    if data.size == 0:
        return np.zeros(points.shape), np.zeros(points.shape)
    reached = (data[None, :] <= points[:, None]).sum(axis=1)
    return share_interval(reached, data.size, confidence)


# -- one sweep --------------------------------------------------------------------------------
def group_key(row: JobRow) -> str:
    """The row's overrides without its seed: rows with the same key are seeds of one setting."""
    return " ".join(o for o in row.override_list if not o.lstrip("+~").startswith("seed="))


@dataclass
class TargetStats:
    """One setting at one target rank, over its seeds (see the module docstring).

    ``times_s``/``episodes``: per seed, the time (episode) at which it first reached
    ``target_rank``, ``inf`` for a miss. ``share`` and its (Wilson) interval: the share of
    seeds that reached it within their budget; the median's interval is a bootstrap one.
    ``median_time_s``: :func:`censored_median` (``inf``:
    fewer than half reached it; shown as ``> budget_s``). ``budget_s``: the longest time a
    seed was watched (its ``trainer.time_limit_s`` or wall time, whichever is longer);
    ``budget_episodes``: the most episodes a seed played."""

    target_rank: int
    best_known: bool
    seeds: int
    reached: int
    share: float
    share_low: float
    share_high: float
    median_time_s: float
    median_time_low_s: float
    median_time_high_s: float
    median_episodes: float
    budget_s: float | None
    budget_episodes: int | None = None
    times_s: list[float] = field(default_factory=list)
    episodes: list[float] = field(default_factory=list)

    def cells(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("times_s")
        data.pop("episodes")
        return data


@dataclass
class SeedGroup:
    """One setting over its seeds: who it is, what each seed found, and one
    :class:`TargetStats` per target rank of the sweep. Failed runs count as seeds that
    reached nothing."""

    group: str
    seeds: list[int | None]
    failed: int
    best_known_rank: int | None
    best_rank: int | None
    reached_best_rank: int
    ranks: list[int | None]
    targets: list[TargetStats]
    median_objective: float | None
    jobs: list[int]

    def target(self, rank: int) -> TargetStats | None:
        return next((t for t in self.targets if t.target_rank == rank), None)

    def cells(self) -> dict[str, Any]:
        data = asdict(self)
        data["targets"] = [t.cells() for t in self.targets]
        return data


def target_ranks(rows: list[JobRow], limit: int = MAX_TARGETS) -> list[int]:
    """The ranks a sweep is reported at: the best known rank and every setting's best rank
    found, the lowest ``limit`` of them (ascending)."""
    ranks: set[int] = {r.best_known_rank for r in rows if r.best_known_rank is not None}
    by_group: dict[str, list[int]] = {}
    for row in rows:
        if row.best_rank is not None:
            by_group.setdefault(group_key(row), []).append(row.best_rank)
    ranks |= {min(found) for found in by_group.values()}
    return sorted(ranks)[:limit]


def target_stats(members: list[JobRow], rank: int, best_known: bool) -> TargetStats:
    """:class:`TargetStats` of one setting's runs at ``rank``."""
    times = [_or_inf(r.time_to_rank(rank)) for r in members]
    episodes = [_or_inf(r.episodes_to_rank(rank)) for r in members]
    low, high = share_interval(sum(math.isfinite(t) for t in times), len(times))
    median_low, median_high = bootstrap_interval(times, censored_median)
    watched = [r.budget_s for r in members if r.budget_s is not None]
    watched += [r.observed_s for r in members if r.observed_s is not None]
    watched += [t for t in times if math.isfinite(t)]
    budget = max(watched) if watched else None
    played = [r.episodes for r in members if r.episodes is not None]
    return TargetStats(
        target_rank=rank, best_known=best_known, seeds=len(members),
        reached=sum(math.isfinite(t) for t in times), share=share_reached(times),
        share_low=low, share_high=high, median_time_s=censored_median(times),
        median_time_low_s=median_low, median_time_high_s=median_high,
        median_episodes=censored_median(episodes), budget_s=budget,
        budget_episodes=max(played) if played else None, times_s=times,
        episodes=episodes)


def seed_groups(rows: list[JobRow], targets: list[int] | None = None) -> list[SeedGroup]:
    """The seeds aggregate: one :class:`SeedGroup` per setting (order of first job), each
    at the sweep's :func:`target_ranks` (the same ranks for every setting)."""
    targets = target_ranks(rows) if targets is None else targets
    known_ranks = {r.best_known_rank for r in rows if r.best_known_rank is not None}
    groups: dict[str, list[JobRow]] = {}
    for row in rows:
        groups.setdefault(group_key(row), []).append(row)
    result = []
    for key, members in groups.items():
        known = {r.best_known_rank for r in members if r.best_known_rank is not None}
        found = [r.best_rank for r in members if r.best_rank is not None]
        best = min(found) if found else None
        objectives = sorted({(r.job, r.objective) for r in members if r.objective is not None})
        result.append(SeedGroup(
            group=key, seeds=[r.seed for r in members],
            failed=sum(r.status == "failed" for r in members),
            best_known_rank=min(known) if known else None, best_rank=best,
            reached_best_rank=sum(1 for r in found if r == best),
            ranks=[r.best_rank for r in members],
            targets=[target_stats(members, rank, rank in known_ranks) for rank in targets],
            median_objective=(float(np.median([v for _, v in objectives]))
                              if objectives else None),
            jobs=sorted({r.job for r in members})))
    return result


def _or_inf(value: float | None) -> float:
    return math.inf if value is None else float(value)
