"""TensorFlow Datasets builders for the two UCI regression sets.

    import tfovp.datasets.tfds_builders  # registers "tfovp_ethanol", "tfovp_abalone"
    ds = tfds.load("tfovp_ethanol", split="train", data_dir=...,
                   download_and_prepare_kwargs={"download_config":
                       tfds.download.DownloadConfig(manual_dir="/path/to/data")})

The raw files come from the manual dir if TFDS was given one, else from the usual tfovp
search order (`tfovp.datasets.files`), which may download them. The examples are the
raw, unpreprocessed rows in file order (`disable_shuffling`), as returned by the NumPy loaders.
"""

import numpy as np
import tensorflow_datasets as tfds

from tfovp.datasets.abalone import FEATURE_NAMES, load_abalone
from tfovp.datasets.gas_sensor import N_FEATURES, load_ethanol


def _float64(shape=()):
    # Raw bytes: the default tf.train.Example float list would round float64 to float32.
    return tfds.features.Tensor(shape=shape, dtype=np.float64, encoding=tfds.features.Encoding.BYTES)


INSTRUCTIONS = (
    "Place the folder layout of tfovp's data directory (gas-sensor-drift/ethanol.dat or "
    "the ten batchN.dat files; abalone/abalone.data) in the manual dir, or set "
    "TFOVP_DATA_DIR; otherwise the files are downloaded from the UCI repository."
)


def _manual_dir(dl_manager):
    try:
        return dl_manager.manual_dir
    except (AssertionError, ValueError):  # TFDS raises when no manual dir was configured
        return None


class TfovpEthanol(tfds.core.GeneratorBasedBuilder):
    """The paper's Ethanol problem: 2,565 gas-1 measurements, 128 features."""

    VERSION = tfds.core.Version("1.0.0")
    MANUAL_DOWNLOAD_INSTRUCTIONS = INSTRUCTIONS

    def _info(self):
        return self.dataset_info_from_configs(
            description=self.__doc__,
            features=tfds.features.FeaturesDict(
                {
                    "features": _float64((N_FEATURES,)),
                    "concentration": _float64(),
                    "batch": tfds.features.Scalar(dtype=np.int32),
                }
            ),
            supervised_keys=("features", "concentration"),
            homepage="https://doi.org/10.24432/C5MK6M",
            disable_shuffling=True,  # keep file order (the batches are in time order)
        )

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(_manual_dir(dl_manager))}

    def _generate_examples(self, folder):
        x, y, batch = load_ethanol(data_dir=folder, with_batch=True)
        for i in range(len(y)):
            yield i, {"features": x[i], "concentration": y[i], "batch": int(batch[i])}


class TfovpAbalone(tfds.core.GeneratorBasedBuilder):
    """UCI Abalone: 4,177 rows, sex one-hot (M, F, I) + 7 measurements, target rings."""

    VERSION = tfds.core.Version("1.0.0")
    MANUAL_DOWNLOAD_INSTRUCTIONS = INSTRUCTIONS

    def _info(self):
        return self.dataset_info_from_configs(
            description=self.__doc__ + " Features: " + ", ".join(FEATURE_NAMES),
            features=tfds.features.FeaturesDict(
                {
                    "features": _float64((len(FEATURE_NAMES),)),
                    "rings": _float64(),
                }
            ),
            supervised_keys=("features", "rings"),
            homepage="https://doi.org/10.24432/C55C7W",
            disable_shuffling=True,
        )

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(_manual_dir(dl_manager))}

    def _generate_examples(self, folder):
        x, y = load_abalone(data_dir=folder)
        for i in range(len(y)):
            yield i, {"features": x[i], "rings": y[i]}
