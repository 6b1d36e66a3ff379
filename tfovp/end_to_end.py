"""The end-to-end update rule of Arora, Cohen & Hazan (2018), Eqs. 10-12.

For a depth-N linear network, gradient descent on the factors moves the end-to-end
matrix W (from a balanced initialization, Eq. 7, in the limit of small steps) as

    W <- (1 - eta*lambda*N) W - eta * P_W(G),                                    (Eq. 10)
    P_W(G) = sum_{j=1..N} [W W^T]^{(j-1)/N} G [W^T W]^{(N-j)/N},

with G = grad L^1(W) and the convention [.]^0 = I (also on null spaces). Vectorized,
P_W is the PSD matrix sum_j [W^T W]^{(N-j)/N} (x) [W W^T]^{(j-1)/N} (Claim 1, Eq. 11).

Orientation: P_W(G)^T = P_{W^T}(G^T), so every function here works unchanged for the
paper's W (k x d) and for Keras kernels (d x k). Leading axes are batch axes.

`precondition` uses one thin SVD (exact); for a single row or column it uses the closed
form of Claim 2 (Eq. 12). The tests check both against Eq. 11 built by brute force
(`tests/kronecker.py`).
"""

import keras
import numpy as np
from keras import ops

from tfovp.checks import check_choice, check_float_dtype, check_int, check_real

METHODS = ("auto", "svd", "gram", "closed_form")


def _tensor(x, dtype=None):
    """A tensor from arrays, Keras variables and raw tf.Variables (which TensorFlow counts
    as tensors, so `convert_to_tensor` would hand them back unchanged). float64 input is
    refused where the backend would compute it in float32 (`check_float_dtype`)."""
    if dtype is None and hasattr(x, "dtype"):
        check_float_dtype("kernel", keras.backend.standardize_dtype(x.dtype))
    x = ops.convert_to_tensor(x, dtype=dtype)
    return x if hasattr(x, "ndim") else ops.copy(x)


def _swap(x):
    return ops.swapaxes(x, -1, -2)


def _power(values, exponent):
    # [.]^0 = I even on null spaces: 0**0 must be 1, so never call pow with exponent 0.
    return ops.ones_like(values) if exponent == 0 else ops.power(values, exponent)


def precondition_single_output(kernel, gradient, depth):
    """Claim 2 (Eq. 12) for a kernel with one row (or, by symmetry, one column).

    P_W(G) = ||W||^{2-2/N} (G + (N-1) Pr_W{G}),  Pr_W{G} = <G, W/||W||> W/||W||,
    and Pr_W{G} = 0 at W = 0 (then P_W = 0 for N > 1, and I for N = 1).
    """
    depth = check_int("depth", depth, minimum=1)
    kernel = _tensor(kernel)
    gradient = _tensor(gradient, kernel.dtype)
    if depth == 1:
        return gradient
    axes = (-2, -1)
    norm = ops.sqrt(ops.sum(kernel * kernel, axis=axes, keepdims=True))
    safe_norm = ops.where(norm > 0, norm, ops.ones_like(norm))
    direction = kernel / safe_norm
    along = ops.sum(gradient * direction, axis=axes, keepdims=True) * direction
    return ops.power(norm, 2.0 - 2.0 / depth) * (gradient + (depth - 1) * along)


def _precondition_svd(kernel, gradient, depth):
    """P_W(G) exactly, through a thin SVD W = U diag(s) V^T of the wide orientation.

    With rows <= cols: P(G) = U[(U^T G V) o M]V^T + U diag(s^{2(N-1)/N}) U^T G (I - V V^T),
    M_ab = sum_j s_a^{2(j-1)/N} s_b^{2(N-j)/N}; the second term is the action on the
    complement of the row space, where the right singular values are 0.
    """
    if kernel.shape[-2] > kernel.shape[-1]:
        return _swap(_precondition_svd(_swap(kernel), _swap(gradient), depth))
    s, u, v = _thin_svd(kernel)
    mix = 0.0
    for j in range(1, depth + 1):
        left = _power(s, 2.0 * (j - 1) / depth)
        right = _power(s, 2.0 * (depth - j) / depth)
        mix = mix + left[..., :, None] * right[..., None, :]
    core = ops.matmul(ops.matmul(_swap(u), gradient), v)  # U^T G V
    in_row_space = ops.matmul(ops.matmul(u, core * mix), _swap(v))
    outside = gradient - ops.matmul(ops.matmul(gradient, v), _swap(v))  # G (I - V V^T)
    top = _power(s, 2.0 * (depth - 1) / depth)
    outside = ops.matmul(u, top[..., :, None] * ops.matmul(_swap(u), outside))
    return in_row_space + outside


