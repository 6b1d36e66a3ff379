"""The compiled sweep trainer against Keras' own training and hand-made references."""

import keras
import numpy as np
import pytest

from tfovp import diagnostics, initializers
from tfovp.layers import DeepLinear
from tfovp.losses import LpLoss
from tfovp.models import EndToEndLinear
from tfovp.sweep import sweep


def _problem(m=40, d=4, k=2, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(m, d))
    y = x @ rng.normal(size=(d, k)) + 0.3 * rng.normal(size=(m, k))
    # fit() casts float inputs to float32: keep values exact in float32.
    return x.astype(np.float32).astype(np.float64), y.astype(np.float32).astype(np.float64)


def _initial(init, seed, shapes):
    return [np.asarray(f) for f in initializers.draw_factors(initializers.with_seed(init, seed), shapes, "float64")]


def _keras_fit(layer, x, y, optimizer, p, steps, start):
    model = keras.Sequential([keras.Input((x.shape[1],)), layer])
    layer.set_weights(start)
    model.compile(optimizer=optimizer, loss=LpLoss(p, dtype="float64"))
    model.fit(x, y, batch_size=len(x), epochs=steps, shuffle=False, verbose=0)
    return [np.asarray(w) for w in layer.weights]


# Keras keeps learning rates in float32 variables: use rates exact in float32.
ETA = float(np.float32(0.02))


