"""The tables a figure writes: its trained runs (every learning rate of every curve
family, one row each) and their losses at the steps of a log-spaced grid (`csv_steps`,
plus the steps where a curve crosses a convergence level for good), and the JSON
summary of each family's best rate. Files are written atomically."""

import json
import pathlib
import re
from typing import NamedTuple

import numpy as np

from tfovp.convergence import LEVELS, relative_excess
from tfovp.files import atomic_write_text, atomic_writer

RUN_RECORDS_SUFFIX = "_runs.json"  # a study's per-run records (Appendix C), beside its summary JSON


def summary_files(out, pattern):
    """The summary JSON files of OUT matching `pattern`, without the per-run records."""
    return [p for p in pathlib.Path(out).glob(pattern) if not p.name.endswith(RUN_RECORDS_SUFFIX)]


CSV_POINTS = 80  # log-spaced steps per curve in a figure's CSV (after every one of the first 10)


def csv_steps(steps, points=CSV_POINTS):
    """(R,) bool: the recorded `steps` a figure's CSV keeps: every step up to 10, then the
    recorded step nearest to each of `points` log-spaced ones, and the last (the JSON
    and the stored runs keep every recorded step)."""
    steps = np.asarray(steps)
    keep = steps <= 10
    if steps[-1] > 10:
        for target in np.geomspace(10, steps[-1], points):
            keep[np.argmin(np.abs(np.log(np.maximum(steps, 1)) - np.log(target)))] = True
    keep[-1] = True
    return keep


def crossing_steps(excess, levels):
    """(R,) bool: for each of `levels`, the last recorded step above it and the one after
    (`convergence.iterations_to`'s step), so that the times to every level read from a
    thinned CSV (its values carried forward between rows) are the run's own; and the
    last finite step (where a diverging curve stops)."""
    keep = np.zeros(excess.shape, dtype=bool)
    finite = np.flatnonzero(np.isfinite(excess))
    if finite.size:
        keep[finite[-1]] = True
    for level in levels:
        above = np.flatnonzero(~(np.isfinite(excess) & (excess <= level)))
        if above.size and above[-1] + 1 < excess.size:
            keep[above[-1] : above[-1] + 2] = True
    return keep


class CurveTables(NamedTuple):
    """A figure's curves in two tables: `runs`, one row per trained run (curve, learning
    rate, seed: `RUN_COLUMNS`, then the figure's settings), and `points`, the
    run's recorded losses (`POINT_COLUMNS`). Written as <figure>_runs.csv and
    <figure>.csv: the settings once per run instead of on every recorded step."""

    runs: object  # pandas.DataFrame
    points: object  # pandas.DataFrame


RUN_DESCRIPTION = (
    "figure", "curve", "depth", "hidden_widths", "update", "initializer", "loss_p", "learning_rate", "seed",
    "tuning", "selected",
)  # fmt: skip
RUN_COLUMNS = ("run", *RUN_DESCRIPTION, "optimum")  # then the figure's settings
POINT_COLUMNS = ("run", "step", "loss", "relative_excess")


def runs_table(points_path):
    """The run table <figure>_runs.csv beside a figure's points table <figure>.csv."""
    path = pathlib.Path(points_path)
    return path.with_name(f"{path.stem}_runs.csv")


def curve_tables(figure, families, level, settings):
    """The CurveTables of `families` ({name: CurveFamily}), or None if there are none:
    every rate trained (`tuning`: "grid", or "tuning" for the rates the tuning added),
    `selected` marking the grid's best rate of each seed at `level`, `settings` (a dict)
    on every run; each run's finite losses and relative excess e(t) (PAPER Sec. 1) at
    the steps of `csv_steps` and of `crossing_steps` (convergence.LEVELS and `level`)."""
    import pandas as pd

    runs, points = [], []
    for grid_family in families.values():
        spec = grid_family.spec
        best = {seed: grid_family.summary(level, seed).best_learning_rate for seed in grid_family.seed_list}
        grid_columns = grid_family.learning_rates.size
        family = grid_family.with_tuned()  # every rate trained, the tuned ones after the grid's
        excess = relative_excess(family.losses, family.optimum)
        logged = csv_steps(family.steps)
        levels = (*LEVELS, level)
        for column, (rate, seed) in enumerate(zip(family.learning_rates, family.seeds)):
            run = len(runs)
            from_grid = column < grid_columns
            runs.append(
                {
                    "run": run,
                    "figure": figure,
                    "curve": spec.label,
                    "depth": spec.depth,
                    "hidden_widths": spec.hidden_widths,
                    "update": spec.update,
                    "initializer": spec.initializer,
                    "loss_p": spec.loss,
                    "learning_rate": rate,
                    "seed": seed,
                    "tuning": "grid" if from_grid else "tuning",
                    "selected": from_grid and rate == best[int(seed)],
                    "optimum": family.optimum,
                    **settings,
                }
            )
            losses = family.losses[:, column]
            keep = np.isfinite(losses) & (logged | crossing_steps(excess[:, column], levels))
            points.append(
                pd.DataFrame(
                    {
                        "run": run,
                        "step": family.steps[keep],
                        "loss": losses[keep],
                        "relative_excess": excess[keep, column],
                    }
                )
            )
    if not runs:
        return None
    return CurveTables(pd.DataFrame(runs), pd.concat(points, ignore_index=True))


