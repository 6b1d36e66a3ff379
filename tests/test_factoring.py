"""overparameterize / collapse on Sequential, functional (branches, shared layer) and
nested models; the CLI; bad inputs. Function preservation is to float32 round-off (the
balanced factors are computed in float64 and then cast) or to 1e-12 in float64."""

import os
import subprocess
import sys
import warnings

import keras
import numpy as np
import pytest
from keras.ops import convert_to_numpy as numpy  # torch: outputs that require grad

import tfovp
from tfovp import diagnostics, factoring
from tfovp.convert import main as convert_main
from tfovp.layers import FactoredDense


def _sequential(dtype="float32"):
    return keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(8, activation="relu", dtype=dtype),
            keras.layers.Dropout(0.1),
            keras.layers.Dense(3, dtype=dtype),
        ]
    )


def _functional():
    inputs = keras.Input((6,))
    shared = keras.layers.Dense(6, activation="relu", name="shared")
    left = shared(inputs)
    right = keras.layers.Dense(6, activation="tanh", name="branch")(inputs)
    merged = shared(keras.layers.Add()([left, right]))
    inner = keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(4, name="inner_dense"),
            keras.layers.BatchNormalization(),
            keras.layers.Dense(2, name="out"),
        ],
        name="inner",
    )
    return keras.Model(inputs, inner(merged))


def _x(dtype="float32"):
    return np.random.default_rng(0).normal(size=(9, 6)).astype(dtype)


def _types(model):
    return [type(layer).__name__ for layer in tfovp.factoring.flat_layers(model)]


@pytest.mark.parametrize(
    "build, dtype, tolerance",
    [(_sequential, "float32", 1e-5), (_sequential, "float64", 1e-12), (_functional, "float32", 1e-5)],
)
@pytest.mark.parametrize("depth", [2, 3])
def test_function_is_preserved(build, dtype, tolerance, depth):
    model = build(dtype) if build is _sequential else build()
    x = _x(dtype)
    before = [w.copy() for w in model.get_weights()]
    deep = tfovp.overparameterize(model, depth=depth)
    assert "Dense" not in _types(deep) and _types(deep).count("FactoredDense") == _types(model).count("Dense")
    np.testing.assert_allclose(numpy(deep(x)), numpy(model(x)), rtol=tolerance, atol=tolerance)
    for layer in tfovp.callbacks.factored_layers(deep):
        assert layer.depth == depth
        relative = diagnostics.balancedness([numpy(f).astype(np.float64) for f in layer.factors], relative=True)
        assert max(relative) < 1e-5
    # The input model is untouched.
    for old, new in zip(before, model.get_weights()):
        np.testing.assert_array_equal(old, new)
    back = tfovp.collapse(deep)
    assert _types(back) == _types(model)
    np.testing.assert_allclose(numpy(back(x)), numpy(model(x)), rtol=tolerance, atol=tolerance)
    for old, new in zip(model.get_weights(), back.get_weights()):
        np.testing.assert_allclose(new, old, rtol=tolerance, atol=tolerance)


def test_selected_layers_widths_and_paper_init():
    model = _functional()
    deep = tfovp.overparameterize(model, depth=2, layers=["branch"], hidden_widths=10)
    assert isinstance(deep.get_layer("branch"), FactoredDense) and deep.get_layer("branch").hidden_widths == [10]
    assert type(deep.get_layer("shared")) is keras.layers.Dense
    paper = tfovp.overparameterize(_sequential(), depth=2, init="paper", seed=1)
    # New factors: truncated normal with stddev 0.1, cut at 2 sigma (std 0.088); 4,096
    # draws of a 64x64 factor: none beyond 0.2 (an untruncated normal has ~190 there).
    new = factoring._factors(np.ones((5, 64)), 2, [64], "paper", 0.1, 1)[1]
    assert np.abs(new).max() <= 0.2 and abs(np.std(new) - 0.088) < 0.004
    assert paper.layers[0].factors[1].shape == (8, 8)
    with pytest.raises(ValueError, match="hidden width must equal units=8"):
        tfovp.overparameterize(_sequential(), init="paper", hidden_widths=4)


def test_paper_init_keeps_the_trained_kernel_as_first_factor():
    model = _sequential()
    paper = tfovp.overparameterize(model, depth=2, init="paper", seed=1)
    np.testing.assert_array_equal(paper.layers[0].factors[0], model.layers[0].kernel)


