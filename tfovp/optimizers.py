"""`EndToEnd`: train any Keras model "as if" its dense kernels had depth N (Eq. 10)."""

import keras
import tensorflow as tf
from keras import ops

from tfovp._checks import check_choice, check_int, check_real
from tfovp.einsum import MatrixView
from tfovp.end_to_end import METHODS, precondition

HALF_DTYPES = ("float16", "bfloat16")


@keras.saving.register_keras_serializable(package="tfovp")
class EndToEnd(keras.optimizers.Optimizer):
    """Gradient descent with the end-to-end preconditioner on every 2-D variable.

    For a 2-D variable W (a Dense kernel, either orientation) with gradient G:

        W <- (1 - eta*lambda*N) W - eta * P_W(G),
        P_W(G) = sum_{j=1..N} [W W^T]^{(j-1)/N} G [W^T W]^{(N-j)/N}              (Eq. 10)

    which is what GD on a balanced depth-N factorization of W does to W for small eta
    (Theorem 1). An `EinsumDense` kernel (also inside `MultiHeadAttention`) is the
    matrix its einsum contracts: with `matrix_views=matrix_views(model)` it is reshaped
    to that matrix, preconditioned and reshaped back. Every other variable (biases, convolution kernels, ...) gets plain
    gradient descent with decay, v <- (1 - eta*lambda) v - eta * g (Eq. 4), and so
    does a 2-D variable with a sparse gradient (an `Embedding` table: a lookup, not a
    linear map; only its looked-up rows move, decay aside). For N > 1 a
    kernel at exactly 0 does not move (P_0 = 0). Clipping and learning-rate schedules
    are the base class's, as for `keras.optimizers.SGD`.

    Args:
        learning_rate: eta (float or schedule), first as in every Keras optimizer.
        depth: N >= 1 (1 is plain SGD); required, by name.
        weight_decay: lambda >= 0 of Eqs. 4 and 10 (coupled decay, not Keras' decoupled
            `weight_decay`).
        method: "auto", "svd" or "closed_form" (see `tfovp.end_to_end.precondition`).
        matrix_views: {variable path: {"perm": [...], "row_axes": r}} for kernels of
            more than 2 axes that are matrices in disguise (`matrix_views(model)` finds
            every EinsumDense kernel of a model); others of more than 2 axes get plain GD.
        **kwargs: `clipnorm`, `clipvalue`, `global_clipnorm`, `name`, ... as for any
            Keras optimizer.
    """

    def __init__(
        self,
        learning_rate=0.01,
        depth=None,
        weight_decay=0.0,
        method="auto",
        matrix_views=None,
        name="end_to_end",
        **kwargs,
    ):
        if depth is None:  # depth has no default: it says which rule this is
            hint = (
                " (EndToEnd takes the learning rate first, as every Keras optimizer: pass depth= by name)"
                if isinstance(learning_rate, int) and not isinstance(learning_rate, bool)
                else ""
            )
            raise ValueError(f"EndToEnd needs `depth`{hint}. Received: learning_rate={learning_rate!r}, depth=None")
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.depth = check_int("depth", depth, minimum=1)
        self.rule_weight_decay = check_real("weight_decay", weight_decay, minimum=0.0)
        self.method = check_choice("method", method, METHODS)
        self.matrix_views = {str(path): dict(view) for path, view in (matrix_views or {}).items()}
        self._views = {path: MatrixView(tuple(v["perm"]), int(v["row_axes"])) for path, v in self.matrix_views.items()}
        if isinstance(learning_rate, (int, float)):
            check_real("learning_rate", learning_rate, minimum=0.0, strict=True)

    def build(self, var_list):
        """Match the matrix views to the variables (the backend's update step sees raw
        variables without their Keras paths)."""
        super().build(var_list)
        self._view_of = {
            self._var_key(variable): self._views[variable.path] for variable in var_list if variable.path in self._views
        }

    def direction(self, gradient, variable):
        """P_W(G) + lambda*N*W for a 2-D variable (or one with a matrix view), G +
        lambda*v otherwise. A float16 or bfloat16 kernel (mixed precision keeps float32
        variables, but a model may be built in half precision) is preconditioned in
        float32: the fractional powers need an SVD or eigendecomposition, which neither
        the kernels of TensorFlow nor the precision of half floats provide."""
        gradient = ops.cast(gradient, variable.dtype)
        view = getattr(self, "_view_of", {}).get(self._var_key(variable))
        if view is None and len(variable.shape) != 2:
            decay = self.rule_weight_decay
            return gradient + decay * variable if decay else gradient
        wide = "float32" if variable.dtype in HALF_DTYPES else variable.dtype
        kernel, grad = ops.cast(variable, wide), ops.cast(gradient, wide)
        if view is not None:
            matrix = precondition(view.to_matrix(kernel), view.to_matrix(grad), self.depth, method=self.method)
            step = view.to_kernel(matrix, tuple(variable.shape))
        else:
            step = precondition(kernel, grad, self.depth, method=self.method)
        decay = self.rule_weight_decay * self.depth
        step = ops.cast(step + decay * kernel if decay else step, variable.dtype)
        return step

    def update_step(self, gradient, variable, learning_rate):
        learning_rate = ops.cast(learning_rate, variable.dtype)
        if isinstance(gradient, tf.IndexedSlices):
            if self.rule_weight_decay:
                self.assign_sub(variable, (learning_rate * self.rule_weight_decay) * variable)
            values = learning_rate * ops.cast(gradient.values, variable.dtype)
            self.assign_sub(variable, tf.IndexedSlices(values, gradient.indices, gradient.dense_shape))
            return
        self.assign_sub(variable, learning_rate * self.direction(gradient, variable))

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "depth": self.depth,
                "weight_decay": self.rule_weight_decay,
                "method": self.method,
                "matrix_views": self.matrix_views,
            }
        )
        return config


def matrix_views(model):
    """{kernel variable path: matrix view} of every EinsumDense kernel of `model`
    (nested models and MultiHeadAttention projections included), for
    `EndToEnd(matrix_views=...)`."""
    from tfovp.einsum import matrix_view
    from tfovp.factoring import flat_layers

    views = {}
    for layer in flat_layers(model):
        for sublayer in layer._flatten_layers(include_self=True, recursive=True):
            if type(sublayer) is keras.layers.EinsumDense and sublayer.built:
                views[sublayer._kernel.path] = matrix_view(sublayer.equation).to_json()
    return views
