"""Diagnostics on hand-made factors."""

import numpy as np
import pytest

from tfovp import diagnostics, initializers


def test_balancedness_hand_computed():
    # kernel_0 = [[1, 0], [0, 2]] (2x2), kernel_1 = [[1], [1]] (2x1):
    # kernel_1 kernel_1^T = [[1, 1], [1, 1]], kernel_0^T kernel_0 = diag(1, 4).
    residual = diagnostics.balancedness([np.diag([1.0, 2.0]), np.ones((2, 1))])
    np.testing.assert_allclose(residual, [np.sqrt(0 + 1 + 1 + 9)])
    relative = diagnostics.balancedness([np.diag([1.0, 2.0]), np.ones((2, 1))], relative=True)
    np.testing.assert_allclose(relative, [np.sqrt(11) / np.sqrt(17)])


def test_balanced_factors_have_zero_residual_batched():
    factors = initializers.balanced_factors(np.random.default_rng(0).normal(size=(4, 2)), [3, 3])
    batched = [np.stack([f, 2 * f if j == 0 else f]) for j, f in enumerate(factors)]
    residuals = diagnostics.balancedness(batched)
    assert residuals[0].shape == (2,)
    assert max(float(r[0]) for r in residuals) < 1e-12
    assert float(residuals[0][1]) > 1e-3  # doubling one factor breaks Eq. 7


def test_singular_values_and_distance():
    np.testing.assert_allclose(diagnostics.singular_values(np.diag([3.0, -5.0, 1.0])), [5, 3, 1])
    np.testing.assert_allclose(diagnostics.singular_values(np.diag([3.0, -5.0]), top=1), [5])
    a = np.zeros((3, 2, 1))
    b = np.ones((3, 2, 1))
    np.testing.assert_allclose(diagnostics.trajectory_distance(a, b), [np.sqrt(2)] * 3)
    np.testing.assert_allclose(diagnostics.trajectory_distance(a, b, relative=True), [1, 1, 1])
    with pytest.raises(ValueError, match="equal shapes"):
        diagnostics.trajectory_distance(a, b[:2])
