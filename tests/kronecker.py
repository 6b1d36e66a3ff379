"""Claim 1 (Eq. 11) by brute force in NumPy float64: the explicit Kronecker matrix of the
end-to-end preconditioner, the independent reference the tests check `tfovp.end_to_end`
against (never used by the library)."""

import numpy as np


def psd_power(matrix, exponent, rtol=1e-10):
    """[A]^exponent of a symmetric PSD matrix (NumPy float64), with [A]^0 = I.

    Eigenvalues below rtol * max eigenvalue are treated as exact zeros, so that
    round-off on a null space is not raised to a small power.
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    if exponent == 0:
        return np.eye(matrix.shape[0])
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    cutoff = rtol * max(values.max(initial=0.0), 0.0)
    values = np.where(values > cutoff, values, 0.0)
    return (vectors * values**exponent) @ vectors.T


def kronecker_preconditioner(kernel, depth):
    """Claim 1 (Eq. 11) by brute force: P_W = sum_j [W^T W]^{(N-j)/N} (x) [W W^T]^{(j-1)/N}.

    Acts on column-major vec(G); shape (a*b, a*b) for W of shape (a, b). Reference only.
    """
    w = np.asarray(kernel, dtype=np.float64)
    gram_rows, gram_cols = w @ w.T, w.T @ w
    return sum(
        np.kron(psd_power(gram_cols, (depth - j) / depth), psd_power(gram_rows, (j - 1) / depth))
        for j in range(1, depth + 1)
    )


def precondition_kronecker(kernel, gradient, depth):
    """P_W(G) through the explicit Kronecker matrix of Claim 1 (NumPy float64)."""
    g = np.asarray(gradient, dtype=np.float64)
    flat = kronecker_preconditioner(kernel, depth) @ g.reshape(-1, order="F")
    return flat.reshape(g.shape, order="F")
