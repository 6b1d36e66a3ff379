"""Overparameterizing the models people have: factored convolutions, layers inside wrappers
and user-written layers, EndToEnd by role, and tfovp/keras in either import order."""

import os
import subprocess
import sys
import warnings

import keras
import numpy as np
import pytest
from keras.ops import convert_to_numpy as numpy  # torch: outputs that require grad

import tfovp
from tfovp.conv import FactoredConv1D, FactoredConv2D
from tfovp.layers import FactoredDense
from tfovp.optimizers import EndToEnd, matrix_views

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"padding": "same"},
        {"strides": 2},
        {"dilation_rate": 2, "padding": "same"},
        {"data_format": "channels_first"},
    ],
)
def test_a_factored_convolution_is_the_convolution_of_its_collapsed_kernel(kwargs):
    x = np.random.default_rng(0).normal(size=(2, 9, 9, 3)).astype("float32")
    if kwargs.get("data_format") == "channels_first":
        x = np.moveaxis(x, -1, 1)
        if not _backend_runs_channels_first():
            pytest.skip("this machine's TensorFlow CPU Conv2D runs only NHWC (keras.layers.Conv2D fails the same way)")
    layer = FactoredConv2D(5, 3, depth=3, hidden_widths=[4, 6], activation="relu", bias_initializer="ones", **kwargs)
    y = layer(x)
    assert [tuple(f.shape) for f in layer.factors] == [(3, 3, 3, 4), (4, 6), (6, 5)]
    plain = keras.layers.Conv2D(5, 3, activation="relu", **kwargs)
    plain.build(x.shape)
    plain.set_weights([numpy(layer.kernel), numpy(layer.bias)])
    # float32 sums in another order: a few ulps of the outputs' size
    np.testing.assert_allclose(numpy(y), numpy(plain(x)), rtol=1e-5, atol=1e-5)
    assert tuple(layer.compute_output_shape(x.shape)) == tuple(y.shape)
    again = FactoredConv2D.from_config(layer.get_config())
    assert again.get_config() == layer.get_config()


def _backend_runs_channels_first():
    """Whether a plain Keras Conv2D with channels_first runs here: TensorFlow's CPU Conv2D
    takes NCHW on some processors and builds only (the AVX-512 machine of the earlier
    runs did; the AVX2 one of 2026-12-06 refuses it)."""
    try:
        keras.layers.Conv2D(1, 1, data_format="channels_first")(np.zeros((1, 1, 2, 2), "float32"))
    except Exception:
        return False
    return True


def test_a_factored_1d_convolution_and_bad_arguments():
    layer = FactoredConv1D(4, 3, depth=2, padding="same")
    assert tuple(layer(np.zeros((1, 7, 2), "float32")).shape) == (1, 7, 4)
    with pytest.raises(ValueError, match="groups=2"):
        FactoredConv2D(4, 3, groups=2)
    with pytest.raises(ValueError, match="kernel_size"):
        FactoredConv2D(4, (3, 3, 3))


class TransformerBlock(keras.layers.Layer):
    """The keras.io text-classification example's block: attention and a feed-forward
    Sequential held as attributes of a user-written layer."""

    def __init__(self, embed_dim, num_heads, ff_dim, **kwargs):
        super().__init__(**kwargs)
        dtype = self.dtype_policy
        self.att = keras.layers.MultiHeadAttention(num_heads=num_heads, key_dim=embed_dim, dtype=dtype)
        self.ffn = keras.Sequential(
            [keras.layers.Dense(ff_dim, activation="relu", dtype=dtype), keras.layers.Dense(embed_dim, dtype=dtype)]
        )
        self.layernorm1 = keras.layers.LayerNormalization(epsilon=1e-6, dtype=dtype)
        self.layernorm2 = keras.layers.LayerNormalization(epsilon=1e-6, dtype=dtype)

    def call(self, inputs):
        out1 = self.layernorm1(inputs + self.att(inputs, inputs))
        return self.layernorm2(out1 + self.ffn(out1))


