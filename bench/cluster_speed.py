"""Wall time of one sensitivity grid run in this process and on a local Ray instance
(`--cluster ray`), in the same run, and whether both wrote the same values.

The grid: Figure 3's six curve families for each preprocessing, `--steps` iterations,
the paper's 10 learning rates, one seed: 6 x len(preprocessings) independent units.
Ray's time includes starting the local instance and its workers (each imports
TensorFlow) and compiling every unit's loop again in its worker.

    python bench/cluster_speed.py [--steps 5000] [--preprocessings standardize,minmax]
        [--repeats 2] [--markdown results/benchmarks.md]
"""

import argparse
import contextlib
import io
import json
import os
import pathlib
import platform
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pandas as pd  # noqa: E402
from _table import publish  # noqa: E402 (this folder: the script's own)

from reproduce import sensitivity  # noqa: E402

WALL_TIMES = ("elapsed_seconds", "seconds_per_step")  # the only stored values that may differ


def _run(flags, out):
    started = time.perf_counter()
    with contextlib.redirect_stderr(io.StringIO()):
        sensitivity.main([*flags, "--out", str(out)])
    return time.perf_counter() - started


def _without_wall_times(data):
    if isinstance(data, dict):
        return {k: _without_wall_times(v) for k, v in data.items() if k not in WALL_TIMES}
    return data


def _values(out):
    """The verdict rows and every stored loss, without wall times."""
    table = pd.read_csv(out / "sensitivity.csv")[["claim", "level", "seed", "verdict", "measured"]]
    curves = {
        str(path.relative_to(out)): _without_wall_times(json.loads(path.read_text()))
        for path in sorted(out.joinpath(".curves").rglob("*.json"))
    }
    return table.to_dict("list"), curves


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=5000, help="iterations per curve family")
    parser.add_argument("--preprocessings", default="standardize,minmax", help="comma-separated presets")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each path, alternating")
    parser.add_argument("--markdown", default=None, help="append the table to this file")
    args = parser.parse_args()
    flags = [
        "--figures",
        "3",
        "--seeds",
        "0",
        "--budget-factors",
        "1",
        "--figure3-steps",
        str(args.steps),
        "--preprocessings",
        args.preprocessings,
        "--no-tune",
    ]  # fmt: skip (the grid as given: the committed timings are of untuned grids)
    units = 6 * len(args.preprocessings.split(","))
    times = {"this process": [], "local Ray instance": []}
    same = True
    with tempfile.TemporaryDirectory() as folder:
        for repeat in range(args.repeats):
            here, there = pathlib.Path(folder, f"here{repeat}"), pathlib.Path(folder, f"ray{repeat}")
            times["this process"].append(_run(flags, here))
            times["local Ray instance"].append(_run([*flags, "--cluster", "ray"], there))
            same = same and _values(here) == _values(there)
            print(f"repeat {repeat}: " + ", ".join(f"{k} {v[-1]:.1f} s" for k, v in times.items()), flush=True)
    baseline = min(times["this process"])
    lines = [
        f"### A sensitivity grid on one machine: this process vs a local Ray instance "
        f"({platform.machine()}, {os.cpu_count()} cores)",
        "",
        f"Grid: Figure 3's 6 families x {args.preprocessings} = {units} units, {args.steps:,} iterations, "
        f"10 learning rates, seed 0. Best of {args.repeats} alternating runs each. Same values in both: "
        f"{'yes' if same else 'NO'}.",
        "",
        "| path | wall time (s) | runs (s) | speed-up |",
        "|---|---:|---|---:|",
    ]
    for name, values in times.items():
        lines.append(
            f"| {name} | {min(values):.1f} | {', '.join(f'{v:.1f}' for v in values)} | {baseline / min(values):.2f}x |"
        )
    publish("\n".join(lines) + "\n", args.markdown)
    if not same:
        raise SystemExit("the Ray run wrote other values than the single-machine run")


if __name__ == "__main__":
    main()
