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
        raise ValueError(f"`{name}` must be one of {sorted(allowed)}. Received: {name}={value!r}")
    return value
