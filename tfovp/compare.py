"""Would depth help *my* regression problem? `compare_depths` trains the paper's depth-N
linear nets (hidden width 1, near-zero init, full-batch GD on the l_p loss, PAPER Sec. 5)
on your data, each depth's learning rate tuned (`tfovp.tuning`: the paper's grid in one
compiled sweep, its ends extended, the best rate's bracket refined to within rho = 1.2
at every level), and reports per depth the tuned rate and its distance to the divergence
edge, and the speed-up over the shallowest depth at every level of relative excess loss
(`tfovp.speedup`), with rates tuned and on the grid alone, and a plain answer.

Definitions. The relative excess of a loss L is e = (L - L*) / (L(W=0) - L*), L* the
optimum. T_N(e) = the number of iterations after which depth N's loss stays below
relative excess e (measured at every step). The speed-up of depth N over depth 1 is
S(e) = T_1(e) / T_N(e): S > 1 means depth N gets there sooner; where only one depth gets
there within the budget K, S is a bound (> K / T_N or < T_1 / K).

Protocols. By default every depth is trained at one learning rate, and every T_N(e) is
read off that one run: the rate that first settles below the target level, the tightest
level any depth reaches with its tuned rates (ties by the lower final loss; a depth that
does not reach it takes the rate with the lowest final loss). `tune_per_level=True`
(`--tune-per-level`) gives each level its own best rate instead: an oracle no single run
achieves, whose S(e) curve can be faster than any one run (`tfovp.tuning`). At the target
level the two agree. A tuned rate at the end of what was tried is capped: its time is a
bound on the tuned time, and the speed-ups it enters are bounds in the honest direction.

From the shell, on a CSV or Parquet file:

    python -m tfovp.compare data.csv --target COLUMN [--features A,B,...]
    python -m tfovp.compare ethanol      (or abalone: the paper's data, from tfovp.datasets)
        [--preprocessing standardize] [--loss 4] [--depths 1,2,3] [--steps 10000]
        [--no-tune] [--rho 1.2] [--tune-per-level] [--plot depths.png] [--csv depths.csv]

Everything in this module trains for the budget you give: a speed-up is a statement
about that budget (a longer run can pick other learning rates).
"""

import dataclasses
import functools
import math
import pathlib
import sys

import numpy as np

from tfovp import speedup
from tfovp.cli import ArgumentParser, add_config_flags, check, check_values, config_from, setting
from tfovp.families import CurveFamily, CurveSpec
from tfovp.tuning import PAPER_GRID, RHO

