"""Overparameterize the dense projections of any Keras model, and collapse them back.

`overparameterize` replaces, in a clone of the model (Sequential, functional, nested,
shared layers), `Dense` layers by `FactoredDense`, `EinsumDense` layers by
`FactoredEinsumDense` and `MultiHeadAttention` layers by `FactoredMultiHeadAttention`
(all four projections factored), keeping every other layer and weight; `collapse` turns
them back into the plain Keras layers holding the product kernels, for deployment
without tfovp. The input model is never modified.
"""

import warnings

import keras
import numpy as np
from keras.src.models.functional import Functional  # the class of keras.Model(inputs, outputs)

from tfovp import initializers
from tfovp._checks import check_choice, check_int, check_real
from tfovp._factors import hidden_widths_list
from tfovp.einsum import FactoredEinsumDense, FactoredMultiHeadAttention, matrix_view
from tfovp.layers import DeepLinear, FactoredDense

INITS = ("balanced", "paper")


def _check_model(model):
    if not isinstance(model, keras.Model):
        raise ValueError(f"`model` must be a keras.Model. Received: {type(model).__name__}")
    if not isinstance(model, (keras.Sequential, Functional)):
        raise ValueError(
            f"`model` must be a Sequential or functional model (a subclassed model cannot be rebuilt "
            f"layer by layer). Received: {type(model).__name__}"
        )


def flat_layers(model):
    """Every layer of `model` that is not itself a model, descending into nested models
    (each layer once, also when it is shared)."""
    seen, out = set(), []

    def visit(m):
        for layer in m.layers:
            if id(layer) in seen:
                continue
            seen.add(id(layer))
            if isinstance(layer, keras.Model):
                visit(layer)
            else:
                out.append(layer)

    visit(model)
    return out


FACTORABLE = (keras.layers.Dense, keras.layers.EinsumDense, keras.layers.MultiHeadAttention)


def _is_plain(layer):
    return type(layer) in FACTORABLE and not getattr(layer, "lora_enabled", False)


def _dense_candidates(model, names):
    dense = [layer for layer in flat_layers(model) if isinstance(layer, FACTORABLE)]
    if names is not None:
        names = [names] if isinstance(names, str) else list(names)
        available = {layer.name for layer in dense}
        unknown = [n for n in names if n not in available]
        if unknown:
            raise ValueError(
                f"`layers` names no Dense, EinsumDense or MultiHeadAttention layer of the model: {unknown}. "
                f"Those layers: {sorted(available)}"
            )
        dense = [layer for layer in dense if layer.name in names]
    chosen = []
    for layer in dense:
        if _is_plain(layer):
            chosen.append(layer)
        elif not isinstance(layer, (FactoredEinsumDense, FactoredMultiHeadAttention)):
            warnings.warn(
                f"Layer '{layer.name}' ({type(layer).__name__}) is a subclass or has LoRA enabled; "
                "tfovp does not know how it uses its kernel and leaves it unchanged.",
                stacklevel=3,
            )
    if not chosen:
        raise ValueError(
            "The model has no plain keras.layers.Dense, EinsumDense or MultiHeadAttention layer to overparameterize"
            + (f" among `layers`={names}" if names is not None else "")
            + "."
        )
    return chosen


def _warn_constraint(layer, config):
    if config.get("kernel_constraint"):
        warnings.warn(
            f"Layer '{layer.name}': its kernel_constraint cannot act on a product of factors and is dropped.",
            stacklevel=5,
        )


def _factored_from(layer, depth, hidden_widths):
    """The factored layer standing for `layer` (Dense, EinsumDense or MultiHeadAttention)."""
    config = layer.get_config()
    common = {"name": layer.name, "dtype": layer.dtype_policy, "trainable": layer.trainable}
    if isinstance(layer, keras.layers.MultiHeadAttention):
        config = {k: v for k, v in config.items() if k not in ("name", "dtype", "trainable")}
        return FactoredMultiHeadAttention(depth=depth, hidden_widths=hidden_widths, **config, **common)
    _warn_constraint(layer, config)
    shared = {  # what Dense and EinsumDense both carry over; the factors are set after the build
        "depth": depth,
        "activation": config["activation"],
        "kernel_regularizer": config["kernel_regularizer"],
        "bias_regularizer": config["bias_regularizer"],
        "activity_regularizer": config.get("activity_regularizer"),
        "bias_constraint": config["bias_constraint"],
        "kernel_initializer": "zeros",
        **common,
    }
    if isinstance(layer, keras.layers.EinsumDense):
        return FactoredEinsumDense(
            layer.equation, layer.partial_output_shape, hidden_widths=hidden_widths, bias_axes=layer.bias_axes, **shared
        )
    widths = hidden_widths_list(layer.units if hidden_widths is None else hidden_widths, depth)
    return FactoredDense(units=layer.units, hidden_widths=widths, use_bias=layer.use_bias, **shared)


def _projection_pairs(old, new):
    """[(old projection, new projection)] of two attention layers, or [(old, new)]."""
    if isinstance(old, keras.layers.MultiHeadAttention):
        return [(getattr(old, f"_{n}_dense"), getattr(new, f"_{n}_dense")) for n in ("query", "key", "value", "output")]
    return [(old, new)]


def _matrix(layer):
    """The kernel of a Dense or EinsumDense layer as a float64 matrix (its matrix view)."""
    kernel = np.asarray(layer.kernel, dtype=np.float64)
    if isinstance(layer, (keras.layers.EinsumDense, FactoredEinsumDense)):
        return np.asarray(matrix_view(layer.equation).to_matrix(kernel), dtype=np.float64)
    return kernel


