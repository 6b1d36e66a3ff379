"""The optimum L* of the convex linear problem min_W L^1(W) (PAPER Sec. 1), float64.

l2: least squares (exact). l_p, p > 1: Newton's method with backtracking from the
least-squares solution, on f(W) = s/p sum |XW - Y|^p (s = 1/m for "mean", 1 for "sum"):
gradient s X^T (|r|^{p-1} sign r), Hessian per output column s (p-1) X^T diag(|r|^{p-2}) X.
Deep linear nets of any depth have the same infimum (PAPER Sec. 1: L^N = L^1(W_e)), so
L - L* measures the excess loss of every curve of a figure.
"""

import numpy as np

from tfovp.checks import check_choice, check_real


def lp_objective(x, y, w, p, reduction="mean"):
    """L^1(W) = s/p sum |XW - Y|^p (NumPy, float64 in, float64 out)."""
    scale = 1.0 / len(x) if reduction == "mean" else 1.0
    return scale / p * np.sum(np.abs(x @ w - y) ** p)


def lp_gradient(x, y, w, p, reduction="mean", residual=None):
    """grad L^1(W) = s X^T (sign(r) |r|^{p-1}), r = XW - Y (pass `residual` if it is at
    hand), for W of shape (d, k) (or (d, n): n kernels of one output at once, with Y of
    shape (m, 1))."""
    scale = 1.0 / len(x) if reduction == "mean" else 1.0
    r = x @ w - y if residual is None else residual
    return scale * x.T @ (np.sign(r) * np.abs(r) ** (p - 1))


def optimal_loss(x, y, p, reduction="mean", tol=1e-13, max_iter=200):
    """(L*, W*) of the l_p regression of y on x (no bias). Returns W* as (d, k)."""
    p = check_real("p", p, minimum=1.0)
    check_choice("reduction", reduction, ("mean", "sum"))
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64).reshape(len(x), -1)
    w = np.linalg.lstsq(x, y, rcond=None)[0]
    if p == 2:
        return lp_objective(x, y, w, p, reduction), w
    if p <= 1.0 + 1e-12:
        raise ValueError("optimal_loss needs p > 1 for Newton's method. Received: p=1")
    scale = 1.0 / len(x) if reduction == "mean" else 1.0
    value = lp_objective(x, y, w, p, reduction)
    if value <= np.finfo(float).tiny:  # the least-squares fit is exact: L* = 0 for every p
        return value, w
    for _ in range(max_iter):
        r = x @ w - y
        grad = lp_gradient(x, y, w, p, reduction, residual=r)
        direction = np.empty_like(w)
        for j in range(w.shape[1]):
            weights = scale * (p - 1) * np.abs(r[:, j]) ** (p - 2)
            hessian = x.T @ (weights[:, None] * x)
            hessian += 1e-14 * np.trace(hessian) / len(hessian) * np.eye(len(hessian))
            direction[:, j] = np.linalg.solve(hessian, grad[:, j])
        step, decrease = 1.0, float(np.sum(grad * direction))
        while step > 1e-12:
            candidate = w - step * direction
            new_value = lp_objective(x, y, candidate, p, reduction)
            if new_value <= value - 1e-4 * step * decrease:
                break
            step /= 2
        else:
            break
        w, converged = candidate, value - new_value <= tol * max(abs(value), 1e-300)
        value = new_value
        if converged or decrease <= tol * max(abs(value), 1e-300):
            break
    return value, w
