"""agent.start_from=auto/built: the best starts the catalogue and the scheme operations build."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from omegaconf import open_dict

from mlo_exp.algorithms.algorithm import Algorithm
from mlo_exp.algorithms.starts import _terms, best_start, best_starts, candidates
from mlo_exp.config import validate
from mlo_exp.run.experiment import resolve_start_from


def test_candidates_come_from_the_shape_its_neighbours_and_the_operations():
    found = candidates((2, 2, 3), "Z")
    names = [a.name for a in found]
    assert any("restricted" in n for n in names) and any("extended" in n for n in names)
    assert all(a.shape == (2, 2, 3) and a.verify().ok for a in found)


def test_best_start_fits_the_ring_and_the_bound():
    over_z = best_start((2, 2, 3), "Z", bound=1)
    assert over_z.rank == 11 and over_z.ring == "Z" and over_z.verify().ok
    assert max(int(abs(x).max()) for x in (over_z.u, over_z.v, over_z.w)) <= 1
    modulo_2 = best_start((4, 4, 4), "Z2", bound=1)
    assert modulo_2.rank <= 49 and modulo_2.verify().ok


def test_the_run_resolves_auto_into_a_verified_file(compose_config, tmp_path):
    cfg = compose_config(["agent=flipgraph", "env=matmul_2x2x3", "agent.start_from=auto"])
    assert validate(cfg).agent.start_from == "auto"
    with open_dict(cfg):
        resolve_start_from(cfg, tmp_path)
    written = Algorithm.load(cfg.agent.start_from)
    assert written.shape == (2, 2, 3) and written.rank == 11 and written.verify().ok


def test_built_starts_leave_out_the_shapes_own_scheme_and_sum_smaller_ones():
    own = best_start((3, 5, 5), "Z2", bound=1)
    built = best_start((3, 5, 5), "Z2", bound=1, own=False)
    assert built.verify().ok and built.shape == (3, 5, 5)
    assert own.rank < built.rank < 75  # above the record, below the school method
    sums = [a for a in candidates((3, 5, 5), "Z", own=False) if a.rank == 25 + 36]
    assert sums and all(a.verify().ok for a in sums)  # <3,2,5> + <3,3,5>, along m or p
    assert all(a.name != "best-3x5x5" for a in candidates((3, 5, 5), "Z", own=False))


def test_the_run_resolves_built_without_the_record(compose_config, tmp_path):
    # <3,5,5> over Z2: auto takes the record (58); built takes <3,6,5>'s record restricted (60)
    starts = {}
    for name in ("auto", "built"):
        cfg = compose_config(["experiment=matmul_4x5x5_z2", "env.shape=[3,5,5]",
                              f"agent.start_from={name}"])
        with open_dict(cfg):
            resolve_start_from(cfg, tmp_path / name)
        starts[name] = Algorithm.load(cfg.agent.start_from)
        assert starts[name].shape == (3, 5, 5) and starts[name].verify().ok
    assert starts["auto"].rank == 58 and starts["built"].rank == 60
    assert "restricted" in starts["built"].name


def test_best_starts_are_distinct_lowest_first_and_not_always_the_lowest_rank():
    # <3,4,5> over Z2 without its own scheme: two sums of rank 49 come first, and the rank-50
    # restrictions of <3,4,6>'s and <3,5,5>'s records (from which the walks reach 47) follow.
    starts = best_starts((3, 4, 5), "Z2", bound=1, own=False, count=16)
    assert len(starts) == 16 and all(a.verify().ok and a.shape == (3, 4, 5) for a in starts)
    ranks = [a.rank for a in starts]
    assert ranks == sorted(ranks) and ranks[0] == 49
    assert starts[0].name == best_start((3, 4, 5), "Z2", bound=1, own=False).name
    terms = {tuple(sorted(map(tuple, (np.concatenate([a.u, a.v, a.w]) % 2).T.tolist())))
             for a in starts}
    assert len(terms) == 16  # no scheme twice, modulo 2
    assert any("3x4x6" in a.name and "restricted" in a.name and a.rank == 50 for a in starts)
    assert [a.name for a in best_starts((3, 4, 5), "Z2", bound=1, own=False)] == [starts[0].name]


def test_over_z_a_term_with_its_signs_moved_is_the_same_term():
    scheme = best_start((2, 2, 2), "Z", bound=1)  # the catalogue's rank 7 over Z
    u, v, w = (np.array(f, dtype=np.int64) for f in (scheme.u, scheme.v, scheme.w))

    def terms(u, v, w):
        return _terms(Algorithm((2, 2, 2), u, v, w, "Z"), "Z")

    flipped = [u.copy(), v.copy(), w.copy()]
    flipped[0][:, 0] *= -1  # (-u) (x) v (x) (-w): the same first term
    flipped[2][:, 0] *= -1
    flipped[1][:, 1] *= -1  # u (x) (-v) (x) (-w): the same second term
    flipped[2][:, 1] *= -1
    assert terms(*flipped) == terms(u, v, w)
    other = [u.copy(), v.copy(), w.copy()]
    other[2][:, 0] *= -1  # only w's sign: a different term
    assert terms(*other) != terms(u, v, w)


def test_the_run_writes_several_built_starts_to_a_folder(compose_config, tmp_path):
    cfg = compose_config(["experiment=matmul_4x5x5_z2", "env.shape=[3,4,5]",
                          "agent.start_from=built", "agent.starts=3"])
    assert validate(cfg).agent.starts == 3
    with open_dict(cfg):
        resolve_start_from(cfg, tmp_path)
        folder = Path(cfg.agent.start_from)
        assert folder == tmp_path / "start_from" and folder.is_dir()
        written = [Algorithm.load(f) for f in sorted(folder.iterdir())]
        assert [a.rank for a in written] == [49, 49, 50]
        resolve_start_from(cfg, tmp_path)  # a resumed run: the folder is kept as it is
        assert cfg.agent.start_from == str(folder)
