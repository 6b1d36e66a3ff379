"""`EndToEnd`: train any Keras model "as if" its dense kernels had depth N (Eq. 10)."""

import warnings

import keras
from keras import ops

from tfovp.checks import check_choice, check_int, check_real
from tfovp.einsum import MatrixView
from tfovp.end_to_end import METHODS, precondition

HALF_DTYPES = ("float16", "bfloat16")


@keras.saving.register_keras_serializable(package="tfovp")
class EndToEnd(keras.optimizers.Optimizer):
    """Gradient descent with the end-to-end preconditioner on every kernel.

    For a kernel W (a Dense kernel, either orientation; by role: a variable named
    `kernel`, of 2 axes or with a matrix view) with gradient G:

        W <- (1 - eta*lambda*N) W - eta * P_W(G),
        P_W(G) = sum_{j=1..N} [W W^T]^{(j-1)/N} G [W^T W]^{(N-j)/N}              (Eq. 10)

    which is what GD on a balanced depth-N factorization of W does to W for small eta
    (Theorem 1). An `EinsumDense` kernel (also inside `MultiHeadAttention`) is the
    matrix its einsum contracts, and a convolution kernel (k...k, C_in, C_out) the
    matrix (k...k C_in) x C_out: with `matrix_views=matrix_views(model)` it is reshaped
    to that matrix, preconditioned and reshaped back. Every other variable (biases of
    any shape, embeddings, normalization parameters, kernels of more axes without a
    view) gets plain gradient descent with decay, v <- (1 - eta*lambda) v - eta * g
    (Eq. 4), and so does a kernel with a sparse gradient. The factors of an already
    factored layer (`kernel_0`, `kernel_1`, ...) are not preconditioned again: they get
    plain gradient descent, with a warning when the optimizer is built (their product
    already moves as Eq. 10 says). For N > 1 a kernel at exactly 0 does not move
    (P_0 = 0). Clipping and learning-rate schedules are the base class's, as for
    `keras.optimizers.SGD`.

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
        """Match the matrix views to the variables and find the kernels, by role (the
        backend's update step sees raw variables without their Keras paths)."""
        super().build(var_list)
        self._view_of = {
            self._var_key(variable): self._views[variable.path] for variable in var_list if variable.path in self._views
        }
        self._kernels = {
            self._var_key(v) for v in var_list if _role(v) == "kernel" and (len(v.shape) == 2 or v.path in self._views)
        }
        factors = [v.path for v in var_list if _role(v) == "factor"]
        if factors and self.depth > 1:
            warnings.warn(
                f"EndToEnd(depth={self.depth}) on a model whose kernels are already factored "
                f"({', '.join(factors[:4])}{', ...' if len(factors) > 4 else ''}): the factors get plain gradient "
                "descent, not a second preconditioner (GD on the factors is what Eq. 10 describes).",
                stacklevel=2,
            )

    def direction(self, gradient, variable):
        """P_W(G) + lambda*N*W for a 2-D variable (or one with a matrix view), G +
        lambda*v otherwise. A float16 or bfloat16 kernel (mixed precision keeps float32
        variables, but a model may be built in half precision) is preconditioned in
        float32: the fractional powers need an SVD or eigendecomposition, which neither
        the kernels of TensorFlow nor the precision of half floats provide."""
        gradient = ops.cast(gradient, variable.dtype)
        key = self._var_key(variable)
        view = getattr(self, "_view_of", {}).get(key)
        if key not in getattr(self, "_kernels", ()):
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
        if _sparse(gradient):
            import tensorflow as tf

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


def _role(variable):
    """ "kernel" for a variable named `kernel`, "factor" for the factors `kernel_<j>` of a
    tfovp layer, else "other" (biases, embeddings, scales, ...)."""
    name = variable.name
    if name == "kernel":
        return "kernel"
    if name.startswith("kernel_") and name[len("kernel_") :].isdigit():
        return "factor"
    return "other"


def matrix_views(model):
    """{kernel variable path: matrix view} of every EinsumDense kernel (nested models and
    MultiHeadAttention projections included) and every plain convolution kernel of
    `model` ((k...k C_in) x C_out), for `EndToEnd(matrix_views=...)`."""
    from tfovp.einsum import MatrixView, matrix_view
    from tfovp.factoring import CONVOLUTIONS
    from tfovp.traversal import walk

    views = {}
    for layer, _ in walk(model):
        for sublayer in layer._flatten_layers(include_self=True, recursive=True):
            if not sublayer.built:
                continue
            if type(sublayer) is keras.layers.EinsumDense:
                views[sublayer._kernel.path] = matrix_view(sublayer.equation).to_json()
            elif type(sublayer) in CONVOLUTIONS and sublayer.groups == 1:
                axes = len(sublayer.kernel.shape)
                views[sublayer.kernel.path] = MatrixView(tuple(range(axes)), axes - 1).to_json()
    return views


def _sparse(gradient):
    """Whether `gradient` is TensorFlow's sparse gradient of an embedding lookup (only the
    TensorFlow backend makes them)."""
    if keras.backend.backend() != "tensorflow":
        return False
    import tensorflow as tf

    return isinstance(gradient, tf.IndexedSlices)
