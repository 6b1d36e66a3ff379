"""Preprocessing of regression data. The paper does not state it (PAPER Sec. 5), so every
option is explicit; statistics always come from the data passed in.

Per array (features column-wise, target as a whole column):
  "none"        x
  "standardize" (x - mean) / std          (z-score; constant columns are only centred)
  "minmax"      (x - min) / (max - min)   (to [0, 1])
  "maxabs"      x / max|x|                (for the positive target: x / max)
  "center"      x - mean                  (no rescaling)
  "unit-norm"   x_i / ||x_i||             (features only: each example to unit length)

A target transform applied before the target's scaling:
  "none" or "log1p"                       (log(1 + y), for the positive concentration)

A preprocessing is a preset name (PRESETS) or "features:target[:transform]", e.g.
"unit-norm:center:log1p".
"""

import numpy as np

from tfovp.checks import check_choice

SCALINGS = ("none", "standardize", "minmax", "maxabs", "center")
FEATURE_SCALINGS = (*SCALINGS, "unit-norm")
TRANSFORMS = ("none", "log1p")
# Named (features, target) combinations used by the reproduction scripts.
PRESETS = {
    "standardize": ("standardize", "standardize"),
    "standardize-minmax": ("standardize", "minmax"),
    "minmax": ("minmax", "minmax"),
    "maxabs": ("maxabs", "maxabs"),
    "none": ("none", "none"),
}


def statistics(values, how):
    """(center, spread) of the columns of `values` for the scaling `how` (None for the
    scalings that need none: "none", and "unit-norm", which is per example)."""
    check_choice("how", how, FEATURE_SCALINGS)
    values = np.asarray(values, dtype=np.float64)
    if how in ("none", "unit-norm"):
        return None
    if how == "standardize":
        center, spread = values.mean(axis=0), values.std(axis=0)
    elif how == "minmax":
        center, spread = values.min(axis=0), values.max(axis=0) - values.min(axis=0)
    elif how == "center":
        center, spread = values.mean(axis=0), np.ones(values.shape[1:])
    else:
        center, spread = np.zeros(values.shape[1:]), np.abs(values).max(axis=0)
    return center, np.where(spread > 0, spread, 1.0)


def scale(values, how, fitted=None):
    """Scale the columns of `values` (float64) as named by `how` (see module docstring),
    with the statistics of `values` itself or, given, `fitted` (`statistics` of other
    data: a training part's, applied to held-out data)."""
    check_choice("how", how, FEATURE_SCALINGS)
    values = np.asarray(values, dtype=np.float64)
    if how == "none":
        return values.copy()
    if how == "unit-norm":
        norms = np.linalg.norm(values, axis=1, keepdims=True)
        return values / np.where(norms > 0, norms, 1.0)
    center, spread = fitted if fitted is not None else statistics(values, how)
    return (values - center) / spread


def parse(preprocessing):
    """(features, target, transform) of a preset name, a "features:target[:transform]"
    string or a (features, target[, transform]) tuple; ValueError for anything else."""
    if isinstance(preprocessing, str) and preprocessing in PRESETS:
        return (*PRESETS[preprocessing], "none")
    parts = preprocessing.split(":") if isinstance(preprocessing, str) else list(preprocessing)
    if len(parts) not in (2, 3):
        raise ValueError(
            f"`preprocessing` must be one of {sorted(PRESETS)} or 'features:target[:transform]'. "
            f"Received: preprocessing={preprocessing!r}"
        )
    features, target, transform = (*parts, "none")[:3]
    check_choice("preprocessing features", features, FEATURE_SCALINGS)
    check_choice("preprocessing target", target, SCALINGS)
    check_choice("preprocessing transform", transform, TRANSFORMS)
    return features, target, transform


def _transformed(y, transform):
    y = np.asarray(y, dtype=np.float64)
    if transform == "log1p":
        if np.any(y <= -1):
            raise ValueError("`preprocessing` transform log1p needs a target > -1 everywhere.")
        return np.log1p(y)
    return y


def preprocess(x, y, preprocessing="standardize", dtype="float64"):
    """Apply a preprocessing (see the module docstring) to features x and target y.

    Returns (x, y) as `dtype` arrays; y keeps its shape.
    """
    return fit(x, y, preprocessing)(x, y, dtype)


def fit(x, y, preprocessing="standardize"):
    """The preprocessing with its statistics taken from (x, y) only: a function
    `(x, y, dtype="float64") -> (x, y)` that applies them to any data, e.g. a held-out
    part, so that nothing about that part leaks into what the training part sees."""
    features, target, transform = parse(preprocessing)
    feature_stats = statistics(x, features)
    y = _transformed(y, transform)
    target_stats = statistics(y.reshape(len(y), -1), target)

    def apply(x_new, y_new, dtype="float64"):
        y_new = _transformed(y_new, transform)
        scaled_y = scale(y_new.reshape(len(y_new), -1), target, target_stats).reshape(y_new.shape)
        return scale(x_new, features, feature_stats).astype(dtype), scaled_y.astype(dtype)

    return apply
