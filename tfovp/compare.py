"""Would depth help *my* regression problem? `compare_depths` trains the paper's depth-N
linear nets (hidden width 1, near-zero init, full-batch GD on the l_p loss, PAPER Sec. 5)
on your data over a learning-rate grid in one compiled sweep per depth and reports, per
depth, the best rate, the rates that diverged and the speed-up over the shallowest depth
at every level of relative excess loss (`tfovp.study.speedup`: S(e) = T_1(e) / T_N(e),
with the time to a level measured at every step; bounds when only one depth gets
there). From the shell, on a CSV or Parquet file:

    python -m tfovp.compare data.csv --target COLUMN [--features A,B,...]
        [--preprocessing standardize] [--loss 4] [--depths 1,2,3] [--steps 10000]
        [--plot depths.png]

Everything in this module trains for the budget you give: a speed-up is a statement
about that budget (a longer run can pick other learning rates).
"""

import dataclasses
import math

import numpy as np

from tfovp._cli import ArgumentParser, add_config_flags, check, check_values, config_from, setting
from tfovp.study import speedup
from tfovp.study.records import CurveFamily, CurveSpec
from tfovp.study.runs import PAPER_GRID

REPORT_LEVELS = (0.5, 0.1, 0.01, 0.001)  # the levels of the text summary


@dataclasses.dataclass(frozen=True)
class DepthComparison:
    """What `compare_depths` measured. `families[N]` holds depth N's every curve (one
    per learning rate and seed); the methods read the comparison off them."""

    depths: tuple[int, ...]
    loss: float  # p
    steps: int  # the budget K
    optimum: float  # L*, float64
    reference_loss: float  # L(W = 0), the common reference of the relative excess
    families: dict[int, CurveFamily]

    @property
    def levels(self):
        return self.families[self.depths[0]].levels

    @property
    def baseline(self):
        return self.depths[0]

    def times(self, depth):
        """(J,) iterations depth `depth` needs to settle below every level (inf: not
        within the budget)."""
        return speedup.family_times(self.families[depth])

    def speedups(self, depth):
        """[SpeedUp] of `depth` over the shallowest depth at every level."""
        return speedup.speedups(self.times(self.baseline), self.times(depth), self.steps, self.levels)

    def best_learning_rate(self, depth, level=0.1):
        """The rate that first settles below `level` (the lowest final excess if none
        does), or None if every rate diverged."""
        return self.families[depth].summary(level).best_learning_rate

    def diverged_rates(self, depth):
        family = self.families[depth]
        return sorted({float(r) for r, d in zip(family.learning_rates, family.diverged) if d})

    def rows(self):
        """One dict per depth and level: T, S over the shallowest depth and its kind."""
        out = []
        for depth in self.depths:
            times, values = self.times(depth), self.speedups(depth)
            for level, time, s in zip(self.levels, times, values):
                out.append(
                    {
                        "depth": depth,
                        "level": float(level),
                        "iterations": None if math.isinf(time) else int(time),
                        "speedup": s.value,
                        "speedup_kind": s.kind,
                    }
                )
        return out

    def summary(self):
        """A plain-text report."""
        lines = [
            f"l{self.loss:g} loss, {self.steps:,} iterations, depths {', '.join(map(str, self.depths))} "
            f"(hidden width 1, near-zero init, GD); L* = {self.optimum:.6g}, L(W=0) = {self.reference_loss:.6g}",
            "",
            "depth | best lr (fastest to 0.1) | diverged lrs | " + " | ".join(f"T({e:g})" for e in REPORT_LEVELS),
        ]
        for depth in self.depths:
            times = dict(zip(np.round(self.levels, 12), self.times(depth)))
            rate = self.best_learning_rate(depth)
            cells = [_iterations(times.get(round(e, 12), math.inf)) for e in REPORT_LEVELS]
            diverged = ", ".join(f"{r:g}" for r in self.diverged_rates(depth)) or "none"
            lines.append(
                f"{depth} | {'all diverged' if rate is None else f'{rate:g}'} | {diverged} | {' | '.join(cells)}"
            )
        lines += ["", f"speed-up over depth {self.baseline} (S > 1: the deeper net is faster):"]
        for depth in self.depths[1:]:
            found = {round(s.level, 12): s for s in self.speedups(depth)}
            cells = [f"S({e:g}) {_speedup(found.get(round(e, 12)))}" for e in REPORT_LEVELS]
            lines.append(f"depth {depth}: " + ", ".join(cells))
        return "\n".join(lines)

    def __str__(self):
        return self.summary()

    def plot(self, path=None):
        """A matplotlib Figure: each depth's best achievable relative excess over the
        iterations (log-log), and the speed-up over the shallowest depth per level.
        Written to `path` (PNG/PDF by its suffix) if given."""
        from matplotlib.figure import Figure

        figure = Figure(figsize=(11, 4.2), layout="constrained")
        curves, speeds = figure.subplots(1, 2)
        for depth in self.depths:
            family = self.families[depth]
            envelope = speedup.envelope(family)
            keep = (family.steps > 0) & np.isfinite(envelope) & (envelope > 0)
            curves.plot(family.steps[keep], envelope[keep], label=f"depth {depth}")
        curves.set(xscale="log", yscale="log", xlabel="iteration", ylabel="best settled relative excess loss")
        curves.set_title(f"l{self.loss:g} loss: best learning rate at every iteration", fontsize=10)
        curves.legend(loc="lower left", fontsize=8)
        for depth in self.depths[1:]:
            values = [(s.level, s.value, s.kind) for s in self.speedups(depth) if s.kind != speedup.NO_DATA]
            if values:
                levels, numbers, kinds = zip(*values)
                (line,) = speeds.plot(levels, numbers, marker="o", ms=3, label=f"depth {depth} over {self.baseline}")
                for level, number, kind in zip(levels, numbers, kinds):
                    if kind != speedup.EXACT:  # a bound: an open marker
                        speeds.plot(level, number, marker="^" if kind == speedup.LOWER else "v", color=line.get_color())
        speeds.axhline(1.0, color="grey", lw=0.8, ls="--")
        speeds.set(xscale="log", yscale="log", xlabel="relative excess loss level e", ylabel="speed-up S(e)")
        speeds.invert_xaxis()
        speeds.set_title("speed-up (triangles: bounds, one depth did not get there)", fontsize=10)
        if self.depths[1:]:
            speeds.legend(loc="best", fontsize=8)
        if path is not None:
            from tfovp._files import atomic_writer

            with atomic_writer(path, "wb") as handle:
                figure.savefig(handle, format=str(path).rsplit(".", 1)[-1], dpi=130)
        return figure


