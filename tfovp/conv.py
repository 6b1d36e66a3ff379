"""Convolutions whose kernel is a product of factors: the linear overparameterization of a
k x k convolution (ExpandNets, Guo, Alvarez & Salzmann, NeurIPS 2020, in PyTorch).

A convolution kernel K of shape (k_1, ..., k_r, C_in, C_out) is a matrix in disguise: its
matrix view M(K) reshapes it to (k_1 ... k_r C_in) x C_out, and the convolution is linear
in K along the output channels. So a k x k convolution to a hidden width n_1, followed by
1 x 1 convolutions n_1 -> n_2 -> ... -> C_out, computes exactly the convolution whose
kernel has the matrix view

    M(K) = M(kernel_0) @ kernel_1 @ ... @ kernel_{N-1},

with kernel_0 of shape (k_1, ..., k_r, C_in, n_1) and kernel_j of shape (n_j, n_{j+1}).
`FactoredConv1D/2D/3D` are that, as one Keras layer that behaves like the convolution it
stands for (`kernel` is the collapsed kernel); the bias and the activation act after the
last factor. The end-to-end rule (Eq. 10) applies to M(K) (`tfovp.optimizers.EndToEnd`
with `matrix_views(model)`). Groups other than 1 (depthwise, grouped) are not factored.
"""

import keras
from keras import ops

from tfovp import initializers
from tfovp._factors import hidden_widths_list, product
from tfovp.checks import check_int
from tfovp.layers import (
    PACKAGE,
    add_bias_weight,
    add_factor_weights,
    serialized_kernel_initializer,
    set_weight_options,
    shared_config,
    with_factor_initializers,
)