@pytest.mark.parametrize("p", [2, 4])
def test_depth_one_equals_keras_sgd_on_dense_without_bias(p):
    x, y = _problem()
    init = initializers.NearZero(0.1, seed=None)
    start = _initial(init, 3, [(4, 2)])[0]
    result = sweep(x, y, [ETA], 25, depth=1, loss=p, initializer=init, seeds=[3], dtype="float64")
    dense = keras.layers.Dense(2, use_bias=False, dtype="float64")
    (kernel,) = _keras_fit(dense, x, y, keras.optimizers.SGD(ETA), p, 25, [start])
    np.testing.assert_allclose(result.final_weights[0][0], kernel, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize(
    "update",
    [
        "gd",
        "adam",
        "adagrad",
        "adadelta",
        "rmsprop",
        {"class_name": "sgd", "config": {"momentum": 0.9}},
        {"class_name": "sgd", "config": {"momentum": 0.9, "nesterov": True}},
    ],
)
def test_deep_net_equals_keras_fit_of_deep_linear(update):
    # The optimizers the module docstring calls exact: updates linear in the learning rate.
    x, y = _problem()
    init = initializers.NearZero(0.3, seed=None)
    shapes = [(4, 3), (3, 3), (3, 2)]
    start = _initial(init, 1, shapes)
    result = sweep(
        x, y, [ETA], 15, depth=3, hidden_widths=3, update=update, loss=4, initializer=init, seeds=[1], dtype="float64"
    )
    layer = DeepLinear(2, 3, hidden_widths=3, dtype="float64")
    if update == "gd":
        optimizer = keras.optimizers.SGD(ETA)
    elif isinstance(update, dict):
        optimizer = keras.optimizers.get({**update, "config": {**update["config"], "learning_rate": ETA}})
    else:
        optimizer = keras.optimizers.get({"class_name": update, "config": {"learning_rate": ETA}})
    weights = _keras_fit(layer, x, y, optimizer, 4, 15, start)
    for got, expected in zip(result.final_weights, weights):
        np.testing.assert_allclose(got[0], expected, rtol=1e-9, atol=1e-12)


def test_weight_decay_equals_keras_sgd_weight_decay():
    # Eq. 4 with lambda > 0: Keras' SGD applies w <- w - eta*lambda*w before the gradient
    # step, with the gradient taken at the old w: the same update.
    x, y = _problem()
    init = initializers.NearZero(0.3, seed=None)
    start = _initial(init, 2, [(4, 3), (3, 2)])
    result = sweep(
        x,
        y,
        [ETA],
        12,
        depth=2,
        hidden_widths=3,
        loss=4,
        initializer=init,
        seeds=[2],
        weight_decay=0.25,
        dtype="float64",
    )
    layer = DeepLinear(2, 2, hidden_widths=3, dtype="float64")
    weights = _keras_fit(layer, x, y, keras.optimizers.SGD(ETA, weight_decay=0.25), 4, 12, start)
    for got, expected in zip(result.final_weights, weights):
        np.testing.assert_allclose(got[0], expected, rtol=1e-9, atol=1e-12)
    plain = sweep(x, y, [ETA], 12, depth=2, hidden_widths=3, loss=4, initializer=init, seeds=[2], dtype="float64")
    assert np.abs(plain.final_weights[0] - result.final_weights[0]).max() > 1e-4


def test_identity_initialization_of_the_factors():
    x, y = _problem(k=1)
    result = sweep(
        x,
        y,
        [ETA],
        0,
        depth=3,
        hidden_widths=4,
        initializer="identity",
        seeds=[5],
        record_end_to_end=True,
        dtype="float64",
    )
    factors = initializers.Identity(seed=5).draw([(4, 4), (4, 4), (4, 1)])
    for got, expected in zip(result.final_weights, factors):
        np.testing.assert_allclose(got[0], expected, rtol=1e-12)
    assert np.abs(factors[0] - np.eye(4)).max() < 0.1  # identity plus N(0, 0.01^2)
    np.testing.assert_allclose(
        result.losses[0, 0], np.mean((x @ initializers.product(factors) - y) ** 2) / 2, rtol=1e-12
    )


def test_end_to_end_update_equals_end_to_end_linear():
    x, y = _problem(k=3)
    init = initializers.NearZero(0.4, seed=None)
    result = sweep(
        x,
        y,
        [ETA],
        20,
        depth=3,
        hidden_widths=4,
        update="end_to_end",
        loss=2,
        initializer=init,
        seeds=[5],
        dtype="float64",
    )
    start = initializers.product(_initial(init, 5, [(4, 4), (4, 4), (4, 3)]))
    model = EndToEndLinear(3, 3, dtype="float64", kernel_initializer=initializers.Balanced(start, seed=0))
    model.compile(optimizer=keras.optimizers.SGD(ETA), loss=LpLoss(2, dtype="float64"))
    model.fit(x, y, batch_size=len(x), epochs=20, shuffle=False, verbose=0)
    np.testing.assert_allclose(result.final_weights[0][0], model.kernel, rtol=1e-9)


def test_lp_step_matches_finite_difference_gradient():
    # One GD step with p = 3 against a NumPy loss differentiated by central differences.
    x, y = _problem(k=1)
    init = initializers.NearZero(0.5, seed=None)
    start = _initial(init, 0, [(4, 1)])[0]

    def loss(w):
        return np.mean(np.sum(np.abs(x @ w - y) ** 3, axis=1)) / 3

    gradient = np.zeros_like(start)
    h = 1e-6
    for i in np.ndindex(*start.shape):
        e = np.zeros_like(start)
        e[i] = h
        gradient[i] = (loss(start + e) - loss(start - e)) / (2 * h)
    result = sweep(x, y, [0.1], 1, loss=3, initializer=init, seeds=[0], dtype="float64")
    np.testing.assert_allclose(result.losses[0, 0], loss(start), rtol=1e-12)
    np.testing.assert_allclose(result.final_weights[0][0], start - 0.1 * gradient, rtol=1e-7)
    summed = sweep(x, y, [0.1], 0, loss=3, reduction="sum", initializer=init, seeds=[0], dtype="float64")
    np.testing.assert_allclose(summed.losses[0, 0], len(x) * loss(start), rtol=1e-12)


@pytest.mark.parametrize("update, p", [("gd", 4), ("end_to_end", 2), ("adam", 2)])
def test_grid_equals_separate_runs(update, p):
    x, y = _problem(k=1)
    rates, seeds = [1e-3, 1e-2, 5e-2], [0, 1]
    kwargs = dict(depth=2, hidden_widths=3, update=update, loss=p, dtype="float64")
    grid = sweep(x, y, rates, 30, seeds=seeds, **kwargs)
    assert list(grid.learning_rates) == rates * 2 and list(grid.seeds) == [0, 0, 0, 1, 1, 1]
    for c, (seed, rate) in enumerate((s, r) for s in seeds for r in rates):
        single = sweep(x, y, [rate], 30, seeds=[seed], **kwargs)
        np.testing.assert_allclose(grid.losses[:, c], single.losses[:, 0], rtol=1e-10)
        for a, b in zip(grid.final_weights, single.final_weights):
            np.testing.assert_allclose(a[c], b[0], rtol=1e-10, atol=1e-14)


def test_divergence_is_detected_reported_and_frozen():
    x, y = _problem(k=1)
    result = sweep(x, y, [1e-3, 10.0], 50, loss=4, seeds=[0])
    assert list(result.diverged) == [False, True]
    step = result.diverged_at[1]
    assert 0 < step < 10 and result.diverged_at[0] == -1
    assert np.all(np.isnan(result.losses[step:, 1])) and np.all(np.isfinite(result.losses[:step, 1]))
    assert np.all(np.isfinite(result.losses[:, 0]))
    alone = sweep(x, y, [1e-3], 50, loss=4, seeds=[0])
    np.testing.assert_allclose(result.losses[:, 0], alone.losses[:, 0], rtol=1e-6)
    # Every copy diverging stops the loop early and reports it.
    dead = sweep(x, y, [10.0, 20.0], 1000, loss=4, chunk_size=100)
    assert dead.diverged.all() and np.isnan(dead.losses[-1]).all()


def test_recorded_steps_and_trajectory():
    x, y = _problem()
    result = sweep(
        x,
        y,
        [0.01, 0.05],
        20,
        depth=2,
        hidden_widths=2,
        record_steps=[20, 0, 10],
        record_end_to_end=True,
        dtype="float64",
        chunk_size=7,
    )
    assert list(result.steps) == [0, 10, 20] and result.losses.shape == (3, 2)
    assert result.end_to_end.shape == (3, 2, 4, 2)
    start = initializers.product(_initial(initializers.get("near_zero"), 0, [(4, 2), (2, 2)]))
    np.testing.assert_allclose(result.end_to_end[0, 0], start, rtol=1e-12)
    np.testing.assert_allclose(result.end_to_end[-1], result.final_end_to_end(), rtol=1e-12)
    np.testing.assert_allclose(result.end_to_end_norm, np.linalg.norm(result.end_to_end, axis=(-2, -1)), rtol=1e-12)
    full = sweep(x, y, [0.01, 0.05], 20, depth=2, hidden_widths=2, dtype="float64")
    np.testing.assert_allclose(result.losses, full.losses[[0, 10, 20]], rtol=1e-12)


def test_recorded_balancedness_matches_diagnostics():
    x, y = _problem()
    result = sweep(
        x, y, [0.01, 0.05], 10, depth=3, hidden_widths=3, record_steps=[10], record_balancedness=True, dtype="float64"
    )
    expected = diagnostics.balancedness(result.final_weights)
    np.testing.assert_allclose(result.balancedness[0], np.stack(expected, axis=-1), rtol=1e-10)
    relative = diagnostics.balancedness(result.final_weights, relative=True)
    np.testing.assert_allclose(result.relative_balancedness()[0], np.stack(relative, axis=-1), rtol=1e-10)
    rule = sweep(x, y, [0.01], 1, depth=3, update="end_to_end", record_balancedness=True)
    assert rule.balancedness is None


def test_deterministic_and_float32_close_to_float64():
    x, y = _problem()
    a = sweep(x, y, [0.01, 0.1], 100, depth=3, loss=4, seeds=[0, 1])
    b = sweep(x, y, [0.01, 0.1], 100, depth=3, loss=4, seeds=[0, 1])
    np.testing.assert_array_equal(a.losses, b.losses)
    c = sweep(x, y, [0.01, 0.1], 100, depth=3, loss=4, seeds=[0, 1], dtype="float64")
    np.testing.assert_allclose(a.losses, c.losses, rtol=1e-4)


def test_shared_initial_end_to_end_between_net_and_rule():
    x, y = _problem(k=1)
    kwargs = dict(depth=3, hidden_widths=5, seeds=[4], record_steps=[0], record_end_to_end=True, dtype="float64")
    net = sweep(x, y, [0.01], 0, **kwargs)
    rule = sweep(x, y, [0.01], 0, update="end_to_end", **kwargs)
    np.testing.assert_allclose(net.end_to_end, rule.end_to_end, rtol=1e-13)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"learning_rates": []}, "learning_rates=\\[\\]"),
        ({"learning_rates": [0.1, -1.0]}, "learning_rates=\\[0.1, -1.0\\]"),
        ({"steps": -1}, "steps=-1"),
        ({"depth": 0}, "depth=0"),
        ({"hidden_widths": [1, 2]}, "hidden_widths=\\[1, 2\\]"),
        ({"loss": 0.5}, "loss=0.5"),
        ({"reduction": "max"}, "reduction='max'"),
        ({"update": "newton"}, "update='newton'"),
        ({"update": keras.optimizers.Adam(clipnorm=1.0)}, "clipnorm=1.0"),
        ({"record_steps": [0, 99]}, "record_steps"),
        ({"dtype": "float16"}, "float16"),
        ({"seeds": []}, "seeds"),
    ],
)
def test_bad_arguments(kwargs, match):
    x, y = _problem(k=1)
    arguments = {"learning_rates": [0.1], "steps": 3, "depth": 2}
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=match):
        sweep(x, y, **arguments)