def _iterations(time):
    return "not reached" if math.isinf(time) else f"{int(time):,}"


def _speedup(value):
    if value is None or value.kind == speedup.NO_DATA:
        return "n/a"
    sign = {speedup.EXACT: "", speedup.LOWER: ">", speedup.UPPER: "<"}[value.kind]
    return f"{sign}{value.value:.3g}"


def compare_depths(
    x,
    y,
    depths=(1, 2, 3),
    loss=4,
    steps=10_000,
    learning_rates=PAPER_GRID,
    seeds=(0,),
    reduction="mean",
    dtype="float32",
):
    """Train depth-N linear nets (N in `depths`) on (x, y) and compare their speed.

    Args:
        x: (m, d) features, y: (m,) or (m, k) targets; finite numbers, preprocessed as
            you want them (the command line offers `tfovp.datasets` preprocessings).
        depths: distinct depths >= 1; the first is the baseline of the speed-ups.
        loss: p >= 1 of the l_p loss (p > 2 is where the paper finds acceleration).
        steps: full-batch GD iterations per curve.
        learning_rates: the grid every depth is swept over (default: the paper's).
        seeds: initialization seeds (the median over seeds is used).
        reduction: "mean" or "sum" of the per-example losses.
        dtype: training precision; L* is always float64.

    Returns:
        DepthComparison.
    """
    from tfovp._checks import check_choice, check_int, check_real
    from tfovp.study.problem import Problem
    from tfovp.study.runs import train_family

    x, y = _checked_data(x, y)
    depths = tuple(check_int("depths", d, minimum=1) for d in depths)
    if not depths or len(set(depths)) != len(depths):
        raise ValueError(f"`depths` must be distinct integers >= 1. Received: depths={depths!r}")
    loss = check_real("loss", loss, minimum=1.0)
    steps = check_int("steps", steps, minimum=1)
    check_choice("reduction", reduction, ("mean", "sum"))
    problem = Problem(x, y, "custom", "as given", reduction)
    families = {
        n: train_family(
            CurveSpec(f"depth {n}", depth=n, loss=loss),
            problem,
            steps=steps,
            grid=tuple(learning_rates),
            seeds=[int(s) for s in seeds],
            dtype=dtype,
        )
        for n in depths
    }
    return DepthComparison(depths, loss, steps, problem.optimum(loss), problem.reference_loss(loss), families)


def _checked_data(x, y):
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2 or x.shape[1] < 1:
        raise ValueError(f"`x` must be 2-D with at least 2 rows and 1 column. Received: x.shape={x.shape}")
    if y.ndim not in (1, 2) or y.shape[0] != x.shape[0]:
        raise ValueError(f"`y` must have one row per row of x ({x.shape[0]}). Received: y.shape={y.shape}")
    for name, values in (("x", x), ("y", y)):
        if not np.all(np.isfinite(values)):
            raise ValueError(f"`{name}` contains NaN or infinite values; drop or fill them first.")
    return x, y.reshape(len(y), -1)


