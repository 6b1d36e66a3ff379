"""Preprocessing of regression data. The paper does not state it (PAPER Sec. 5), so every
option is explicit; statistics always come from the data passed in.

Per array (features column-wise, target as a whole column):
  "none"        x
  "standardize" (x - mean) / std          (z-score; constant columns are only centred)
  "minmax"      (x - min) / (max - min)   (to [0, 1])
  "maxabs"      x / max|x|                (for the positive target: x / max)
"""

import numpy as np

from tfovp._checks import check_choice

SCALINGS = ("none", "standardize", "minmax", "maxabs")
# Named (features, target) combinations used by the reproduction scripts.
PRESETS = {
    "standardize": ("standardize", "standardize"),
    "standardize-minmax": ("standardize", "minmax"),
    "minmax": ("minmax", "minmax"),
    "maxabs": ("maxabs", "maxabs"),
    "none": ("none", "none"),
}


def scale(values, how):
    """Scale the columns of `values` (float64) as named by `how` (see module docstring)."""
    check_choice("how", how, SCALINGS)
    values = np.asarray(values, dtype=np.float64)
    if how == "none":
        return values.copy()
    if how == "standardize":
        center, spread = values.mean(axis=0), values.std(axis=0)
    elif how == "minmax":
        center, spread = values.min(axis=0), values.max(axis=0) - values.min(axis=0)
    else:
        center, spread = 0.0, np.abs(values).max(axis=0)
    spread = np.where(spread > 0, spread, 1.0)
    return (values - center) / spread


def preprocess(x, y, preprocessing="standardize", dtype="float64"):
    """Apply a preset name (see PRESETS) or a (features, target) pair of scalings.

    Returns (x, y) as `dtype` arrays; y keeps its shape.
    """
    if isinstance(preprocessing, str):
        check_choice("preprocessing", preprocessing, PRESETS)
        features, target = PRESETS[preprocessing]
    else:
        features, target = preprocessing
        check_choice("preprocessing", features, SCALINGS)
        check_choice("preprocessing", target, SCALINGS)
    y = np.asarray(y, dtype=np.float64)
    column = y.reshape(len(y), -1)
    scaled_y = scale(column, target).reshape(y.shape)
    return scale(x, features).astype(dtype), scaled_y.astype(dtype)
