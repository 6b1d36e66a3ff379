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


def check_float_dtype(name, dtype):
    """Return `dtype` unless it is float64 on a backend that would silently compute in
    float32: JAX without 64-bit floats (`JAX_ENABLE_X64=1`, or
    `jax.config.update("jax_enable_x64", True)` before any array is made), and PyTorch,
    where Keras 3 promotes float64 to float32 (`keras.backend.result_type` maps float64 to
    float32 off TensorFlow, and PyTorch's matmul and loss reductions cast to it)."""
    import keras

    if str(dtype) != "float64":
        return dtype
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        if not jax.config.jax_enable_x64:
            raise ValueError(
                f"`{name}` float64 needs 64-bit floats, which the JAX backend has off: set JAX_ENABLE_X64=1 "
                f"(or jax.config.update('jax_enable_x64', True)) before any array is made. Received: {name}={dtype!r}"
            )
    elif backend == "torch":
        raise ValueError(
            f"`{name}` float64 is computed in float32 by Keras on the PyTorch backend (its matmul and loss "
            f"reductions promote float64 to float32): use float32, or the TensorFlow or JAX backend. "
            f"Received: {name}={dtype!r}"
        )
    return dtype
