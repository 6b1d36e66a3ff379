"""Overparameterize the Dense layers of any Keras model, and collapse them back.

`overparameterize` replaces Dense layers by `FactoredDense` layers of a given depth in a
clone of the model (Sequential, functional, nested, shared layers), keeping every other
layer and weight; `collapse` turns `FactoredDense` (and `DeepLinear`) layers back into
plain `Dense` layers holding the product kernel, for deployment without tfovp.
The input model is never modified.
"""

import warnings

import keras
import numpy as np
from keras.src.models.functional import Functional  # the class of keras.Model(inputs, outputs)

from tfovp import initializers
from tfovp._checks import check_choice, check_int, check_real
from tfovp._factors import hidden_widths_list
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


def _is_plain_dense(layer):
    return type(layer) is keras.layers.Dense and not getattr(layer, "lora_enabled", False)


def _dense_candidates(model, names):
    dense = [layer for layer in flat_layers(model) if isinstance(layer, keras.layers.Dense)]
    if names is not None:
        names = [names] if isinstance(names, str) else list(names)
        available = {layer.name for layer in dense}
        unknown = [n for n in names if n not in available]
        if unknown:
            raise ValueError(
                f"`layers` names no Dense layer of the model: {unknown}. Dense layers: {sorted(available)}"
            )
        dense = [layer for layer in dense if layer.name in names]
    chosen = []
    for layer in dense:
        if _is_plain_dense(layer):
            chosen.append(layer)
        else:
            warnings.warn(
                f"Layer '{layer.name}' ({type(layer).__name__}) is a Dense subclass or has LoRA enabled; "
                "tfovp does not know how it uses its kernel and leaves it unchanged.",
                stacklevel=3,
            )
    if not chosen:
        raise ValueError(
            "The model has no plain keras.layers.Dense layer to overparameterize"
            + (f" among `layers`={names}" if names is not None else "")
            + "."
        )
    return chosen


def _factored_from(layer, depth, widths):
    config = layer.get_config()
    if config.get("kernel_constraint"):
        warnings.warn(
            f"Layer '{layer.name}': its kernel_constraint cannot act on a product of factors and is dropped.",
            stacklevel=4,
        )
    return FactoredDense(
        units=layer.units,
        depth=depth,
        hidden_widths=widths,
        activation=config["activation"],
        use_bias=layer.use_bias,
        kernel_regularizer=config["kernel_regularizer"],
        bias_regularizer=config["bias_regularizer"],
        activity_regularizer=config.get("activity_regularizer"),
        bias_constraint=config["bias_constraint"],
        kernel_initializer="zeros",
        name=layer.name,
        dtype=layer.dtype_policy,
        trainable=layer.trainable,
    )


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
    """A clone of `model` whose Dense layers are `FactoredDense` layers of `depth` factors.

    Args:
        model: a Sequential or functional Keras model (nested models and shared layers
            are handled; the model itself is not modified).
        depth: N >= 2 factors per kernel.
        hidden_widths: int or list of N-1 ints; default each layer's `units`.
        init: "balanced": the factors are an exact balanced factorization (Eq. 7) of the
            current kernel, so the new model computes the same function; "paper": the
            current kernel is kept as the first factor and the new factors are drawn like
            the paper's CNN experiment (truncated normal, `paper_stddev`), which changes
            the function.
        layers: names of the Dense layers to replace (default: every plain Dense layer).
            Dense subclasses and LoRA-enabled Dense layers are skipped with a warning.
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
        if id(layer) not in targets:
            return None
        widths = hidden_widths_list(layer.units if hidden_widths is None else hidden_widths, depth)
        return _factored_from(layer, depth, widths)

    def weights(old, new):
        factors = _factors(np.asarray(old.kernel, dtype=np.float64), depth, new.hidden_widths, init, paper_stddev, seed)
        return factors + ([np.asarray(old.bias)] if old.use_bias else [])

    return _rebuild(model, replace, weights)


def _rebuild(model, replace, weights):
    """Clone `model` (nested models too); a layer for which `replace(layer)` returns a new
    layer gets `weights(old, new)`, every other layer a fresh copy with its own weights."""
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
        new.set_weights(weights(old, new) if replaced else old.get_weights())
    return rebuilt


def collapse(model):
    """A clone of `model` where every FactoredDense/DeepLinear is a plain Dense layer with
    the product kernel (same function; loadable without tfovp)."""
    _check_model(model)

    def replace(layer):
        if not isinstance(layer, FactoredDense):
            return None
        config = layer.get_config()
        if config.get("factor_regularizer"):
            warnings.warn(
                f"Layer '{layer.name}': its factor_regularizer has no meaning without factors and is dropped.",
                stacklevel=4,
            )
        return keras.layers.Dense(
            layer.units,
            activation=None if isinstance(layer, DeepLinear) else config["activation"],
            use_bias=layer.use_bias,
            kernel_regularizer=config["kernel_regularizer"],
            bias_regularizer=config.get("bias_regularizer"),
            activity_regularizer=config.get("activity_regularizer"),
            bias_constraint=config.get("bias_constraint"),
            name=layer.name,
            dtype=layer.dtype_policy,
            trainable=layer.trainable,
        )

    def weights(old, new):
        return [np.asarray(old.kernel)] + ([np.asarray(old.bias)] if old.use_bias else [])

    return _rebuild(model, replace, weights)
