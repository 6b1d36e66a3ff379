"""Reaching every layer of a Keras model: the layers of its graph (nested models too), the
layer inside a `TimeDistributed` wrapper, and the sublayers of user-written layers (the
keras.io style: a `keras.layers.Layer` subclass that holds `Dense`, `MultiHeadAttention`
or a `Sequential` as attributes), and swapping such a sublayer for another in place.

Keras exposes a layer's sublayers only through private attributes (`_layers`, the
tracker's list); this module is the one place that reads and changes them.
"""

import keras

WRAPPERS = (keras.layers.TimeDistributed,)  # wrappers whose inner layer is applied as it is


def is_model(layer):
    return isinstance(layer, keras.Model)


def is_user_layer(layer):
    """A user-written layer: not a model, not a Keras or tfovp layer, holding sublayers."""
    module = type(layer).__module__
    return not is_model(layer) and not module.startswith(("keras.", "tfovp.")) and bool(getattr(layer, "_layers", None))


def sublayers(layer):
    """The direct sublayers of a user-written layer, in the order Keras tracks them."""
    return list(getattr(layer, "_layers", []))


def walk(model):
    """(layer, owner) for every layer reachable in `model`, each once: graph layers of the
    model and of nested models (owner None), the inner layer of a wrapper (owner: the
    wrapper) and the sublayers of user-written layers (owner: that layer, recursively;
    a model held by one is walked as a model, its layers' owner being that model)."""
    seen = set()

    def visit(layer, owner):
        if id(layer) in seen:
            return
        seen.add(id(layer))
        yield layer, owner
        if is_model(layer):
            for inner in layer.layers:
                yield from visit(inner, None if owner is None else layer)
        elif isinstance(layer, WRAPPERS):
            yield from visit(layer.layer, layer)
        elif is_user_layer(layer):
            for inner in sublayers(layer):
                yield from visit(inner, layer)

    for layer in model.layers:
        yield from visit(layer, None)


def swap(owner, old, new):
    """Put `new` where `old` is in the user-written layer `owner`: every attribute (or
    list entry) holding `old`, and `old`'s place in Keras' list of tracked sublayers (so
    that weights, training and summaries see `new`, in the same order)."""
    found = False
    tracked = owner._layers
    position = next(i for i, layer in enumerate(tracked) if layer is old)
    tracker = owner._tracker
    locked = tracker.locked
    tracker.unlock()  # a built layer refuses new state; this swap keeps its state's shape
    try:
        # PyTorch keeps a module's sublayers in its `_modules`, not in the instance dict.
        attributes = {**vars(owner), **dict(getattr(owner, "_modules", None) or {})}
        for name, value in list(attributes.items()):
            if value is old:
                setattr(owner, name, new)  # the tracker appends `new`; its place is fixed below
                found = True
            elif isinstance(value, list) and any(v is old for v in value):
                value[:] = [new if v is old else v for v in value]
                found = True
    finally:
        if locked:
            tracker.lock()
    if not found:
        raise ValueError(f"layer '{old.name}' is not an attribute of '{owner.name}'")
    rest = [layer for layer in tracked if layer is not new and layer is not old]  # Keras may drop `old` itself
    tracked[:] = [*rest[:position], new, *rest[position:]]
