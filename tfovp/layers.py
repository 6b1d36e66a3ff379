"""Keras layers whose kernel is a product of factors (PAPER Sec. 1).

`FactoredDense` is a drop-in `Dense` whose kernel is kernel_0 @ ... @ kernel_{N-1};
`DeepLinear` is the paper's depth-N linear network without bias. Keras orientation:
inputs are rows, so the end-to-end kernel (input_dim x units) is the transpose of the
paper's W_e = W_N ... W_1, with kernel_j = W_{j+1}^T.
"""

import keras
from keras import ops

from tfovp import initializers
from tfovp._factors import factor_shapes, hidden_widths_list, product
from tfovp.checks import check_float_dtype, check_int

PACKAGE = "tfovp"


def add_factor_weights(layer, shapes, values):
    """The factors kernel_0 ... kernel_{N-1} of a factored layer, started at `values`,
    with the layer's factor regularizer and (per-factor) kernel constraint; a float64
    layer is refused where the backend would compute it in float32 (`check_float_dtype`)."""
    check_float_dtype("dtype", layer.variable_dtype)
    return [
        layer.add_weight(
            name=f"kernel_{j}",
            shape=shape,
            initializer=lambda shape, dtype, value=value: ops.cast(value, dtype),
            regularizer=layer.factor_regularizer,
            constraint=layer.kernel_constraint,
        )
        for j, (shape, value) in enumerate(zip(shapes, values))
    ]


def add_bias_weight(layer, shape):
    """The bias of a factored layer, with its initializer, regularizer and constraint."""
    return layer.add_weight(
        name="bias",
        shape=shape,
        initializer=layer.bias_initializer,
        regularizer=layer.bias_regularizer,
        constraint=layer.bias_constraint,
    )


def set_weight_options(layer, depth, kernel_initializer, bias_initializer, kernel_regularizer, factor_regularizer,
                       bias_regularizer, kernel_constraint, bias_constraint):  # fmt: skip
    """The options every factored layer keeps about its weights: one kernel initializer
    for every factor (a tfovp `FactorInitializer` draws them jointly) or a list with one
    per factor, the bias initializer, the regularizers (of the product, of every factor,
    of the bias) and the constraints (of every factor, of the bias)."""
    if isinstance(kernel_initializer, (list, tuple)):
        if len(kernel_initializer) != depth:
            raise ValueError(
                f"`kernel_initializer` as a list needs one entry per factor (depth={depth}). "
                f"Received: {len(kernel_initializer)} entries"
            )
        layer.kernel_initializer = [initializers.get(i) for i in kernel_initializer]
    else:
        layer.kernel_initializer = initializers.get(kernel_initializer)
    layer.bias_initializer = keras.initializers.get(bias_initializer)
    layer.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
    layer.factor_regularizer = keras.regularizers.get(factor_regularizer)
    layer.bias_regularizer = keras.regularizers.get(bias_regularizer)
    layer.kernel_constraint = keras.constraints.get(kernel_constraint)
    layer.bias_constraint = keras.constraints.get(bias_constraint)


def serialized_kernel_initializer(layer):
    if isinstance(layer.kernel_initializer, list):
        return [keras.initializers.serialize(i) for i in layer.kernel_initializer]
    return keras.initializers.serialize(layer.kernel_initializer)


def with_factor_initializers(config):
    """A copy of a layer's config whose per-factor list of kernel initializers (if it has
    one) is deserialized, for `from_config`."""
    config = dict(config)
    init = config.get("kernel_initializer")
    if isinstance(init, list):
        config["kernel_initializer"] = [keras.initializers.deserialize(i) for i in init]
    return config


def shared_config(layer):
    """The config entries every factored layer has (activation, bias initializer,
    regularizers, constraints)."""
    return {
        "activation": keras.activations.serialize(layer.activation),
        "bias_initializer": keras.initializers.serialize(layer.bias_initializer),
        "kernel_regularizer": keras.regularizers.serialize(layer.kernel_regularizer),
        "factor_regularizer": keras.regularizers.serialize(layer.factor_regularizer),
        "bias_regularizer": keras.regularizers.serialize(layer.bias_regularizer),
        "kernel_constraint": keras.constraints.serialize(layer.kernel_constraint),
        "bias_constraint": keras.constraints.serialize(layer.bias_constraint),
    }


