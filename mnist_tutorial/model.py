"""The tutorial's convnet and optimizer as Keras objects (PAPER Sec. 5): the model with
optionally factored dense layers, what the L2 term covers, the staircase learning-rate
decay and TF1's momentum."""

import keras
from keras import ops

from mnist_tutorial.config import (
    BATCH_SIZE,
    IMAGE_SIZE,
    L2_CHOICES,
    NUM_CHANNELS,
    NUM_LABELS,
    SEED,
    VALIDATION_SIZE,
)
from tfovp.checks import check_choice
from tfovp.conv import FactoredConv2D
from tfovp.layers import FactoredDense


def _init(seed, index, stddev=0.1):
    return keras.initializers.TruncatedNormal(stddev=stddev, seed=seed * 100 + index)


def build_model(
    overparameterize=False, overparam_init_std=0.1, seed=SEED, dropout_rate=0.5, l2=None, factor_convs=False
):
    """The tutorial's convnet as a Keras model (logits out); the dense layers `fc1`, `fc2`
    become `FactoredDense` (depth 2, hidden width = units) when `overparameterize`, and
    with `factor_convs` the convolutions `conv1`, `conv2` become `FactoredConv2D` too (a
    5x5 convolution to the same width, then a 1x1; the first factor drawn as the
    tutorial's kernel, the new one truncated normal with `overparam_init_std`).
    `l2`: attach the tutorial's L2 term as Keras regularizers (kernel, i.e. the product,
    and bias of fc1/fc2), for training with plain `fit`; the port adds it itself."""
    regularizer = (
        {}
        if l2 is None
        else {"kernel_regularizer": keras.regularizers.L2(l2 / 2), "bias_regularizer": keras.regularizers.L2(l2 / 2)}
    )

    def dense(units, name, index, activation=None):
        if not overparameterize:
            return keras.layers.Dense(
                units,
                activation=activation,
                name=name,
                kernel_initializer=_init(seed, index),
                bias_initializer=keras.initializers.Constant(0.1),
                **regularizer,
            )
        return FactoredDense(
            units,
            depth=2,
            hidden_widths=units,
            activation=activation,
            name=name,
            kernel_initializer=[_init(seed, index), _init(seed, index + 10, overparam_init_std)],
            bias_initializer=keras.initializers.Constant(0.1),
            **regularizer,
        )

    def conv(filters, name, index, bias):
        common = {"padding": "same", "activation": "relu", "name": name, "bias_initializer": bias}
        if not factor_convs:
            return keras.layers.Conv2D(filters, 5, kernel_initializer=_init(seed, index), **common)
        return FactoredConv2D(
            filters,
            5,
            depth=2,
            hidden_widths=filters,
            kernel_initializer=[_init(seed, index), _init(seed, index + 10, overparam_init_std)],
            **common,
        )

    return keras.Sequential(
        [
            keras.Input((IMAGE_SIZE, IMAGE_SIZE, NUM_CHANNELS)),
            conv(32, "conv1", 1, "zeros"),
            keras.layers.MaxPooling2D(2, 2, padding="same", name="pool1"),
            conv(64, "conv2", 2, keras.initializers.Constant(0.1)),
            keras.layers.MaxPooling2D(2, 2, padding="same", name="pool2"),
            keras.layers.Flatten(name="flatten"),
            dense(512, "fc1", 3, activation="relu"),
            keras.layers.Dropout(dropout_rate, seed=seed, name="dropout"),
            dense(NUM_LABELS, "fc2", 4),
        ],
        name="overparameterized_convnet" if overparameterize else "convnet",
    )


def l2_tensors(model, l2_on="product"):
    """What the 5e-4 L2 term covers: the fc1/fc2 kernels (the product kernels, every
    factor of a factored layer, or none of them with "none") and their biases."""
    check_choice("l2_on", l2_on, L2_CHOICES)
    tensors = []
    for name in ("fc1", "fc2"):
        layer = model.get_layer(name)
        if isinstance(layer, FactoredDense) and l2_on == "factors":
            tensors += list(layer.factors)
        elif l2_on != "none":
            tensors.append(layer.kernel)
        tensors.append(layer.bias)
    return tensors


@keras.saving.register_keras_serializable(package="mnist_tutorial")
class TutorialDecay(keras.optimizers.schedules.LearningRateSchedule):
    """base * 0.95^floor(step * batch_size / train_size): tf.train.exponential_decay with
    staircase=True on the tutorial's global step `batch * BATCH_SIZE`."""

    def __init__(self, base=0.01, batch_size=BATCH_SIZE, train_size=60000 - VALIDATION_SIZE, rate=0.95):
        self.base, self.batch_size, self.train_size, self.rate = base, batch_size, train_size, rate

    def __call__(self, step):
        epochs = ops.floor(ops.cast(step, "float32") * self.batch_size / self.train_size)
        return self.base * ops.power(self.rate, epochs)

    def get_config(self):
        return {"base": self.base, "batch_size": self.batch_size, "train_size": self.train_size, "rate": self.rate}


@keras.saving.register_keras_serializable(package="mnist_tutorial")
class TF1Momentum(keras.optimizers.Optimizer):
    """tf.train.MomentumOptimizer: accum <- momentum * accum + g; w <- w - lr * accum
    (Keras' SGD puts lr inside the accumulator, which differs when lr decays)."""

    def __init__(self, learning_rate=0.01, momentum=0.9, name="tf1_momentum", **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.momentum = momentum

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self.accumulators = [self.add_variable_from_reference(v, "accumulator") for v in variables]

    def update_step(self, gradient, variable, learning_rate):
        accum = self.accumulators[self._get_variable_index(variable)]
        gradient = ops.cast(gradient, variable.dtype)
        self.assign(accum, self.momentum * accum + gradient)
        self.assign_sub(variable, ops.cast(learning_rate, variable.dtype) * accum)

    def get_config(self):
        config = super().get_config()
        config["momentum"] = self.momentum
        return config
