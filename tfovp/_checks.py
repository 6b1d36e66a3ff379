"""Argument validation shared by the public objects: errors name the argument and value."""

import numbers

import numpy as np


def check_int(name, value, minimum=None):
    """Return `value` as an int, or raise `ValueError` naming `name`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"`{name}` must be an integer. Received: {name}={value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"`{name}` must be >= {minimum}. Received: {name}={value!r}")
    return int(value)


def check_real(name, value, minimum=None, strict=False):
    """Return `value` as a finite float >= (or >, if `strict`) `minimum`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value):
        raise ValueError(f"`{name}` must be a finite real number. Received: {name}={value!r}")
    if minimum is not None and (value <= minimum if strict else value < minimum):
        relation = ">" if strict else ">="
        raise ValueError(f"`{name}` must be {relation} {minimum}. Received: {name}={value!r}")
    return float(value)


def check_choice(name, value, allowed):
    """Return `value` if it is one of `allowed`."""
    if value not in allowed:
        raise ValueError(
            f"`{name}` must be one of {sorted(allowed)}. Received: {name}={value!r}"
        )
    return value


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
        raise ValueError(
            f"`{name}` must be an int or a list of ints. Received: {name}={hidden_widths!r}"
        )
    for width in widths:
        if isinstance(width, bool) or not isinstance(width, numbers.Integral) or width < 1:
            raise ValueError(
                f"`{name}` entries must be positive integers. Received: {name}={hidden_widths!r}"
            )
    return [int(w) for w in widths]


def factor_shapes(input_dim, output_dim, hidden_widths):
    """Keras-orientation shapes (n_{j-1}, n_j) of the factors of a depth-N product."""
    dims = [int(input_dim)] + list(hidden_widths) + [int(output_dim)]
    return [(dims[j], dims[j + 1]) for j in range(len(dims) - 1)]
