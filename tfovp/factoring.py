"""Overparameterize the dense projections of any Keras model, and collapse them back.

`overparameterize` replaces, in a clone of the model (Sequential, functional, nested,
shared layers), `Dense` layers by `FactoredDense`, `EinsumDense` layers by
`FactoredEinsumDense` and `MultiHeadAttention` layers by `FactoredMultiHeadAttention`
(all four projections factored), keeping every other layer and weight; `collapse` turns
them back into the plain Keras layers holding the product kernels, for deployment
without tfovp. The input model is never modified.
"""

import functools
import warnings

import keras
import numpy as np
from keras.src.models.functional import Functional  # the class of keras.Model(inputs, outputs)

from tfovp import initializers
from tfovp._factors import hidden_widths_list
from tfovp.checks import check_choice, check_int, check_real
from tfovp.conv import FACTORED as CONV_FACTORED
from tfovp.conv import FactoredConv
from tfovp.einsum import FactoredEinsumDense, FactoredMultiHeadAttention, matrix_view
from tfovp.layers import DeepLinear, FactoredDense
from tfovp.traversal import WRAPPERS, is_model, is_user_layer, sublayers, swap, walk

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


CONVOLUTIONS = (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D)
FACTORABLE = (keras.layers.Dense, keras.layers.EinsumDense, keras.layers.MultiHeadAttention, *CONVOLUTIONS)
FACTORED = (FactoredDense, FactoredEinsumDense, FactoredMultiHeadAttention, FactoredConv)
_NOT_ONE_MATRIX = (
    (keras.layers.DepthwiseConv1D, keras.layers.DepthwiseConv2D),
    "depthwise: every channel has its own small kernel, not one matrix",
)
_SEPARABLE = (
    (keras.layers.SeparableConv1D, keras.layers.SeparableConv2D),
    "separable: a depthwise kernel and a 1x1 kernel already",
)
_TRANSPOSED = (
    (keras.layers.Conv1DTranspose, keras.layers.Conv2DTranspose, keras.layers.Conv3DTranspose),
    "a transposed convolution is not factored",
)
_RECURRENT = ((keras.layers.RNN, keras.layers.Bidirectional), "recurrent kernels are not factored")


def unfactorable_reason(layer):
    """Why a layer that holds a kernel is left as it is, or None (factorable, already
    factored, or holding no kernel)."""
    if isinstance(layer, FACTORED):  # DeepLinear included
        return None
    if getattr(layer, "lora_enabled", False):
        return "LoRA is enabled"
    for kinds, reason in (_NOT_ONE_MATRIX, _SEPARABLE, _TRANSPOSED, _RECURRENT):
        if isinstance(layer, kinds):
            return reason
    if type(layer) in CONVOLUTIONS and layer.groups != 1:
        return f"groups={layer.groups}: a grouped kernel is not one matrix"
    if isinstance(layer, FACTORABLE) and type(layer) not in FACTORABLE:
        return f"a subclass of {type(layer).__mro__[1].__name__}: tfovp does not know how it uses its kernel"
    return None


def _is_plain(layer):
    return type(layer) in FACTORABLE and unfactorable_reason(layer) is None


