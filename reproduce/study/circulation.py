"""Theorem 2 checked numerically: the circulation of the end-to-end field around a closed
curve near the origin (PAPER Sec. 3).

For a single output, F(W) = ||W||^{2-2/N} (grad L(W) + (N-1) Pr_W{grad L(W)}) (Eq. 12,
`tfovp.end_to_end.precondition_single_output`). The curve Gamma_{r,R} lies in the plane
spanned by e = grad L(0)/||grad L(0)|| and a unit vector f orthogonal to e: the radial
segment from r e to R e, the arc of radius R through +f to -R e, the radial segment
from -R e to -r e, and the arc of radius r through +f back to r e, with
r^{3-2/N} = R^{3-2/N} / 2. A gradient field (N = 1: F = grad L) has zero circulation;
Theorem 2 says F has non-zero circulation for N > 2 when grad L(0) != 0, so no
function (no regularizer) has F as its gradient.

Quadrature: the trapezoid rule with n points per piece, n doubled twice; the error of
the finest value is estimated by Richardson's rule for a second-order method,
|I_{2n} - I_{4n}| / 3.
"""

import dataclasses

import numpy as np


def inner_radius(outer, depth):
    """r with r^{3-2/N} = R^{3-2/N} / 2."""
    exponent = 3 - 2 / depth
    return (outer**exponent / 2) ** (1 / exponent)


def pieces(e, f, r, outer, n):
    """The four pieces of Gamma_{r,R} as (n, d) arrays of points, in order."""
    radial = np.linspace(r, outer, n)[:, None]
    angles = np.linspace(0.0, np.pi, n)[:, None]
    return [
        radial * e,
        outer * (np.cos(angles) * e + np.sin(angles) * f),
        -radial[::-1] * e,
        r * (np.cos(angles[::-1]) * e + np.sin(angles[::-1]) * f),
    ]


def circulation(field, e, f, r, outer, n):
    """Trapezoid-rule line integral of `field` ((n, d) points -> (n, d) values) around
    Gamma_{r,R} with n points per piece."""
    total = 0.0
    for points in pieces(e, f, r, outer, n):
        values = field(points)
        total += float(np.sum(np.einsum("ij,ij->i", (values[1:] + values[:-1]) / 2, np.diff(points, axis=0))))
    return total


def end_to_end_field(gradient, depth):
    """F of Eq. 12 as a batched function of points (n, d), computed by the library's
    `precondition_single_output` on (n, 1, d) single-row kernels; `gradient` maps (n, d)
    points to (n, d) gradients of L."""
    from tfovp.end_to_end import precondition_single_output

    def field(points):
        kernels = points[:, None, :]
        return np.asarray(precondition_single_output(kernels, gradient(points)[:, None, :], depth))[:, 0, :]

    return field


@dataclasses.dataclass(frozen=True)
class Circulation:
    """The circulation of F for one depth at n, 2n and 4n points per piece."""

    depth: int
    inner: float  # r
    outer: float  # R
    points: tuple  # (n, 2n, 4n)
    values: tuple  # the three integrals
    scale: float  # ||grad L(0)|| * R * pi: the size of one arc's contribution, for reference

    @property
    def value(self):
        return self.values[-1]

    @property
    def error(self):
        """Richardson estimate of the finest value's quadrature error."""
        return abs(self.values[1] - self.values[2]) / 3


def measure(gradient, e, f, outer, depth, n=1000):
    """Circulation of the depth-N field around Gamma_{r,R} (r from R and N)."""
    r = inner_radius(outer, depth)
    field = end_to_end_field(gradient, depth)
    counts = (n, 2 * n, 4 * n)
    values = tuple(circulation(field, e, f, r, outer, m) for m in counts)
    scale = float(np.linalg.norm(gradient(np.zeros((1, e.size)))[0]) * outer * np.pi)
    return Circulation(depth, float(r), float(outer), counts, values, scale)
