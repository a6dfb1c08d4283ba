"""The flip-graph agent: exactness of every move, rank reduction, targets, state, config."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pytest

from mlo_exp.agents.flipgraph import FlipGraphAgent
from mlo_exp.algorithms.algorithm import Algorithm
from mlo_exp.algorithms.library import strassen
from mlo_exp.algorithms.tensor import verify
from mlo_exp.config import ConfigError, validate
from mlo_exp.env import TensorGame
from tests.agents.index_checks import assert_index_describes


def make_agent(shape, ring, **settings) -> FlipGraphAgent:
    coefficients = [0, 1] if ring == "Z2" else [-1, 0, 1]
    return FlipGraphAgent(TensorGame(shape, coefficients, ring=ring), **{"seed": 0, **settings})


@pytest.mark.parametrize("ring", ["Z2", "Z"])
def test_every_walk_stays_an_exact_decomposition_after_many_flips(ring):
    # Small plateau: plus transitions and reductions happen often, not only flips.
    agent = make_agent((2, 3, 3), ring, walks=6, flips_per_episode=5000, plateau_flips=200,
                       plus_slack=2, seed=3)
    for _ in range(3):
        result = agent.run_episode()
        assert result.moves > 1000
        for walk in range(agent.settings.walks):
            for factors in (agent.current_factors(walk), agent.best_factors(walk)):
                assert verify(*factors, (2, 3, 3), ring).ok
                if ring == "Z":
                    assert max(int(np.abs(f).max()) for f in factors) <= 1
    assert result.metrics["plus_transitions"] > 0
    assert result.metrics["reductions"] > 0


def test_reductions_lower_the_rank_below_the_school_method():
    agent = make_agent((2, 2, 3), "Z2", walks=4, flips_per_episode=3000, seed=1)
    result = agent.run_episode()
    assert agent.walks.start_rank == 12
    assert result.rank_used < 12
    assert result.metrics["reductions"] >= 12 - result.rank_used


@pytest.mark.parametrize("ring", ["Z2", "Z"])
def test_reaches_strassen_rank_on_2x2(ring):
    agent = make_agent((2, 2, 2), ring, walks=8, flips_per_episode=5000, plateau_flips=500,
                       seed=0)
    ranks = [agent.run_episode().rank_used for _ in range(20)]
    assert min(ranks) == 7
    result = agent.run_episode()
    assert result.solved and verify(*result.factors, (2, 2, 2), ring).ok


def test_reaches_rank_23_on_3x3_modulo_2():
    # Deterministic (one thread, fixed seed); typically 1-3 episodes, at most a few seconds.
    agent = make_agent((3, 3, 3), "Z2", walks=8, flips_per_episode=100_000, seed=0)
    for _ in range(40):
        result = agent.run_episode()
        if result.rank_used <= 23:
            break
    assert result.rank_used == 23
    assert Algorithm((3, 3, 3), *result.factors, "Z2").verify().ok


def test_state_dict_resumes_exactly():
    agent = make_agent((2, 2, 3), "Z", walks=3, flips_per_episode=2000, seed=5)
    agent.run_episode()
    state = agent.state_dict()
    assert all(isinstance(v, np.ndarray) for v in state["walks"].values())
    first = agent.run_episode()
    clone = make_agent((2, 2, 3), "Z", walks=3, flips_per_episode=2000, seed=99)
    clone.load_state_dict(state)
    second = clone.run_episode()
    assert first.rank_used == second.rank_used and first.moves == second.moves
    assert all(np.array_equal(a, b) for a, b in zip(first.factors, second.factors, strict=True))
    assert np.array_equal(agent.walks.F, clone.walks.F)


def test_load_state_dict_rejects_a_different_agent():
    state = make_agent((2, 2, 2), "Z2", walks=2).state_dict()
    with pytest.raises(ValueError, match="walks/shape"):
        make_agent((2, 2, 2), "Z2", walks=3).load_state_dict(state)


def test_starts_from_a_given_algorithm_file(tmp_path):
    path = strassen().save(tmp_path / "strassen.json")
    agent = make_agent((2, 2, 2), "Z", walks=2, flips_per_episode=100, start_from=str(path))
    assert agent.walks.start_rank == 7
    assert agent.run_episode().rank_used == 7
    with pytest.raises(ValueError, match="<2,2,2>"):
        make_agent((2, 2, 3), "Z", walks=2, start_from=str(path))
    broken = tmp_path / "broken.txt"
    broken.write_text("(a11)*(b11)*(c11)\n")
    with pytest.raises(ValueError, match="not a valid decomposition"):
        make_agent((1, 1, 2), "Z", walks=2, start_from=str(broken))


def test_agent_does_not_load_known_algorithms():
    import mlo_exp.agents.flipgraph as package

    files = sorted(Path(package.__file__).parent.glob("*.py"))
    assert len(files) >= 7
    for path in files:
        tree = ast.parse(path.read_text())
        imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        imported |= {a.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                     for a in node.names}
        assert not imported & {"mlo_exp.algorithms.library", "mlo_exp.algorithms.alphatensor",
                               "mlo_exp.algorithms.reference", "mlo_exp.algorithms.catalogue"}
        assert "data" not in path.read_text().split("import")[0]


def test_config_composes_and_rejects_bad_values(compose_config, tmp_path):
    cfg = compose_config(["agent=flipgraph", "env=matmul_2x2x2_z2"])
    settings = validate(cfg)
    assert settings.agent.walks == 32
    with pytest.raises(ConfigError, match="agent.walks"):
        validate(compose_config(["agent=flipgraph", "agent.walks=0"]))
    with pytest.raises(ConfigError, match="agent.start_from"):
        validate(compose_config(["agent=flipgraph", f"agent.start_from={tmp_path}/missing.json"]))
    with pytest.raises(ConfigError, match="agent.min_flippable"):
        validate(compose_config(["agent=flipgraph", "agent.min_flippable=-1"]))
    with pytest.raises(ValueError, match="agent.min_flippable=1 refuses reductions of Z2"):
        make_agent((2, 2, 2), "Z", min_flippable=1)


def test_the_walks_spread_over_a_folder_of_starts(tmp_path, compose_config):
    # Strassen (7) and the school method (8) of <2,2,2>: walks 0 and 2 start from the first
    # file, 1 and 3 from the second, over Z2 and over Z; with c3 (Strassen is not
    # C3-invariant as written) the diagonal-pairs start (13) and the school method.
    from mlo_exp.agents.flipgraph.c3 import diagonal_pairs_start
    from mlo_exp.algorithms.algorithm import Algorithm
    from mlo_exp.algorithms.library import lookup

    folder = tmp_path / "starts"
    folder.mkdir()
    lookup("strassen").save(folder / "00.json")
    lookup("school-2x2x2").save(folder / "01.json")
    for ring, extra, expected in (("Z2", {}, [7, 8, 7, 8]), ("Z", {}, [7, 8, 7, 8]),
                                  ("Z2", {"symmetry": "c3"}, [13, 8, 13, 8])):
        if extra:
            Algorithm((2, 2, 2), *diagonal_pairs_start(2), "Z2").save(folder / "00.json")
        agent = make_agent((2, 2, 2), ring, walks=4, flips_per_episode=10,
                           start_from=str(folder), starts=2, **extra)
        ranks = [agent.current_factors(w)[0].shape[1] for w in range(4)]
        assert ranks == expected
        assert list(agent.walks.best_rank) == ranks
    lookup("school-2x2x2").save(folder / "02.json")
    with pytest.raises(ValueError, match="3 starts for 2 walks"):
        make_agent((2, 2, 2), "Z2", walks=2, start_from=str(folder), starts=2)
    settings = validate(compose_config(["agent=flipgraph", "agent.start_from=built",
                                        "agent.starts=4", "agent.walks=4"]))
    assert settings.agent.starts == 4
    with pytest.raises(ConfigError, match="agent.starts"):  # one file is one start
        validate(compose_config(["agent=flipgraph", "agent.start_from=strassen",
                                 "agent.starts=2"]))
    with pytest.raises(ConfigError, match="agent.starts"):
        validate(compose_config(["agent=flipgraph", "agent.start_from=built",
                                 "agent.starts=5", "agent.walks=4"]))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="a folder with no algorithm file"):
        make_agent((2, 2, 2), "Z2", walks=2, start_from=str(empty), starts=2)


@pytest.mark.slow
def test_mlo_train_finds_strassen_rank_with_flipgraph(run_train, tmp_path):
    done = run_train("agent=flipgraph", "env=matmul_2x2x2_z2", "agent.walks=4",
                     "agent.flips_per_episode=5000", "trainer.time_limit_s=60")
    assert done.returncode == 0, done.stderr
    summary = json.loads(next((tmp_path / "outputs").rglob("summary.json")).read_text())
    assert summary["best_rank"] == 7 and summary["verified"]
    assert summary["stop_reason"] == "target_rank"
    algorithm = Algorithm.load(summary["algorithm_path"])
    assert algorithm.ring == "Z2" and algorithm.verify().ok


def test_threads_split_walks_without_changing_the_result():
    one = make_agent((2, 2, 3), "Z2", walks=4, flips_per_episode=3000, seed=7, threads=1)
    two = make_agent((2, 2, 3), "Z2", walks=4, flips_per_episode=3000, seed=7, threads=2)
    for _ in range(2):
        first, second = one.run_episode(), two.run_episode()
    assert first.moves == second.moves and np.array_equal(one.walks.F, two.walks.F)


def _index_matches_factors(agent: FlipGraphAgent, walk: int) -> None:
    """The Z2 kernel's hash index and flippable list describe the walk's factors exactly."""
    rank = int(agent.walks.rank[walk])
    assert_index_describes(agent.walks.index, walk,
                           [agent.walks.F[walk, mode, :rank] for mode in range(3)])


def test_z2_kernel_keeps_its_index_exact():
    # Plateau 300: plus transitions (index rebuilt) and flips (index updated) interleave.
    agent = make_agent((3, 3, 3), "Z2", walks=3, flips_per_episode=2000, plateau_flips=300,
                       plus_slack=2, seed=1)
    for _ in range(10):
        result = agent.run_episode()
        # partners come from the list: an attempt does nothing only when the list is empty
        assert result.moves + result.metrics["useless_attempts"] == 3 * 2000
        assert result.metrics["useless_attempts"] <= 60
        for walk in range(agent.settings.walks):
            assert verify(*agent.current_factors(walk), (3, 3, 3), "Z2").ok
            _index_matches_factors(agent, walk)
    assert result.metrics["plus_transitions"] > 0


def test_a_z2_plus_transition_leaves_no_pair_that_a_reduction_would_undo():
    """Strassen modulo 2 (no two terms share a factor): after a plus transition the scheme is
    exact, one term longer, and no two terms share two factors (the three new terms pairwise
    share one), so no reduction can take the step straight back."""
    from mlo_exp.agents.flipgraph.index import new_index
    from mlo_exp.agents.flipgraph.kernel_z2 import pack, plus, rebuild, unpack

    algorithm = strassen()
    u, v, w = algorithm.u, algorithm.v, algorithm.w
    for seed in range(1, 30):
        P = np.zeros((1, 3, 9), dtype=np.uint64)
        for mode, factor in enumerate((u, v, w)):
            P[0, mode, :7] = pack(factor)
        rank, index = np.array([7]), new_index(1, 9)
        rebuild(P, rank, *index, 0)
        assert plus(P, rank, np.array([seed * 7919], dtype=np.uint64), *index, 0)
        assert rank[0] == 8
        factors = [unpack(P[0, mode, :8], 4) for mode in range(3)]
        assert verify(*factors, (2, 2, 2), "Z2").ok
        terms = P[0, :, :8].T
        for i in range(8):
            for j in range(i + 1, 8):
                assert int((terms[i] == terms[j]).sum()) <= 1, (seed, i, j)
        assert_index_describes(index, 0, [P[0, mode, :8] for mode in range(3)])


def test_an_integer_plus_transition_leaves_no_pair_that_a_reduction_would_undo(tmp_path):
    """Strassen over Z with coefficients bounded by 2: after a plus transition the scheme is
    exact over Z, within the bound, one term longer, and no two terms share two factors up
    to sign (the keys), so no reduction can take the step straight back."""
    from mlo_exp.agents.flipgraph import kernel_int

    start = str(strassen().save(tmp_path / "strassen.json"))
    for seed in range(1, 30):
        agent = make_agent((2, 2, 2), "Z", walks=1, coefficient_bound=2, start_from=start)
        walks = agent.walks
        assert kernel_int.plus(walks.F, walks.K, walks.S, walks.rank, walks.index,
                               np.array([seed * 7919], dtype=np.uint64), 0, walks.dims, 2)
        assert walks.rank[0] == 8
        factors = agent.current_factors(0)
        assert verify(*factors, (2, 2, 2), "Z").ok
        assert max(int(np.abs(f).max()) for f in factors) <= 2
        keys = walks.K[0, :8]
        for i in range(8):
            for j in range(i + 1, 8):
                assert int((keys[i] == keys[j]).sum()) <= 1, (seed, i, j)


def test_z2_packing_round_trips_64_bit_factors():
    from mlo_exp.agents.flipgraph.kernel_z2 import pack, unpack

    rng = np.random.default_rng(0)
    factor = rng.integers(0, 2, size=(64, 9))
    assert np.array_equal(unpack(pack(factor), 64), factor)


def test_start_from_takes_a_library_name(run_train, tmp_path, compose_config):
    # The run resolves the name into <run dir>/start_from.json; the agent reads only that file.
    settings = validate(compose_config(["agent=flipgraph",
                                        "agent.start_from=alphatensor-4x4x4-z2"]))
    assert settings.agent.start_from == "alphatensor-4x4x4-z2"
    with pytest.raises(ConfigError, match="library name"):
        validate(compose_config(["agent=flipgraph", "agent.start_from=strassen-3x3x3"]))
    done = run_train("agent=flipgraph", "env=matmul_2x2x2_z2", "agent.walks=2",
                     "agent.flips_per_episode=100", "agent.start_from=strassen",
                     "trainer.episodes=1")
    assert done.returncode == 0, done.stderr
    summary = json.loads(next((tmp_path / "outputs").rglob("summary.json")).read_text())
    assert summary["best_rank"] == 7
    written = next((tmp_path / "outputs").rglob("start_from.json"))
    assert Algorithm.load(written).rank == 7
    refused = run_train("agent=flipgraph", "env=matmul_2x2x2_z2", "agent.start_from=school-3x3x3",
                        "trainer.episodes=1")
    assert refused.returncode == 2 and "<3,3,3>" in refused.stderr


def test_jobs_share_their_best_schemes_through_the_pool(tmp_path):
    # Job A reaches 23 on <3,3,3> mod 2 and publishes it; job B (a walk too short to get
    # there itself) picks it up at its next pool read. A killed job loses nothing: the pool
    # keeps the files, and a new job reads them.
    pool = tmp_path / "pool"
    settings = {"walks": 2, "pool_dir": str(pool), "pool_every": 1, "restart_after": 1}
    a = make_agent((3, 3, 3), "Z2", flips_per_episode=100_000, seed=0, **settings)
    for _ in range(40):
        if a.run_episode().rank_used <= 23:
            break
    a.run_episode()  # publishes (every episode here)
    files = sorted(pool.glob("rank*.json"))
    assert files and files[0].name.startswith("rank0023-")
    assert Algorithm.load(files[0]).verify().ok
    b = make_agent((3, 3, 3), "Z2", flips_per_episode=10, seed=1, **settings)
    result = b.run_episode()
    assert result.metrics["pool_restarts"] >= 1
    assert result.rank_used == 23 and verify(*result.factors, (3, 3, 3), "Z2").ok
    # files that do not fit (another shape, unreadable) are skipped, never fatal
    (pool / "rank0001-broken.json").write_text("{")
    make_agent((2, 2, 2), "Z2", flips_per_episode=10, **settings).run_episode()
    assert make_agent((3, 3, 3), "Z2", flips_per_episode=10, **settings).run_episode() \
        .rank_used == 23


def test_a_dead_end_never_spins(tmp_path):
    # Strassen modulo 2 has no two terms sharing a factor: no flip is possible. With no plus
    # slack the previous kernel spun on it (every attempt useless); now the walk goes back to
    # its best scheme and, as that is isolated, makes a plus transition anyway.
    path = strassen()
    agent = make_agent((2, 2, 2), "Z2", walks=2, flips_per_episode=20_000, plus_slack=0,
                       max_plus_slack=0, start_from=str(path.save(tmp_path / "s.json")))
    result = agent.run_episode()
    assert result.metrics["useless_share"] < 0.2, result.metrics
    assert result.metrics["path_resets"] > 0 and result.metrics["plus_transitions"] > 0
    assert result.rank_used == 7 and verify(*result.factors, (2, 2, 2), "Z2").ok


@pytest.mark.parametrize("ring", ["Z2", "Z"])
def test_resume_is_exact_with_bounded_paths_restarts_and_the_population(ring):
    # Short paths and restarts after one idle episode: every mechanism acts between the
    # checkpoint and the episodes compared (8 short walks: some lag behind the frontier,
    # the only walks that restart).
    settings = {"walks": 8, "flips_per_episode": 3000, "plateau_flips": 200, "plus_slack": 1,
                "max_plus_slack": 3, "path_flips": 2000, "restart_after": 1, "population": 4}
    agent = make_agent((3, 3, 3), ring, seed=3, **settings)
    for _ in range(2):
        agent.run_episode()
    state = agent.state_dict()
    later = [agent.run_episode() for _ in range(4)]
    clone = make_agent((3, 3, 3), ring, seed=77, **settings)
    clone.load_state_dict(state)
    again = [clone.run_episode() for _ in range(4)]
    for first, second in zip(later, again, strict=True):
        assert _same_but_speed(first, second)
        assert first.rank_used == second.rank_used and first.moves == second.moves
    assert sum(r.metrics["path_resets"] for r in later) > 0
    assert sum(r.metrics["restarts"] for r in later) > 0
    for name, value in agent.walks.state_dict().items():
        assert np.array_equal(value, clone.walks.state_dict()[name]), name


def _same_but_speed(first, second) -> bool:
    """Equal metrics, but for the two rates per wall-clock second."""
    timing = {"flips_per_s", "attempts_per_s"}
    return first.metrics.keys() == second.metrics.keys() and all(
        first.metrics[k] == second.metrics[k] for k in first.metrics if k not in timing)


def test_restarts_spread_over_distinct_schemes():
    from mlo_exp.agents.flipgraph.population import scheme_key

    agent = make_agent((3, 3, 3), "Z2", walks=8, flips_per_episode=20_000, restart_after=1,
                       seed=4)
    for _ in range(6):
        result = agent.run_episode()
    population = agent.population
    frontier = result.rank_used
    assert population.count(frontier) >= 2
    keys = [k for k, (rank, _) in population.entries.items() if rank == frontier]
    assert len(set(keys)) == len(keys)
    for key in keys:  # every kept scheme is exact and its key is its own digest
        factors = population.entries[key][1]
        assert verify(*factors, (3, 3, 3), "Z2").ok and scheme_key(factors, "Z2") == key
    started = [n for k, n in population.starts.items() if population.entries[k][0] == frontier]
    assert len(started) >= 2  # restarts were spread over more than one scheme


def test_scheme_key_ignores_term_order_and_sign_convention():
    from mlo_exp.agents.flipgraph.population import scheme_key

    u, v, w = (np.asarray(x) for x in (strassen().u, strassen().v, strassen().w))
    order = np.random.default_rng(0).permutation(u.shape[1])
    assert scheme_key((u, v, w), "Z") == scheme_key((u[:, order], v[:, order], w[:, order]), "Z")
    flipped = (-u, -v, w)  # (-a)(x)(-b)(x)c is the same term
    assert scheme_key((u, v, w), "Z") == scheme_key(flipped, "Z")
    assert scheme_key((u, v, w), "Z") != scheme_key((u, v, -w), "Z")
    assert np.array_equal(u, np.asarray(strassen().u))  # the caller's arrays are untouched


def test_integer_kernel_indexes_its_keys_exactly():
    # Over Z the index holds the keys (factors up to sign): after flips, reductions, plus
    # transitions and path resets it lists exactly the keys held by two or more live terms.
    agent = make_agent((3, 3, 3), "Z", walks=3, flips_per_episode=3000, plateau_flips=300,
                       plus_slack=2, path_flips=2000, seed=6)
    walks = agent.walks
    for _ in range(6):
        result = agent.run_episode()
        for walk in range(agent.settings.walks):
            rank = int(walks.rank[walk])
            assert_index_describes(walks.index, walk,
                                   [walks.K[walk, :rank, mode] for mode in range(3)])
            assert verify(*agent.current_factors(walk), (3, 3, 3), "Z").ok
    assert result.metrics["reductions"] + result.metrics["plus_transitions"] > 0



@pytest.mark.parametrize(("ring", "axis"), [("Z2", "p"), ("Z", "m")])
def test_walks_one_size_larger_report_exact_restrictions(ring, axis):
    # <2,2,3> from walks over <2,2,4> (or <2,3,3>): the restriction of a rank-14 (rank-15)
    # scheme drops the terms living on the last slice; best known 11 is reached.
    agent = make_agent((2, 2, 3), ring, walks=4, flips_per_episode=20_000, seed=0,
                       project_from=axis)
    assert agent.walks.game.shape == ((2, 2, 4) if axis == "p" else (2, 3, 3))
    results = [agent.run_episode() for _ in range(6)]
    for result in results:
        assert verify(*result.factors, (2, 2, 3), ring).ok
        assert result.rank_used <= result.metrics["walk_rank"]
    assert results[-1].rank_used == 11
    state = agent.state_dict()
    clone = make_agent((2, 2, 3), ring, walks=4, flips_per_episode=20_000, seed=5,
                       project_from=axis)
    clone.load_state_dict(state)
    first, second = agent.run_episode(), clone.run_episode()
    assert first.rank_used == second.rank_used
    assert all(np.array_equal(a, b) for a, b in zip(first.factors, second.factors, strict=True))


@pytest.mark.parametrize("axis", ["n", "m", "p"])
def test_every_slice_restriction_is_exact_and_the_best_is_the_lowest(axis):
    # <3,3,3> Laderman-rank 23 from the catalogue, restricted to a <.,.,.> one smaller along
    # ``axis`` by dropping each of the three slices in turn
    from mlo_exp.agents.flipgraph import projection
    from mlo_exp.algorithms.library import best

    scheme = best(3, 3, 3, ring="Z")
    factors = tuple(np.asarray(f, dtype=np.int64) for f in (scheme.u, scheme.v, scheme.w))
    small = [2 if a == axis else 3 for a in "nmp"]
    ranks = []
    for dropped in range(3):
        restricted = projection.restrict(factors, tuple(small), axis, dropped)
        assert verify(*restricted, tuple(small), "Z").ok
        ranks.append(restricted[0].shape[1])
    last = projection.restrict(factors, tuple(small), axis)
    assert last[0].shape[1] == ranks[-1]
    chosen = projection.best_restriction(factors, tuple(small), axis)
    assert chosen[0].shape[1] == min(ranks) and verify(*chosen, tuple(small), "Z").ok


def test_project_from_is_checked(compose_config):
    with pytest.raises(ConfigError, match="agent.project_from"):
        validate(compose_config(["agent=flipgraph", "agent.project_from=q"]))
    with pytest.raises(ConfigError, match="agent.project_from"):
        validate(compose_config(["agent=flipgraph", "agent.project_from=p",
                                 "agent.symmetry=c3"]))


def test_dead_ends_are_schemes_no_flip_can_leave():
    from mlo_exp.agents.flipgraph.population import Population, is_dead_end
    from mlo_exp.algorithms.library import school

    u, v, w = (np.asarray(x) for x in (strassen().u, strassen().v, strassen().w))
    assert is_dead_end((u, v, w), "Z2") and is_dead_end((u, v, w), "Z")
    assert not is_dead_end(tuple(np.asarray(x) for x in (school(2, 2, 2).u, school(2, 2, 2).v,
                                                         school(2, 2, 2).w)), "Z2")
    # over Z a shared factor up to sign is a flip: a(x)b(x)c + (-a)(x)b'(x)c'
    negated = (np.concatenate([u, -u[:, :1]], axis=1), np.concatenate([v, v[:, 1:2]], axis=1),
               np.concatenate([w, w[:, 2:3]], axis=1))
    assert not is_dead_end(negated, "Z")
    population = Population(4, "Z2")
    assert not population.add((u, v, w)) and population.best_rank is None


def test_a_walk_whose_best_is_a_dead_end_restarts_and_the_record_is_kept():
    # <2,2,2> from the school method: walks reach rank 7 (Strassen up to symmetry: a dead
    # end); the episode still reports it, and the walk restarts from a rank-8 scheme a flip
    # can leave (short episodes: the population sees walks at 8 before they reach 7) instead
    # of bouncing between 7 and one plus transition above it.
    from mlo_exp.agents.flipgraph.population import is_dead_end

    agent = make_agent((2, 2, 2), "Z2", walks=4, flips_per_episode=50, plateau_flips=200,
                       seed=0)
    restarted = 0
    for _ in range(30):
        result = agent.run_episode()
        restarted += result.metrics["restarts"]
        if agent.population.best_rank is not None:
            assert not any(is_dead_end(agent.best_factors(walk), "Z2") for walk in range(4))
    assert result.rank_used == 7 and verify(*result.factors, (2, 2, 2), "Z2").ok
    assert is_dead_end(result.factors, "Z2") and agent.population.best_rank == 8
    assert restarted > 0
    state = agent.state_dict()  # the record is part of the checkpoint
    clone = make_agent((2, 2, 2), "Z2", walks=4, flips_per_episode=50, plateau_flips=200,
                       seed=9)
    clone.load_state_dict(state)
    assert all(np.array_equal(x, y) for x, y in zip(clone.record, agent.record, strict=True))
    assert clone.run_episode().rank_used == 7


def test_reductions_to_a_dead_end_at_a_reached_rank_are_refused():
    """``agent.min_flippable=1``: once the record is rank 7 on <2,2,2> (every rank-7 scheme is
    Strassen up to symmetry, a dead end), a reduction to rank 7 is undone: the walk stays at
    rank 8 on the scheme before the flip, exact, with an index that matches it. The first
    rank 7 is still found (below the record then: accepted)."""
    agent = make_agent((2, 2, 2), "Z2", walks=4, flips_per_episode=2000, plateau_flips=300,
                       min_flippable=1, seed=0)
    ranks = [agent.run_episode().rank_used for _ in range(10)]
    assert min(ranks) == 7  # the record: a reduction below the floor is kept
    from mlo_exp.agents.flipgraph.start import school

    agent.walks.floor = 7  # what run_episode sets from the record
    for walk in range(4):  # every walk from the school method, no rank-7 best to go back to
        agent.walks.load(walk, school(2, 2, 2))
    agent.walks.rebuild()
    counts = np.zeros((4, 6), dtype=np.int64)
    for _ in range(5):
        agent.walks.advance(0, 4, counts)
        for walk in range(4):
            assert agent.walks.rank[walk] >= 8
            assert verify(*agent.current_factors(walk), (2, 2, 2), "Z2").ok
            _index_matches_factors(agent, walk)
    assert counts[:, 5].sum() > 0  # refused reductions, counted apart from flips
    assert counts[:, 0].sum() + counts[:, 3].sum() + counts[:, 5].sum() == 4 * 2000


def test_a_z2_walk_told_to_stop_below_a_rank_stops_at_its_first_reduction_there():
    """``Z2Walks.advance(stop_below=r)`` (the pool descent's one reduction at a time): every
    walk from the school method of <3,3,3> (27) stops once its rank falls below 27, so it
    ends at 26 (or lower, when one flip reduced twice), with fewer attempts than asked for and
    an exact scheme; without it the same walks go on down."""
    from mlo_exp.agents.flipgraph.start import school

    def walk(stop_below):
        agent = make_agent((3, 3, 3), "Z2", walks=4, flips_per_episode=50_000, seed=0)
        for index in range(4):
            agent.walks.load(index, school(3, 3, 3))
        agent.walks.rebuild()
        counts = np.zeros((4, 6), dtype=np.int64)
        agent.walks.advance(0, 4, counts, stop_below=stop_below)
        return agent, counts

    stopped, counts = walk(27)
    attempts = counts[:, 0] + counts[:, 3] + counts[:, 5]
    assert (stopped.walks.rank < 27).all() and (stopped.walks.rank >= 25).all()
    assert (attempts < 50_000).all()
    for index in range(4):
        assert verify(*stopped.current_factors(index), (3, 3, 3), "Z2").ok
    free, _ = walk(0)
    assert free.walks.best_rank.max() < stopped.walks.rank.min()


def test_the_z2_kernel_reduces_three_terms_with_dependent_factors():
    """Kauers-Moosbauer's reduction: ``a(x)b1(x)c1 + a(x)b2(x)c2 + a(x)(b1+b2)(x)c3`` is
    ``a(x)b1(x)(c1+c3) + a(x)b2(x)(c2+c3)``: one term fewer, the same tensor. No two of the
    three terms share two factors, so the pairwise reduction misses it."""
    from mlo_exp.agents.flipgraph import kernel_z2
    from mlo_exp.agents.flipgraph.index import new_index
    from mlo_exp.agents.flipgraph.kernel_z2 import pack, rebuild, unpack
    from mlo_exp.algorithms.library import school
    from mlo_exp.algorithms.tensor import reconstruct

    base = school(2, 2, 2)
    a, b1, b2 = np.array([1, 0, 0, 1]), np.array([1, 1, 0, 0]), np.array([0, 1, 1, 0])
    c1, c2, c3 = np.array([1, 0, 0, 0]), np.array([0, 1, 0, 1]), np.array([1, 1, 1, 0])
    extra = (np.stack([a, a, a], axis=1), np.stack([b1, b2, (b1 + b2) % 2], axis=1),
             np.stack([c1, c2, c3], axis=1))
    factors = [np.concatenate([np.asarray(f), e], axis=1)
               for f, e in zip((base.u, base.v, base.w), extra, strict=True)]
    expected = reconstruct(*factors) % 2
    P = np.zeros((1, 3, 12), dtype=np.uint64)
    for mode, factor in enumerate(factors):
        P[0, mode, :11] = pack(factor)
    rank, index = np.array([11]), new_index(1, 12)
    rebuild(P, rank, *index, 0)
    HK, HC, HH, HD, NX, D, nd = index
    slot = kernel_z2._slot(HK, 0, 0, P[0, 0, 8], HK.shape[2] - 1)
    assert HC[0, 0, slot] == 3
    saved = np.zeros_like(P)
    assert kernel_z2._group_reduces(P, HC, HH, NX, 0, 0, slot, saved, 11)
    assert np.array_equal(reconstruct(*[unpack(saved[0, m, :11], 4) for m in range(3)]) % 2,
                          expected)  # the scheme before the reduction, for an undo
    kernel_z2._reduce_all(P, rank, 0)
    assert rank[0] == 10
    reduced = [unpack(P[0, mode, :10], 4) for mode in range(3)]
    assert np.array_equal(reconstruct(*reduced) % 2, expected)


def test_a_z2_flip_that_makes_three_terms_dependent_reduces():
    """Four terms: A and C share ``a`` (mode 0); A, D and E share ``c`` (mode 2). The flip of
    A and C that changes A's ``v`` to ``b1 + b3 = b4 + b5`` makes the ``v`` of A, D, E
    dependent, with no two terms sharing two factors: only the reduction of three terms sees
    it. Every flip keeps the tensor; the dependent one lowers the rank."""
    from mlo_exp.agents.flipgraph.index import new_index
    from mlo_exp.agents.flipgraph.kernel_z2 import flip, rebuild, unpack
    from mlo_exp.algorithms.tensor import reconstruct

    # terms A, C, D, E as bit sets (u, v, w); b1 ^ b3 == b4 ^ b5 == 3
    terms = [(1, 1, 1), (1, 2, 2), (2, 4, 1), (4, 7, 1)]
    reduced = 0
    for seed in range(1, 200):
        P = np.zeros((1, 3, 6), dtype=np.uint64)
        P[0, :, :4] = np.array(terms, dtype=np.uint64).T
        rank, index = np.array([4]), new_index(1, 6)
        rebuild(P, rank, *index, 0)
        before = reconstruct(*[unpack(P[0, m, :4], 3) for m in range(3)]) % 2
        outcome = flip(P, rank, np.array([seed * 7919], dtype=np.uint64), *index, 0,
                       P.copy(), 99, 0)
        after = reconstruct(*[unpack(P[0, m, : rank[0]], 3) for m in range(3)]) % 2
        assert np.array_equal(before, after), seed
        if outcome == 2:
            reduced += 1
            assert rank[0] < 4
            # the same flip with every reduction refused (floor 0, thin 99): undone exactly
            P = np.zeros((1, 3, 6), dtype=np.uint64)
            P[0, :, :4] = np.array(terms, dtype=np.uint64).T
            start = P.copy()
            rank, index = np.array([4]), new_index(1, 6)
            rebuild(P, rank, *index, 0)
            outcome = flip(P, rank, np.array([seed * 7919], dtype=np.uint64), *index, 0,
                           np.zeros_like(P), 0, 99)
            assert outcome == 3 and rank[0] == 4 and np.array_equal(P, start), seed
    assert reduced > 0
