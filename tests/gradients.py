"""Gradients for the tests on whichever Keras backend runs them (TensorFlow's tape, JAX's
grad, PyTorch's autograd): the references stay NumPy arrays."""

import keras
import numpy as np


def gradients(function, values):
    """[d function(*values) / d value] as float64 NumPy arrays; `function` takes and
    returns backend tensors (a scalar)."""
    backend = keras.backend.backend()
    values = [keras.ops.convert_to_tensor(v) for v in values]
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            tape.watch(values)
            out = function(*values)
        found = tape.gradient(out, values)
        found = [tf.convert_to_tensor(g) for g in found]  # an embedding's IndexedSlices too
    elif backend == "jax":
        import jax

        found = jax.grad(lambda *v: function(*v), argnums=tuple(range(len(values))))(*values)
    else:
        values = [v.detach().requires_grad_(True) for v in values]
        function(*values).backward()
        found = [v.grad for v in values]
    return [np.asarray(keras.ops.convert_to_numpy(g), dtype=np.float64) for g in found]


def model_gradients(model, loss, x, y):
    """d loss(y, model(x)) / d w for each trainable variable of `model`, from its current
    values (through Keras' stateless call, so on every backend)."""

    def function(*trainable):
        out, _ = model.stateless_call(list(trainable), [v.value for v in model.non_trainable_variables], x)
        return loss(y, out)

    return gradients(function, [v.value for v in model.trainable_variables])