PROG = "python -m tfovp.compare"
REPORT_LEVELS = (0.5, 0.1, 0.01, 0.001)  # the levels of the text summary
CLEARLY = 1.1  # the plain answer calls a depth faster or slower only beyond this factor


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
    reduction: str = "mean"
    held_out: tuple | None = None  # (x, y) not trained on, or None
    tune_per_level: bool = False  # the protocol: each level its own rate (True) or one rate per depth

    @property
    def protocol(self):
        """ "one rate" or "per level" (tuned), "grid" (not tuned: each level the grid's best)."""
        if not self.tuned:
            return "grid"
        return "per level" if self.tune_per_level else "one rate"

    @property
    def levels(self):
        return self.families[self.depths[0]].levels

    @property
    def baseline(self):
        return self.depths[0]

    @property
    def tuned(self):
        return all(f.is_tuned for f in self.families.values())

    def tuning(self, depth):
        """The `tfovp.tuning.Tuning` of a depth (None if not tuned)."""
        return self._tunings[depth]

    @functools.cached_property
    def _tunings(self):
        # built once: every time, rate and speed-up of the report reads them
        return {depth: family.tuning() for depth, family in self.families.items()}

    def times(self, depth, grid=False):
        """(J,) iterations depth `depth` needs to settle below every level (inf: not
        within the budget) under the comparison's protocol (`protocol`); with `grid`, each
        level at the grid's best rate."""
        family = self.families[depth]
        if grid or not self.tuned:
            return speedup.family_times(family)
        if self.tune_per_level:
            return speedup.family_times(family.with_tuned())
        return self.tuning(depth).single_rate(self.target_level)[1]

    @functools.cached_property
    def target_level(self):
        """The level the one-rate protocol chooses each depth's rate at: the tightest
        level any depth reaches with its tuned rates (index into `levels`), or
        `tfovp.tuning.FINAL` where none reaches any (the lowest final loss decides)."""
        from tfovp.tuning import FINAL

        reached = [np.isfinite(speedup.family_times(f.with_tuned())) for f in self.families.values()]
        levels = np.flatnonzero(np.any(reached, axis=0))
        return FINAL if levels.size == 0 else int(levels[np.argmin(np.asarray(self.levels)[levels])])

    def chosen_rate(self, depth):
        """The `tfovp.tuning.TunedRate` of the one rate depth `depth` is trained at under
        the one-rate protocol (None when not tuned)."""
        tuning = self.tuning(depth)
        return None if tuning is None else tuning.single_rate(self.target_level)[0]

    def rates(self, depth):
        """[TunedRate] per level under the protocol: the one chosen rate at every level,
        or each level's own (per level); None per level when not tuned."""
        if not self.tuned:
            return [None] * len(self.levels)
        if self.tune_per_level:
            return self.tuning(depth).per_level()
        return [self.chosen_rate(depth)] * len(self.levels)

    def _caps(self, depth):
        """Per level, "high" / "low" where the protocol's rate is capped (None otherwise)."""
        return [r.capped for r in self.rates(depth)]

    def speedups(self, depth, grid=False):
        """[SpeedUp] of `depth` over the shallowest depth at every level under the
        protocol (a capped rate's speed-ups read as bounds, `tfovp.speedup.with_caps`), or
        on the grid alone with `grid`."""
        values = speedup.speedups(self.times(self.baseline, grid), self.times(depth, grid), self.steps, self.levels)
        if grid or not self.tuned:
            return values
        caps = zip(values, self._caps(self.baseline), self._caps(depth))
        return [speedup.with_caps(s, b, c) for s, b, c in caps]

    def best_learning_rate(self, depth, level=0.1):
        """The rate that first settles below `level` (tuned where tuned; the lowest final
        excess if none does), or None if every rate diverged."""
        tuning = self.tuning(depth)
        if tuning is not None:
            found = tuning.at(level) if np.isclose(self.levels, level).any() else None
            if found is not None and found.learning_rate is not None:
                return found.learning_rate
        return self.families[depth].summary(level).best_learning_rate

    def diverged_rates(self, depth):
        family = self.families[depth].with_tuned()
        return sorted({float(r) for r, d in zip(family.learning_rates, family.diverged) if d})

    def rows(self):
        """One dict per depth and level: the protocol, T, S over the shallowest depth and
        its kind, under the protocol and on the grid, and the rate (and whether it is
        capped or within rho of the divergence edge)."""
        out = []
        for depth in self.depths:
            grids = self.speedups(depth, grid=True)
            values = zip(self.levels, self.times(depth), self.speedups(depth), self.times(depth, True), grids)
            for (level, time, s, grid_time, grid), rate in zip(values, self.rates(depth)):
                out.append(
                    {
                        "depth": depth,
                        "level": float(level),
                        "protocol": self.protocol,
                        "iterations": None if math.isinf(time) else int(time),
                        "speedup": s.value,
                        "speedup_kind": s.kind,
                        "learning_rate": None if rate is None else rate.learning_rate,
                        "capped": None if rate is None else rate.capped,
                        "near_divergence_edge": None if rate is None else rate.near_edge,
                        "grid_iterations": None if math.isinf(grid_time) else int(grid_time),
                        "grid_speedup": grid.value,
                        "grid_speedup_kind": grid.kind,
                    }
                )
        return out

    def final_losses(self, depth):
        """(training loss, held-out loss or None, rate) at the end of the budget of the
        depth's rate with the lowest final training loss (first seed; tuned rates
        included), or None if every rate diverged."""
        from tfovp.optimum import lp_objective

        family = self.families[depth].with_tuned()
        columns = family.columns()
        finals = family.losses[-1, columns]
        finals = np.where(family.diverged[columns] | ~np.isfinite(finals), np.inf, finals)
        if not np.isfinite(finals).any():
            return None
        column = int(columns[np.argmin(finals)])
        held_out = None
        if self.held_out is not None and family.final_kernels is not None:
            x, y = self.held_out
            held_out = float(lp_objective(x, y, family.final_kernels[column], self.loss, self.reduction))
        return float(family.losses[-1, column]), held_out, float(family.learning_rates[column])

    def flips(self):
        """[(depth, level, grid SpeedUp, tuned SpeedUp)] where the grid and the tuned rates
        disagree on whether the deeper net is faster (S >= 1) at a level both decide."""
        out = []
        for depth in self.depths[1:]:
            for grid, tuned in zip(self.speedups(depth, grid=True), self.speedups(depth)):
                a, b = grid.at_least(1.0), tuned.at_least(1.0)
                if a is not None and b is not None and a != b:
                    out.append((depth, grid.level, grid, tuned))
        return out

    def answer(self):
        """One plain sentence per deeper depth, at the tightest level either depth reaches."""
        lines = []
        for depth in self.depths[1:]:
            values = self.speedups(depth)
            s = speedup.tightest(values)
            name = f"depth {depth}"
            base = "the linear model" if self.baseline == 1 else f"depth {self.baseline}"
            if s is None:
                lines.append(f"{name}: neither it nor {base} gets below any level within {self.steps:,} iterations.")
                continue
            level = f"{_percent(s.level)} excess"
            exact = [v for v in values if v.kind == speedup.EXACT]
            if s.kind == speedup.LOWER:
                lines.append(
                    f"{name} reaches {level} within the budget and {base} does not (at least {s.value:.3g}x sooner)."
                )
            elif s.kind == speedup.UPPER:
                lines.append(
                    f"{base} reaches {level} and {name} does not within the budget "
                    f"({name} at least {1 / s.value:.3g}x slower)."
                )
            elif exact and all(v.value < 1 / CLEARLY for v in exact):
                lines.append(
                    f"{name} is slower than {base} at every level both reach (at {level}: {1 / s.value:.3g}x slower)."
                )
            elif s.value >= CLEARLY:
                slower = [v for v in exact if v.value < 1 / CLEARLY]
                caveat = (
                    f" (but slower at {_percent(slower[0].level)} excess: S = {slower[0].value:.3g})" if slower else ""
                )
                lines.append(f"{name} reaches {level} {s.value:.3g}x sooner than {base}{caveat}.")
            elif s.value <= 1 / CLEARLY:
                lines.append(f"{name} reaches {level} {1 / s.value:.3g}x later than {base}.")
            else:
                lines.append(f"{name} and {base} reach {level} within 10 % of each other's time (S = {s.value:.3g}).")
        return lines

    def summary(self):
        """A plain-text report: definitions, per-depth rates and times, speed-ups (tuned
        and on the grid), where the two disagree, and the answer."""
        tuned = self.tuned
        rho = self.tuning(self.baseline).rho[-1] if tuned else None
        lines = [
            f"l{self.loss:g} loss, {self.steps:,} iterations, depths {', '.join(map(str, self.depths))} "
            f"(hidden width 1, near-zero init, GD); L* = {self.optimum:.6g}, L(W=0) = {self.reference_loss:.6g}",
            "T(e): iterations after which the loss stays below relative excess e = (L - L*)/(L(W=0) - L*); "
            "S(e) = T_" + f"{self.baseline}(e) / T_N(e) (> 1: depth N is faster).",
            self._protocol_line(rho),
            "",
            "depth | tuned lr at e (grid's) | divergence edge | diverged lrs | "
            + " | ".join(f"T({e:g})" for e in REPORT_LEVELS),
        ]
        for depth in self.depths:
            lines.append(self._depth_row(depth))
        lines += [
            "",
            "final loss at the end of the budget, the rate with the lowest (training"
            + (" / held-out):" if self.held_out is not None else "):"),
        ]
        for depth in self.depths:
            found = self.final_losses(depth)
            if found is None:
                lines.append(f"depth {depth}: every rate diverged")
            else:
                train, test, rate = found
                held = "" if test is None else f" / {test:.6g}"
                lines.append(f"depth {depth}: {train:.6g}{held} (lr {rate:.3g})")
        other = dataclasses.replace(self, tune_per_level=not self.tune_per_level)
        beside = "one rate" if self.tune_per_level else "per level"
        lines += [
            "",
            f"speed-up over depth {self.baseline} (S > 1: the deeper net is faster)"
            + (f"; in (parentheses): the {beside} protocol; in [brackets]: the grid alone:" if tuned else ":"),
        ]
        for depth in self.depths[1:]:
            found = {round(s.level, 12): s for s in self.speedups(depth)}
            grid = {round(s.level, 12): s for s in self.speedups(depth, grid=True)}
            second = {round(s.level, 12): s for s in other.speedups(depth)} if tuned else {}
            cells = [
                f"S({e:g}) {_speedup(found.get(round(e, 12)))}"
                + (f" ({_speedup(second.get(round(e, 12)))}) [{_speedup(grid.get(round(e, 12)))}]" if tuned else "")
                for e in REPORT_LEVELS
            ]
            lines.append(f"depth {depth}: " + ", ".join(cells))
        flips = self.flips() if tuned else []
        if flips:
            lines += ["", "where the grid alone would give the other answer (faster or not):"]
            lines += [
                f"depth {d} at e = {level:g}: grid S {_speedup(g)}, tuned S {_speedup(t)}" for d, level, g, t in flips
            ]
        lines += ["", "Answer:"] + [f"  {line}" for line in self.answer()]
        return "\n".join(lines)

    def _protocol_line(self, rho):
        if not self.tuned:
            return "Learning rates: the grid as given (no tuning), each level at the grid's best rate."
        tuned = f"Learning rates tuned to within a factor {rho:g} (tfovp.tuning); in [brackets]: the grid alone. "
        if self.tune_per_level:
            return tuned + (
                "Per-level protocol: each level at its own best rate (an oracle: no single run achieves every T)."
            )
        target = self.target_level
        at = "the lowest final loss" if isinstance(target, str) else f"e = {self.levels[target]:g}"
        return tuned + (
            f"One rate per depth, chosen at {at} (the rate that first settles below the tightest level any depth "
            "reaches), every T read off that one run (--tune-per-level: each level its own best rate)."
        )

    def _depth_row(self, depth):
        times = dict(zip(np.round(self.levels, 12), self.times(depth)))
        cells = [_iterations(times.get(round(e, 12), math.inf)) for e in REPORT_LEVELS]
        diverged = ", ".join(f"{r:.3g}" for r in self.diverged_rates(depth)) or "none"
        tuning = self.tuning(depth)
        if tuning is None:
            rate = self.best_learning_rate(depth)
            return f"{depth} | {'all diverged' if rate is None else f'{rate:g}'} | - | {diverged} | {' | '.join(cells)}"
        reached = [r for r in tuning.per_level() if r.learning_rate is not None]
        low, high = tuning.edge()
        if not reached:
            return f"{depth} | none reaches a level | {_edge(low, high)} | {diverged} | {' | '.join(cells)}"
        if self.tune_per_level:
            chosen = next((r for r in reached if np.isclose(r.level, 0.1)), min(reached, key=lambda r: r.level))
        else:
            chosen = self.chosen_rate(depth)
        grid = "none" if chosen.grid_learning_rate is None else f"{chosen.grid_learning_rate:.3g}"
        distance = ""
        if high is not None:
            ratio = high / chosen.learning_rate
            distance = (
                f"; {ratio:.3g}x below it" if ratio >= 1 else "; above it (divergence is not monotone in the rate)"
            )
        level = chosen.level if isinstance(chosen.level, str) else f"{chosen.level:g}"
        capped = {"high": ", capped: the largest tried", "low": ", capped: the smallest tried"}.get(chosen.capped, "")
        rate = f"{chosen.learning_rate:.3g} at {level} ({grid}{capped})"
        return f"{depth} | {rate} | {_edge(low, high)}{distance} | {diverged} | {' | '.join(cells)}"

    def __str__(self):
        return self.summary()

    def plot(self, path=None):
        """A matplotlib Figure: each depth's best achievable relative excess over the
        iterations (log-log), and the speed-up over the shallowest depth per level.
        Written to `path` (PNG/PDF by its suffix) if given."""
        from matplotlib.figure import Figure

        figure = Figure(figsize=(11, 4.2), layout="constrained")
        curves, speeds = figure.subplots(1, 2)
        drawn = False
        one_rate = self.protocol == "one rate"
        for depth in self.depths:
            family = self.families[depth].with_tuned()
            chosen = self.chosen_rate(depth) if one_rate else None
            if chosen is not None and chosen.learning_rate is not None:
                family = family.at_rate(chosen.learning_rate)
            envelope = speedup.envelope(family)
            keep = (family.steps > 0) & np.isfinite(envelope) & (envelope > 0)
            if keep.any():
                rate = "" if chosen is None or chosen.learning_rate is None else f" (lr {chosen.learning_rate:.3g})"
                curves.plot(family.steps[keep], envelope[keep], label=f"depth {depth}{rate}")
                drawn = True
        curves.set(xlabel="iteration", ylabel="settled relative excess loss")
        title = "one learning rate per depth" if one_rate else "best learning rate at every iteration"
        curves.set_title(f"l{self.loss:g} loss: {title}", fontsize=10)
        if drawn:
            curves.set(xscale="log", yscale="log")
            curves.legend(loc="lower left", fontsize=8)
        else:
            _note(curves, "nothing to draw: every learning rate of every depth diverged")
        drawn = False
        for depth in self.depths[1:]:
            values = [(s.level, s.value, s.kind) for s in self.speedups(depth) if s.kind != speedup.NO_DATA]
            if values:
                drawn = True
                levels, numbers, kinds = zip(*values)
                (line,) = speeds.plot(levels, numbers, marker="o", ms=3, label=f"depth {depth} over {self.baseline}")
                for level, number, kind in zip(levels, numbers, kinds):
                    if kind != speedup.EXACT:  # a bound: an open marker
                        speeds.plot(level, number, marker="^" if kind == speedup.LOWER else "v", color=line.get_color())
        speeds.set(xlabel="relative excess loss level e", ylabel="speed-up S(e)")
        speeds.set_title("speed-up (triangles: bounds, one depth did not get there)", fontsize=10)
        if drawn:
            speeds.axhline(1.0, color="grey", lw=0.8, ls="--")
            speeds.set(xscale="log", yscale="log")
            speeds.invert_xaxis()
            speeds.legend(loc="best", fontsize=8)
        else:
            _note(speeds, "nothing to draw: no depth reaches any level within the budget")
        if path is not None:
            from tfovp.files import atomic_writer

            with atomic_writer(path, "wb") as handle:
                figure.savefig(handle, format=str(path).rsplit(".", 1)[-1], dpi=130)
        return figure