def _every_kind(dtype="float32"):
    """Conv1D, Conv2D, depthwise and separable convolutions, TimeDistributed(Dense), a
    user-written transformer block and a Dense head."""
    image = keras.Input((8, 8, 3), dtype=dtype)
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", dtype=dtype)(image)
    x = keras.layers.DepthwiseConv2D(3, padding="same", dtype=dtype)(x)
    x = keras.layers.SeparableConv2D(4, 3, dtype=dtype)(x)
    x = keras.layers.Reshape((6, 24), dtype=dtype)(x)
    x = keras.layers.Conv1D(8, 3, padding="same", dtype=dtype)(x)
    x = TransformerBlock(8, 2, 12, dtype=dtype)(x)
    x = keras.layers.TimeDistributed(keras.layers.Dense(5, dtype=dtype), dtype=dtype)(x)
    x = keras.layers.GlobalAveragePooling1D(dtype=dtype)(x)
    return keras.Model(image, keras.layers.Dense(3, dtype=dtype)(x))


@pytest.mark.parametrize("dtype, tolerance", [("float32", 1e-4), ("float64", 1e-10)])
def test_every_layer_kind_is_factored_the_function_kept_and_collapse_gives_it_back(dtype, tolerance, capsys):
    model = _every_kind(dtype)
    x = np.random.default_rng(1).normal(size=(4, 8, 8, 3)).astype(dtype)
    with pytest.warns(UserWarning, match="leaves 2 layer.*depthwise.*separable"):
        deep = tfovp.overparameterize(model, depth=2)
    printed = capsys.readouterr().out
    # Conv2D, Conv1D, the attention (one layer, four projections), two Dense of the block, TimeDistributed's, the head
    assert "7 kernels factored into 2 (Conv1D 1, Conv2D 1, Dense 4, MultiHeadAttention 1)" in printed
    block = deep.layers[6]
    assert isinstance(block.att, tfovp.FactoredMultiHeadAttention) and isinstance(block.ffn.layers[0], FactoredDense)
    assert isinstance(deep.layers[7].layer, FactoredDense) and isinstance(deep.layers[1], FactoredConv2D)
    assert deep.count_params() > model.count_params()
    a, b = numpy(model(x)), numpy(deep(x))
    assert np.max(np.abs(a - b)) / np.max(np.abs(a)) <= tolerance
    flat = tfovp.collapse(deep)
    assert [type(layer) for layer in flat.layers] == [type(layer) for layer in model.layers]
    assert (
        type(flat.layers[6].att) is keras.layers.MultiHeadAttention and type(flat.layers[7].layer) is keras.layers.Dense
    )
    assert np.max(np.abs(numpy(flat(x)) - a)) / np.max(np.abs(a)) <= tolerance
    assert len(flat.weights) == len(model.weights)


def test_a_factored_user_layer_trains_and_refuses_to_be_saved_uncollapsed(tmp_path):
    model = _every_kind()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        deep = tfovp.overparameterize(model, depth=2, verbose=False)
    deep.compile(EndToEnd(0.01, depth=2, matrix_views=matrix_views(deep)), loss="mse")
    x = np.random.default_rng(1).normal(size=(8, 8, 8, 3)).astype("float32")
    before = [numpy(w).copy() for w in deep.trainable_weights]
    deep.fit(x, np.zeros((8, 3)), epochs=3, verbose=0)
    assert all(not np.array_equal(a, numpy(b)) for a, b in zip(before, deep.trainable_weights))
    with pytest.raises(ValueError, match=r"holds sublayers that tfovp replaced.*Save tfovp.collapse\(model\)"):
        deep.save(tmp_path / "deep.keras")
    tfovp.collapse(deep).save(tmp_path / "flat.keras")  # the plain model saves (and loads, below)
    loaded = keras.models.load_model(tmp_path / "flat.keras", custom_objects={"TransformerBlock": TransformerBlock})
    np.testing.assert_allclose(numpy(loaded(x)), numpy(deep(x)), rtol=1e-4, atol=1e-5)


