"""`python -m tfovp.datasets [--data-dir DIR] [--no-download]`: where each dataset was
found, whether it verified, and its shape. Exit status 1 if a dataset the experiments use
(ethanol, abalone, mnist) is missing or corrupt; the complete 13,910-row gas sensor set
is reported but optional (no experiment needs it, and batches 7 and 10 are often absent
offline)."""

import pathlib
import sys

from tfovp.cli import ArgumentParser
from tfovp.datasets import (
    abalone,
    files,
    gas_sensor,
    load_abalone,
    load_ethanol,
    load_gas_sensor_drift,
    load_mnist,
    mnist,
)


def _where(specs, data_dir):
    paths = [files.find(s, data_dir) for s in specs]
    return ", ".join(sorted({str(p.parent) for p in paths if p is not None})) or "(not found)"


def _shape(result):
    if isinstance(result, dict):
        return " ".join(f"{k}{v.shape}" for k, v in result.items())
    if isinstance(result[0], tuple):
        return " ".join(f"{a.shape}" for pair in result for a in pair)
    return " ".join(f"{a.shape}" for a in result)


def main(argv=None):
    parser = ArgumentParser(prog="python -m tfovp.datasets", description=__doc__)
    parser.add_argument(
        "--data-dir", default=None, metavar="DIR", help="folder searched first, before $TFOVP_DATA_DIR and the cache"
    )
    parser.add_argument("--no-download", action="store_true", help="never use the network (report what is missing)")
    args = parser.parse_args(argv)
    if args.data_dir is not None and not pathlib.Path(args.data_dir).is_dir():
        parser.error(f"--data-dir {args.data_dir}: no such folder")
    download = not args.no_download
    checks = [
        ("ethanol", True, lambda: load_ethanol(args.data_dir, download), [gas_sensor.ETHANOL_FILE]),
        (
            "gas_sensor_drift",
            False,
            lambda: load_gas_sensor_drift(args.data_dir, download),
            list(gas_sensor.BATCH_FILES.values()),
        ),
        ("abalone", True, lambda: load_abalone(args.data_dir, download), [abalone.DATA_FILE]),
        ("mnist", True, lambda: load_mnist(args.data_dir, download), list(mnist.FILES.values())),
    ]
    failed = 0
    for name, required, load, specs in checks:
        try:
            shape = _shape(load())
            print(f"{name:18s} OK (verified)  {shape:40s} {_where(specs, args.data_dir)}")
        except files.DatasetError as error:
            failed += required
            status = "FAILED" if required else "MISSING (optional)"
            print(f"{name:18s} {status}  {str(error).splitlines()[0]}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
