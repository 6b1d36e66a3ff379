"""tfovp: deep linear networks, factored Keras layers and the end-to-end update rule of
Arora, Cohen & Hazan, "On the Optimization of Deep Networks: Implicit Acceleration by
Overparameterization" (ICML 2018).

`import tfovp` is light: the Keras objects (and so TensorFlow) are imported on first
use of any of them, e.g. `tfovp.DeepLinear`, at once when Keras is already imported, or
by `tfovp.register_keras_objects()`. Their import registers them with Keras, so that
`keras.models.load_model` finds tfovp's layers, initializers, losses and optimizers
without `custom_objects`.
"""

import importlib
import sys

__version__ = "0.1.0"

# Public name -> the module that defines it.
_OBJECTS = {
    "DeepLinear": "tfovp.layers",
    "FactoredDense": "tfovp.layers",
    "LpLoss": "tfovp.losses",
    "EndToEndLinear": "tfovp.models",
    "EndToEnd": "tfovp.optimizers",
    "overparameterize": "tfovp.factoring",
    "collapse": "tfovp.factoring",
    "compare_depths": "tfovp.compare",
    "FactoredEinsumDense": "tfovp.einsum",
    "FactoredMultiHeadAttention": "tfovp.einsum",
}
_SUBMODULES = (
    "callbacks",
    "compare",
    "datasets",
    "diagnostics",
    "einsum",
    "end_to_end",
    "factoring",
    "initializers",
    "layers",
    "losses",
    "models",
    "optimizers",
    "study",
    "sweep",
)
# Importing these registers every serializable tfovp object with Keras.
_KERAS_MODULES = (
    "tfovp.layers",
    "tfovp.einsum",
    "tfovp.initializers",
    "tfovp.losses",
    "tfovp.optimizers",
    "tfovp.models",
)


def register_keras_objects():
    """Import tfovp's Keras objects, which registers them with Keras (idempotent)."""
    for module in _KERAS_MODULES:
        importlib.import_module(module)


def __getattr__(name):
    if name in _OBJECTS:
        register_keras_objects()
        return getattr(importlib.import_module(_OBJECTS[name]), name)
    if name in _SUBMODULES:
        return importlib.import_module(f"tfovp.{name}")
    raise AttributeError(f"module 'tfovp' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_OBJECTS) | set(_SUBMODULES))


if "keras" in sys.modules:  # Keras is loaded anyway: register tfovp's objects now
    register_keras_objects()

__all__ = sorted([*_OBJECTS, *_SUBMODULES, "register_keras_objects"])
