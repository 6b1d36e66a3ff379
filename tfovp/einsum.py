"""Factored `EinsumDense` and `MultiHeadAttention` (PAPER Sec. 1 beyond Dense layers).

An `EinsumDense` kernel is a matrix in disguise: its axes that the einsum contracts with
the input are the matrix's rows, the axes it carries to the output its columns (e.g.
"abc,cde->abde", the query projection of an attention layer: kernel (c, d, e) is the
(c) x (d * e) matrix). `matrix_view(equation)` says how to reshape the kernel into that
matrix and back; `FactoredEinsumDense` keeps the matrix as a product of factors
W_1 ... W_N (as `FactoredDense` does) and contracts the reshaped product exactly as
`EinsumDense` contracts its kernel. A kernel axis that is also an axis of the input and
of the output (a batched kernel) is not a matrix and is refused.

`FactoredMultiHeadAttention` is a `keras.layers.MultiHeadAttention` whose query, key,
value and output projections are `FactoredEinsumDense` layers.
"""

import contextlib
import dataclasses
import math

import keras
import numpy as np
from keras import ops

from tfovp import initializers
from tfovp._factors import factor_shapes, hidden_widths_list, product
from tfovp.checks import check_int
from tfovp.layers import add_bias_weight, add_factor_weights, set_weight_options, shared_config

PACKAGE = "tfovp"


@dataclasses.dataclass(frozen=True)
class MatrixView:
    """How an einsum kernel is a matrix: transpose the kernel's axes by `perm` (rows'
    axes first) and reshape to (prod of the first `row_axes` sizes) x (the rest)."""

    perm: tuple[int, ...]
    row_axes: int

    def shape(self, kernel_shape):
        permuted = [kernel_shape[i] for i in self.perm]
        return math.prod(permuted[: self.row_axes]), math.prod(permuted[self.row_axes :])

    def to_matrix(self, kernel):
        """The kernel (tensor or array) as its (rows x columns) matrix."""
        shape = self.shape(tuple(kernel.shape))
        return ops.reshape(ops.transpose(kernel, self.perm), shape)

    def to_kernel(self, matrix, kernel_shape):
        """The inverse of `to_matrix`."""
        permuted = [kernel_shape[i] for i in self.perm]
        return ops.transpose(ops.reshape(matrix, permuted), np.argsort(self.perm).tolist())

    def to_json(self):
        return {"perm": list(self.perm), "row_axes": self.row_axes}


def matrix_view(equation):
    """The MatrixView of the kernel of an `EinsumDense` with `equation` ("in,kernel->out");
    ValueError naming the axis for a kernel that is not a matrix."""
    try:
        inputs, output = equation.replace(" ", "").split("->")
        source, kernel = inputs.split(",")
    except ValueError:
        raise ValueError(f"`equation` must look like 'abc,cd->abd'. Received: equation={equation!r}") from None
    rows, columns = [], []
    for axis, letter in enumerate(kernel):
        in_input, in_output = letter in source, letter in output
        if in_input and in_output:
            raise ValueError(
                f"`equation` {equation!r}: kernel axis {letter!r} is an axis of the input and of the output "
                "(a batched kernel), so the kernel is not one matrix and cannot be factored"
            )
        if not (in_input or in_output):
            raise ValueError(f"`equation` {equation!r}: kernel axis {letter!r} is summed out on its own")
        (rows if in_input else columns).append(axis)
    if not rows or not columns:
        raise ValueError(f"`equation` {equation!r}: the kernel needs contracted and output axes to be a matrix")
    return MatrixView(tuple(rows + columns), len(rows))


def einsum_shapes(equation, output_shape, bias_axes, input_shape):
    """(kernel shape, bias shape or None) of an `EinsumDense` on inputs of `input_shape`."""
    probe = keras.layers.EinsumDense(equation, output_shape, bias_axes=bias_axes, dtype="float32")
    probe.build(tuple(input_shape))
    return tuple(int(n) for n in probe.kernel.shape), None if probe.bias is None else tuple(probe.bias.shape)