def test_width_policies_say_the_size_first():
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8), keras.layers.Dense(4)])
    wide = tfovp.overparameterize(model, hidden_widths=2.0, verbose=False)
    assert [layer.hidden_widths for layer in wide.layers] == [[16], [8]]
    with pytest.raises(ValueError, match="at least rank"):  # half the units cannot keep a full-rank kernel
        tfovp.overparameterize(model, hidden_widths=0.5, verbose=False)
    with pytest.raises(ValueError, match="multiplier must be > 0"):
        tfovp.overparameterize(model, hidden_widths=-1.0)
    with pytest.raises(ValueError, match="'units', a multiplier"):
        tfovp.overparameterize(model, hidden_widths="wide")


def test_end_to_end_preconditions_kernels_by_role_and_not_a_factored_model_twice():
    # MultiHeadAttention's query/key/value biases are 2-D (heads, key_dim) and start at 0:
    # by role they get plain descent, i.e. exactly SGD's step, not P_0(G) = 0.
    query = keras.Input((3, 4))
    attention = keras.layers.MultiHeadAttention(2, 3, bias_initializer="zeros")
    model = keras.Model(query, attention(query, query))
    x = np.random.default_rng(0).normal(size=(5, 3, 4)).astype("float32")
    y = np.random.default_rng(1).normal(size=(5, 3, 4)).astype("float32")
    twin = keras.models.clone_model(model)
    twin.set_weights(model.get_weights())
    model.compile(EndToEnd(0.1, depth=2, matrix_views=matrix_views(model)), loss="mse")
    twin.compile(keras.optimizers.SGD(0.1), loss="mse")
    model.train_on_batch(x, y)
    twin.train_on_batch(x, y)
    for mine, sgd in zip(model.weights, twin.weights):
        if mine.name == "bias":
            assert np.any(numpy(mine) != 0) and np.allclose(numpy(mine), numpy(sgd), atol=1e-7)
    # A factored model: its factors get plain descent (SGD's), with a warning.
    deep = tfovp.overparameterize(keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)]), verbose=False)
    plain = keras.models.clone_model(deep)
    plain.set_weights(deep.get_weights())
    deep.compile(EndToEnd(0.1, depth=2), loss="mse")
    plain.compile(keras.optimizers.SGD(0.1), loss="mse")
    with pytest.warns(UserWarning, match="already factored"):
        deep.train_on_batch(x[:, 0], y[:, 0, :3])
    plain.train_on_batch(x[:, 0], y[:, 0, :3])
    for a, b in zip(deep.weights, plain.weights):
        np.testing.assert_allclose(numpy(a), numpy(b), atol=1e-7)


def test_a_convolution_kernel_is_preconditioned_as_its_matrix_view():
    from tfovp.end_to_end import precondition

    model = keras.Sequential([keras.Input((5, 5, 2)), keras.layers.Conv2D(3, 3)])
    views = matrix_views(model)
    assert views == {model.layers[0].kernel.path: {"perm": [0, 1, 2, 3], "row_axes": 3}}
    optimizer = EndToEnd(0.1, depth=2, matrix_views=views)
    kernel = model.layers[0].kernel
    optimizer.build(model.trainable_variables)
    gradient = np.random.default_rng(0).normal(size=tuple(kernel.shape)).astype("float32")
    step = numpy(optimizer.direction(gradient, kernel))
    expected = precondition(numpy(kernel).reshape(18, 3), gradient.reshape(18, 3), 2)
    np.testing.assert_allclose(step.reshape(18, 3), numpy(expected), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "order",
    [
        "import tfovp, keras",
        "import keras, tfovp",
        # a submodule that imports Keras itself, first in a fresh interpreter: it must load,
        # and every tfovp object be registered once it has
        "from tfovp.layers import FactoredDense; import keras",
        "from tfovp import end_to_end; import keras",
        "from tfovp.einsum import FactoredEinsumDense; import keras",
    ],
)
def test_a_factored_model_loads_whichever_is_imported_first(tmp_path, order):
    path = tmp_path / "m.keras"
    tfovp.overparameterize(keras.Sequential([keras.Input((4, 3)), keras.layers.Conv1D(2, 2)]), verbose=False).save(path)
    code = f"{order}\nm = keras.models.load_model({str(path)!r})\nprint(type(m.layers[0]).__name__)"
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert done.returncode == 0, done.stderr[-500:]
    assert done.stdout.strip() == "FactoredConv1D"


