"""The end-to-end preconditioner against the brute-force Kronecker form of Claim 1.

Tolerances: float64 throughout. The SVD route has backward error ~1e-15 * ||W||; the
reference takes fractional powers through eigh and zeroes eigenvalues below 1e-10 of
the largest, so on rank-deficient W the two agree to ~1e-10 relative, not 1e-15.
"""

import numpy as np
import pytest
from kronecker import kronecker_preconditioner, precondition_kronecker

from tfovp import end_to_end as e2e

SHAPES = [(2, 5), (5, 2), (4, 4), (1, 6), (6, 1), (3, 3)]


def _relative_error(a, b):
    return np.linalg.norm(np.asarray(a) - b) / max(np.linalg.norm(b), 1e-300)


def _rank_deficient(rng, shape, rank):
    return rng.normal(size=(shape[0], rank)) @ rng.normal(size=(rank, shape[1]))


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("depth", [1, 2, 3, 4, 5])
def test_precondition_matches_kronecker_reference(shape, depth):
    rng = np.random.default_rng(hash((shape, depth)) % 2**32)
    kernel, gradient = rng.normal(size=shape), rng.normal(size=shape)
    expected = precondition_kronecker(kernel, gradient, depth)
    for method in ["svd", "auto", "gram"]:
        got = e2e.precondition(kernel, gradient, depth, method=method)
        assert _relative_error(got, expected) < 1e-10


@pytest.mark.parametrize("shape", [(3, 6), (6, 3), (4, 4)])
@pytest.mark.parametrize("depth", [2, 3, 5])
def test_precondition_rank_deficient_and_zero(shape, depth):
    rng = np.random.default_rng(depth)
    gradient = rng.normal(size=shape)
    for kernel in [_rank_deficient(rng, shape, 1), _rank_deficient(rng, shape, 2), np.zeros(shape)]:
        expected = precondition_kronecker(kernel, gradient, depth)
        for method in ["svd", "gram"]:
            got = np.asarray(e2e.precondition(kernel, gradient, depth, method=method))
            assert np.linalg.norm(got - expected) < 1e-9 * max(1.0, np.linalg.norm(expected)), method


def test_zero_kernel_conventions():
    gradient = np.arange(6.0).reshape(2, 3)
    zero = np.zeros((2, 3))
    # [.]^0 = I on the null space: depth 1 is the identity map even at W = 0 ...
    np.testing.assert_array_equal(e2e.precondition(zero, gradient, 1), gradient)
    # ... and for N > 1 every term has a positive power of W W^T or W^T W, so P_0 = 0.
    for method in ["svd", "auto", "gram"]:
        np.testing.assert_array_equal(e2e.precondition(zero, gradient, 3, method=method), 0 * gradient)
    np.testing.assert_array_equal(e2e.precondition(np.zeros((1, 4)), np.ones((1, 4)), 2), np.zeros((1, 4)))


def test_depth_one_is_identity():
    rng = np.random.default_rng(1)
    kernel, gradient = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    np.testing.assert_array_equal(e2e.precondition(kernel, gradient, 1), gradient)
    np.testing.assert_allclose(kronecker_preconditioner(kernel, 1), np.eye(12), atol=1e-12)


@pytest.mark.parametrize("shape", [(1, 7), (7, 1)])
@pytest.mark.parametrize("depth", [2, 3, 6])
def test_claim2_closed_form_equals_general_rule(shape, depth):
    rng = np.random.default_rng(depth)
    kernel, gradient = rng.normal(size=shape), rng.normal(size=shape)
    closed = e2e.precondition_single_output(kernel, gradient, depth)
    general = e2e.precondition(kernel, gradient, depth, method="svd")
    assert _relative_error(closed, np.asarray(general)) < 1e-12
    # Eq. 12 written out by hand for the row case.
    w = kernel.reshape(-1)
    g = gradient.reshape(-1)
    norm = np.linalg.norm(w)
    hand = norm ** (2 - 2 / depth) * (g + (depth - 1) * (g @ w / norm) * w / norm)
    assert _relative_error(np.asarray(closed).reshape(-1), hand) < 1e-12


def test_transpose_symmetry_and_batching():
    rng = np.random.default_rng(3)
    kernels, gradients = rng.normal(size=(4, 3, 5)), rng.normal(size=(4, 3, 5))
    batched = np.asarray(e2e.precondition(kernels, gradients, 3))
    for b in range(4):
        single = precondition_kronecker(kernels[b], gradients[b], 3)
        assert _relative_error(batched[b], single) < 1e-10
        transposed = np.asarray(e2e.precondition(kernels[b].T, gradients[b].T, 3)).T
        assert _relative_error(transposed, single) < 1e-10