@keras.saving.register_keras_serializable(package=PACKAGE)
class FactoredEinsumDense(keras.layers.Layer):
    """`EinsumDense` whose kernel is the product of `depth` factors of its matrix view:
    outputs = activation(einsum(equation, x, K) + bias), K = view^-1(W_1 @ ... @ W_N).

    Args:
        equation, output_shape, activation, bias_axes, bias_initializer,
            bias_regularizer, activity_regularizer, bias_constraint: as in
            `keras.layers.EinsumDense`.
        depth: N >= 1 factors.
        hidden_widths: int or list of N-1 ints; default the matrix's column count.
        kernel_initializer: for every factor (a tfovp `FactorInitializer` draws them
            jointly); default "glorot_uniform".
        kernel_regularizer: on the product K; factor_regularizer: on every factor;
            kernel_constraint: on every factor after each update.
    """

    def __init__(
        self,
        equation,
        output_shape,
        depth=2,
        hidden_widths=None,
        activation=None,
        bias_axes=None,
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
        self.equation = equation
        self.view = matrix_view(equation)
        self.partial_output_shape = tuple(output_shape) if isinstance(output_shape, (list, tuple)) else (output_shape,)
        self.depth = check_int("depth", depth, minimum=1)
        self.requested_widths = hidden_widths
        self.hidden_widths = None  # known once the kernel's shape is (build)
        self.activation = keras.activations.get(activation)
        self.bias_axes = bias_axes
        set_weight_options(self, self.depth, kernel_initializer, bias_initializer, kernel_regularizer,
                           factor_regularizer, bias_regularizer, kernel_constraint, bias_constraint)  # fmt: skip

    def build(self, input_shape):
        self.kernel_shape, bias_shape = einsum_shapes(
            self.equation, self.partial_output_shape, self.bias_axes, input_shape
        )
        rows, columns = self.view.shape(self.kernel_shape)
        widths = columns if self.requested_widths is None else self.requested_widths
        self.hidden_widths = hidden_widths_list(widths, self.depth)
        shapes = factor_shapes(rows, columns, self.hidden_widths)
        values = initializers.draw_factors(self.kernel_initializer, shapes, self.dtype)
        self.factors = add_factor_weights(self, shapes, values)
        self.bias = None if bias_shape is None else add_bias_weight(self, bias_shape)

    @property
    def kernel(self):
        """The einsum kernel K, reshaped from the product of the factors."""
        return self.view.to_kernel(product(self.factors), self.kernel_shape)

    def call(self, inputs):
        kernel = self.kernel
        if self.kernel_regularizer is not None:
            self.add_loss(self.kernel_regularizer(kernel))
        outputs = ops.einsum(self.equation, inputs, kernel)
        if self.bias is not None:
            outputs = ops.add(outputs, self.bias)
        return self.activation(outputs) if self.activation is not None else outputs

    def compute_output_shape(self, input_shape):
        probe = keras.layers.EinsumDense(self.equation, self.partial_output_shape, bias_axes=self.bias_axes)
        return probe.compute_output_shape(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "equation": self.equation,
                "output_shape": list(self.partial_output_shape),
                "depth": self.depth,
                "hidden_widths": self.requested_widths if self.hidden_widths is None else self.hidden_widths,
                "bias_axes": self.bias_axes,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                **shared_config(self),
            }
        )
        return config


@contextlib.contextmanager
def _factored_projections(depth, hidden_widths):
    """While building a MultiHeadAttention, its EinsumDense projections are made as
    FactoredEinsumDense layers (Keras builds them inside `build`, by the name
    `EinsumDense` of its module)."""
    from keras.src.layers.attention import multi_head_attention as module

    original = module.EinsumDense

    def factored(equation, output_shape=None, **kwargs):
        for key in ("lora_rank", "lora_alpha", "quantization_config"):
            kwargs.pop(key, None)
        return FactoredEinsumDense(equation, output_shape, depth=depth, hidden_widths=hidden_widths, **kwargs)

    module.EinsumDense = factored
    try:
        yield
    finally:
        module.EinsumDense = original


@keras.saving.register_keras_serializable(package=PACKAGE)
class FactoredMultiHeadAttention(keras.layers.MultiHeadAttention):
    """`keras.layers.MultiHeadAttention` whose query, key, value and output projections
    are `FactoredEinsumDense` layers of `depth` factors (hidden widths: `hidden_widths`,
    default each projection's column count). Every other argument is MultiHeadAttention's."""

    def __init__(self, num_heads, key_dim, depth=2, hidden_widths=None, **kwargs):
        super().__init__(num_heads, key_dim, **kwargs)
        self.depth = check_int("depth", depth, minimum=1)
        self.hidden_widths = hidden_widths

    def build(self, query_shape, value_shape, key_shape=None):
        with _factored_projections(self.depth, self.hidden_widths):
            super().build(query_shape, value_shape, key_shape)

    def projections(self):
        """{name: the FactoredEinsumDense projection} (query, key, value, output)."""
        found = {name: getattr(self, f"_{name}_dense", None) for name in ("query", "key", "value", "output")}
        return {name: layer for name, layer in found.items() if layer is not None}

    def get_config(self):
        config = super().get_config()
        config.update({"depth": self.depth, "hidden_widths": self.hidden_widths})
        return config