def _bias(layer):
    return [] if getattr(layer, "bias", None) is None else [np.asarray(layer.bias)]


def _factors(kernel, depth, widths, init, stddev, seed):
    if init == "balanced":
        return initializers.balanced_factors(kernel, widths)
    units = kernel.shape[1]
    if any(w != units for w in widths):
        raise ValueError(
            f"init='paper' keeps the kernel as the first factor, so every hidden width must "
            f"equal units={units}. Received: hidden_widths={widths}"
        )
    shapes = [(units, units)] * (depth - 1)
    draws = initializers.draw_factors(keras.initializers.TruncatedNormal(stddev=stddev, seed=seed), shapes, "float64")
    return [kernel] + [np.asarray(d) for d in draws]


def overparameterize(model, depth=2, hidden_widths=None, init="balanced", layers=None, paper_stddev=0.1, seed=None):
    """A clone of `model` whose Dense, EinsumDense and MultiHeadAttention layers have
    their kernels factored into `depth` factors (`FactoredDense`, `FactoredEinsumDense`,
    `FactoredMultiHeadAttention`; an einsum kernel is factored as its matrix view,
    `tfovp.einsum.matrix_view`).

    Args:
        model: a Sequential or functional Keras model (nested models and shared layers
            are handled; the model itself is not modified).
        depth: N >= 2 factors per kernel.
        hidden_widths: int or list of N-1 ints; default each kernel's column count
            (a Dense layer's `units`).
        init: "balanced": the factors are an exact balanced factorization (Eq. 7) of the
            current kernel, so the new model computes the same function; "paper": the
            current kernel is kept as the first factor and the new factors are drawn like
            the paper's CNN experiment (truncated normal, `paper_stddev`), which changes
            the function.
        layers: names of the layers to replace (default: every plain Dense, EinsumDense
            and MultiHeadAttention layer). Subclasses and LoRA-enabled layers are
            skipped with a warning.
        paper_stddev, seed: for init="paper".

    Returns:
        A new `keras.Model` with the same inputs, outputs and other weights.
    """
    _check_model(model)
    depth = check_int("depth", depth, minimum=2)
    check_choice("init", init, INITS)
    check_real("paper_stddev", paper_stddev, minimum=0.0)
    targets = {id(layer) for layer in _dense_candidates(model, layers)}

    def replace(layer):
        return _factored_from(layer, depth, hidden_widths) if id(layer) in targets else None

    def assign(old, new):
        for before, after in _projection_pairs(old, new):
            factors = _factors(_matrix(before), depth, after.hidden_widths, init, paper_stddev, seed)
            after.set_weights(factors + _bias(before))

    return _rebuild(model, replace, assign)


def _rebuild(model, replace, assign):
    """Clone `model` (nested models too); a layer for which `replace(layer)` returns a new
    layer gets its weights from `assign(old, new)`, every other layer a fresh copy with
    its own weights."""
    pairs = []

    def clone(layer):
        new = replace(layer)
        replaced = new is not None
        if not replaced:
            new = layer.__class__.from_config(layer.get_config())
        pairs.append((layer, new, replaced))
        return new

    rebuilt = keras.models.clone_model(model, clone_function=clone, recursive=True)
    for old, new, replaced in pairs:
        if replaced:
            assign(old, new)
        elif isinstance(new, keras.layers.Layer):  # not an operation such as `x + y`
            new.set_weights(old.get_weights())
    return rebuilt


def collapse(model):
    """A clone of `model` where every FactoredDense/DeepLinear is a plain Dense layer,
    every FactoredEinsumDense an EinsumDense and every FactoredMultiHeadAttention a
    MultiHeadAttention, with the product kernels (same function; loads without tfovp)."""
    _check_model(model)

    def replace(layer):
        if isinstance(layer, FactoredMultiHeadAttention):
            config = {k: v for k, v in layer.get_config().items() if k not in ("depth", "hidden_widths")}
            return keras.layers.MultiHeadAttention.from_config(config)
        if isinstance(layer, (FactoredDense, FactoredEinsumDense)):
            return _plain_from(layer)
        return None

    def assign(old, new):
        for before, after in _projection_pairs(old, new):
            after.set_weights([np.asarray(before.kernel)] + _bias(before))

    return _rebuild(model, replace, assign)


def _plain_from(layer):
    """The plain Dense or EinsumDense layer standing for a factored one (its kernel is
    set after the build)."""
    config = layer.get_config()
    if config.get("factor_regularizer"):
        warnings.warn(
            f"Layer '{layer.name}': its factor_regularizer has no meaning without factors and is dropped.",
            stacklevel=5,
        )
    shared = {
        "kernel_regularizer": config["kernel_regularizer"],
        "bias_regularizer": config.get("bias_regularizer"),
        "activity_regularizer": config.get("activity_regularizer"),
        "bias_constraint": config.get("bias_constraint"),
        "name": layer.name,
        "dtype": layer.dtype_policy,
        "trainable": layer.trainable,
    }
    if isinstance(layer, FactoredEinsumDense):
        return keras.layers.EinsumDense(
            layer.equation, layer.partial_output_shape, activation=config["activation"], bias_axes=layer.bias_axes,
            **shared,
        )  # fmt: skip
    activation = None if isinstance(layer, DeepLinear) else config["activation"]
    return keras.layers.Dense(layer.units, activation=activation, use_bias=layer.use_bias, **shared)
