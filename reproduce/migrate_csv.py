"""Rewrite a figure CSV of the one-table layout (before 2026-12-05: every run's columns
and the figure's settings repeated on each recorded step) as the two tables figures
write now (`reproduce.study.outputs.CurveTables`): <figure>_runs.csv, one row per run
with L* from the figure's JSON beside it, and <figure>.csv, the run's steps. Rows and
values are kept as written (a CSV from before the rates were tuned gets `tuning` "grid"
on every run); a figure rerun with `--resume` writes the same files.

    python -m reproduce.migrate_csv results/figure3.csv [more.csv ...]
"""

import json
import pathlib

from reproduce.study.outputs import runs_table
from tfovp.cli import ArgumentParser

VALUES = ("step", "loss", "excess_loss", "relative_excess")  # the per-step columns of the old layout
OPTIMUM_RTOL = 1e-6  # L(t) - excess_loss (float32, printed to 8 digits) at the run's lowest loss, against the JSON's L*


def migrate(path):
    """Rewrite `path` (old layout) as the points and run tables; returns the number of runs."""
    import pandas as pd

    from reproduce.study.outputs import POINT_COLUMNS, RUN_COLUMNS, RUN_DESCRIPTION, CurveTables, write_curve_tables

    path = pathlib.Path(path)
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)  # every value as written
    missing = [c for c in (*RUN_DESCRIPTION, *VALUES) if c not in frame.columns and c != "tuning"]
    if "run" in frame.columns or missing:
        raise ValueError(f"{path}: not a figure CSV of the one-table layout (columns {list(frame.columns)})")
    if "tuning" not in frame.columns:  # written before any rate was tuned: all on the paper's grid
        frame.insert(frame.columns.get_loc("selected"), "tuning", "grid")
    optima = json.loads(path.with_suffix(".json").read_text())["optimum"]
    identity = [c for c in frame.columns if c not in VALUES]
    runs, points = [], []
    for run, (key, rows) in enumerate(frame.groupby(identity, sort=False)):
        record = dict(zip(identity, key))
        optimum = optima[f"l{float(record['loss_p']):g}"]
        lowest = rows["loss"].astype(float).idxmin()  # the least cancellation in L(t) - excess_loss
        derived = float(rows["loss"][lowest]) - float(rows["excess_loss"][lowest])
        if abs(derived - optimum) > OPTIMUM_RTOL * max(1.0, abs(optimum)):
            raise ValueError(
                f"{path}: run {record['curve']} lr {record['learning_rate']}: L* {derived} is not the JSON's {optimum}"
            )
        runs.append(
            {
                "run": run,
                **{c: record[c] for c in RUN_DESCRIPTION},
                "optimum": optimum,
                **{c: record[c] for c in identity if c not in RUN_COLUMNS},
            }
        )
        points.append(rows[list(POINT_COLUMNS[1:])].assign(run=run)[list(POINT_COLUMNS)])
    write_curve_tables(path.with_suffix(""), CurveTables(pd.DataFrame(runs), pd.concat(points, ignore_index=True)))
    return len(runs)


def main(argv=None):
    parser = ArgumentParser(prog="python -m reproduce.migrate_csv", description=__doc__)
    parser.add_argument("csv", nargs="+", help="figure CSV files of the one-table layout, each with its JSON beside it")
    args = parser.parse_args(argv)
    for name in args.csv:
        path = pathlib.Path(name)
        if not path.is_file() or not path.with_suffix(".json").is_file():
            parser.error(f"{name}: no such file, or no {path.with_suffix('.json').name} beside it")
        try:
            before = path.stat().st_size
            runs = migrate(path)
        except ValueError as error:
            parser.error(str(error))
        after = path.stat().st_size + runs_table(path).stat().st_size
        print(f"{name}: {runs} runs, {before / 1024:,.0f} KiB -> {after / 1024:,.0f} KiB")


if __name__ == "__main__":
    main()
