"""EndToEndLinear: Eq. 10 inside `fit`, and Theorem 1 against GD on DeepLinear."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfovp import end_to_end, initializers
from tfovp.layers import DeepLinear
from tfovp.losses import LpLoss
from tfovp.models import EndToEndLinear


def _problem(m=64, d=5, k=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(m, d))
    y = x @ rng.normal(size=(d, k)) + 0.1 * rng.normal(size=(m, k))
    # fit() casts float inputs to floatx (float32): use values exact in float32.
    return x.astype(np.float32).astype(np.float64), y.astype(np.float32).astype(np.float64)


def _fit(model, x, y, eta, steps):
    """`steps` full-batch SGD updates in one epoch of the batch repeated (as many epochs
    of one batch, without the per-epoch overhead)."""
    model.compile(
        optimizer=keras.optimizers.SGD(eta), loss=LpLoss(2, dtype="float64"), steps_per_execution=min(steps, 50)
    )
    model.fit(tf.data.Dataset.from_tensors((x, y)).repeat(steps), epochs=1, shuffle=False, verbose=0)
    return model


def _rule(depth, start, dtype="float64", **kwargs):
    model = EndToEndLinear(
        start.shape[1], depth, dtype=dtype, kernel_initializer=initializers.Balanced(start, seed=0), **kwargs
    )
    model.build((None, start.shape[0]))
    return model


@pytest.mark.parametrize("depth, weight_decay", [(3, 0.0), (2, 0.05)])
def test_one_fit_step_is_eq10(depth, weight_decay):
    x, y = _problem()
    start = 0.3 * np.random.default_rng(1).normal(size=(5, 3))
    model = _fit(_rule(depth, start, weight_decay=weight_decay), x, y, 0.1, 1)
    gradient = x.T @ (x @ start - y) / len(x)  # l2 mean loss, Keras orientation
    # Keras keeps the learning rate in a float32 variable: use the same rounded value.
    eta = float(np.float32(0.1))
    expected = end_to_end.step(start, gradient, eta, depth, weight_decay=weight_decay)
    np.testing.assert_allclose(model.kernel, expected, rtol=1e-10)


def test_depth_one_is_plain_sgd():
    x, y = _problem()
    start = 0.3 * np.random.default_rng(1).normal(size=(5, 3))
    rule = _fit(_rule(1, start), x, y, 0.05, 5)
    dense = keras.Sequential(
        [
            keras.Input((5,)),
            keras.layers.Dense(
                3, use_bias=False, dtype="float64", kernel_initializer=keras.initializers.Constant(start)
            ),
        ]
    )
    _fit(dense, x, y, 0.05, 5)
    np.testing.assert_allclose(rule.kernel, dense.layers[0].kernel, rtol=1e-10)


def _deviation(eta, time_horizon, depth=3):
    """Relative ||W_e(net) - W_e(rule)|| after GD for time eta * steps = time_horizon."""
    x, y = _problem()
    start = initializers.product(initializers.NearZero(0.3, seed=2).draw([(5, 4), (4, 4), (4, 3)]))
    steps = int(round(time_horizon / eta))
    net = keras.Sequential(
        [
            keras.Input((5,)),
            DeepLinear(
                3, depth, hidden_widths=4, dtype="float64", kernel_initializer=initializers.Balanced(start, seed=0)
            ),
        ]
    )
    _fit(net, x, y, eta, steps)
    rule = _fit(_rule(depth, start), x, y, eta, steps)
    net_kernel = np.asarray(net.layers[0].end_to_end())
    rule_kernel = np.asarray(rule.kernel)
    moved = np.linalg.norm(rule_kernel - start) / np.linalg.norm(start)
    return np.linalg.norm(net_kernel - rule_kernel) / np.linalg.norm(rule_kernel), moved


def test_theorem1_rule_tracks_deep_net_and_deviation_grows_with_eta():
    # Theorem 1 is exact in continuous time; GD adds an O(eta) error per unit of time.
    # At eta = 0.002 the two W_e agree to ~1e-3 after moving by a factor ~3 (measured:
    # 7e-4); the bound 5e-3 leaves room for platform differences but fails if the rule
    # or the factor gradients are wrong (then the gap is of the order of the move).
    small, moved = _deviation(0.002, 0.4)
    medium, _ = _deviation(0.01, 0.4)
    large, _ = _deviation(0.05, 0.4)
    assert moved > 0.5
    assert small < 5e-3
    assert small < medium < large


def test_save_load_round_trip(tmp_path):
    x, y = _problem()
    model = _fit(_rule(3, 0.3 * np.ones((5, 3)), weight_decay=0.01), x, y, 0.05, 3)
    path = tmp_path / "rule.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded, EndToEndLinear)
    assert (loaded.depth, loaded.weight_decay) == (3, 0.01)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-12)
    # Training continues with the restored optimizer and rule.
    loaded.fit(x, y, batch_size=len(x), epochs=1, verbose=0)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"units": 1, "depth": 0}, "depth=0"),
        ({"units": 1, "depth": 2, "weight_decay": -0.1}, "weight_decay=-0.1"),
        ({"units": 0, "depth": 2}, "units=0"),
        ({"units": 1, "depth": 2, "method": "eig"}, "method='eig'"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        EndToEndLinear(**kwargs)


def test_mixed_precision_trains_like_float32():
    # Under mixed_float16 Keras wraps the optimizer in a LossScaleOptimizer, which divides
    # the gradients it receives by the loss scale (32,768 at first): the train_step must
    # scale the loss as Keras' own does, or the kernel moves ~32,768x too little. Dynamic
    # loss scaling may skip a step whose scaled gradients overflow float16 (here the
    # first of 4), so compare the direction and the size of the move within a factor 2.
    x, y = _problem(m=64)
    start = 0.3 * np.random.default_rng(1).normal(size=(5, 3))
    moved = {}
    for policy in ("float32", "mixed_float16"):
        keras.mixed_precision.set_global_policy(policy)
        try:
            model = EndToEndLinear(3, 2, weight_decay=0.01, kernel_initializer=initializers.Balanced(start, seed=0))
            model.compile(optimizer=keras.optimizers.SGD(0.05), loss=LpLoss(2))
            model.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
            moved[policy] = np.asarray(model.kernel, np.float64) - start
        finally:
            keras.mixed_precision.set_global_policy("float32")
    size = {policy: np.linalg.norm(move) for policy, move in moved.items()}
    cosine = np.sum(moved["float32"] * moved["mixed_float16"]) / (size["float32"] * size["mixed_float16"])
    assert size["float32"] > 1e-2 and 0.5 < size["mixed_float16"] / size["float32"] < 2 and cosine > 0.98


def test_units_and_summary():
    model = EndToEndLinear(units=2, depth=3)
    lines = []
    model.summary(print_fn=lines.append)
    assert "not built" in lines[-1]
    model.build((None, 5))
    lines.clear()
    model.summary(print_fn=lines.append)
    assert any("shape (5, 2), 10 parameters" in line for line in lines) and "depth 3" in lines[0]
    with pytest.raises(ValueError, match="needs `units`"):
        EndToEndLinear(depth=3)