def _note(axis, text):
    axis.text(0.5, 0.5, text, ha="center", va="center", wrap=True, fontsize=9, transform=axis.transAxes)
    axis.set(xticks=[], yticks=[])


def _percent(level):
    return f"{level * 100:.3g} %"


def _edge(low, high):
    if high is None:
        return "none found"
    return f"{'below the grid' if low is None else f'{low:.3g}'}-{high:.3g}"


def _iterations(time):
    return "not reached" if math.isinf(time) else f"{int(time):,}"


def _speedup(value):
    if value is None or value.kind == speedup.NO_DATA:
        return "n/a"
    sign = {speedup.EXACT: "", speedup.LOWER: ">", speedup.UPPER: "<", speedup.INDEFINITE: "?"}[value.kind]
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
    tune=True,
    rho=RHO,
    held_out=None,
    tune_per_level=False,
):
    """Train depth-N linear nets (N in `depths`) on (x, y) and compare their speed.

    Args:
        x: (m, d) features, y: (m,) or (m, k) targets; finite numbers, preprocessed as
            you want them (the command line offers `tfovp.datasets` preprocessings).
        depths: distinct depths >= 1; the first is the baseline of the speed-ups.
        loss: p >= 1 of the l_p loss (p > 2 is where the paper finds acceleration).
        steps: full-batch GD iterations per curve.
        learning_rates: the grid every depth is swept over first (default: the paper's).
        seeds: initialization seeds (the median over seeds is used, also for tuning).
        reduction: "mean" or "sum" of the per-example losses.
        dtype: training precision; L* is always float64.
        tune: tune each depth's rate at every level (`tfovp.tuning`: grid ends extended,
            the best rate's bracket refined to within `rho`); False takes the grid as
            given. Tuning costs about 2.5x the grid's sweep.
        rho: the precision of the tuning (a ratio > 1).
        held_out: (x, y) not trained on, preprocessed like (x, y): the report adds each
            depth's final loss on it (`DepthComparison.final_losses`).
        tune_per_level: the protocol of the tuned times: False (default) trains each
            depth at one rate, chosen at the tightest level any depth reaches, and reads
            every T off that run; True gives each level its own best rate (an oracle no
            single run achieves). The same training either way: only the reading differs.

    Returns:
        DepthComparison.
    """
    from tfovp.checks import check_choice, check_int, check_real
    from tfovp.families import at_rates, train_family, tune_family
    from tfovp.problem import Problem

    x, y = _checked_data(x, y)
    depths = tuple(check_int("depths", d, minimum=1) for d in depths)
    if not depths or len(set(depths)) != len(depths):
        raise ValueError(f"`depths` must be distinct integers >= 1. Received: depths={depths!r}")
    loss = check_real("loss", loss, minimum=1.0)
    steps = check_int("steps", steps, minimum=1)
    check_choice("reduction", reduction, ("mean", "sum"))
    if tune:
        rho = check_real("rho", rho, minimum=1.0, strict=True)
    elif tune_per_level:
        raise ValueError("`tune_per_level=True` reads tuned rates: it needs `tune=True`. Received: tune=False")
    problem = Problem(x, y, "custom", "as given", reduction)
    grid, seeds = tuple(sorted(float(r) for r in learning_rates)), [int(s) for s in seeds]

    def trained(depth):
        spec = CurveSpec(f"depth {depth}", depth=depth, loss=loss)

        def train(rates, stage="grid"):
            return train_family(at_rates(spec, rates, grid), problem, steps=steps, grid=grid, seeds=seeds, dtype=dtype)

        return tune_family(train, grid, speedup.LEVELS, rho) if tune else train(grid)

    families = {n: trained(n) for n in depths}
    if held_out is not None:
        held_out = _checked_data(*held_out, constant_ok=True)
    optimum, reference = problem.optimum(loss), problem.reference_loss(loss)
    return DepthComparison(
        depths, loss, steps, optimum, reference, families, reduction, held_out, tune_per_level=bool(tune_per_level)
    )


