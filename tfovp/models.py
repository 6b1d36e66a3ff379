"""`EndToEndLinear`: a linear model trained "as if" it had depth N (Eq. 10)."""

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from tfovp import initializers
from tfovp.checks import check_choice, check_int, check_real
from tfovp.end_to_end import METHODS, precondition


@keras.saving.register_keras_serializable(package="tfovp")
class EndToEndLinear(keras.Model):
    """Linear model y = x K without bias whose `train_step` applies Eq. 10.

    The gradient G of the compiled loss w.r.t. K is replaced by P_K(G) + lambda*N*K and
    handed to the compiled optimizer. With `keras.optimizers.SGD(eta)` this is exactly

        K <- (1 - eta*lambda*N) K - eta * P_K(G)                                  (Eq. 10)

    (P is orientation-free, so K in Keras orientation is fine). Other optimizers or a
    learning-rate schedule act on the preconditioned direction. Note that for N > 1
    the rule does not move K = 0 (P_0 = 0).

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
        if units is None:
            raise ValueError("EndToEndLinear needs `units`. Received: units=None")
        self.units = check_int("units", units, minimum=1)
        self.depth = check_int("depth", depth, minimum=1)
        self.weight_decay = check_real("weight_decay", weight_decay, minimum=0.0)
        self.method = check_choice("method", method, METHODS)
        self.kernel_initializer = initializers.get(kernel_initializer)

    def build(self, input_shape):
        shape = (int(input_shape[-1]), self.units)
        value = initializers.draw_factors(self.kernel_initializer, [shape], self.dtype)[0]
        self.kernel = self.add_weight(
            name="kernel",
            shape=shape,
            initializer=lambda shape, dtype: ops.cast(value, dtype),
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

    def preconditioned_direction(self, gradient, scaled_kernel=None):
        """P_K(G) + lambda*N*K: what the optimizer receives instead of G. P is linear in
        G, so a loss-scaled gradient s*G gives s*P_K(G); pass `scaled_kernel` = s*K to
        scale the decay term alike."""
        direction = precondition(self.kernel, gradient, self.depth, method=self.method)
        if self.weight_decay:
            kernel = self.kernel if scaled_kernel is None else scaled_kernel
            direction = direction + (self.weight_decay * self.depth) * kernel
        return direction

    def train_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        with tf.GradientTape() as tape:
            y_pred = self(x, training=True)
            loss = self.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=True)
            # As in Keras' own train_step: a LossScaleOptimizer (mixed precision) or a
            # `loss_scale_factor` unscales the gradients it is given, so scale the loss.
            scaled_loss = self.optimizer.scale_loss(loss)
        gradient = tape.gradient(scaled_loss, self.kernel)
        direction = self.preconditioned_direction(gradient, self.optimizer.scale_loss(self.kernel))
        self.optimizer.apply([direction], [self.kernel])
        for metric in self.metrics:
            if metric.name == "loss":
                metric.update_state(loss)
            else:
                metric.update_state(y, y_pred, sample_weight=sample_weight)
        return {metric.name: metric.result() for metric in self.metrics}

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
