"""UCI Abalone (UCI id 1): 4,177 abalones, 8 attributes, target = rings.

`abalone.data` has no header: Sex (M/F/I), Length, Diameter, Height, Whole weight,
Shucked weight, Viscera weight, Shell weight, Rings. Sex is one-hot encoded (M, F, I)
in front of the 7 measurements: 10 features (PAPER Sec. 6). `load_abalone8` keeps the 8
attributes of the UCI page, as the 2024 student reproduction reports them: sex as one
column coded in alphabetical order, F = 0, I = 1, M = 2 (scikit-learn's LabelEncoder;
the report does not say how it coded it).
"""

import numpy as np

from tfovp.datasets import files

N_ROWS = 4177
SEXES = ("M", "F", "I")
FEATURE_NAMES = (
    "sex_M",
    "sex_F",
    "sex_I",
    "length",
    "diameter",
    "height",
    "whole_weight",
    "shucked_weight",
    "viscera_weight",
    "shell_weight",
)
DATA_FILE = files.DataFile(
    "abalone/abalone.data",
    "de37cdcdcaaa50c309d514f248f7c2302a5f1f88c168905eba23fe2fbc78449f",
    urls=("https://archive.ics.uci.edu/ml/machine-learning-databases/abalone/abalone.data",),
    archive_urls=("https://archive.ics.uci.edu/static/public/1/abalone.zip",),
)


def read_abalone(path):
    """Parse `abalone.data`: (x (n, 10) float64, rings (n,) float64)."""
    features, rings = [], []
    with open(path, encoding="ascii") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            fields = line.strip().split(",")
            where = f"{path}:{number}"
            if len(fields) != 9:
                raise files.DataFormatError(f"{where}: expected 9 comma-separated fields, found {len(fields)}")
            if fields[0] not in SEXES:
                raise files.DataFormatError(f"{where}: sex must be one of {SEXES}, found {fields[0]!r}")
            try:
                values = [float(v) for v in fields[1:]]
            except ValueError as error:
                raise files.DataFormatError(f"{where}: non-numeric value ({error})") from None
            features.append([float(fields[0] == s) for s in SEXES] + values[:7])
            rings.append(values[7])
    return np.asarray(features), np.asarray(rings)


def load_abalone8(data_dir=None, download=True):
    """Abalone with its 8 attributes: x (4177, 8) float64 (sex coded F = 0, I = 1, M = 2,
    then the 7 measurements), y (4177,) rings."""
    x, y = load_abalone(data_dir, download)
    sex = x[:, :3] @ np.array([2.0, 0.0, 1.0])  # one-hot (M, F, I) -> M = 2, F = 0, I = 1
    return np.column_stack([sex, x[:, 3:]]), y


def load_abalone(data_dir=None, download=True):
    """Abalone as arrays: x (4177, 10) float64 (one-hot sex M, F, I + 7 measurements),
    y (4177,) float64 rings. Preprocess with `tfovp.datasets.preprocess`."""
    (path,) = files.locate([DATA_FILE], data_dir, download_missing=download)
    x, y = read_abalone(path)
    if x.shape[0] != N_ROWS:
        raise files.DataFormatError(f"{path}: expected {N_ROWS} rows, found {x.shape[0]}")
    return x, y
