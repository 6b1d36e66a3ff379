"""Datasets of the paper: UCI Ethanol (gas sensor drift), UCI Abalone and MNIST.

Files are found in `data_dir`, $TFOVP_DATA_DIR or the cache (~/.cache/tfovp), else
downloaded from the canonical source; every file is checked against its SHA-256.
See `tfovp.datasets.files` for the search order and errors.
"""

from tfovp.datasets.abalone import load_abalone, load_abalone8
from tfovp.datasets.files import ChecksumError, DataFormatError, DatasetError, DatasetNotFoundError
from tfovp.datasets.gas_sensor import load_ethanol, load_gas_sensor_drift
from tfovp.datasets.mnist import load_mnist
from tfovp.datasets.preprocessing import PRESETS, preprocess

# abalone: sex one-hot, 10 features (PAPER Sec. 6); abalone8: sex as one coded column, the
# 8 attributes of the 2024 student reproduction.
REGRESSION_LOADERS = {"ethanol": load_ethanol, "abalone": load_abalone, "abalone8": load_abalone8}


def load_regression(name, data_dir=None, preprocessing="standardize", dtype="float64", download=True):
    """(x (m, d), y (m, 1)) of a regression set ("ethanol", "abalone" or "abalone8"), preprocessed."""
    if name not in REGRESSION_LOADERS:
        raise ValueError(f"`dataset` must be one of {sorted(REGRESSION_LOADERS)}. Received: dataset={name!r}")
    x, y = REGRESSION_LOADERS[name](data_dir=data_dir, download=download)
    return preprocess(x, y[:, None], preprocessing, dtype=dtype)


__all__ = [
    "ChecksumError",
    "DataFormatError",
    "DatasetError",
    "DatasetNotFoundError",
    "PRESETS",
    "load_abalone",
    "load_abalone8",
    "load_ethanol",
    "load_gas_sensor_drift",
    "load_mnist",
    "load_regression",
    "preprocess",
]