def _checked_data(x, y, constant_ok=False):
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2 or x.shape[1] < 1:
        raise ValueError(f"`x` must be 2-D with at least 2 rows and 1 column. Received: x.shape={x.shape}")
    if y.ndim not in (1, 2) or y.shape[0] != x.shape[0]:
        raise ValueError(f"`y` must have one row per row of x ({x.shape[0]}). Received: y.shape={y.shape}")
    for name, values in (("x", x), ("y", y)):
        if not np.all(np.isfinite(values)):
            raise ValueError(f"`{name}` contains NaN or infinite values; drop or fill them first.")
    y = y.reshape(len(y), -1)
    if not constant_ok and np.all(y == y[:1]):
        raise ValueError(f"`y` is constant ({y[0, 0]:g} in every row): there is nothing to fit.")
    return x, y


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
        raise ValueError(
            f"{path}: non-numeric column{'s' * (len(text) > 1)} {', '.join(text)}; drop or encode them, or pick the "
            "numeric ones with --features"
        )
    empty = chosen.isna().sum()
    if empty.any():
        named = ", ".join(f"{c} ({n})" for c, n in empty[empty > 0].items())
        raise ValueError(f"{path}: missing values in {named}; drop or fill them first")
    infinite = [c for c in chosen.columns if not np.isfinite(chosen[c].to_numpy(np.float64)).all()]
    if infinite:
        raise ValueError(f"{path}: infinite values in {', '.join(infinite)}; drop or replace them first")
    if chosen[target].nunique() == 1:
        raise ValueError(f"--target {target}: the column is constant ({chosen[target].iloc[0]:g}); nothing to fit")
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
    lrs: tuple[float, ...] = setting(PAPER_GRID, "learning-rate grid swept first (> 0)")
    rho: float = setting(RHO, "tune each depth's rate to within this ratio at every level (> 1; tfovp.tuning)")
    no_tune: bool = setting(False, "take the learning-rate grid as given (about 2.5x faster; speed-ups on the grid)")
    tune_per_level: bool = setting(
        False, "give each level its own tuned rate (an oracle) instead of one rate per depth for the whole run"
    )
    seeds: tuple[int, ...] = setting((0,), "initialization seeds (>= 0)")
    test_fraction: float = setting(
        0.0, "hold out this fraction of the rows (in [0, 1); preprocessing fitted on the rest) and report its loss"
    )
    split_seed: int = setting(0, "seed of the held-out rows' draw (>= 0)")
    plot: str | None = setting(None, "write the figure to this .png or .pdf file")
    csv: str | None = setting(None, "write the per-depth, per-level table to this .csv file")

    def validate(self):
        check(self.target is not None, "--target: required for a table (the column to predict)")
        check(self.loss >= 1, f"--loss {self.loss:g}: expected a number >= 1")
        check_values("depths", self.depths, lambda d: d >= 1, "integers >= 1")
        check(len(set(self.depths)) == len(self.depths), f"--depths: {self.depths} has repeats")
        check(self.steps >= 1, f"--steps {self.steps}: expected an integer >= 1")
        check_values("lrs", self.lrs, lambda r: math.isfinite(r) and r > 0, "finite numbers > 0")
        check(math.isfinite(self.rho) and self.rho > 1, f"--rho {self.rho:g}: expected a ratio > 1")
        check(not (self.no_tune and self.tune_per_level), "--tune-per-level: reads tuned rates; drop --no-tune")
        check_values("seeds", self.seeds, lambda s: s >= 0, "integers >= 0")
        check(0 <= self.test_fraction < 1, f"--test-fraction {self.test_fraction:g}: expected a number in [0, 1)")
        check(self.split_seed >= 0, f"--split-seed {self.split_seed}: expected an integer >= 0")
        for name, value, suffixes in (("plot", self.plot, (".png", ".pdf")), ("csv", self.csv, (".csv",))):
            check(
                value is None or value.endswith(suffixes), f"--{name} {value}: expected a {' or '.join(suffixes)} file"
            )
        from tfovp.datasets.preprocessing import parse

        parse(self.preprocessing)  # ValueError naming what is allowed