def test_mismatched_data_shapes():
    with pytest.raises(ValueError, match=r"x.shape=\(5, 2\), y.shape=\(4, 1\)"):
        sweep(np.ones((5, 2)), np.ones(4), [0.1], 1)
    with pytest.raises(ValueError, match=r"x.shape=\(5,\)"):
        sweep(np.ones(5), np.ones(5), [0.1], 1)


def test_empty_or_overflowing_data_is_refused():
    with pytest.raises(ValueError, match=r"at least one row.*x.shape=\(0, 3\)"):
        sweep(np.ones((0, 3)), np.ones((0, 1)), [0.1], 1)
    big = np.full((4, 2), 1e39)  # finite in float64, infinite in float32
    with pytest.raises(ValueError, match="overflow float32"):
        sweep(big, np.ones(4), [0.1], 1)
    assert np.isfinite(sweep(big, np.ones(4), [1e-90], 1, dtype="float64").losses).all()


def test_a_sweep_that_cannot_fit_in_memory_is_refused_before_allocating(monkeypatch):
    from tfovp import sweep as module

    monkeypatch.setattr(module, "available_memory", lambda: 1024**2)  # 1 MiB
    x, y = np.ones((2000, 64)), np.ones(2000)
    with pytest.raises(MemoryError, match=r"sweep needs about .* GiB \(data: .*m=2000 rows, d=64, k=1, 20 copies"):
        sweep(x, y, [1e-3] * 20, 10, loss=4)
    monkeypatch.setattr(module, "available_memory", lambda: None)  # unknown: no check
    assert sweep(x[:10], y[:10], [1e-3], 1, loss=4).losses.shape == (2, 1)


