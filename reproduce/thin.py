"""Thin a figure CSV written before its rows were log-spaced: keep the rows at the steps
`reproduce.study.outputs.csv_steps` keeps (every step up to 10, then about 80 log-spaced
ones and the last) and, per learning rate, those of `crossing_steps` (where its relative
excess crosses a level for good), as the figure writes them now. For figures whose stored runs are
gone (a rerun writes the thinned CSV itself); the values are not touched.

    python -m reproduce.thin results/figure2.csv [more.csv ...]
"""

import pathlib

from tfovp.cli import ArgumentParser


def thin(path):
    """Rewrite `path` with the rows on the CSV step grid of each budget and at each
    curve's level crossings (`levels`: convergence.LEVELS and the figure's level, read
    from `path`'s JSON beside it); returns (rows before, rows after)."""
    import numpy as np
    import pandas as pd

    from reproduce.study.outputs import crossing_steps, csv_steps, write_csv
    from tfovp.convergence import LEVELS

    frame = pd.read_csv(path)
    levels = (*LEVELS, *_figure_levels(path))
    keep = np.zeros(len(frame), dtype=bool)
    for _, rows in frame.groupby("budget"):
        recorded = np.unique(rows["step"].to_numpy())  # every recorded step of some curve
        chosen = set(recorded[csv_steps(recorded)].tolist())
        keep[rows.index[rows["step"].isin(chosen)]] = True
    values = ("step", "loss", "excess_loss", "relative_excess", "selected")
    for _, rows in frame.groupby([c for c in frame.columns if c not in values], sort=False, dropna=False):
        rows = rows.sort_values("step")
        keep[rows.index[crossing_steps(rows["relative_excess"].to_numpy(), levels)]] = True
    write_csv(path, frame[keep])
    return len(frame), int(keep.sum())


def _figure_levels(path):
    """The convergence level of the figure whose CSV is `path` (its JSON's config), if any."""
    import json

    summary = pathlib.Path(path).with_suffix(".json")
    try:
        return (float(json.loads(summary.read_text())["config"]["level"]),)
    except (OSError, ValueError, KeyError, TypeError):
        return ()


def main(argv=None):
    parser = ArgumentParser(prog="python -m reproduce.thin", description=__doc__)
    parser.add_argument("csv", nargs="+", help="figure CSV files (with budget and step columns)")
    args = parser.parse_args(argv)
    for name in args.csv:
        path = pathlib.Path(name)
        if not path.is_file():
            parser.error(f"{name}: no such file")
        before, after = thin(path)
        print(f"{name}: {before:,} rows -> {after:,}")


if __name__ == "__main__":
    main()