def main(argv=None):
    """`python -m tfovp.compare DATA --target COLUMN ...`; returns the DepthComparison
    (exit status 130 or 143 after Ctrl-C or SIGTERM, 1 when the sweep cannot fit in memory
    or an output cannot be written)."""
    from tfovp.console import stop_on_sigterm, stop_status, stop_word, stops_surfaced

    stop_on_sigterm()
    try:
        with stops_surfaced():
            return _compare(argv)
    except KeyboardInterrupt as error:
        print(f"\n{PROG}: {stop_word(error)}; nothing was written", file=sys.stderr)
        raise SystemExit(stop_status(error)) from None
    except MemoryError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        raise SystemExit(1) from None
    except OSError as error:  # e.g. no space left for --csv or --plot
        print(f"{PROG}: error: {error.filename or 'an output'}: {error.strerror or error}", file=sys.stderr)
        raise SystemExit(1) from None


def _compare(argv):
    parser = ArgumentParser(prog=PROG, description=__doc__)
    parser.add_argument(
        "data", help="a .csv or .parquet file with a header row, or ethanol or abalone (the paper's data)"
    )
    given = vars(add_config_flags(parser, Config).parse_args(argv))
    data = given.pop("data")
    builtin = data in BUILTIN and not pathlib.Path(data).exists()
    if builtin:
        given.setdefault("target", BUILTIN[data])
    try:
        config = config_from(Config, given)
        _check_outputs(config)
        x, y, features = _builtin(data, config) if builtin else read_table(data, config.target, config.features)
        (x, y), held_out = split(x, y, config.test_fraction, config.split_seed, config.preprocessing)
        _checked_data(x, y)
    except ValueError as error:
        parser.error(str(error))
    from tfovp.console import import_tensorflow_quietly

    import_tensorflow_quietly()
    held = "" if held_out is None else f" (and {len(held_out[0]):,} held out)"
    print(
        f"{data}: {len(x):,} rows{held}, {len(features)} feature{'s' * (len(features) != 1)}, target {config.target}",
        flush=True,
    )
    result = compare_depths(
        x,
        y,
        config.depths,
        config.loss,
        config.steps,
        config.lrs,
        config.seeds,
        tune=not config.no_tune,
        rho=config.rho,
        tune_per_level=config.tune_per_level,
        held_out=held_out,
    )
    print(result.summary())
    if config.csv:
        import pandas as pd

        from tfovp.files import atomic_write_text

        atomic_write_text(config.csv, pd.DataFrame(result.rows()).to_csv(index=False))
        print(f"wrote {config.csv}")
    if config.plot:
        result.plot(config.plot)
        print(f"wrote {config.plot}")
    return result