def test_progress_callback_counts_every_step():
    x, y = _problem(k=1)
    done = []
    sweep(x, y, [0.01], 25, chunk_size=10, progress=done.append)
    assert done == [10, 10, 6]  # steps 0..25: 26 loss evaluations


def test_window_maxima_and_last_exceedances_are_exact_at_every_step():
    # Tracked inside the loop at every step, checked against a sweep recording every step.
    x, y = _problem(k=1)
    rates, steps = [1e-3, 2e-2, 30.0], 60  # a slow, a fast and a diverging rate
    every = sweep(x, y, rates, steps, depth=2, hidden_widths=3, loss=4, dtype="float64")
    thresholds = np.quantile(every.losses[np.isfinite(every.losses)], [0.2, 0.5, 0.8])
    sparse = sweep(
        x,
        y,
        rates,
        steps,
        depth=2,
        hidden_widths=3,
        loss=4,
        dtype="float64",
        record_steps=[0, 7, 20, 59],
        record_window_max=True,
        thresholds=thresholds,
    )
    np.testing.assert_array_equal(sparse.losses, every.losses[[0, 7, 20, 59]])  # tracking changes no number
    bounds = [0, 7, 20, 59, steps + 1]
    for c in range(len(rates)):
        losses = np.where(np.isfinite(every.losses[:, c]), every.losses[:, c], np.inf)
        expected = [losses[a:b].max() for a, b in zip(bounds[:-1], bounds[1:])]
        np.testing.assert_array_equal(sparse.window_max[:, c], expected)
        for j, threshold in enumerate(thresholds):
            above = np.flatnonzero(np.isfinite(every.losses[:, c]) & (every.losses[:, c] > threshold))
            assert sparse.last_above[c, j] == (above[-1] if above.size else -1)
    assert sparse.diverged[2] and np.isinf(sparse.window_max[-1, 2])
    # Every copy diverges early: the loop stops, and the windows it never reached still
    # hold +inf (a diverged copy's loss), not the buffer's -inf fill, which would count as
    # settled below every level (a stored family reads back +inf: fresh and resumed agree).
    gone = sweep(x, y, [30.0], steps, depth=2, hidden_widths=3, loss=4, dtype="float64",
                 record_steps=[0, 7, 20, 59], record_window_max=True, chunk_size=5)  # fmt: skip
    assert gone.diverged_at[0] < 7 and np.all(gone.window_max == np.inf)
    with pytest.raises(ValueError, match="thresholds"):
        sweep(x, y, rates, 3, thresholds=[np.nan])


