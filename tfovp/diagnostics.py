"""Diagnostics of factored kernels: balancedness (Eq. 7), spectra, trajectory distances.

All functions take NumPy-convertible arrays in Keras orientation (factor_j maps n_j to
n_{j+1}); leading axes are batch axes.
"""

import numpy as np


def _as_arrays(factors):
    return [np.asarray(getattr(f, "numpy", lambda f=f: f)(), dtype=np.float64) for f in factors]


def gram_residuals(factors, ops=None):
    """(..., N-1, 2) tensor: per adjacent pair of factors (Keras orientation, any leading
    batch axes) the Eq. 7 residual ||kernel_j kernel_j^T - kernel_{j-1}^T kernel_{j-1}||_F
    and its scale, the larger Frobenius norm of the two Gram matrices. Keras ops by
    default (the compiled `tfovp.sweep` loop), NumPy with `ops=numpy` (`balancedness`:
    float64 on every backend, where PyTorch's Keras ops would compute it in float32)."""
    if ops is None:
        from keras import ops  # here: the module loads without Keras (command lines' --help)

    pairs = []
    for lower, upper in zip(factors[:-1], factors[1:]):
        left = ops.matmul(upper, ops.swapaxes(upper, -1, -2))
        right = ops.matmul(ops.swapaxes(lower, -1, -2), lower)
        norms = [ops.sqrt(ops.sum(ops.square(m), axis=(-2, -1))) for m in (left - right, left, right)]
        pairs.append(ops.stack([norms[0], ops.maximum(norms[1], norms[2])], axis=-1))
    return ops.stack(pairs, axis=-2)


def balancedness(factors, relative=False):
    """||W_{j+1}^T W_{j+1} - W_j W_j^T||_F for each adjacent pair (Eq. 7), paper indices.

    In Keras orientation (kernel_j = W_{j+1}^T) this is
    ||kernel_j kernel_j^T - kernel_{j-1}^T kernel_{j-1}||_F, j = 1..N-1 (`gram_residuals`,
    in float64). With `relative`, each residual is divided by the larger of the two
    Frobenius norms (0 if both are 0). Returns a list of N-1 values (arrays if the
    factors are batched).
    """
    terms = gram_residuals(_as_arrays(factors), ops=np)
    value, size = terms[..., 0], terms[..., 1]
    if relative:
        value = np.where(size > 0, value / np.where(size > 0, size, 1.0), 0.0)
    return [value[..., j] for j in range(value.shape[-1])]


def singular_values(kernel, top=None):
    """Singular values of W_e in decreasing order (the `top` largest if given)."""
    values = np.linalg.svd(np.asarray(kernel, dtype=np.float64), compute_uv=False)
    return values if top is None else values[..., :top]


def trajectory_distance(first, second, relative=False):
    """||A_t - B_t||_F per recorded time t for two W_e trajectories of shape (T, ..., a, b).

    With `relative`, divided by ||B_t||_F (the reference trajectory).
    """
    first = np.asarray(first, dtype=np.float64)
    second = np.asarray(second, dtype=np.float64)
    if first.shape != second.shape or first.ndim < 2:
        raise ValueError(
            f"trajectories must have equal shapes (T, ..., a, b). Received: {first.shape} and {second.shape}"
        )

    def frobenius(matrices):  # the 2-norm of the flattened matrices
        return np.linalg.norm(matrices.reshape(matrices.shape[:-2] + (-1,)), axis=-1)

    distance = frobenius(first - second)
    if relative:
        distance = distance / np.maximum(frobenius(second), np.finfo(float).tiny)
    return distance