@pytest.mark.slow
@pytest.mark.integration  # whole keras.applications models trained: not a unit check
@pytest.mark.parametrize(
    ("name", "calibrated", "learning_rate"), [("MobileNetV2", True, 1e-5), ("ResNet50", False, 1e-3)]
)
def test_keras_applications_are_factored_entirely_and_collapse_back(name, calibrated, learning_rate, tmp_path, capsys):
    """Every plain convolution and Dense of a keras.applications model is factored, the
    function kept (float32, 1e-4 of the largest logit), three EndToEnd steps move every
    factor and lower the loss, collapse gives the original architecture and outputs back,
    and both round-trip through .keras in a fresh process.

    Trained and compared with the batch normalizations frozen (inference mode): in
    training mode on two images the last stage normalizes two values per channel, which
    turns round-off into sign flips (MobileNetV2's outputs 17 % apart once; ResNet50's
    went to 1e30 here and NaN on CI's machine). MobileNetV2's signal vanishes at
    initialization in inference mode (only its last bias gets a gradient), so its moving
    statistics are first set from a batch of 16 images (momentum 0); ResNet50's, set so,
    diverge even at 1e-5 on two images, so it keeps its initial ones. Measured: the
    collapsed outputs within 3e-6 (ResNet50) and 2.4e-5 (MobileNetV2, seeds 0-2) of the
    largest logit; 1e-3 allowed, a wrong collapse is off by the logits themselves."""
    keras.utils.set_random_seed(0)
    build = getattr(keras.applications, name)
    model = build(weights=None, input_shape=(32, 32, 3), classes=10, classifier_activation=None)
    plain = [layer for layer, _ in tfovp.traversal.walk(model) if tfovp.factoring._is_plain(layer)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MobileNetV2's depthwise convolutions are named in a warning
        deep = tfovp.overparameterize(model, depth=2)
    assert f"{len(plain)} kernels factored" in capsys.readouterr().out
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 32, 32, 3)).astype("float32")
    a = numpy(model(x, training=False))
    assert np.max(np.abs(numpy(deep(x, training=False)) - a)) <= 1e-4 * np.max(np.abs(a))
    norms = [layer for layer in deep._flatten_layers() if isinstance(layer, keras.layers.BatchNormalization)]
    if calibrated:
        for layer in norms:
            layer.momentum = 0.0
        deep(rng.normal(size=(16, 32, 32, 3)).astype("float32"), training=True)
    for layer in norms:
        layer.trainable = False
    deep.compile(
        EndToEnd(learning_rate, depth=2, matrix_views=matrix_views(deep)), loss=keras.losses.MeanSquaredError()
    )
    factors = [v for v in deep.trainable_weights if "kernel_" in v.path]
    before = [numpy(v) for v in factors]
    history = deep.fit(x, np.ones((2, 10)), epochs=3, verbose=0).history["loss"]
    assert np.isfinite(history).all() and history[-1] < history[0], history
    assert len(factors) == 2 * len(plain) and all(not np.array_equal(b, numpy(v)) for b, v in zip(before, factors))
    flat = tfovp.collapse(deep)
    assert [type(layer) for layer in flat.layers] == [type(layer) for layer in model.layers]
    trained = numpy(deep(x, training=False))
    assert np.isfinite(trained).all()
    assert np.max(np.abs(numpy(flat(x, training=False)) - trained)) <= 1e-3 * np.max(np.abs(trained))
    for saved, tag in ((deep, "deep"), (flat, "flat")):
        saved.save(tmp_path / f"{tag}.keras")
        np.save(tmp_path / f"{tag}.npy", numpy(saved(x, training=False)))
        code = (
            "import keras, tfovp, numpy as np\n"
            f"m = keras.models.load_model({str(tmp_path / f'{tag}.keras')!r})\n"
            f"x = np.load({str(tmp_path / 'x.npy')!r})\n"
            f"np.testing.assert_allclose(np.asarray(m(x, training=False)), np.load({str(tmp_path / f'{tag}.npy')!r}), "
            "rtol=1e-5, atol=1e-6)\n"
        )
        np.save(tmp_path / "x.npy", x)
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
        assert done.returncode == 0, done.stderr[-800:]
