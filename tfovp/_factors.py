"""Chains of factors: their shapes and their product (PAPER Sec. 1, W_e = W_N ... W_1).

Keras orientation throughout: factor j maps width n_j to n_{j+1}, so the end-to-end
kernel is factor_0 @ factor_1 @ ... @ factor_{N-1}.
"""

import functools
import numbers
import operator


def product(factors, right_to_left=False):
    """factor_0 @ factor_1 @ ... for NumPy arrays, tensors or Keras variables (leading
    axes are batch axes). `right_to_left` multiplies from the last factor, which is
    cheaper when the output width is small (k = 1 in the paper's experiments); the
    matrix is the same up to rounding, so each caller keeps one order for reproducible
    numbers."""
    factors = list(factors)
    if not factors:
        raise ValueError("`factors` must hold at least one matrix. Received: []")
    if right_to_left:
        return functools.reduce(lambda right, left: operator.matmul(left, right), reversed(factors))
    return functools.reduce(operator.matmul, factors)


def hidden_widths_list(hidden_widths, depth, name="hidden_widths"):
    """Normalize `hidden_widths` (an int or a list of depth-1 ints) to a list."""
    if isinstance(hidden_widths, numbers.Integral) and not isinstance(hidden_widths, bool):
        widths = [int(hidden_widths)] * (depth - 1)
    elif isinstance(hidden_widths, (list, tuple)):
        widths = list(hidden_widths)
        if len(widths) != depth - 1:
            raise ValueError(
                f"`{name}` must be an int or a list of depth - 1 = {depth - 1} ints. "
                f"Received: {name}={hidden_widths!r} (length {len(widths)})"
            )
    else:
        raise ValueError(f"`{name}` must be an int or a list of ints. Received: {name}={hidden_widths!r}")
    for width in widths:
        if isinstance(width, bool) or not isinstance(width, numbers.Integral) or width < 1:
            raise ValueError(f"`{name}` entries must be positive integers. Received: {name}={hidden_widths!r}")
    return [int(w) for w in widths]


def factor_shapes(input_dim, output_dim, hidden_widths):
    """Keras-orientation shapes (n_{j-1}, n_j) of the factors of a depth-N product."""
    dims = [int(input_dim)] + list(hidden_widths) + [int(output_dim)]
    return [(dims[j], dims[j + 1]) for j in range(len(dims) - 1)]
