"""tfovp: deep linear networks, factored Keras layers and the end-to-end update rule of
Arora, Cohen & Hazan, "On the Optimization of Deep Networks: Implicit Acceleration by
Overparameterization" (ICML 2018)."""

from tfovp import callbacks, diagnostics, end_to_end, initializers, losses, optimizers
from tfovp.factoring import collapse, overparameterize
from tfovp.layers import DeepLinear, FactoredDense
from tfovp.losses import LpLoss
from tfovp.models import EndToEndLinear

__version__ = "0.1.0"

__all__ = [
    "DeepLinear",
    "EndToEndLinear",
    "FactoredDense",
    "LpLoss",
    "callbacks",
    "collapse",
    "diagnostics",
    "end_to_end",
    "initializers",
    "losses",
    "optimizers",
    "overparameterize",
]
