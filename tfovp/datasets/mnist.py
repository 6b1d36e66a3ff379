"""MNIST from its four IDX gzip files (60,000 training and 10,000 test images).

IDX: a big-endian header (magic 0x00000803 for images, 0x00000801 for labels, then
one uint32 per dimension) followed by uint8 data.
"""

import gzip
import os
import struct
import zlib

import numpy as np

from tfovp.datasets import files

MIRROR = "https://storage.googleapis.com/cvdf-datasets/mnist/"
IMAGE_MAGIC, LABEL_MAGIC = 2051, 2049
SHA256 = {
    "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}
FILES = {name: files.DataFile(f"mnist/{name}", digest, urls=(MIRROR + name,)) for name, digest in SHA256.items()}
TFDS_DIR_ENV = "TFDS_DATA_DIR"


def read_idx(path, magic):
    """Read one gzipped IDX file whose magic number must be `magic`."""
    try:
        with gzip.open(path, "rb") as handle:
            raw = handle.read()
    except (EOFError, OSError, zlib.error) as error:
        raise files.DataFormatError(f"{path}: not a complete gzip file ({error})") from None
    if len(raw) < 8:
        raise files.DataFormatError(f"{path}: too short for an IDX header")
    (found,) = struct.unpack(">I", raw[:4])
    if found != magic:
        raise files.DataFormatError(f"{path}: IDX magic {found:#010x}, expected {magic:#010x}")
    ndim = magic & 0xFF
    shape = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise files.DataFormatError(f"{path}: header says {shape} = {int(np.prod(shape))} values, file has {data.size}")
    return data.reshape(shape)


def _from_tfds():
    """MNIST from an already prepared TFDS `mnist` under $TFDS_DATA_DIR or
    ~/tensorflow_datasets, or None. Never downloads."""
    root = os.environ.get(TFDS_DIR_ENV) or os.path.expanduser("~/tensorflow_datasets")
    if not os.path.isdir(os.path.join(root, "mnist")):
        return None
    import tensorflow_datasets as tfds

    builder = tfds.builder("mnist", data_dir=root)
    if not builder.is_prepared():
        return None
    splits = []
    for split in ("train", "test"):
        images, labels = tfds.as_numpy(builder.as_dataset(split=split, batch_size=-1, as_supervised=True))
        splits.append((images[..., 0].astype(np.uint8), labels.astype(np.uint8)))
    return tuple(splits)


def load_mnist(data_dir=None, download=True):
    """((x_train, y_train), (x_test, y_test)): uint8 images (n, 28, 28), uint8 labels.

    Looks for the IDX files as described in `tfovp.datasets.files`, then for a prepared
    TFDS `mnist`, then downloads the IDX files.
    """
    specs = list(FILES.values())
    if any(files.find(s, data_dir) is None for s in specs):
        prepared = _from_tfds()
        if prepared is not None:
            return prepared
    paths = files.locate(specs, data_dir, download_missing=download)
    train_x, train_y, test_x, test_y = (read_idx(p, IMAGE_MAGIC if "images" in p.name else LABEL_MAGIC) for p in paths)
    for images, labels, n in ((train_x, train_y, 60000), (test_x, test_y, 10000)):
        if images.shape != (n, 28, 28) or labels.shape != (n,):
            raise files.DataFormatError(
                f"MNIST: expected {n} images 28x28 and labels, found {images.shape} and {labels.shape}"
            )
    return (train_x, train_y), (test_x, test_y)