def test_bad_inputs():
    with pytest.raises(ValueError, match="must be a keras.Model. Received: dict"):
        tfovp.overparameterize({})
    with pytest.raises(ValueError, match="depth=1"):
        tfovp.overparameterize(_sequential(), depth=1)
    with pytest.raises(ValueError, match=r"names no plain Dense, .* layer of the model: \[.nope.\]"):
        tfovp.overparameterize(_functional(), layers=["nope"])
    depthwise = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.DepthwiseConv2D(3), keras.layers.Flatten()])
    with pytest.raises(
        ValueError, match="no plain keras.layers.Dense, EinsumDense, MultiHeadAttention or Conv1D/2D/3D"
    ):
        tfovp.overparameterize(depthwise)
    with pytest.raises(ValueError, match="init='orthogonal'"):
        tfovp.overparameterize(_sequential(), init="orthogonal")
    with pytest.raises(ValueError, match="subclassed model"):
        tfovp.overparameterize(tfovp.EndToEndLinear(1, 2))


class MyDense(keras.layers.Dense):
    pass


def test_dense_subclass_is_skipped_with_a_warning():
    model = keras.Sequential([keras.Input((3,)), MyDense(4, name="custom"), keras.layers.Dense(2, name="plain")])
    with pytest.warns(UserWarning, match="leaves 1 layer.* custom \\(a subclass of Dense"):
        deep = tfovp.overparameterize(model)
    assert type(deep.get_layer("custom")) is MyDense and isinstance(deep.get_layer("plain"), FactoredDense)


def test_save_load_round_trip_with_optimizer(tmp_path):
    deep = tfovp.overparameterize(_sequential(), depth=3)
    deep.compile(optimizer=tfovp.optimizers.EndToEnd(depth=2, learning_rate=0.01, weight_decay=1e-3), loss="mse")
    x, y = _x(), np.ones((9, 3), "float32")
    deep.fit(x, y, epochs=2, verbose=0)
    path = tmp_path / "deep.keras"
    deep.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(numpy(loaded(x)), numpy(deep(x)), rtol=1e-6)
    assert isinstance(loaded.optimizer, tfovp.optimizers.EndToEnd) and loaded.optimizer.depth == 2
    assert loaded.optimizer.rule_weight_decay == 1e-3
    loaded.fit(x, y, epochs=1, verbose=0)


def test_cli_round_trip_and_collapsed_model_loads_without_tfovp(tmp_path):
    model = _sequential()
    source, deep_path, flat_path = tmp_path / "m.keras", tmp_path / "deep.keras", tmp_path / "flat.keras"
    model.save(source)
    assert convert_main(["overparameterize", str(source), str(deep_path), "--depth", "3"]) == 0
    deep = keras.models.load_model(deep_path)
    assert isinstance(deep.layers[0], FactoredDense)
    np.testing.assert_allclose(numpy(deep(_x())), numpy(model(_x())), rtol=1e-5, atol=1e-5)
    assert convert_main(["collapse", str(deep_path), str(flat_path)]) == 0
    # From the shell too, where nothing has imported tfovp's layers before the load.
    shell = subprocess.run(
        [sys.executable, "-m", "tfovp.convert", "collapse", str(deep_path), str(tmp_path / "f.keras")],
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert shell.returncode == 0 and shell.stdout.startswith("collapse:"), shell.stderr[-2000:]
    np.save(tmp_path / "x.npy", _x())
    np.save(tmp_path / "y.npy", numpy(model(_x())))
    script = (
        "import sys; sys.modules['tfovp'] = None\n"  # any import of tfovp fails
        "import numpy as np, keras\n"
        f"m = keras.models.load_model({str(flat_path)!r})\n"
        f"x = np.load({str(tmp_path / 'x.npy')!r}); y = np.load({str(tmp_path / 'y.npy')!r})\n"
        "assert all(type(l).__name__ == 'Dense' or type(l).__name__ == 'Dropout' for l in m.layers)\n"
        "np.testing.assert_allclose(m(x), y, rtol=1e-5, atol=1e-5)\n"
    )
    subprocess.run(
        [sys.executable, "-c", script], check=True, env={"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin"}
    )


def test_cli_bad_layer_name(tmp_path, capsys):
    source = tmp_path / "m.keras"
    _sequential().save(source)
    with pytest.raises(SystemExit):
        convert_main(["overparameterize", str(source), str(tmp_path / "o.keras"), "--layers", "missing"])
    assert "names no plain Dense, EinsumDense, MultiHeadAttention or convolution layer of the model: ['missing']" in (
        capsys.readouterr().err
    )


def test_kernel_constraint_is_dropped_with_warning():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, kernel_constraint="non_neg", name="c")])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tfovp.overparameterize(model)
    assert any("kernel_constraint" in str(w.message) for w in caught)