def read_table(path, target, features=None):
    """(x, y, feature names) from a CSV or Parquet file (pandas); ValueError naming the
    problem for a missing file or column, a non-numeric column or missing values."""
    import pathlib

    import pandas as pd

    path = pathlib.Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet", ".pq"):
        raise ValueError(f"{path}: expected a .csv or .parquet file")
    try:
        frame = pd.read_csv(path) if suffix == ".csv" else pd.read_parquet(path)
    except ImportError as error:
        raise ValueError(f"{path}: reading Parquet needs pyarrow ({error})") from None
    except (ValueError, OSError, pd.errors.ParserError) as error:
        raise ValueError(f"{path}: cannot be read as {suffix[1:]} ({str(error).splitlines()[0]})") from None
    columns = [str(c) for c in frame.columns]
    frame.columns = columns
    features = list(features) if features else [c for c in columns if c != target]
    missing = [c for c in [target, *features] if c not in columns]
    if missing:
        raise ValueError(
            f"--target/--features: no column {', '.join(missing)} in {path}; columns: {', '.join(columns)}"
        )
    if target in features:
        raise ValueError(f"--features: contains the target column {target}")
    chosen = frame[[*features, target]]
    text = [c for c in chosen.columns if not pd.api.types.is_numeric_dtype(chosen[c])]
    if text:
        raise ValueError(f"{path}: non-numeric column{'s' * (len(text) > 1)} {', '.join(text)}; drop or encode them")
    empty = chosen.isna().sum()
    if empty.any():
        named = ", ".join(f"{c} ({n})" for c, n in empty[empty > 0].items())
        raise ValueError(f"{path}: missing values in {named}; drop or fill them first")
    return chosen[features].to_numpy(np.float64), chosen[target].to_numpy(np.float64), features


@dataclasses.dataclass
class Config:
    target: str | None = setting(None, "the column to predict (required)")
    features: tuple[str, ...] = setting((), "feature columns (comma-separated; default: all others)")
    preprocessing: str = setting(
        "standardize", "scaling: a preset (standardize, minmax, maxabs, none) or features:target[:log1p]"
    )
    loss: float = setting(4.0, "p of the l_p loss (>= 1; the paper finds acceleration for p > 2)")
    depths: tuple[int, ...] = setting((1, 2, 3), "depths compared (>= 1, distinct); the first is the baseline")
    steps: int = setting(10_000, "full-batch GD iterations per curve (>= 1)")
    lrs: tuple[float, ...] = setting(PAPER_GRID, "learning-rate grid (> 0)")
    seeds: tuple[int, ...] = setting((0,), "initialization seeds (>= 0)")
    plot: str | None = setting(None, "write the figure to this .png or .pdf file")
    csv: str | None = setting(None, "write the per-depth, per-level table to this .csv file")

    def validate(self):
        check(self.target is not None, "--target: required (the column to predict)")
        check(self.loss >= 1, f"--loss {self.loss:g}: expected a number >= 1")
        check_values("depths", self.depths, lambda d: d >= 1, "integers >= 1")
        check(len(set(self.depths)) == len(self.depths), f"--depths: {self.depths} has repeats")
        check(self.steps >= 1, f"--steps {self.steps}: expected an integer >= 1")
        check_values("lrs", self.lrs, lambda r: math.isfinite(r) and r > 0, "finite numbers > 0")
        check_values("seeds", self.seeds, lambda s: s >= 0, "integers >= 0")
        for name, value, suffixes in (("plot", self.plot, (".png", ".pdf")), ("csv", self.csv, (".csv",))):
            check(
                value is None or value.endswith(suffixes), f"--{name} {value}: expected a {' or '.join(suffixes)} file"
            )
        from tfovp.datasets.preprocessing import parse

        parse(self.preprocessing)  # ValueError naming what is allowed


def main(argv=None):
    """`python -m tfovp.compare DATA --target COLUMN ...`; returns the DepthComparison."""
    parser = ArgumentParser(prog="python -m tfovp.compare", description=__doc__)
    parser.add_argument("data", help="a .csv or .parquet file with a header row")
    given = vars(add_config_flags(parser, Config).parse_args(argv))
    data = given.pop("data")
    try:
        config = config_from(Config, given)
        x, y, features = read_table(data, config.target, config.features)
        from tfovp.datasets.preprocessing import preprocess

        x, y = preprocess(x, y, config.preprocessing)
        _checked_data(x, y)
    except ValueError as error:
        parser.error(str(error))
    from tfovp._console import import_tensorflow_quietly

    import_tensorflow_quietly()
    print(
        f"{data}: {len(x):,} rows, {len(features)} feature{'s' * (len(features) != 1)}, target {config.target}",
        flush=True,
    )
    result = compare_depths(x, y, config.depths, config.loss, config.steps, config.lrs, config.seeds)
    print(result.summary())
    if config.plot:
        result.plot(config.plot)
        print(f"wrote {config.plot}")
    if config.csv:
        import pandas as pd

        from tfovp._files import atomic_write_text

        atomic_write_text(config.csv, pd.DataFrame(result.rows()).to_csv(index=False))
        print(f"wrote {config.csv}")
    return result


__all__ = ["DepthComparison", "compare_depths", "main", "read_table"]

if __name__ == "__main__":
    main()