def _candidates(model, names):
    """The (layer, owner) pairs to factor (see `tfovp.traversal.walk`), the layers left
    as they are named in one warning with their reasons."""
    found = list(walk(model))
    plain = [(layer, owner) for layer, owner in found if _is_plain(layer)]
    if names is not None:
        names = [names] if isinstance(names, str) else list(names)
        available = {layer.name for layer, _ in plain}
        unknown = [n for n in names if n not in available]
        if unknown:
            raise ValueError(
                f"`layers` names no plain Dense, EinsumDense, MultiHeadAttention or convolution layer of the model: "
                f"{unknown}. Those layers: {sorted(available)}"
            )
        plain = [(layer, owner) for layer, owner in plain if layer.name in names]
    skipped = [(layer, unfactorable_reason(layer)) for layer, _ in found]
    skipped = [(layer, reason) for layer, reason in skipped if reason]
    if skipped:
        kinds = {}
        for layer, reason in skipped:
            kinds.setdefault(reason, []).append(layer.name)
        text = "; ".join(f"{', '.join(_few(names_))} ({reason})" for reason, names_ in kinds.items())
        warnings.warn(f"overparameterize leaves {len(skipped)} layer(s) as they are: {text}.", stacklevel=3)
    if not plain:
        raise ValueError(
            "The model has no plain keras.layers.Dense, EinsumDense, MultiHeadAttention or Conv1D/2D/3D layer to "
            "overparameterize" + (f" among `layers`={names}" if names is not None else "") + "."
        )
    return plain


def _few(names, shown=6):
    return names if len(names) <= shown else [*names[:shown], f"... ({len(names) - shown} more)"]


def _warn_constraint(layer, config):
    if config.get("kernel_constraint"):
        warnings.warn(
            f"Layer '{layer.name}': its kernel_constraint cannot act on a product of factors and is dropped.",
            stacklevel=5,
        )


def _columns(layer):
    """The column count of a layer's kernel as a matrix (its output width)."""
    if isinstance(layer, keras.layers.Dense):
        return layer.units
    if type(layer) in CONVOLUTIONS:
        return layer.filters
    if isinstance(layer, keras.layers.MultiHeadAttention):
        return layer.num_heads * layer.key_dim
    return int(_matrix(layer).shape[1])


def _widths(layer, hidden_widths):
    """The hidden widths of `layer`'s factors under the policy `hidden_widths` ("units":
    each kernel's column count, as the paper; a float: that multiple of it; an int or a
    list: as given), or None for the factored layer's own default (its columns)."""
    if hidden_widths is None or hidden_widths == "units":
        return None
    if isinstance(hidden_widths, float):
        return max(1, round(hidden_widths * _columns(layer)))
    return hidden_widths


