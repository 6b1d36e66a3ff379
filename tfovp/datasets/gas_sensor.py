"""UCI Gas Sensor Array Drift Dataset at Different Concentrations (UCI id 270).

Ten files `batch1.dat` ... `batch10.dat`, one measurement per line:
`<gas>;<concentration> 1:<v1> 2:<v2> ... 128:<v128>` (gas 1 = Ethanol, concentration
in ppmv). The paper's Ethanol problem is every gas-1 line of the ten batches in file
order: 2,565 x 128 features, target = concentration. Those lines, verbatim, are cached
as `gas-sensor-drift/ethanol.dat`, which is also accepted as the offline source.
"""

import pathlib

import numpy as np

from tfovp.datasets import files
from tfovp.files import atomic_writer

N_FEATURES = 128
ETHANOL = 1
GAS_NAMES = {1: "Ethanol", 2: "Ethylene", 3: "Ammonia", 4: "Acetaldehyde", 5: "Acetone", 6: "Toluene"}
ARCHIVE_URL = (
    "https://archive.ics.uci.edu/static/public/270/gas+sensor+array+drift+dataset+at+different+concentrations.zip"
)
ROWS_PER_BATCH = (445, 1244, 1586, 161, 197, 2300, 3613, 294, 470, 3600)  # 13,910 in all
ETHANOL_PER_BATCH = (90, 164, 365, 64, 28, 514, 649, 30, 61, 600)  # 2,565 in all
BATCH_SHA256 = {
    1: "6b62f3e71b90f95dd9c2157fa91ffce32571faa7f474dd52f29a4ae769144625",
    2: "4ea9490068457badf9efd0c22f359fbfce12c208cdd440526b97ac91d31b9002",
    3: "aabf06bf8b8200740156235dc59458e06d99aa8faba4d6764a22c6b6c2674ff4",
    4: "ffc87c5146001bbe8ce90c4b2f7dad5b390ca3079f51b559032df53ffe5ff0af",
    5: "dcad4939c300a6c7d9f41b9470a9253eecc0ebc5c2c4e940d8ae20b8fc4240d0",
    6: "297d3a8b594dee4e2f4d7d2c4f5c485939fa708c10b5a11ed5cce95e05049afb",
    7: "eb5801d38a59beaae4a2412195d8ded790175ed1611159e083649ee9fe03d150",
    8: "58146b3e2dd68b125b2d5432cdd4968ec1fff47464ceb04282382181932d49be",
    9: "51f368ae8dee5d285be7f2029770e10eb12f342578830bc40ea852db19d19c9b",
    10: "b8309e8ff205b9d0350761989809f31f8feaefb8582aecb05f1d0f694b91184e",
}
ETHANOL_FILE = files.DataFile(
    "gas-sensor-drift/ethanol.dat",
    "e2ff4dd7f9bfd88b690a471b96414ae7e46098e30f6ddffad016e437883e4b2d",
)
BATCH_FILES = {
    b: files.DataFile(f"gas-sensor-drift/batch{b}.dat", digest, archive_urls=(ARCHIVE_URL,))
    for b, digest in BATCH_SHA256.items()
}


def parse_line(line, where="line"):
    """(gas, concentration, features[128]) of one `.dat` line; `DataFormatError` otherwise."""
    tokens = line.split()
    if not tokens or ";" not in tokens[0]:
        raise files.DataFormatError(f"{where}: expected '<gas>;<concentration> 1:v ...', got {line[:60]!r}")
    gas_text, concentration_text = tokens[0].split(";", 1)
    if len(tokens) - 1 != N_FEATURES:
        raise files.DataFormatError(f"{where}: expected {N_FEATURES} features, found {len(tokens) - 1}")
    features = np.empty(N_FEATURES)
    try:
        gas, concentration = int(gas_text), float(concentration_text)
        for i, token in enumerate(tokens[1:]):
            index, value = token.split(":")
            if int(index) != i + 1:
                raise files.DataFormatError(f"{where}: feature {i + 1} expected, found index {index!r}")
            features[i] = float(value)
    except ValueError as error:
        if isinstance(error, files.DataFormatError):
            raise
        raise files.DataFormatError(f"{where}: non-numeric value ({error})") from None
    return gas, concentration, features


