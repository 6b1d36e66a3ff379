"""FactoredDense and DeepLinear: shapes, weights, hand-checked outputs, serialization."""

import keras
import numpy as np
import pytest
from keras.ops import convert_to_numpy as numpy  # torch: outputs that require grad

from tfovp import initializers
from tfovp.layers import DeepLinear, FactoredDense


def _built(layer, input_dim, dtype="float64"):
    layer.build((None, input_dim))
    return layer


def test_deep_linear_weights_and_output():
    layer = DeepLinear(2, depth=3, hidden_widths=[4, 3], dtype="float64")
    _built(layer, 5)
    assert [w.path.split("/")[-1] for w in layer.weights] == ["kernel_0", "kernel_1", "kernel_2"]
    assert [tuple(w.shape) for w in layer.weights] == [(5, 4), (4, 3), (3, 2)]
    # Parameters: 5*4 + 4*3 + 3*2 = 38, no bias.
    assert layer.count_params() == 38
    rng = np.random.default_rng(0)
    values = [rng.normal(size=s) for s in [(5, 4), (4, 3), (3, 2)]]
    layer.set_weights(values)
    x = rng.normal(size=(7, 5))
    expected = x @ values[0] @ values[1] @ values[2]
    np.testing.assert_allclose(numpy(layer(x)), expected, rtol=1e-12)
    np.testing.assert_allclose(layer.end_to_end(), values[0] @ values[1] @ values[2], rtol=1e-12)


def test_deep_linear_default_widths_and_init():
    layer = _built(DeepLinear(1, depth=4), 128)
    assert [tuple(w.shape) for w in layer.weights] == [(128, 1), (1, 1), (1, 1), (1, 1)]
    # The paper's near-zero init: N(0, 0.01^2) entries (128 draws: sample std within 30 %).
    first = layer.get_weights()[0]
    assert 0.007 < float(np.std(first)) < 0.013 and np.unique(first).size == first.size
    assert layer.units == 1


def test_deep_linear_balanced_initializer_is_exact():
    target = np.random.default_rng(1).normal(size=(6, 2))
    layer = _built(
        DeepLinear(
            2, depth=3, hidden_widths=3, kernel_initializer=initializers.Balanced(target, seed=0), dtype="float64"
        ),
        6,
    )
    np.testing.assert_allclose(layer.end_to_end(), target, atol=1e-13)


def test_factored_dense_equals_dense_with_product_kernel():
    layer = FactoredDense(3, depth=2, activation="relu", bias_initializer="ones", dtype="float64")
    _built(layer, 4)
    assert [tuple(w.shape) for w in layer.weights] == [(4, 3), (3, 3), (3,)]
    dense = keras.layers.Dense(3, activation="relu", dtype="float64")
    dense.build((None, 4))
    dense.set_weights([numpy(layer.kernel), numpy(layer.bias)])
    x = np.random.default_rng(2).normal(size=(10, 4))
    np.testing.assert_allclose(numpy(layer(x)), numpy(dense(x)), rtol=1e-12)


def test_factored_dense_list_initializer_and_rank3_input():
    inits = [keras.initializers.Constant(1.0), initializers.Identity(0.0, seed=0)]
    layer = FactoredDense(2, depth=2, hidden_widths=3, kernel_initializer=inits, use_bias=False)
    out = layer(np.ones((2, 5, 4), "float32"))
    assert tuple(out.shape) == (2, 5, 2)
    np.testing.assert_allclose(layer.factors[0], np.ones((4, 3)))
    np.testing.assert_allclose(layer.factors[1], np.eye(3, 2))


def test_seeded_keras_initializer_draws_distinct_square_factors():
    layer = _built(FactoredDense(6, depth=3, kernel_initializer=keras.initializers.RandomNormal(seed=1)), 6)
    a, b, c = layer.get_weights()[:3]
    assert not np.allclose(a, b) and not np.allclose(b, c)


def test_regularizers_on_product_and_factors():
    layer = FactoredDense(
        2,
        depth=2,
        kernel_regularizer=keras.regularizers.L2(0.5),
        factor_regularizer=keras.regularizers.L2(0.25),
        use_bias=False,
        dtype="float64",
    )
    layer(np.ones((1, 3)))
    kernel = numpy(layer.kernel)
    factors = layer.get_weights()
    expected = 0.5 * np.sum(kernel**2) + 0.25 * sum(np.sum(f**2) for f in factors)
    np.testing.assert_allclose(sum(float(v) for v in layer.losses), expected, rtol=1e-12)


@pytest.mark.parametrize(
    "layer",
    [
        DeepLinear(2, depth=3, hidden_widths=[4, 5], kernel_initializer=initializers.NearZero(seed=1)),
        FactoredDense(
            3,
            depth=2,
            activation="tanh",
            kernel_regularizer="l2",
            kernel_initializer=[initializers.NearZero(0.1, seed=1), "orthogonal"],
        ),
    ],
)
def test_config_round_trip_and_saved_model(layer, tmp_path):
    restored = layer.__class__.from_config(layer.get_config())
    assert restored.get_config() == layer.get_config()
    model = keras.Sequential([keras.Input((4,)), layer])
    x = np.random.default_rng(3).normal(size=(6, 4)).astype("float32")
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(numpy(loaded(x)), numpy(model(x)), rtol=1e-6)
    assert type(loaded.layers[0]) is type(layer)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"units": 1, "depth": 0}, "depth=0"),
        ({"units": 0, "depth": 2}, "units=0"),
        ({"units": 1, "depth": 3, "hidden_widths": [2]}, r"hidden_widths=\[2\] \(length 1\)"),
        ({"units": 1, "depth": 3, "hidden_widths": [2, 0]}, r"hidden_widths=\[2, 0\]"),
        ({"units": 1, "depth": 2, "hidden_widths": -1}, "hidden_widths=-1"),
        ({"units": 1, "depth": 2.5}, "depth=2.5"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DeepLinear(**kwargs)


def test_factored_dense_initializer_list_length():
    with pytest.raises(ValueError, match="depth=2"):
        FactoredDense(2, depth=2, kernel_initializer=["zeros"])


def test_deep_linear_needs_units_and_depth():
    with pytest.raises(ValueError, match="needs `units`"):
        DeepLinear(depth=2)
    with pytest.raises(ValueError, match="needs `depth`"):
        DeepLinear(units=2)


def test_kernel_constraint_acts_on_every_factor():
    layer = FactoredDense(3, depth=2, hidden_widths=4, kernel_constraint="non_neg")
    model = keras.Sequential([keras.Input((5,)), layer])
    model.compile(optimizer=keras.optimizers.SGD(1.0), loss="mse")
    rng = np.random.default_rng(0)
    model.fit(rng.normal(size=(16, 5)), rng.normal(size=(16, 3)) * 10, epochs=3, verbose=0)
    assert all(float(np.min(w)) >= 0.0 for w in layer.get_weights()[:2])
    assert layer.get_config()["kernel_constraint"]["class_name"] == "NonNeg"
    with pytest.raises(ValueError, match="lora_rank=4"):
        FactoredDense(3, depth=2, lora_rank=4)