def test_preconditioner_is_positive_semidefinite():
    rng = np.random.default_rng(4)
    matrix = kronecker_preconditioner(rng.normal(size=(3, 4)), 3)
    np.testing.assert_allclose(matrix, matrix.T, atol=1e-12)
    assert np.linalg.eigvalsh(matrix).min() > -1e-10


def test_step_is_eq10_with_weight_decay():
    rng = np.random.default_rng(5)
    kernel, gradient = rng.normal(size=(2, 3)), rng.normal(size=(2, 3))
    eta, lam, depth = 0.1, 0.01, 3
    expected = (1 - eta * lam * depth) * kernel - eta * precondition_kronecker(kernel, gradient, depth)
    got = e2e.step(kernel, gradient, eta, depth, weight_decay=lam)
    np.testing.assert_allclose(got, expected, atol=1e-12)


def _closed_curve_integral(field, e, f, r, big_r, n=20001):
    """Line integral of `field` ((n, d) points -> (n, d) values) around: r e -> R e
    (radial), the arc of radius R through +f to -R e, -R e -> -r e (radial), the arc of
    radius r through +f back to r e; trapezoidal rule with n points per piece."""
    total = 0.0
    radial = np.linspace(r, big_r, n)[:, None]
    angles = np.linspace(0.0, np.pi, n)[:, None]
    pieces = [
        radial * e,
        big_r * (np.cos(angles) * e + np.sin(angles) * f),
        -radial[::-1] * e,
        r * (np.cos(angles[::-1]) * e + np.sin(angles[::-1]) * f),
    ]
    for points in pieces:
        values = field(points)
        midpoint_values = (values[1:] + values[:-1]) / 2
        total += np.sum(np.einsum("ij,ij->i", midpoint_values, np.diff(points, axis=0)))
    return total


def test_theorem2_field_is_not_a_gradient_for_depth_three():
    # The library's Claim 2 field F(w) = ||w||^{2-2/N} (g + (N-1) Pr_w g), g = grad L^1(w),
    # for L^1(w) = 1/2 ||X w - y||^2 / m on a small problem (grad L^1(0) = -X^T y / m != 0).
    rng = np.random.default_rng(6)
    x, y = rng.normal(size=(20, 3)), rng.normal(size=20)

    def field(points, depth):  # points (n, 3) as (n, 1, 3) single-output kernels
        gradients = (points @ x.T - y) @ x / len(y)
        return np.asarray(e2e.precondition_single_output(points[:, None, :], gradients[:, None, :], depth))[:, 0]

    g0 = -x.T @ y / len(y)
    e = g0 / np.linalg.norm(g0)
    f = np.linalg.qr(np.column_stack([e, rng.normal(size=3)]))[0][:, 1]
    integrals = {}
    for depth in [1, 3]:
        big_r = 0.1
        r = (big_r ** (3 - 2 / depth) / 2) ** (1 / (3 - 2 / depth))
        integrals[depth] = _closed_curve_integral(lambda w, depth=depth: field(w, depth), e, f, r, big_r)
    # Depth 1 is a gradient field: its loop integral vanishes up to quadrature error.
    assert abs(integrals[1]) < 1e-9
    assert abs(integrals[3]) > 1e-4
    assert abs(integrals[3]) > 1e4 * abs(integrals[1])


def test_bad_arguments_name_the_value():
    w = np.ones((2, 3), "float32")
    with pytest.raises(ValueError, match="depth=0"):
        e2e.precondition(w, w, 0)
    with pytest.raises(ValueError, match="gradient.shape"):
        e2e.precondition(w, np.ones((3, 2)), 2)
    with pytest.raises(ValueError, match="closed_form"):
        e2e.precondition(w, w, 2, method="closed_form")
    with pytest.raises(ValueError, match="method='qr'"):
        e2e.precondition(w, w, 2, method="qr")
    with pytest.raises(ValueError, match="learning_rate=0"):
        e2e.step(w, w, 0, 2)
    with pytest.raises(ValueError, match="learning_rate=-1"):
        e2e.step(w, w, -1.0, 2)


def test_gram_route_on_a_tall_tutorial_sized_kernel():
    # The MNIST tutorial's 3136 x 512 kernel (here 784 x 128, the same aspect): the Gram
    # route equals the SVD route to float64 round-off.
    rng = np.random.default_rng(3)
    kernel = rng.normal(size=(784, 128)) @ rng.normal(size=(128, 128)) * 0.01
    gradient = rng.normal(size=(784, 128))
    svd, gram = (np.asarray(e2e.precondition(kernel, gradient, 2, method=m)) for m in ("svd", "gram"))
    assert _relative_error(gram, svd) < 1e-10