@keras.saving.register_keras_serializable(package=PACKAGE)
class FactoredDense(keras.layers.Layer):
    """`Dense` with an overparameterized kernel: outputs = activation(x @ K + bias),
    K = kernel_0 @ kernel_1 @ ... @ kernel_{depth-1}.

    Args:
        units: output width.
        depth: number of factors N >= 1 (1 is a plain Dense).
        hidden_widths: int or list of depth-1 ints; default `units`.
        activation, use_bias, bias_initializer, bias_regularizer, activity_regularizer,
            bias_constraint: as in `keras.layers.Dense`.
        kernel_initializer: one initializer for all factors (a tfovp `FactorInitializer`
            draws them jointly) or a list with one per factor.
        kernel_regularizer: applied to the product K (what a Dense layer would penalize).
        factor_regularizer: applied to every factor separately.
        kernel_constraint: applied to every factor after each update (a constraint cannot
            act on the product itself; e.g. NonNeg factors keep the product non-negative).
        lora_rank: not accepted (the kernel is already a product of factors).

    Shapes: (..., input_dim) -> (..., units).
    """

    def __init__(
        self,
        units,
        depth=2,
        hidden_widths=None,
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
        for key in ("lora_rank", "lora_alpha"):
            if kwargs.get(key):
                raise ValueError(
                    f"FactoredDense has no `{key}`: its kernel is already a product of factors. "
                    f"Received: {key}={kwargs[key]!r}"
                )
            kwargs.pop(key, None)
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        self.units = check_int("units", units, minimum=1)
        self.depth = check_int("depth", depth, minimum=1)
        self.hidden_widths = hidden_widths_list(self.units if hidden_widths is None else hidden_widths, self.depth)
        self.activation = keras.activations.get(activation)
        self.use_bias = bool(use_bias)
        set_weight_options(self, self.depth, kernel_initializer, bias_initializer, kernel_regularizer,
                           factor_regularizer, bias_regularizer, kernel_constraint, bias_constraint)  # fmt: skip
        self.input_spec = keras.layers.InputSpec(min_ndim=2)
        self.supports_masking = True

    def _initial_factors(self, shapes):
        if isinstance(self.kernel_initializer, list):
            return [
                initializers.draw_factors(init, [shape], self.dtype)[0]
                for init, shape in zip(self.kernel_initializer, shapes)
            ]
        return initializers.draw_factors(self.kernel_initializer, shapes, self.dtype)

    def build(self, input_shape):
        input_dim = int(input_shape[-1])
        shapes = factor_shapes(input_dim, self.units, self.hidden_widths)
        values = self._initial_factors(shapes)
        self.factors = add_factor_weights(self, shapes, values)
        self.bias = add_bias_weight(self, (self.units,)) if self.use_bias else None
        self.input_spec = keras.layers.InputSpec(min_ndim=2, axes={-1: input_dim})

    @property
    def kernel(self):
        """The end-to-end kernel K = kernel_0 @ ... @ kernel_{N-1} (input_dim x units)."""
        return product(self.factors)

    def end_to_end(self):
        """The end-to-end matrix in Keras orientation (the paper's W_e transposed)."""
        return self.kernel

    def call(self, inputs):
        if self.kernel_regularizer is not None:
            self.add_loss(self.kernel_regularizer(self.kernel))
        # Factor by factor: far cheaper than forming K when the batch is small.
        outputs = inputs
        for factor in self.factors:
            outputs = ops.matmul(outputs, factor)
        if self.bias is not None:
            outputs = ops.add(outputs, self.bias)
        return self.activation(outputs) if self.activation is not None else outputs

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "units": self.units,
                "depth": self.depth,
                "hidden_widths": self.hidden_widths,
                "use_bias": self.use_bias,
                "kernel_initializer": serialized_kernel_initializer(self),
                **shared_config(self),
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**with_factor_initializers(config))


@keras.saving.register_keras_serializable(package=PACKAGE)
class DeepLinear(FactoredDense):
    """The paper's depth-N linear network x -> x W_e^T without bias (PAPER Sec. 1).

    Weights kernel_0 ... kernel_{N-1}; `end_to_end()` returns the (input_dim x units)
    Keras kernel, the transpose of the paper's W_e.

    Args:
        units: k, the output width (as `keras.layers.Dense`).
        depth: N >= 1.
        hidden_widths: int or list of N-1 ints (paper default: 1).
        kernel_initializer: default "near_zero" (i.i.d. N(0, 0.01^2), unseeded).
    """

    def __init__(
        self,
        units=None,
        depth=None,
        hidden_widths=1,
        kernel_initializer="near_zero",
        kernel_regularizer=None,
        factor_regularizer=None,
        **kwargs,
    ):
        for key in ("use_bias", "activation"):
            if key in kwargs:
                raise ValueError(f"DeepLinear has no `{key}` argument (no bias, linear).")
        for name, value in (("units", units), ("depth", depth)):
            if value is None:
                raise ValueError(f"DeepLinear needs `{name}`. Received: {name}=None")
        super().__init__(
            units=units,
            depth=depth,
            hidden_widths=hidden_widths,
            use_bias=False,
            kernel_initializer=kernel_initializer,
            kernel_regularizer=kernel_regularizer,
            factor_regularizer=factor_regularizer,
            **kwargs,
        )

    def get_config(self):
        config = super().get_config()
        for key in ("use_bias", "activation", "bias_initializer", "bias_regularizer", "bias_constraint"):
            config.pop(key)
        return config
