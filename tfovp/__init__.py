"""tfovp: deep linear networks, factored Keras layers and the end-to-end update rule of
Arora, Cohen & Hazan, "On the Optimization of Deep Networks: Implicit Acceleration by
Overparameterization" (ICML 2018).

`import tfovp` is light: the Keras objects (and so TensorFlow) are imported on first
use of any of them, e.g. `tfovp.DeepLinear`, at once when Keras is already imported,
right after Keras is imported otherwise (an import hook waits for it), or by
`tfovp.register_keras_objects()`. Their import registers them with Keras, so that
`keras.models.load_model` finds tfovp's layers, initializers, losses and optimizers
without `custom_objects`, whichever of `tfovp` and `keras` is imported first.
"""

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
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
    "FactoredConv1D": "tfovp.conv",
    "FactoredConv2D": "tfovp.conv",
    "FactoredConv3D": "tfovp.conv",
}
_SUBMODULES = (
    "callbacks",
    "checks",
    "cli",
    "compare",
    "console",
    "convergence",
    "conv",
    "datasets",
    "diagnostics",
    "einsum",
    "end_to_end",
    "factoring",
    "families",
    "files",
    "initializers",
    "layers",
    "losses",
    "models",
    "optimizers",
    "optimum",
    "problem",
    "progress",
    "speedup",
    "sweep",
    "train_steps",
    "traversal",
    "tuning",
)
# Importing these registers every serializable tfovp object with Keras.
_KERAS_MODULES = (
    "tfovp.layers",
    "tfovp.einsum",
    "tfovp.conv",
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


class _RegisterAfterKeras(importlib.abc.MetaPathFinder):
    """Registers tfovp's Keras objects as soon as `keras` has been imported (once). When
    Keras was imported by a tfovp module still being executed (`from tfovp.layers import
    FactoredDense` in a fresh interpreter), the registration waits until the outermost
    tfovp module has finished: importing the others now would meet it half-defined."""

    importing = 0  # tfovp modules being executed right now (nested imports included)
    pending = False  # Keras arrived while they were

    def find_spec(self, fullname, path, target=None):
        if fullname == "keras":
            return self._keras_spec()
        if fullname.startswith("tfovp."):
            return self._tfovp_spec(fullname, path)
        return None

    def _keras_spec(self):
        sys.meta_path.remove(self)  # find the real spec without this finder
        try:
            spec = importlib.util.find_spec("keras")
        finally:
            sys.meta_path.insert(0, self)
        if spec is not None and spec.loader is not None and hasattr(spec.loader, "exec_module"):
            load = spec.loader.exec_module

            def exec_module(module):
                load(module)
                if _RegisterAfterKeras.importing:
                    _RegisterAfterKeras.pending = True
                else:
                    _done_with_keras()

            spec.loader.exec_module = exec_module
        return spec

    def _tfovp_spec(self, fullname, path):
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is not None and spec.loader is not None and hasattr(spec.loader, "exec_module"):
            load = spec.loader.exec_module

            def exec_module(module):
                _RegisterAfterKeras.importing += 1
                try:
                    load(module)
                finally:
                    _RegisterAfterKeras.importing -= 1
                if _RegisterAfterKeras.pending and not _RegisterAfterKeras.importing:
                    _RegisterAfterKeras.pending = False
                    _done_with_keras()

            spec.loader.exec_module = exec_module
        return spec


def _done_with_keras():
    """Keras is loaded and no tfovp module is half-executed: register, and stop watching."""
    sys.meta_path[:] = [finder for finder in sys.meta_path if not isinstance(finder, _RegisterAfterKeras)]
    register_keras_objects()


if "keras" in sys.modules:  # Keras is loaded anyway: register tfovp's objects now
    register_keras_objects()
elif not any(isinstance(finder, _RegisterAfterKeras) for finder in sys.meta_path):
    sys.meta_path.insert(0, _RegisterAfterKeras())

__all__ = sorted([*_OBJECTS, *_SUBMODULES, "register_keras_objects"])