def _thin_svd(kernel):
    u, s, vh = ops.svd(kernel, full_matrices=False)
    # Singular values at round-off level are exact zeros of a rank-deficient W (the
    # numerical-rank cutoff of `matrix_rank`); raised to a small power such as 2/N they
    # would otherwise leak ~eps^(2/N) into P.
    eps = np.finfo(keras.backend.standardize_dtype(s.dtype)).eps
    cutoff = eps * max(kernel.shape[-2], kernel.shape[-1]) * ops.max(s, axis=-1, keepdims=True)
    s = ops.where(s > cutoff, s, ops.zeros_like(s))
    return s, u, _swap(vh)


def _gram_power(eigenvalues, eigenvectors, exponent, cutoff):
    """V diag(lambda^exponent) V^T with eigenvalues at or below `cutoff` treated as 0
    (so a negative exponent gives the pseudo-inverse power)."""
    kept = eigenvalues > cutoff
    safe = ops.where(kept, eigenvalues, ops.ones_like(eigenvalues))
    scaled = ops.where(kept, ops.power(safe, exponent), ops.zeros_like(eigenvalues))
    return ops.matmul(eigenvectors * scaled[..., None, :], _swap(eigenvectors))


def _precondition_gram(kernel, gradient, depth):
    """P_W(G) through the eigendecomposition of the smaller Gram matrix W^T W (tall W):

        (W W^T)^a G = W (W^T W)^{a-1} W^T G  for a > 0,  and [.]^0 = I,

    so only a b x b matrix is decomposed for W of shape (a, b), a >= b; the cost is a few
    products with W instead of an SVD of W (e.g. the 3136 x 512 kernel of the MNIST
    tutorial). Eigenvalues below eps * b * max are treated as exact zeros: the terms
    dropped are at most sqrt(eps * b) times the largest (use float64 for accuracy)."""
    if kernel.shape[-2] < kernel.shape[-1]:
        return _swap(_precondition_gram(_swap(kernel), _swap(gradient), depth))
    gram = ops.matmul(_swap(kernel), kernel)
    eigenvalues, eigenvectors = ops.eigh((gram + _swap(gram)) / 2)
    eps = np.finfo(keras.backend.standardize_dtype(gram.dtype)).eps
    cutoff = eps * kernel.shape[-1] * ops.max(eigenvalues, axis=-1, keepdims=True)
    total = 0.0
    for j in range(1, depth + 1):
        left, right = (j - 1) / depth, (depth - j) / depth
        term = gradient
        if left > 0:
            inner = _gram_power(eigenvalues, eigenvectors, left - 1, cutoff)
            term = ops.matmul(kernel, ops.matmul(inner, ops.matmul(_swap(kernel), gradient)))
        if right > 0:
            term = ops.matmul(term, _gram_power(eigenvalues, eigenvectors, right, cutoff))
        total = total + term
    return total


def precondition(kernel, gradient, depth, method="auto"):
    """The end-to-end preconditioner P_W(G) of Eq. 10 (sum over j = 1..N).

    Args:
        kernel: W, shape (..., a, b), either orientation.
        gradient: G = grad L^1(W), same shape.
        depth: N >= 1; N = 1 returns G.
        method: "svd" (general, exact), "gram" (general, through the eigendecomposition
            of the smaller Gram matrix: cheaper for a tall or wide kernel, accurate to the
            square of its condition number), "closed_form" (Claim 2; needs a == 1 or
            b == 1) or "auto" (closed form for a single row or column, else SVD).
    """
    depth = check_int("depth", depth, minimum=1)
    check_choice("method", method, METHODS)
    kernel = _tensor(kernel)
    gradient = _tensor(gradient, kernel.dtype)
    if tuple(kernel.shape) != tuple(gradient.shape):
        raise ValueError(
            "`gradient` must have the shape of `kernel`. Received: "
            f"kernel.shape={tuple(kernel.shape)}, gradient.shape={tuple(gradient.shape)}"
        )
    single = min(kernel.shape[-2], kernel.shape[-1]) == 1
    if method == "closed_form" and not single:
        raise ValueError(
            "method='closed_form' needs a kernel with one row or one column. "
            f"Received: kernel.shape={tuple(kernel.shape)}"
        )
    if depth == 1:
        return gradient
    if method == "closed_form" or (method == "auto" and single):
        return precondition_single_output(kernel, gradient, depth)
    if method == "gram":
        return _precondition_gram(kernel, gradient, depth)
    return _precondition_svd(kernel, gradient, depth)


def step(kernel, gradient, learning_rate, depth, weight_decay=0.0, method="auto"):
    """One step of Eq. 10: W <- (1 - eta*lambda*N) W - eta * P_W(G)."""
    learning_rate = check_real("learning_rate", learning_rate, minimum=0.0, strict=True)
    weight_decay = check_real("weight_decay", weight_decay, minimum=0.0)
    kernel = _tensor(kernel)
    direction = precondition(kernel, gradient, depth, method=method)
    return (1.0 - learning_rate * weight_decay * depth) * kernel - learning_rate * direction