def test_snapshots_of_the_tracking_are_what_shorter_runs_return():
    # One run of 60 steps keeping the tracking after steps 0, 5 and 25 must give, there,
    # exactly what runs of 0, 5 and 25 steps give (same trajectory; only the chunking
    # differs), including a rate that diverges after one snapshot and before another.
    x, y = _problem(k=1)  # L(0) = 0.312; at lr 3.2 the loss falls, then diverges at step 8
    rates, thresholds = [1e-3, 0.5, 3.0, 3.2], [0.3, 0.05, 0.006]
    options = dict(depth=2, hidden_widths=3, loss=4, dtype="float64", thresholds=thresholds, chunk_size=7)
    long = sweep(x, y, rates, 60, snapshot_steps=[25, 0, 5], **options)
    assert long.last_above_at.shape == (3, len(rates), len(thresholds))
    assert 5 < long.diverged_at[3] <= 25 and long.diverged_at[:3].tolist() == [-1, -1, -1]
    assert not np.array_equal(long.last_above_at[1], long.last_above_at[2])  # the snapshots differ
    for k, budget in enumerate([0, 5, 25]):
        short = sweep(x, y, rates, budget, **options)
        np.testing.assert_array_equal(long.last_above_at[k], short.last_above)
    np.testing.assert_array_equal(long.losses[:26], sweep(x, y, rates, 25, **options).losses)
    assert sweep(x, y, rates, 60, **options).last_above_at is None
    with pytest.raises(ValueError, match=r"`snapshot_steps` must be at most `steps` = 60"):
        sweep(x, y, rates, 60, snapshot_steps=[61], **options)
    # Every copy diverged before a snapshot step: the loop stops; the snapshot is the final tracking.
    gone = sweep(x, y, [30.0], 60, snapshot_steps=[50], **options)
    assert gone.diverged_at[0] < 50
    np.testing.assert_array_equal(gone.last_above_at[0], gone.last_above)