def write_curve_tables(stem, tables):
    """Write `tables` (CurveTables) as <stem>.csv (the points) and <stem>_runs.csv."""
    points = pathlib.Path(f"{stem}.csv")
    write_csv(runs_table(points), tables.runs)
    return write_csv(points, tables.points)


def read_curves(path):
    """A figure's points table `path` (<figure>.csv) joined with its run table: one row
    per recorded step with every column of its run and `excess_loss` = L(t) - L*."""
    import pandas as pd

    runs = pd.read_csv(runs_table(path))
    frame = pd.read_csv(path).merge(runs, on="run", how="left", validate="many_to_one")
    frame["excess_loss"] = frame["loss"] - frame["optimum"]
    return frame


def write_csv(path, frame, float_format="%.8g"):
    """Write `frame` atomically."""
    with atomic_writer(path, "w", newline="") as handle:
        frame.to_csv(handle, index=False, float_format=float_format)
    return pathlib.Path(path)


_SCALARS = r"(?:-?\d[\d.eE+-]*|null|true|false|NaN|-?Infinity)"
_SCALAR_LIST = re.compile(r"\[\n\s*" + _SCALARS + r"(?:,\n\s*" + _SCALARS + r")*\n\s*\]")


def write_json(path, data):
    """Write `data` as indented JSON atomically (NumPy scalars as floats), each list of
    numbers on one line (a curve or a list of times would otherwise take a line per value)."""
    text = json.dumps(data, indent=1, default=float)
    text = _SCALAR_LIST.sub(lambda m: "[" + ", ".join(v.strip() for v in m.group(0)[1:-1].split(",")) + "]", text)
    return atomic_write_text(path, text)


def family_summary(family, level, seed=None):
    """The JSON summary of one family: its best rate at `level` and the measures of it."""
    out = family.summary(level, seed).to_json()
    out["elapsed_seconds"] = round(family.training_seconds, 2)
    tuning = family.tuning()
    if tuning is not None:
        out["tuning"] = tuning.to_json()
    return out


def bracket_columns(side, rate):
    """The CSV columns of a tuned rate's bracket (`tfovp.tuning.TunedRate`, or None):
    the trained rates just below and above it, whether the one above diverged and at
    which step, and whether it is capped (the last rate tried on its side: its time only
    a bound)."""
    return {
        f"{side}_lr_below": None if rate is None else rate.lower,
        f"{side}_lr_above": None if rate is None else rate.upper,
        f"{side}_above_diverged": None if rate is None else rate.upper_diverged,
        f"{side}_above_diverged_at": None if rate is None else rate.upper_diverged_at,
        f"{side}_capped": None if rate is None else rate.capped,
    }


def one_rate_columns(comparison, index, prefix=("baseline", "contender")):
    """The CSV columns of the one-rate protocol (`criteria.OneRate`) at level `index` of
    `comparison` (empty without it): S from one rate per family for the whole run, its
    kind and times, the two rates; `prefix` names the two families' columns."""
    one = comparison.one_rate
    if one is None:
        return {}
    s = one.speedups[index]
    return {
        "one_rate_speedup": s.value,
        "one_rate_kind": s.kind,
        f"one_rate_{prefix[0]}_time": s.baseline_time,
        f"one_rate_{prefix[1]}_time": s.contender_time,
        f"one_rate_{prefix[0]}_lr": one.baseline_rate,
        f"one_rate_{prefix[1]}_lr": one.contender_rate,
    }


def speedup_table(comparisons, crossovers):
    """Rows of every comparison at every level (for <figure>_speedup.csv) and the JSON
    summary {"<contender> vs <baseline> (lp)": {...}}; `comparisons` maps a key (the
    JSON name) to a `criteria.Comparison`, `crossovers` the same key to t_x or None.
    Where the families were tuned, each row holds S with both families tuned (`speedup`,
    `kind`, the times, the tuned rates and whether each is within rho of its divergence
    edge) and S on the paper's grid alone (`grid_*`)."""
    rows, summary = [], {}
    for name, c in comparisons.items():
        grid = c.grid_speedups or (None,) * len(c.speedups)
        rates = zip(c.baseline_rates or grid, c.contender_rates or grid)
        for index, (s, g, (rb, rc)) in enumerate(zip(c.speedups, grid, rates)):
            row = {
                "comparison": name,
                "contender": c.contender,
                "baseline": c.baseline,
                "budget": c.budget,
                "level": s.level,
                "tuned": c.tuned,
                "rho": c.rho,
                "baseline_time": s.baseline_time,
                "contender_time": s.contender_time,
                "speedup": s.value,
                "kind": s.kind,
            }
            if c.tuned:
                row.update(
                    {
                        "baseline_lr": rb.learning_rate,
                        "contender_lr": rc.learning_rate,
                        "baseline_near_edge": rb.near_edge,
                        "contender_near_edge": rc.near_edge,
                        **bracket_columns("baseline", rb),
                        **bracket_columns("contender", rc),
                        **one_rate_columns(c, index),
                        "grid_baseline_lr": rb.grid_learning_rate,
                        "grid_contender_lr": rc.grid_learning_rate,
                        "grid_baseline_time": g.baseline_time,
                        "grid_contender_time": g.contender_time,
                        "grid_speedup": g.value,
                        "grid_kind": g.kind,
                    }
                )
            rows.append(row)
        summary[name] = {**c.to_json(), "crossover": crossovers[name]}
    return rows, summary
