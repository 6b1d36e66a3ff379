"""Datasets of the paper: UCI Ethanol (gas sensor drift), UCI Abalone and MNIST.

Files are found in `data_dir`, $TFOVP_DATA_DIR or the cache (~/.cache/tfovp), else
downloaded from the canonical source; every file is checked against its SHA-256.
See `tfovp.datasets.files` for the search order and errors.
"""

from tfovp.datasets.abalone import load_abalone
from tfovp.datasets.files import ChecksumError, DataFormatError, DatasetError, DatasetNotFoundError
from tfovp.datasets.gas_sensor import load_ethanol, load_gas_sensor_drift
from tfovp.datasets.mnist import load_mnist
from tfovp.datasets.preprocessing import PRESETS, preprocess

REGRESSION_LOADERS = {"ethanol": load_ethanol, "abalone": load_abalone}


def load_regression(name, data_dir=None, preprocessing="standardize", dtype="float64", download=True):
    """(x (m, d), y (m, 1)) of a regression set ("ethanol" or "abalone"), preprocessed."""
    if name not in REGRESSION_LOADERS:
        raise ValueError(
            f"`dataset` must be one of {sorted(REGRESSION_LOADERS)}. Received: dataset={name!r}"
        )
    x, y = REGRESSION_LOADERS[name](data_dir=data_dir, download=download)
    return preprocess(x, y[:, None], preprocessing, dtype=dtype)


def to_tf_dataset(x, y, batch_size=None, shuffle_seed=None):
    """A `tf.data.Dataset` of (x, y); full batch when `batch_size` is None."""
    import tensorflow as tf

    dataset = tf.data.Dataset.from_tensor_slices((x, y))
    if shuffle_seed is not None:
        dataset = dataset.shuffle(len(x), seed=shuffle_seed, reshuffle_each_iteration=True)
    return dataset.batch(batch_size or len(x))


__all__ = [
    "ChecksumError", "DataFormatError", "DatasetError", "DatasetNotFoundError", "PRESETS",
    "load_abalone", "load_ethanol", "load_gas_sensor_drift", "load_mnist", "load_regression",
    "preprocess", "to_tf_dataset",
]