def _factored_from(layer, depth, hidden_widths):
    """The factored layer standing for `layer` (Dense, EinsumDense, MultiHeadAttention, a
    convolution, or a wrapper of one)."""
    if isinstance(layer, WRAPPERS):
        config = {k: v for k, v in layer.get_config().items() if k != "layer"}
        return type(layer)(_factored_from(layer.layer, depth, hidden_widths), **config)
    hidden_widths = _widths(layer, hidden_widths)
    config = layer.get_config()
    common = {"name": layer.name, "dtype": layer.dtype_policy, "trainable": layer.trainable}
    if isinstance(layer, keras.layers.MultiHeadAttention):
        config = {k: v for k, v in config.items() if k not in ("name", "dtype", "trainable")}
        return FactoredMultiHeadAttention(depth=depth, hidden_widths=hidden_widths, **config, **common)
    _warn_constraint(layer, config)
    shared = {  # what Dense, EinsumDense and the convolutions all carry over; factors are set after the build
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
    if type(layer) in CONVOLUTIONS:
        keys = ("kernel_size", "strides", "padding", "data_format", "dilation_rate", "use_bias")
        return CONV_FACTORED[layer.rank](layer.filters, hidden_widths=hidden_widths, **{k: config[k] for k in keys},
                                         **{k: v for k, v in shared.items() if k != "kernel_size"})  # fmt: skip
    widths = hidden_widths_list(layer.units if hidden_widths is None else hidden_widths, depth)
    return FactoredDense(units=layer.units, hidden_widths=widths, use_bias=layer.use_bias, **shared)


def _projection_pairs(old, new):
    """[(old projection, new projection)] of two attention layers or wrappers, or [(old, new)]."""
    if isinstance(old, WRAPPERS):
        return _projection_pairs(old.layer, new.layer)
    if isinstance(old, keras.layers.MultiHeadAttention):
        return [(getattr(old, f"_{n}_dense"), getattr(new, f"_{n}_dense")) for n in ("query", "key", "value", "output")]
    return [(old, new)]


def _matrix(layer):
    """The kernel of a Dense, EinsumDense or convolution layer as a float64 matrix (its
    matrix view)."""
    kernel = _numpy(layer.kernel)
    if isinstance(layer, (keras.layers.EinsumDense, FactoredEinsumDense)):
        return np.asarray(matrix_view(layer.equation).to_matrix(kernel), dtype=np.float64)
    return kernel.reshape(-1, kernel.shape[-1])


def _numpy(tensor):
    """A float64 NumPy copy of a variable or tensor of any backend (a PyTorch tensor that
    requires grad too)."""
    return np.asarray(keras.ops.convert_to_numpy(tensor), dtype=np.float64)


def _bias(layer):
    return [] if getattr(layer, "bias", None) is None else [keras.ops.convert_to_numpy(layer.bias)]


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
    return [kernel] + [keras.ops.convert_to_numpy(d) for d in draws]


def _kernel_shapes(new, factors):
    """The factors as the new layer holds them: a convolution's first factor keeps its
    spatial and input axes."""
    if isinstance(new, FactoredConv):
        factors = [np.reshape(factors[0], tuple(new.factors[0].shape)), *factors[1:]]
    return factors


def overparameterize(
    model, depth=2, hidden_widths="units", init="balanced", layers=None, paper_stddev=0.1, seed=None, verbose=True
):
    """A clone of `model` whose Dense, EinsumDense, MultiHeadAttention and Conv1D/2D/3D
    layers have their kernels factored into `depth` factors (`FactoredDense`,
    `FactoredEinsumDense`, `FactoredMultiHeadAttention`, `FactoredConv1D/2D/3D`; a kernel
    is factored as its matrix view: an einsum's, `tfovp.einsum.matrix_view`, or a
    convolution's (k...k C_in) x C_out), wherever they are: in the graph, in nested
    models, inside `TimeDistributed`, and as sublayers of user-written layers
    (`tfovp.traversal`).

    Args:
        model: a Sequential or functional Keras model (the model itself is not modified).
        depth: N >= 2 factors per kernel.
        hidden_widths: the width policy of the new hidden dimensions: "units" (default,
            as the paper: each kernel's column count, a Dense layer's `units`, a
            convolution's `filters`), a float multiplier of it (0.5: half), an int, or a
            list of N-1 ints.
        init: "balanced": the factors are an exact balanced factorization (Eq. 7) of the
            current kernel, so the new model computes the same function; "paper": the
            current kernel is kept as the first factor and the new factors are drawn like
            the paper's CNN experiment (truncated normal, `paper_stddev`), which changes
            the function.
        layers: names of the layers to replace (default: every plain one). Layers that
            cannot be factored (depthwise, separable, transposed, grouped or recurrent
            kernels, subclasses, LoRA) are left as they are, named in one warning.
        paper_stddev, seed: for init="paper".
        verbose: print one line: the kernels factored and the parameters before and after.

    Returns:
        A new `keras.Model` with the same inputs, outputs and other weights. A user-written
        layer whose sublayers were factored trains and collapses, but cannot be saved as it
        is (its own `__init__` would rebuild plain sublayers on load): save
        `collapse(model)`, which is the same function with plain layers.
    """
    _check_model(model)
    depth = check_int("depth", depth, minimum=2)
    check_choice("init", init, INITS)
    check_real("paper_stddev", paper_stddev, minimum=0.0)
    _check_policy(hidden_widths)
    chosen = _candidates(model, layers)
    targets = {id(layer) for layer, _ in chosen}
    wrapped = {id(owner) for layer, owner in chosen if isinstance(owner, WRAPPERS)}

    def replace(layer):
        if id(layer) in targets or id(layer) in wrapped:
            return _factored_from(layer, depth, hidden_widths)
        return None

    def assign(old, new):
        for before, after in _projection_pairs(old, new):
            factors = _factors(_matrix(before), depth, after.hidden_widths, init, paper_stddev, seed)
            after.set_weights(_kernel_shapes(after, factors) + _bias(before))

    result = _rebuild(model, replace, assign, targets | wrapped)
    if verbose:
        kinds = {}
        for layer, _ in chosen:
            kinds[type(layer).__name__] = kinds.get(type(layer).__name__, 0) + 1
        print(
            f"overparameterize: {len(chosen)} kernel{'s' * (len(chosen) != 1)} factored into {depth} "
            f"({', '.join(f'{k} {v}' for k, v in sorted(kinds.items()))}); parameters {model.count_params():,} -> "
            f"{result.count_params():,} ({result.count_params() / max(model.count_params(), 1):.2f}x)"
        )
    return result


def _check_policy(hidden_widths):
    if hidden_widths is None or hidden_widths == "units":
        return
    if isinstance(hidden_widths, float) and not (np.isfinite(hidden_widths) and hidden_widths > 0):
        raise ValueError(f"`hidden_widths` as a multiplier must be > 0. Received: hidden_widths={hidden_widths!r}")
    if isinstance(hidden_widths, str):
        raise ValueError(
            f"`hidden_widths` must be 'units', a multiplier, an int or a list of ints. Received: {hidden_widths!r}"
        )


def _rebuild(model, replace, assign, targets=frozenset()):
    """Clone `model` (nested models too); a layer for which `replace(layer)` returns a new
    layer gets its weights from `assign(old, new)`, every other layer a fresh copy with
    its own weights; inside a user-written layer, sublayers in `targets` (or models and
    user-written layers holding one) are replaced in the copy
    (`_replace_sublayers`)."""
    pairs = []

    def clone(layer):
        new = replace(layer)
        replaced = new is not None
        if not replaced:
            config = getattr(layer, ORIGINAL_CONFIG, None) or layer.get_config()
            new = layer.__class__.from_config(config)
        pairs.append((layer, new, replaced))
        return new

    rebuilt = keras.models.clone_model(model, clone_function=clone, recursive=True)
    for old, new, replaced in pairs:
        if replaced:
            assign(old, new)
        elif is_user_layer(old):
            _copy_weights(old, new, assign)
            _replace_sublayers(old, new, replace, assign, targets)
        elif isinstance(new, keras.layers.Layer):  # not an operation such as `x + y`
            new.set_weights(old.get_weights())
    return rebuilt


ORIGINAL_CONFIG = "_tfovp_original_config"  # of a user-written layer whose sublayers were replaced


def _holds(layer, targets):
    return any(id(inner) in targets for inner, _ in walk_layer(layer))


def walk_layer(layer):
    """`tfovp.traversal.walk` below one layer."""
    holder = type("Holder", (), {"layers": [layer]})()
    return list(walk(holder))[1:]


def _replace_sublayers(old, new, replace, assign, targets):
    """In `new`, the fresh copy of the user-written layer `old`, put a replacement for
    every sublayer of `old` that `replace` replaces (models and user-written layers
    holding one are rebuilt), matched by position; then refuse to serialize `new` as it
    is (its `__init__` would rebuild plain sublayers on load)."""
    changed = False
    for before, copy in zip(sublayers(old), sublayers(new)):
        created = replace(before) if id(before) in targets else None
        if created is not None:
            created.build(**before._build_shapes_dict)
            assign(before, created)
        elif is_model(before) and _holds(before, targets):
            created = _rebuild(before, replace, assign, targets)
        elif is_user_layer(before) and _holds(before, targets):
            _replace_sublayers(before, copy, replace, assign, targets)
            changed = True
        if created is not None:
            swap(new, copy, created)
            changed = True
    if changed:
        object.__setattr__(new, ORIGINAL_CONFIG, getattr(old, ORIGINAL_CONFIG, None) or old.get_config())
        object.__setattr__(new, "get_config", functools.partial(_refuse_config, new))


def _refuse_config(layer):
    raise ValueError(
        f"Layer '{layer.name}' ({type(layer).__name__}) holds sublayers that tfovp replaced; its own __init__ would "
        "rebuild the plain ones when the model is loaded. Save tfovp.collapse(model) instead (the same function, "
        "plain layers)."
    )


def _copy_weights(old, new, assign):
    """Copy the weights of `old` into `new` (a fresh copy from `old`'s original config:
    plain sublayers where `old` may hold replaced ones, given `assign`'s way back)."""
    if getattr(old, ORIGINAL_CONFIG, None) is None:
        new.set_weights(old.get_weights())
        return
    for a, b in zip(
        old._trainable_variables + old._non_trainable_variables, new._trainable_variables + new._non_trainable_variables
    ):
        b.assign(a)
    for before, after in zip(sublayers(old), sublayers(new)):
        if isinstance(before, FACTORED) or (isinstance(before, WRAPPERS) and isinstance(before.layer, FACTORED)):
            assign(before, after)
        elif is_model(before):
            for inner_before, inner_after in zip(before.layers, after.layers):
                _copy_layer(inner_before, inner_after, assign)
        else:
            _copy_layer(before, after, assign)


def _copy_layer(before, after, assign):
    if isinstance(before, FACTORED) or (isinstance(before, WRAPPERS) and isinstance(before.layer, FACTORED)):
        assign(before, after)
    elif is_user_layer(before):
        _copy_weights(before, after, assign)
    elif is_model(before):
        for a, b in zip(before.layers, after.layers):
            _copy_layer(a, b, assign)
    else:
        after.set_weights(before.get_weights())


def collapse(model):
    """A clone of `model` where every factored layer is the plain Keras layer it stands
    for, holding the product kernel (FactoredDense/DeepLinear -> Dense,
    FactoredEinsumDense -> EinsumDense, FactoredMultiHeadAttention -> MultiHeadAttention,
    FactoredConv1D/2D/3D -> Conv1D/2D/3D; inside wrappers and user-written layers too):
    the same function, and it loads without tfovp."""
    _check_model(model)

    def replace(layer):
        if isinstance(layer, WRAPPERS) and isinstance(layer.layer, FACTORED + (DeepLinear,)):
            config = {k: v for k, v in layer.get_config().items() if k != "layer"}
            return type(layer)(replace(layer.layer), **config)
        if isinstance(layer, FactoredMultiHeadAttention):
            config = {k: v for k, v in layer.get_config().items() if k not in ("depth", "hidden_widths")}
            return keras.layers.MultiHeadAttention.from_config(config)
        if isinstance(layer, (FactoredDense, FactoredEinsumDense, FactoredConv)):
            return _plain_from(layer)
        return None

    def assign(old, new):
        for before, after in _projection_pairs(old, new):
            after.set_weights([keras.ops.convert_to_numpy(before.kernel)] + _bias(before))

    return _rebuild(model, replace, assign)


def _plain_from(layer):
    """The plain Dense, EinsumDense or convolution layer standing for a factored one (its
    kernel is set after the build)."""
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
    if isinstance(layer, FactoredConv):
        keys = ("kernel_size", "strides", "padding", "data_format", "dilation_rate", "use_bias")
        plain = {1: keras.layers.Conv1D, 2: keras.layers.Conv2D, 3: keras.layers.Conv3D}[layer.rank]
        return plain(layer.filters, activation=config["activation"], **{k: config[k] for k in keys}, **shared)
    activation = None if isinstance(layer, DeepLinear) else config["activation"]
    return keras.layers.Dense(layer.units, activation=activation, use_bias=layer.use_bias, **shared)