def read_dat(path):
    """Parse a `.dat` file: (features (n, 128) float64, gas (n,) int, concentration (n,))."""
    rows = []
    with open(path, encoding="ascii") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                rows.append(parse_line(line, where=f"{path}:{number}"))
    if not rows:
        raise files.DataFormatError(f"{path}: no measurements")
    gas, concentration, features = zip(*rows)
    return np.stack(features), np.asarray(gas, dtype=np.int64), np.asarray(concentration)


def ethanol_lines(batch_paths):
    """The gas-1 lines of the batch files, verbatim and in order."""
    lines = []
    for path in batch_paths:
        with open(path, encoding="ascii", newline="") as handle:
            lines.extend(line for line in handle if line.split(";", 1)[0] == str(ETHANOL))
    return lines


def write_ethanol_cache(batch_paths, target):
    """Write the Ethanol extract of the ten batch files to `target` (atomic, verified)."""
    target = pathlib.Path(target)
    with atomic_writer(
        target, "w", check=lambda temporary: files.verify(temporary, ETHANOL_FILE.sha256), encoding="ascii", newline=""
    ) as handle:
        handle.writelines(ethanol_lines(batch_paths))
    return target


def _ethanol_path(data_dir, download):
    cached = files.find(ETHANOL_FILE, data_dir)
    if cached is not None:
        return files.verify(cached, ETHANOL_FILE.sha256)
    batches = files.locate(BATCH_FILES.values(), data_dir, download_missing=download)
    return write_ethanol_cache(batches, files.cache_dir() / ETHANOL_FILE.relative)


def load_ethanol(data_dir=None, download=True, with_batch=False):
    """The paper's Ethanol problem (PAPER Sec. 5), raw values.

    Returns:
        x: (2565, 128) float64 features; y: (2565,) float64 concentration (ppmv);
        and, with `with_batch`, batch: (2565,) int64 in 1..10.
    Preprocess with `tfovp.datasets.preprocess`.
    """
    path = _ethanol_path(data_dir, download)
    x, gas, y = read_dat(path)
    if x.shape != (sum(ETHANOL_PER_BATCH), N_FEATURES) or np.any(gas != ETHANOL):
        raise files.DataFormatError(
            f"{path}: expected {sum(ETHANOL_PER_BATCH)} Ethanol rows x {N_FEATURES} features, "
            f"found {x.shape[0]} rows (gases {sorted(set(gas.tolist()))})"
        )
    if with_batch:
        return x, y, np.repeat(np.arange(1, 11), ETHANOL_PER_BATCH)
    return x, y


def load_gas_sensor_drift(data_dir=None, download=True):
    """All 13,910 measurements of the ten batches.

    Returns a dict of NumPy arrays: `x` (13910, 128) float64, `gas` (13910,) int64
    (1..6, see GAS_NAMES), `concentration` (13910,) float64, `batch` (13910,) int64.
    Raises `DatasetNotFoundError` naming the missing batch files.
    """
    specs = list(BATCH_FILES.values())
    missing = [s for s in specs if files.find(s, data_dir) is None]
    try:
        paths = files.locate(specs, data_dir, download_missing=download)
    except files.DatasetNotFoundError as error:
        raise files.DatasetNotFoundError(
            "The complete gas sensor drift set needs all ten batches; missing: "
            + ", ".join(s.name for s in missing)
            + "\n"
            + str(error)
        ) from None
    parts = [read_dat(p) for p in paths]
    for batch, (part, expected) in enumerate(zip(parts, ROWS_PER_BATCH), start=1):
        if part[0].shape[0] != expected:
            raise files.DataFormatError(f"batch{batch}.dat: expected {expected} rows, found {part[0].shape[0]}")
    return {
        "x": np.concatenate([p[0] for p in parts]),
        "gas": np.concatenate([p[1] for p in parts]),
        "concentration": np.concatenate([p[2] for p in parts]),
        "batch": np.repeat(np.arange(1, 11), ROWS_PER_BATCH),
    }