BUILTIN = {"ethanol": "concentration", "abalone": "rings"}  # the paper's data sets and their targets


def split(x, y, fraction, seed, preprocessing):
    """((x, y) to train on, (x, y) held out or None): a seeded draw of `fraction` of the
    rows held out, and the preprocessing fitted on the training rows alone, then applied
    to both (no statistic of the held-out rows reaches training)."""
    from tfovp.datasets.preprocessing import fit

    if not fraction:
        return fit(x, y, preprocessing)(x, y), None
    order = np.random.default_rng(seed).permutation(len(x))
    held = max(1, int(round(fraction * len(x))))
    if len(x) - held < 2:
        raise ValueError(f"--test-fraction {fraction:g}: leaves fewer than 2 rows to train on")
    train, test = order[held:], order[:held]
    transform = fit(x[train], y[train], preprocessing)
    return transform(x[train], y[train]), transform(x[test], y[test])


def _builtin(name, config):
    """(x, y, feature names) of a data set of `tfovp.datasets`, before preprocessing."""
    from tfovp.datasets import REGRESSION_LOADERS, DatasetError

    if config.target != BUILTIN[name] or config.features:
        raise ValueError(f"{name}: its target is {BUILTIN[name]}; --target and --features are for tables")
    try:
        x, y = REGRESSION_LOADERS[name]()
    except DatasetError as error:
        raise ValueError(str(error)) from None
    return x, y, [f"x{j}" for j in range(x.shape[1])]


def _check_outputs(config):
    """ValueError naming the flag of an output file that cannot be written (before any
    data is read or anything trains)."""
    from tfovp.files import output_problem

    for name in ("csv", "plot"):
        path = getattr(config, name)
        problem = path and output_problem(path)
        if problem:
            raise ValueError(f"--{name} {path}: {problem}")


__all__ = ["DepthComparison", "compare_depths", "main", "read_table"]

if __name__ == "__main__":
    main()