class FactoredConv(keras.layers.Layer):
    """A convolution of rank `rank` whose kernel is factored (see the module docstring).

    Args:
        rank: 1, 2 or 3 spatial axes.
        filters, kernel_size, strides, padding, data_format, dilation_rate, activation,
            use_bias, bias_initializer, bias_regularizer, activity_regularizer,
            bias_constraint: as in `keras.layers.Conv2D` (groups must be 1).
        depth: factors N >= 1 (1 is a plain convolution).
        hidden_widths: int or list of depth-1 ints; default `filters`.
        kernel_initializer: one initializer for all factors (the first is drawn with
            its convolution shape, so fans are those of the layer it replaces) or a list
            with one per factor.
        kernel_regularizer: applied to the collapsed kernel (what the convolution would
            penalize); factor_regularizer: to every factor; kernel_constraint: to every
            factor after each update.

    Shapes: as the plain convolution.
    """

    def __init__(
        self,
        rank,
        filters,
        kernel_size,
        depth=2,
        hidden_widths=None,
        strides=1,
        padding="valid",
        data_format=None,
        dilation_rate=1,
        groups=1,
        activation=None,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        factor_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        kernel_constraint=None,
        bias_constraint=None,
        **kwargs,
    ):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        self.rank = check_int("rank", rank, minimum=1)
        self.filters = check_int("filters", filters, minimum=1)
        if check_int("groups", groups, minimum=1) != 1:
            raise ValueError(
                f"A factored convolution needs groups=1 (a grouped kernel is no one matrix). Received: groups={groups}"
            )
        self.kernel_size = _tuple("kernel_size", kernel_size, self.rank)
        self.strides = _tuple("strides", strides, self.rank)
        self.dilation_rate = _tuple("dilation_rate", dilation_rate, self.rank)
        self.padding = str(padding).lower()
        if self.padding not in ("valid", "same"):
            raise ValueError(f"`padding` must be 'valid' or 'same'. Received: padding={padding!r}")
        self.data_format = data_format or keras.config.image_data_format()
        if self.data_format not in ("channels_last", "channels_first"):
            raise ValueError(f"`data_format` must be channels_last or channels_first. Received: {data_format!r}")
        self.depth = check_int("depth", depth, minimum=1)
        self.hidden_widths = hidden_widths_list(self.filters if hidden_widths is None else hidden_widths, self.depth)
        self.activation = keras.activations.get(activation)
        self.use_bias = bool(use_bias)
        set_weight_options(self, self.depth, kernel_initializer, bias_initializer, kernel_regularizer,
                           factor_regularizer, bias_regularizer, kernel_constraint, bias_constraint)  # fmt: skip
        self.input_spec = keras.layers.InputSpec(min_ndim=self.rank + 2)

    @property
    def _channel_axis(self):
        return -1 if self.data_format == "channels_last" else 1

    def factor_shapes(self, input_channels):
        """The shapes of kernel_0 (a convolution kernel) and of the 1 x 1 factors."""
        widths = [*self.hidden_widths, self.filters]
        first = (*self.kernel_size, int(input_channels), widths[0])
        return [first] + [(widths[j], widths[j + 1]) for j in range(len(widths) - 1)]

    def _initial_factors(self, shapes):
        inits = self.kernel_initializer
        if isinstance(inits, list):
            return [initializers.draw_factors(init, [shape], self.dtype)[0] for init, shape in zip(inits, shapes)]
        if isinstance(inits, initializers.FactorInitializer):  # drawn jointly on the matrix views
            matrices = [(_rows(shapes[0]), shapes[0][-1]), *shapes[1:]]
            drawn = initializers.draw_factors(inits, matrices, self.dtype)
            return [ops.reshape(drawn[0], shapes[0]), *drawn[1:]]
        return initializers.draw_factors(inits, shapes, self.dtype)

    def build(self, input_shape):
        channels = input_shape[self._channel_axis]
        if channels is None:
            raise ValueError(f"{type(self).__name__} needs a known number of input channels. Received: {input_shape}")
        shapes = self.factor_shapes(channels)
        self.factors = add_factor_weights(self, shapes, self._initial_factors(shapes))
        self.bias = add_bias_weight(self, (self.filters,)) if self.use_bias else None
        self.input_spec = keras.layers.InputSpec(min_ndim=self.rank + 2, axes={self._channel_axis: int(channels)})

    @property
    def kernel(self):
        """The collapsed kernel (k_1, ..., k_r, C_in, C_out): M(kernel_0) @ ... reshaped."""
        first = self.factors[0]
        matrix = product([ops.reshape(first, (-1, first.shape[-1])), *self.factors[1:]])
        return ops.reshape(matrix, (*first.shape[:-1], self.filters))

    def end_to_end(self):
        """The end-to-end matrix M(K) ((k_1 ... k_r C_in) x C_out)."""
        return ops.reshape(self.kernel, (-1, self.filters))

    def call(self, inputs):
        if self.kernel_regularizer is not None:
            self.add_loss(self.kernel_regularizer(self.kernel))
        outputs = ops.conv(
            inputs,
            self.factors[0],
            strides=self.strides,
            padding=self.padding,
            data_format=self.data_format,
            dilation_rate=self.dilation_rate,
        )
        if self.depth > 1:  # the 1 x 1 convolutions: matrix products over the channel axis
            channels_first = self.data_format == "channels_first"
            if channels_first:
                outputs = ops.moveaxis(outputs, 1, -1)
            for factor in self.factors[1:]:
                outputs = ops.matmul(outputs, factor)
            if channels_first:
                outputs = ops.moveaxis(outputs, -1, 1)
        if self.bias is not None:
            shape = [1] * (self.rank + 2)
            shape[self._channel_axis] = self.filters
            outputs = ops.add(outputs, ops.reshape(self.bias, shape))
        return self.activation(outputs) if self.activation is not None else outputs

    def compute_output_shape(self, input_shape):
        return keras.ops.conv(
            keras.KerasTensor(input_shape),
            keras.KerasTensor((*self.kernel_size, input_shape[self._channel_axis], self.filters)),
            strides=self.strides,
            padding=self.padding,
            data_format=self.data_format,
            dilation_rate=self.dilation_rate,
        ).shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "filters": self.filters,
                "kernel_size": self.kernel_size,
                "depth": self.depth,
                "hidden_widths": self.hidden_widths,
                "strides": self.strides,
                "padding": self.padding,
                "data_format": self.data_format,
                "dilation_rate": self.dilation_rate,
                "groups": 1,
                "use_bias": self.use_bias,
                "kernel_initializer": serialized_kernel_initializer(self),
                **shared_config(self),
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**with_factor_initializers(config))


def _rows(shape):
    rows = 1
    for size in shape[:-1]:
        rows *= int(size)
    return rows


def _tuple(name, value, rank):
    values = (value,) * rank if isinstance(value, int) else tuple(value)
    if len(values) != rank or not all(isinstance(v, int) and v >= 1 for v in values):
        raise ValueError(f"`{name}` must be an integer >= 1 or a tuple of {rank}. Received: {name}={value!r}")
    return values


@keras.saving.register_keras_serializable(package=PACKAGE)
class FactoredConv1D(FactoredConv):
    """`keras.layers.Conv1D` with a factored kernel (see `FactoredConv`)."""

    def __init__(self, filters, kernel_size, **kwargs):
        kwargs.pop("rank", None)
        super().__init__(1, filters, kernel_size, **kwargs)


@keras.saving.register_keras_serializable(package=PACKAGE)
class FactoredConv2D(FactoredConv):
    """`keras.layers.Conv2D` with a factored kernel (see `FactoredConv`)."""

    def __init__(self, filters, kernel_size, **kwargs):
        kwargs.pop("rank", None)
        super().__init__(2, filters, kernel_size, **kwargs)


@keras.saving.register_keras_serializable(package=PACKAGE)
class FactoredConv3D(FactoredConv):
    """`keras.layers.Conv3D` with a factored kernel (see `FactoredConv`)."""

    def __init__(self, filters, kernel_size, **kwargs):
        kwargs.pop("rank", None)
        super().__init__(3, filters, kernel_size, **kwargs)


FACTORED = {1: FactoredConv1D, 2: FactoredConv2D, 3: FactoredConv3D}
