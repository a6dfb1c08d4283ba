import io
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest

from mlo_exp.algorithms.alphatensor import (
    UnsafeFileError,
    default_data_dir,
    load_alphatensor,
    read_npz_safely,
)

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "alphatensor"


@pytest.fixture(scope="module")
def exact_algorithms():
    return load_alphatensor(default_data_dir() / "factorizations_r.npz", ring="Q")


def test_all_93_exact_factorizations_import_and_verify(exact_algorithms):
    assert len(exact_algorithms) == 93
    failures = [shape for shape, a in exact_algorithms.items() if not a.verify().ok]
    assert failures == []
    assert exact_algorithms[(2, 2, 2)].rank == 7
    assert exact_algorithms[(4, 4, 4)].rank == 49
    # Some large shapes carry fractional coefficients: they verify over Q, exactly.
    assert any(a.ring == "Q" for a in exact_algorithms.values())


def test_ranks_match_the_best_known_ranks_table(exact_algorithms):
    from mlo_exp.algorithms.reference import known_ranks

    table = known_ranks()
    for shape, algorithm in exact_algorithms.items():
        row = table[tuple(sorted(shape))]
        assert algorithm.rank == row.alphatensor_z, shape


def test_all_20_mod2_factorizations_import_and_verify():
    algorithms = load_alphatensor(default_data_dir() / "factorizations_f2.npz", ring="Z2")
    assert len(algorithms) == 20
    assert all(a.ring == "Z2" and a.verify().ok for a in algorithms.values())
    assert algorithms[(4, 4, 4)].rank == 47
    # Rank 47 for <4,4,4> only holds modulo 2.
    from mlo_exp.algorithms.tensor import verify

    a = algorithms[(4, 4, 4)]
    assert not verify(a.u, a.v, a.w, a.shape, "Z").ok


def test_packaged_copies_match_the_shared_reference_data():
    if not SHARED.is_dir():
        pytest.skip("no ../shared/data beside this checkout")
    for name in ("factorizations_r.npz", "factorizations_f2.npz"):
        assert (default_data_dir() / name).read_bytes() == (SHARED / name).read_bytes()


class _RunsCode:
    def __reduce__(self):
        return (Path.touch, (Path("PWNED"),))


def _npz_with_payload(tmp_path: Path, payload: object) -> Path:
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buffer, {"descr": "|O", "fortran_order": False, "shape": (3,)})
    buffer.write(pickle.dumps(payload, protocol=2))
    path = tmp_path / "evil.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("2,2,2.npy", buffer.getvalue())
    return path


def test_a_pickle_that_would_run_code_is_refused_and_not_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = _npz_with_payload(tmp_path, _RunsCode())
    with pytest.raises(UnsafeFileError, match="refusing to load"):
        read_npz_safely(path)
    assert not (tmp_path / "PWNED").exists()


def test_not_an_npz(tmp_path):
    path = tmp_path / "x.npz"
    path.write_text("hello")
    with pytest.raises(ValueError, match="not a readable .npz"):
        read_npz_safely(path)


def _npz(tmp_path: Path, members: dict[str, object], name: str = "x.npz") -> Path:
    path = tmp_path / name
    with zipfile.ZipFile(path, "w") as archive:
        for member, content in members.items():
            if isinstance(content, np.ndarray):
                buffer = io.BytesIO()
                np.lib.format.write_array(buffer, content, allow_pickle=False)
                content = buffer.getvalue()
            archive.writestr(member, content)
    return path


@pytest.mark.parametrize(
    ("members", "message"),
    [
        ({}, "x.npz: 0 members; accepted: an AlphaTensor .npz"),
        ({"foo.npy": np.zeros((3, 4, 7))}, "member 'foo.npy': unexpected name"),
        ({"2,2,2.txt": b"hi"}, "member '2,2,2.txt': unexpected name"),
        ({"1,1,1.npy": np.ones((3, 1, 1), dtype=bool)}, "dtype 'bool'; accepted: integer or"),
        ({"1,1,1.npy": np.ones((3, 1, 1), dtype=complex)}, "dtype 'complex128'"),
        ({"1,1,1.npy": np.ones((3, 1, 0))}, "'1,1,1.npy': 0 terms; accepted: 1 to 4096"),
        ({"1,1,1.npy": np.full((3, 1, 1), 0.1)}, "coefficient 0.1 is not exact"),
        ({"1,1,1.npy": np.full((3, 1, 1), np.inf)}, "a non-finite coefficient"),
        ({"1,1,1.npy": np.full((3, 1, 1), 2**40)}, "a coefficient beyond 2147483647"),
        ({"0,1,1.npy": np.ones((3, 0, 1))}, "n=0; accepted: an integer from 1 to 16"),
        ({"30,30,30.npy": np.ones((3, 1, 1))}, "n=30; accepted: an integer from 1 to 16"),
        ({"1,1,2.npy": np.ones((3, 1, 1))}, "a factor of shape (1, 1); accepted: (v = m*p = 2"),
        ({"1,1,1.npy": b"\x93NUMPY\x01\x00v\x00{'descr': '<f8', 'fortran_order': False, "
                       b"'shape': (3, 1, 1000000000), }" + b" " * 50 + b"\n"},
         "4 data bytes for shape (3, 1, 1000000000)"),
        ({"1,1,1.npy": b"not an array"}, "member '1,1,1.npy': not a .npy array"),
    ],
)
def test_malformed_archives_are_refused_by_name(tmp_path, members, message):
    from mlo_exp.algorithms.algorithm import AlgorithmFileError

    path = _npz(tmp_path, members)
    with pytest.raises(AlgorithmFileError) as error:
        load_alphatensor(path)
    assert str(error.value).startswith(str(path)) and message in str(error.value)


def test_a_repeated_member_is_refused(tmp_path):
    from mlo_exp.algorithms.algorithm import AlgorithmFileError

    path = _npz(tmp_path, {"1,1,1.npy": np.ones((3, 1, 1))})
    with zipfile.ZipFile(path, "a") as archive, pytest.warns(UserWarning):
        archive.writestr("1,1,1.npy", b"again")
    with pytest.raises(AlgorithmFileError, match="member '1,1,1.npy': appears twice"):
        load_alphatensor(path)


def test_object_array_payloads_are_checked(tmp_path):
    from mlo_exp.algorithms.algorithm import AlgorithmFileError

    path = _npz_with_payload(tmp_path, [1, 2, 3])  # a list, not an array
    with pytest.raises(AlgorithmFileError, match="the pickle holds list"):
        load_alphatensor(path)
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buffer, {"descr": "|O", "fortran_order": False, "shape": (10**9,)})
    path = _npz(tmp_path, {"2,2,2.npy": buffer.getvalue()}, "big.npz")
    with pytest.raises(AlgorithmFileError, match=r"object array of shape \(1000000000,\)"):
        load_alphatensor(path)
