"""`EndToEndLinear`: a linear model trained "as if" it had depth N (Eq. 10)."""

import keras
import numpy as np
from keras import ops

from tfovp import initializers, train_steps
from tfovp.checks import check_choice, check_float_dtype, check_int, check_real
from tfovp.end_to_end import METHODS, precondition


@keras.saving.register_keras_serializable(package="tfovp")
class EndToEndLinear(keras.Model):
    """Linear model y = x K without bias whose `train_step` applies Eq. 10.

    The gradient G of the compiled loss w.r.t. K is replaced by P_K(G) + lambda*N*K and
    handed to the compiled optimizer. With `keras.optimizers.SGD(eta)` this is exactly

        K <- (1 - eta*lambda*N) K - eta * P_K(G)                                  (Eq. 10)

    (P is orientation-free, so K in Keras orientation is fine). Other optimizers or a
    learning-rate schedule act on the preconditioned direction. Note that for N > 1
    the rule does not move K = 0 (P_0 = 0). It trains on every Keras backend
    (`tfovp.train_steps`); float64 on JAX needs 64-bit floats switched on
    (`JAX_ENABLE_X64=1`), else construction refuses it.

    Args:
        units: k, the output width (as `keras.layers.Dense`).
        depth: N >= 1 (N = 1 is plain training).
        weight_decay: lambda >= 0 of Eq. 10.
        kernel_initializer: for K (default "near_zero"); use
            `tfovp.initializers.Balanced` or `set_end_to_end` to start from a given W_e.
        method: how to compute P ("auto", "svd", "closed_form").
    """

    def __init__(
        self,
        units=None,
        depth=None,
        weight_decay=0.0,
        kernel_initializer="near_zero",
        method="auto",
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_float_dtype("dtype", self.dtype)
        if units is None:
            raise ValueError("EndToEndLinear needs `units`. Received: units=None")
        self.units = check_int("units", units, minimum=1)
        self.depth = check_int("depth", depth, minimum=1)
        self.weight_decay = check_real("weight_decay", weight_decay, minimum=0.0)
        self.method = check_choice("method", method, METHODS)
        self.kernel_initializer = initializers.get(kernel_initializer)

    def build(self, input_shape):
        shape = (int(input_shape[-1]), self.units)
        # Drawn when the variable is initialized: on JAX a model built inside a traced
        # function (a first `fit`) initializes its variables after the trace.
        self.kernel = self.add_weight(
            name="kernel",
            shape=shape,
            initializer=lambda shape, dtype: ops.cast(
                initializers.draw_factors(self.kernel_initializer, [shape], self.dtype)[0], dtype
            ),
        )

    def call(self, inputs):
        return ops.matmul(inputs, self.kernel)

    def summary(self, print_fn=None, **kwargs):
        """Keras' summary lists layers and this model has none: list its weight instead."""
        print_fn = print_fn or print
        print_fn(f'Model: "{self.name}" (EndToEndLinear: y = x K, trained by Eq. 10 with depth {self.depth})')
        if not self.built:
            print_fn("  not built yet: call it on data or build((None, input_dim)) first")
            return
        for weight in self.weights:
            print_fn(f"  {weight.path}: shape {tuple(weight.shape)}, {int(np.prod(weight.shape)):,} parameters")
        print_fn(f" Total params: {self.count_params():,}")

    def end_to_end(self):
        """K (input_dim x units), the paper's W_e transposed."""
        return self.kernel

    def set_end_to_end(self, value):
        """Set K, e.g. to a `DeepLinear` layer's `end_to_end()` to share W_e(0)."""
        self.kernel.assign(ops.cast(value, self.kernel.dtype))

    def preconditioned_direction(self, gradient, scaled_kernel=None, kernel=None):
        """P_K(G) + lambda*N*K: what the optimizer receives instead of G. P is linear in
        G, so a loss-scaled gradient s*G gives s*P_K(G); pass `scaled_kernel` = s*K to
        scale the decay term alike. `kernel`: K's value where the variable does not hold
        it (inside a stateless JAX step); the variable by default."""
        kernel = self.kernel if kernel is None else kernel
        direction = precondition(kernel, gradient, self.depth, method=self.method)
        if self.weight_decay:
            decayed = kernel if scaled_kernel is None else scaled_kernel
            direction = direction + (self.weight_decay * self.depth) * decayed
        return direction

    def train_step(self, *args):
        """Eq. 10 on the backend Keras runs on (`tfovp.train_steps`)."""
        return train_steps.train_step(self, *args)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "units": self.units,
                "depth": self.depth,
                "weight_decay": self.weight_decay,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "method": self.method,
            }
        )
        return config
