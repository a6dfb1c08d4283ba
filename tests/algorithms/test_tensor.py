from fractions import Fraction

import numpy as np
import pytest

from mlo_exp.algorithms.library import school, strassen
from mlo_exp.algorithms.tensor import (
    matmul_tensor,
    reconstruct,
    scale_to_integers,
    to_exact,
    verify,
    w_from_alphatensor,
)


def test_tensor_computes_the_matrix_product_in_our_convention():
    rng = np.random.default_rng(0)
    for n, m, p in [(1, 1, 1), (2, 2, 2), (2, 3, 4), (3, 1, 2)]:
        a, b = rng.integers(-5, 5, (n, m)), rng.integers(-5, 5, (m, p))
        t = matmul_tensor(n, m, p)
        assert t.shape == (n * m, m * p, n * p)
        c = np.einsum("x,y,xyz->z", a.ravel(), b.ravel(), t)
        np.testing.assert_array_equal(c.reshape(n, p), a @ b)
        assert t.sum() == n * m * p


def test_tensor_rejects_bad_sizes():
    with pytest.raises(ValueError, match="m=0"):
        matmul_tensor(2, 0, 2)


def test_school_and_strassen_verify_exactly():
    assert verify(*_factors(strassen()), (2, 2, 2)).ok
    for shape in [(1, 2, 3), (2, 2, 2), (3, 3, 3), (2, 3, 4)]:
        assert verify(*_factors(school(*shape)), shape).ok


def test_failed_verification_reports_the_residual():
    u, v, w = _factors(strassen())
    w = w.copy()
    w[0, 0] = 0  # c11 loses m1
    result = verify(u, v, w, (2, 2, 2))
    assert not result.ok
    assert result.nonzero > 0
    text = result.describe()
    assert "NOT a decomposition" in text and "wrong entries" in text
    # The residual is exactly T minus the reconstruction.
    np.testing.assert_array_equal(result.residual, matmul_tensor(2, 2, 2) - reconstruct(u, v, w))


def test_verify_checks_shapes_and_rings():
    u, v, w = _factors(strassen())
    with pytest.raises(ValueError, match="factor w has shape"):
        verify(u, v, w[:3], (2, 2, 2))
    with pytest.raises(ValueError, match="ring"):
        verify(u, v, w, (2, 2, 2), ring="R")
    with pytest.raises(ValueError, match="needs integer"):
        verify(u / 2, v * 2, w, (2, 2, 2), ring="Z")


def test_rational_factors_verify_exactly_and_floats_never_decide():
    u, v, w = _factors(strassen())
    # Scale u by 1/8 and w by 8: still exact over Q.
    assert verify(u / 8, v, w * 8, (2, 2, 2), ring="Q").ok
    # A perturbation far below float tolerance is still caught.
    w_bad = to_exact(w * 8).astype(object)
    w_bad[0, 0] = Fraction(w_bad[0, 0]) + Fraction(1, 2**40)
    assert not verify(u / 8, v, w_bad, (2, 2, 2), ring="Q").ok


def test_z2_verification_works_modulo_two():
    u, v, w = _factors(strassen())
    assert verify(u % 2, v % 2, w % 2, (2, 2, 2), ring="Z2").ok
    assert not verify(u % 2, v % 2, w % 2, (2, 2, 2), ring="Z").ok


def test_to_exact_and_scaling():
    assert to_exact([1.0, -2.0]).dtype == np.int64
    exact = to_exact([0.125, 1, "3/4"])
    assert list(exact) == [Fraction(1, 8), 1, Fraction(3, 4)]
    numerators, denominator = scale_to_integers(exact)
    assert denominator == 8 and list(numerators) == [1, 8, 6]
    with pytest.raises(ValueError):
        to_exact([float("nan")])


def test_w_from_alphatensor_permutes_c_transposed_rows():
    n, m, p = 2, 3, 4
    # AlphaTensor's tensor has T[i*m+j, j*p+k, k*n+i] = 1; permuting its third mode gives ours.
    theirs = np.zeros((n * m, m * p, n * p), dtype=np.int64)
    for i in range(n):
        for j in range(m):
            for k in range(p):
                theirs[i * m + j, j * p + k, k * n + i] = 1
    ours = w_from_alphatensor(theirs.transpose(2, 0, 1), n, p).transpose(1, 2, 0)
    np.testing.assert_array_equal(ours, matmul_tensor(n, m, p))


def _factors(algorithm):
    return algorithm.u, algorithm.v, algorithm.w


def test_verify_is_exact_when_the_denominators_multiply_beyond_int64():
    # each factor's denominator fits int64, their product (the scale, about 2**77) does not
    s = strassen()
    a, b, c, d = 2**20, 3**12, 5**8, 7**7
    u = s.u.astype(object) * Fraction(c, a)
    v = s.v.astype(object) * Fraction(d, b)
    w = s.w.astype(object) * Fraction(a * b, c * d)
    assert verify(u, v, w, (2, 2, 2), "Q").ok
    w[0, 0] += 1
    assert not verify(u, v, w, (2, 2, 2), "Q").ok
