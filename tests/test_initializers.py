"""Initializers: the paper's near-zero and identity inits, and exact balancedness (Eq. 7)."""

import keras
import numpy as np
import pytest

from tfovp import diagnostics, initializers

SHAPES = [(5, 4), (4, 3), (3, 2)]


def test_near_zero_statistics_and_determinism():
    init = initializers.NearZero(0.01, seed=3)
    first = [np.asarray(f) for f in init.factors([(300, 200), (200, 200)], "float64")]
    again = [np.asarray(f) for f in init.factors([(300, 200), (200, 200)], "float64")]
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    # 60,000 and 40,000 draws: the sample std is within 2% of 0.01 (standard error ~0.3%).
    assert abs(first[0].std() - 0.01) < 2e-4 and abs(first[0].mean()) < 2e-4
    # Equal shapes still get different factors.
    assert not np.allclose(first[1], first[0][:200])
    # Factor j is drawn from NumPy's generator seeded with (seed, j): a single-factor call
    # repeats factor 0, another seed gives other numbers.
    np.testing.assert_array_equal(np.asarray(init((300, 200), "float64")), first[0])
    other = np.asarray(initializers.NearZero(0.01, seed=4)((300, 200), "float64"))
    assert np.abs(other - first[0]).max() > 1e-3


def test_unseeded_follows_keras_global_seed():
    keras.utils.set_random_seed(7)
    a = np.asarray(initializers.NearZero(seed=None)((3, 3)))
    keras.utils.set_random_seed(7)
    b = np.asarray(initializers.NearZero(seed=None)((3, 3)))
    np.testing.assert_array_equal(a, b)


def test_identity_adds_rectangular_diagonal():
    near = [np.asarray(f) for f in initializers.NearZero(0.01, seed=1).factors(SHAPES, "float64")]
    ident = [np.asarray(f) for f in initializers.Identity(0.01, seed=1).factors(SHAPES, "float64")]
    for n, i in zip(near, ident):
        np.testing.assert_allclose(i - n, np.eye(*n.shape), atol=1e-15)


@pytest.mark.parametrize("widths", [[4, 3], [6, 6, 6], [2, 2]])
def test_balanced_random_target_satisfies_eq7(widths):
    shapes = list(zip([5] + widths, widths + [2]))
    init = initializers.Balanced(stddev=0.5, seed=2)
    factors = [np.asarray(f) for f in init.factors(shapes, "float64")]
    target = initializers.product(initializers.NearZero(0.5, seed=2).draw(shapes))
    np.testing.assert_allclose(initializers.product(factors), target, atol=1e-14)
    for residual in diagnostics.balancedness(factors):
        assert residual < 1e-13


def test_balanced_given_target_and_depth_one():
    rng = np.random.default_rng(0)
    target = rng.normal(size=(6, 3))
    factors = initializers.balanced_factors(target, [3, 4, 5])
    np.testing.assert_allclose(initializers.product(factors), target, atol=1e-13)
    assert max(diagnostics.balancedness(factors)) < 1e-12
    np.testing.assert_array_equal(initializers.balanced_factors(target, [])[0], target)
    # Eq. 7 in the paper's orientation: W_{j+1}^T W_{j+1} = W_j W_j^T with W_j = kernel_{j-1}^T.
    w = [f.T for f in factors]
    for j in range(len(w) - 1):
        np.testing.assert_allclose(w[j + 1].T @ w[j + 1], w[j] @ w[j].T, atol=1e-12)


def test_balanced_rejects_width_below_rank():
    target = np.random.default_rng(0).normal(size=(4, 3))
    with pytest.raises(ValueError, match=r"hidden_widths=\[2\]"):
        initializers.balanced_factors(target, [2])
    # A rank-1 target fits through width 1.
    rank_one = np.outer(np.arange(1.0, 5.0), [1.0, 2.0, 3.0])
    factors = initializers.balanced_factors(rank_one, [1])
    np.testing.assert_allclose(initializers.product(factors), rank_one, atol=1e-12)


def test_balanced_target_shape_mismatch():
    init = initializers.Balanced(np.ones((3, 2)), seed=0)
    with pytest.raises(ValueError, match=r"shape \(3, 2\)"):
        init.factors([(4, 2), (2, 2)])


@pytest.mark.parametrize(
    "init",
    [
        initializers.NearZero(0.02, seed=4),
        initializers.Identity(0.03, seed=5),
        initializers.Balanced([[1.0], [2.0]], stddev=0.1, seed=6),
    ],
)
def test_config_round_trip(init):
    restored = keras.initializers.deserialize(keras.initializers.serialize(init))
    assert type(restored) is type(init)
    assert restored.get_config() == init.get_config()
    shapes = [(2, 3), (3, 1)]
    for a, b in zip(init.factors(shapes, "float64"), restored.factors(shapes, "float64")):
        np.testing.assert_array_equal(a, b)


def test_bad_arguments():
    with pytest.raises(ValueError, match="stddev=-1"):
        initializers.NearZero(-1, seed=0)
    with pytest.raises(ValueError, match="seed='a'"):
        initializers.NearZero(seed="a")
    with pytest.raises(ValueError, match="end_to_end.shape"):
        initializers.Balanced(np.ones(3), seed=0)
