"""Factored EinsumDense and MultiHeadAttention: the matrix view of an einsum kernel, the
layer against a NumPy einsum of the product kernel (float64), overparameterize/collapse
on an attention model (function kept, input model untouched, round trips), saving, and
the EndToEnd optimizer on einsum kernels against the same rule on the equivalent Dense."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from keras.ops import convert_to_numpy as numpy  # torch: outputs that require grad

import tfovp
from tfovp import end_to_end
from tfovp.einsum import FactoredEinsumDense, FactoredMultiHeadAttention, MatrixView, matrix_view
from tfovp.optimizers import EndToEnd, matrix_views


@pytest.mark.parametrize(
    "equation, view",
    [
        ("abc,cd->abd", MatrixView((0, 1), 1)),
        ("abc,cde->abde", MatrixView((0, 1, 2), 1)),  # a query projection: (c) x (heads * dim)
        ("abcd,cde->abe", MatrixView((0, 1, 2), 2)),  # the output projection: (heads * dim) x e
        ("abc,dc->abd", MatrixView((1, 0), 1)),  # kernel axes in the other order
        ("...b,bc->...c", MatrixView((0, 1), 1)),
    ],
)
def test_matrix_view(equation, view):
    assert matrix_view(equation) == view
    kernel = np.arange(24.0).reshape((2, 3, 4)[: len(view.perm)] if len(view.perm) == 3 else (4, 6))
    back = view.to_kernel(view.to_matrix(kernel), kernel.shape)
    np.testing.assert_array_equal(numpy(back), kernel)


def test_matrix_view_refuses_what_is_not_a_matrix():
    with pytest.raises(ValueError, match="kernel axis 'b' is an axis of the input and of the output"):
        matrix_view("abc,bcd->abd")
    with pytest.raises(ValueError, match="must look like"):
        matrix_view("abc->ab")


def test_factored_einsum_dense_is_the_einsum_of_the_product_kernel():
    rng = np.random.default_rng(0)
    layer = FactoredEinsumDense("abcd,cde->abe", (None, 5), depth=3, hidden_widths=[4, 7], bias_axes="e",
                                dtype="float64")  # fmt: skip
    x = rng.normal(size=(2, 3, 2, 6))
    layer.build(x.shape)
    values = [rng.normal(size=w.shape) for w in layer.weights]
    layer.set_weights(values)
    matrix = values[0] @ values[1] @ values[2]  # (2 * 6) x 5, rows = (c, d) in C order
    kernel = matrix.reshape(2, 6, 5)
    expected = np.einsum("abcd,cde->abe", x, kernel) + values[3]
    np.testing.assert_allclose(numpy(layer(x)), expected, rtol=1e-12)
    assert [tuple(w.shape) for w in layer.weights] == [(12, 4), (4, 7), (7, 5), (5,)]


def _attention_classifier(seed=0):
    """A small transformer classifier: attention, an einsum projection, a dense head."""
    keras.utils.set_random_seed(seed)
    tokens = keras.Input((6, 8))
    x = keras.layers.MultiHeadAttention(num_heads=2, key_dim=4, name="attention")(tokens, tokens)
    x = keras.layers.LayerNormalization()(x + tokens)
    x = keras.layers.EinsumDense("abc,cd->abd", output_shape=(None, 16), bias_axes="d", activation="relu",
                                 name="mlp")(x)  # fmt: skip
    x = keras.layers.GlobalAveragePooling1D()(x)
    return keras.Model(tokens, keras.layers.Dense(3, name="head")(x))


def _x(seed=1):
    return np.random.default_rng(seed).normal(size=(5, 6, 8)).astype("float32")


def test_overparameterize_and_collapse_an_attention_model(tmp_path):
    model = _attention_classifier()
    before = [w.copy() for w in model.get_weights()]
    deep = tfovp.overparameterize(model, depth=3)
    kinds = {layer.name: type(layer) for layer in deep.layers}
    assert kinds["attention"] is FactoredMultiHeadAttention and kinds["mlp"] is FactoredEinsumDense
    assert all(type(p) is FactoredEinsumDense for p in deep.get_layer("attention").projections().values())
    # Function kept (float32: a balanced factorization is exact up to round-off).
    np.testing.assert_allclose(numpy(deep(_x())), numpy(model(_x())), rtol=1e-4, atol=1e-5)
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))  # input model untouched
    # collapse(overparameterize(m)) is m again, weight by weight.
    flat = tfovp.collapse(deep)
    assert type(flat.get_layer("attention")) is keras.layers.MultiHeadAttention
    for a, b in zip(flat.get_weights(), model.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    # Saved and loaded without custom_objects; the collapsed model needs no tfovp at all.
    deep.save(tmp_path / "deep.keras")
    loaded = keras.models.load_model(tmp_path / "deep.keras")
    np.testing.assert_allclose(numpy(loaded(_x())), numpy(deep(_x())), rtol=1e-6)
    flat.save(tmp_path / "flat.keras")
    np.save(tmp_path / "x.npy", _x())
    np.save(tmp_path / "y.npy", numpy(flat(_x())))
    script = (
        "import sys; sys.modules['tfovp'] = None\n"
        "import numpy as np, keras\n"
        f"m = keras.models.load_model({str(tmp_path / 'flat.keras')!r})\n"
        f"y = keras.ops.convert_to_numpy(m(np.load({str(tmp_path / 'x.npy')!r})))\n"
        f"np.testing.assert_allclose(y, np.load({str(tmp_path / 'y.npy')!r}),"
        " rtol=1e-6)\n"
    )
    env = {"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin"}
    env.update({k: os.environ[k] for k in ("KERAS_BACKEND", "JAX_ENABLE_X64") if k in os.environ})  # the same backend
    subprocess.run([sys.executable, "-c", script], check=True, env=env)


def test_the_factored_model_trains():
    deep = tfovp.overparameterize(_attention_classifier(), depth=2)
    deep.compile(
        optimizer=keras.optimizers.SGD(0.05), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    y = np.array([0, 1, 2, 0, 1])
    first = deep.evaluate(_x(), y, verbose=0)
    deep.fit(_x(), y, epochs=20, verbose=0)
    assert deep.evaluate(_x(), y, verbose=0) < first


def test_end_to_end_on_an_einsum_kernel_equals_the_rule_on_its_matrix():
    # "abc,cde->abde" with kernel (c, d, e) is Dense(d * e) followed by a reshape; one
    # EndToEnd step on each must give the same matrix (the Dense path is checked against
    # the Kronecker form of Eq. 10 in test_optimizers_callbacks.py).
    rng = np.random.default_rng(2)
    kernel = rng.normal(size=(4, 2, 3)) * 0.5
    x, y = rng.normal(size=(8, 5, 4)), rng.normal(size=(8, 5, 2, 3))

    tokens = keras.Input((5, 4), dtype="float64")
    einsum = keras.layers.EinsumDense("abc,cde->abde", (None, 2, 3), name="proj", dtype="float64")
    model = keras.Model(tokens, einsum(tokens))
    einsum.set_weights([kernel])
    model.compile(optimizer=EndToEnd(0.05, depth=3, matrix_views=matrix_views(model)), loss="mse")
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)

    dense = keras.Sequential(
        [keras.Input((5, 4), dtype="float64"), keras.layers.Dense(6, use_bias=False, dtype="float64")]
    )
    dense.layers[0].set_weights([kernel.reshape(4, 6)])
    dense.compile(optimizer=EndToEnd(0.05, depth=3), loss="mse")
    dense.fit(x, y.reshape(8, 5, 6), batch_size=8, epochs=1, verbose=0, shuffle=False)

    np.testing.assert_allclose(numpy(einsum.kernel).reshape(4, 6), dense.layers[0].get_weights()[0], rtol=1e-10)
    assert not np.allclose(numpy(einsum.kernel), kernel)  # it moved
    # The views survive serialization.
    restored = keras.optimizers.deserialize(json.loads(json.dumps(keras.optimizers.serialize(model.optimizer))))
    assert restored.matrix_views == {"proj/kernel": {"perm": [0, 1, 2], "row_axes": 1}}
    assert end_to_end is not None
