"""When does depth accelerate? The speed-up of depth-2, 3, 4 nets over the linear model
(`tfovp.speedup`), measured over the variables the paper's theory says control it
(Sec. 7, App. B): the loss exponent p, the depth, the initialization scale, identity and
exactly balanced starts, the feature scaling, the target's transform and centering, a
synthetic problem the linear model solves exactly, and another dataset. One factor is
varied at a time around the default (Ethanol, z-scored features and target, l4, mean
loss, near-zero init N(0, 0.01^2)), plus a few crossed pairs.

Per setting: the four families (depth 1 to 4, hidden width 1, GD, one seed) for the
budget, each tuned (`tfovp.tuning`: the paper's grid, its ends extended, the best rate's
bracket refined to --rho at every level); S(e) of each depth over depth 1 at every level
with both rates tuned, and on the paper's grid alone; L(0)/L* (L(0) = L(W = 0), L* the
float64 optimum; infinite for an exactly solvable problem); and the theory's variable,
the span of the optimum's components along the data's principal directions
(max |v_i . W*| / min |v_i . W*|, v_i the right singular vectors of X: App. B's speed-up
grows with y1/y2). Summaries
across settings as the optimization community compares solvers (STYLE.md): data
profiles (Moré & Wild 2009: the fraction of settings a depth settles below a level
within k iterations) and performance profiles (Dolan & Moré 2002: the fraction of
settings a depth settles within a factor alpha of the fastest depth), each at three
levels.

Exactly balanced init needs a target: it is the linear model's near-zero W(0) (the same
seed), factored exactly (Eq. 7). The synthetic problem is the Sec. 7 problem in d
dimensions: inputs the identity, targets spanning several decades (L* = 0). Its noisy
form has L* > 0: every input twice (X = [I; I], m = 2d) with targets w*_i + n and
w*_i - n, so that the l_p optimum is exactly w* (by symmetry) and L* = n^p / p > 0,
the components of w* spanning 1, 10^2 or 10^4. The uncentered settings cross min-max and
max-abs features with min-max and max-abs targets, with and without log1p.

Budgets from one run: with --budgets 20000,100000 every family also keeps, after each
of those steps, the last step its loss exceeded each level (`tfovp.sweep`'s snapshots),
so that the run cut at a budget is exactly a run of that budget (`CurveFamily.truncated`),
and the tuning searches again within each budget (a rate that diverged after it counts
as stable there), training what it adds for the whole run (`tune_family(budgets=...)`):
each cut is tuned to rho as a run of that budget would be. With --resume, families
stored before that search go on from their rates. The comparisons at each budget are
written beside the run's (`<name>_budgets.csv`, the JSON's "budgets", with
"tuned_within" saying whether that search was made).

    python -m reproduce.acceleration [--quick] [--steps 100000] [--settings default,p2,...] [--tag 1e6]
        [--budgets 20000,100000] [--cluster ray [--address HOST:6379]]
"""

import dataclasses
import itertools
import math
import pathlib
import time

import numpy as np

from reproduce import cli
from reproduce.study import criteria, outputs
from reproduce.study.cluster import run_units
from reproduce.study.progress import job_scope, sweep_work
from reproduce.study.provenance import RunSummary, digest
from reproduce.study.runs import PAPER_GRID, FamilyRunner
from reproduce.study.store import RecordStore
from tfovp import speedup
from tfovp.families import CurveFamily, CurveSpec
from tfovp.tuning import RHO

DEPTHS = (1, 2, 3, 4)
SUMMARY_LEVELS = (0.1, 0.01, 0.001)  # the three levels of the tables and profiles
NOISE = 0.1  # the noisy synthetic settings' target noise (the largest component is 1)


@dataclasses.dataclass(frozen=True)
class Setting:
    """One point of the map: a problem and an initialization."""

    name: str
    factor: str  # which variable it moves away from the default ("default" for the default)
    dataset: str = "ethanol"  # "ethanol", "abalone" or "synthetic"
    preprocessing: str = "standardize"
    p: float = 4.0
    initializer: str = "near_zero"
    init_std: float = 0.01
    decades: float = 0.0  # synthetic only: the targets span this many decades
    dimension: int = 16  # synthetic only
    noise: float = 0.0  # synthetic only: > 0 gives every input twice, targets w* +- noise (L* > 0)

    def problem(self, data_dir):
        from tfovp.problem import Problem

        if self.dataset == "synthetic":  # Sec. 7 in d dimensions: y_i from 1 down to 10^-decades
            optimum = np.logspace(0.0, -self.decades, self.dimension)[:, None]
            name = f"synthetic-{self.decades:g}dec"
            if self.noise == 0:
                return Problem(np.eye(self.dimension), optimum, name, "none", "mean")
            inputs = np.vstack([np.eye(self.dimension)] * 2)
            targets = np.vstack([optimum + self.noise, optimum - self.noise])
            return Problem(inputs, targets, f"{name}-noise{self.noise:g}", "none", "mean")
        return Problem.load(self.dataset, self.preprocessing, "mean", data_dir)

    def specs(self):
        return [
            CurveSpec(f"depth {n}", depth=n, loss=self.p, initializer=self.initializer, init_std=self.init_std)
            for n in DEPTHS
        ]


def _settings():
    base = Setting("default", "default")
    out = [base]

    def vary(name, factor, **changes):
        out.append(dataclasses.replace(base, name=name, factor=factor, **changes))

    for p in (2.0, 3.0, 6.0):
        vary(f"p{p:g}", "p", p=p)
    for std in (1e-3, 1e-1):
        vary(f"std{std:g}", "init", init_std=std)
    vary("identity", "init", initializer="identity")
    vary("balanced", "init", initializer="balanced-linear")
    for scaling in ("minmax", "maxabs", "unit-norm"):
        vary(f"features-{scaling}", "features", preprocessing=f"{scaling}:standardize")
    vary("target-uncentered", "target", preprocessing="standardize:minmax")
    vary("target-log", "target", preprocessing="standardize:center:log1p")
    vary("target-log-uncentered", "target", preprocessing="standardize:minmax:log1p")
    vary("abalone", "dataset", dataset="abalone")
    vary("synthetic-2dec", "synthetic", dataset="synthetic", preprocessing="none", decades=2.0)
    vary("synthetic-4dec", "synthetic", dataset="synthetic", preprocessing="none", decades=4.0)
    # The theory's variable with L* > 0: the optimum's span at a fixed noise.
    for decades in (0.0, 2.0, 4.0):
        vary(
            f"noisy-{decades:g}dec", "synthetic, L* > 0", dataset="synthetic", preprocessing="none", decades=decades,
            noise=NOISE,
        )  # fmt: skip
    # Uncentered features with uncentered targets (a dominant direction along the mean).
    for features, target, transform in itertools.product(("minmax", "maxabs"), ("minmax", "maxabs"), ("", ":log1p")):
        vary(f"uncentered-{features}-{target}{transform.replace(':', '-')}", "uncentered",
             preprocessing=f"{features}:{target}{transform}")  # fmt: skip
    # Crossed pairs: the loss exponent with the features, and the init scale with the flattest
    # problem (per-example unit norm, where the linear model fits best).
    vary("p2-unit-norm", "p x features", p=2.0, preprocessing="unit-norm:standardize")
    vary("p6-unit-norm", "p x features", p=6.0, preprocessing="unit-norm:standardize")
    vary("std0.1-unit-norm", "init x features", init_std=1e-1, preprocessing="unit-norm:standardize")
    return {s.name: s for s in out}


SETTINGS = _settings()


@dataclasses.dataclass
class Config(cli.ClusterConfig):
    settings: tuple[str, ...] = cli.setting(
        tuple(SETTINGS), "settings to measure (comma-separated names; default: all " + str(len(SETTINGS)) + ")"
    )
    steps: int = cli.setting(100_000, "iterations per family (>= 1)")
    lrs: tuple[float, ...] = cli.setting(PAPER_GRID, "learning-rate grid (> 0), best rate per level")
    seed: int = cli.setting(0, "initialization seed (>= 0)")
    rho: float = cli.setting(RHO, "tune every family's learning rate to within this ratio (> 1; tfovp.tuning)")
    no_tune: bool = cli.setting(False, "take the learning-rate grid as given (speed-ups on the grid alone)")
    budgets: tuple[int, ...] = cli.setting(
        (), "shorter budgets (< --steps) at which the same runs are tuned and compared again, e.g. 20000,100000"
    )
    tag: str = cli.setting("", "suffix of the output files, e.g. 1e6: acceleration-1e6.*")
    data_dir: str | None = cli.setting(None, "folder with the datasets, searched before $TFOVP_DATA_DIR")
    resume: bool = cli.setting(False, "reuse families finished by an earlier (interrupted) run")
    quick: bool = cli.setting(False, "smoke run in seconds: {preset} (flags given win)")

    QUICK = {
        "settings": ("default", "p2", "synthetic-2dec", "noisy-2dec"),
        "steps": 300,
        "lrs": (1e-3, 1e-2, 1e-1),
        "rho": 2.0,
    }

    def validate(self):
        cli.check_values(
            "settings",
            self.settings,
            lambda s: s in SETTINGS,
            ", ".join(SETTINGS),
        )
        cli.check(self.seed >= 0, f"--seed {self.seed}: expected an integer >= 0")
        cli.check_values(
            "budgets", self.budgets, lambda b: 1 <= b < self.steps, f"integers from 1 to --steps - 1 = {self.steps - 1}"
        )
        check_run_flags(self)

    @property
    def name(self):
        return "acceleration" + (f"-{self.tag}" if self.tag else "")

    @property
    def tuning_ratio(self):
        return None if self.no_tune else self.rho


def check_run_flags(config):
    """The checks of the flags a map run shares with its runs over seeds
    (`reproduce.acceleration_seeds`): budget, grid, rho, tag, data folder, cluster."""
    cli.check(1 <= config.steps <= cli.MAX_STEPS, f"--steps {config.steps}: expected an integer from 1")
    cli.check_values("lrs", config.lrs, lambda r: math.isfinite(r) and r > 0, "finite numbers > 0")
    cli.check(math.isfinite(config.rho) and config.rho > 1, f"--rho {config.rho:g}: expected a ratio > 1")
    cli.check_tag(config.tag)
    cli.check(
        config.data_dir is None or pathlib.Path(config.data_dir).is_dir(),
        f"--data-dir {config.data_dir}: no such folder",
    )
    config.check_cluster()


@dataclasses.dataclass
class Measured:
    """One setting's families and what the map reads off them (tuned: both families'
    rates tuned; grid: the paper's grid alone, equal to the tuned values without tuning)."""

    setting: Setting
    initial_loss: float  # L(0) = L(W = 0)
    optimum: float  # L*
    span: float  # max / min |component of W* along a principal direction of X|
    comparisons: dict  # depth (2..4) -> criteria.Comparison over depth 1
    times: dict  # depth -> (J,) tuned T at every level
    grid_times: dict  # depth -> (J,) T on the grid alone
    crossovers: dict  # depth -> t_x or None (tuned)
    all_diverged: dict  # depth -> bool
    training_seconds: float  # of the setting's families, XLA compilation included
    non_monotone: dict = dataclasses.field(default_factory=dict)  # depth -> rates that diverged below a stable one
    at_budgets: dict = dataclasses.field(default_factory=dict)  # shorter budget -> Measured of the run cut there
    tuned_within: bool = False  # (a cut) every family's tuning also searched within this budget

    @property
    def ratio(self):
        return self.initial_loss / self.optimum if self.optimum > 0 else float("inf")

    @property
    def speedups(self):
        """depth -> [SpeedUp] over depth 1, both rates tuned."""
        return {n: c.speedups for n, c in self.comparisons.items()}


def optimum_span(problem, p):
    """max / min |v_i . W*| over the right singular vectors v_i of X with a non-zero
    singular value (first output): how far one direction of the optimum dominates."""
    _, values, right = np.linalg.svd(problem.x, full_matrices=False)
    keep = values > 1e-10 * values.max()
    components = np.abs(right[keep] @ problem.optimal_kernel(p)[:, 0])
    return float(components.max() / components.min()) if components.min() > 0 else float("inf")


def runner(setting, config, workdir, job):
    """The FamilyRunner of one setting's families (a run that keeps shorter budgets has a
    store of its own: its recorded steps differ)."""
    problem = setting.problem(config.data_dir)
    budgets = tuple(sorted(set(config.budgets)))
    folder = digest(
        {
            "setting": dataclasses.asdict(setting),
            "lrs": config.lrs,
            "steps": config.steps,
            **({"budgets": list(budgets)} if budgets else {}),
        }
    )
    store = RecordStore(pathlib.Path(workdir) / ".curves" / "acceleration" / folder, CurveFamily.from_json)
    return FamilyRunner(
        problem,
        store,
        steps=config.steps,
        grid=config.lrs,
        seed=config.seed,
        level=0.2,
        rho=config.tuning_ratio,
        resume=config.resume,
        job=job,
        budgets=budgets,
    )


def measure(setting, runner):
    """The setting's Measured at the runner's budget, and at each shorter budget it keeps
    (the same families cut there and tuned within it)."""
    families = {spec.depth: runner.family(spec) for spec in setting.specs()}
    measured = measure_families(setting, runner.problem, families, runner.steps)
    measured.at_budgets = {
        b: measure_families(setting, runner.problem, {n: f.truncated(b) for n, f in families.items()}, b)
        for b in runner.budgets
    }
    for b, cut in measured.at_budgets.items():
        cut.tuned_within = all(b in f.tuned_within for f in families.values())
    return measured


def measure_families(setting, problem, families, budget):
    """What the map reads off one setting's families (depth -> CurveFamily) of `budget`."""
    base = families[1]
    tuned = {n: f.with_tuned() for n, f in families.items()}
    return Measured(
        setting,
        problem.reference_loss(setting.p),
        problem.optimum(setting.p),
        optimum_span(problem, setting.p),
        {n: criteria.compare(f"depth {n}", families[n], "depth 1", base, budget) for n in DEPTHS[1:]},
        {n: speedup.family_times(f) for n, f in tuned.items()},
        {n: speedup.family_times(f) for n, f in families.items()},
        {n: speedup.crossover(base.steps, speedup.envelope(tuned[1]), speedup.envelope(tuned[n])) for n in DEPTHS[1:]},
        {n: speedup.all_diverged(f) for n, f in families.items()},
        sum(f.training_seconds for f in families.values()),
        {n: f.tuning().non_monotone_divergence() for n, f in families.items() if f.tuning() is not None},
    )


def rows(measured, budget=None):
    """One CSV row per setting, depth > 1 and level: S with both rates tuned (and the
    tuned rates), and S on the grid alone; with `budget`, of the runs cut at that budget
    (a first column says which)."""
    out = []
    for m in measured:
        if budget is not None:
            m = m.at_budgets[budget]
        for n, c in m.comparisons.items():
            grid = c.grid_speedups or c.speedups
            rates = zip(c.baseline_rates or [None] * len(grid), c.contender_rates or [None] * len(grid))
            for index, (s, g, (rb, rc)) in enumerate(zip(c.speedups, grid, rates)):
                out.append(
                    {
                        **({} if budget is None else {"budget": budget}),
                        "setting": m.setting.name,
                        "factor": m.setting.factor,
                        "depth": n,
                        "level": s.level,
                        "T_linear": s.baseline_time,
                        "T_depth": s.contender_time,
                        "speedup": s.value,
                        "kind": s.kind,
                        "lr_linear": None if rb is None else rb.learning_rate,
                        "lr_depth": None if rc is None else rc.learning_rate,
                        "linear_near_edge": None if rb is None else rb.near_edge,
                        "depth_near_edge": None if rc is None else rc.near_edge,
                        **outputs.bracket_columns("linear", rb),
                        **outputs.bracket_columns("depth", rc),
                        **outputs.one_rate_columns(c, index, ("linear", "depth")),
                        "grid_T_linear": g.baseline_time,
                        "grid_T_depth": g.contender_time,
                        "grid_speedup": g.value,
                        "grid_kind": g.kind,
                        "rho": c.rho,
                        "crossover": m.crossovers[n],
                        "initial_loss": m.initial_loss,
                        "optimum": m.optimum,
                        "initial_over_optimum": m.ratio,
                        "optimum_span": m.span,
                        "all_diverged": m.all_diverged[1] or m.all_diverged[n],
                    }
                )
    return out


def profiles(measured, level_index):
    """(data profile, performance profile) at one level: for each depth, the sorted times
    over settings (inf: not reached) and the sorted ratios to the fastest depth."""
    times = np.array([[m.times[n][level_index] for n in DEPTHS] for m in measured])  # (settings, depths)
    best = times.min(axis=1, keepdims=True)
    with np.errstate(invalid="ignore"):  # inf / inf where no depth settles: masked below
        ratios = np.where(np.isfinite(times), np.maximum(times, 1.0) / np.maximum(best, 1.0), np.inf)
    return {n: np.sort(times[:, i]) for i, n in enumerate(DEPTHS)}, {
        n: np.sort(ratios[:, i]) for i, n in enumerate(DEPTHS)
    }


def _figures(measured, config, out):
    """The map (speed-up against L(0)/L*) and the data and performance profiles."""
    levels = measured[0].speedups[DEPTHS[1]] if measured[0].times else []
    index = {round(s.level, 12): j for j, s in enumerate(levels)}
    _map_figure(measured, config, index, out / config.name)
    _theory_figure(measured, config, index, out / f"{config.name}_theory")
    _profiles_figure(measured, config, index, out / f"{config.name}_profiles")


def _map_figure(measured, config, index, path_stem):
    """Speed-up over the linear model against L(0)/L*, one panel per summary level."""
    from matplotlib.figure import Figure

    from reproduce.study.plotting import save

    figure = Figure(figsize=(13, 4.8), layout="constrained")
    axes = figure.subplots(1, len(SUMMARY_LEVELS), sharey=True)
    for axis, level in zip(axes, SUMMARY_LEVELS):
        for n, marker in zip(DEPTHS[1:], "os^"):
            for grid in (False, True):
                points = _points(measured, n, index[round(level, 12)], lambda m: min(m.ratio, 1e8), grid)
                if grid and points[0]:  # the grid's values, hollow, where the families were tuned
                    axis.scatter(*points, marker=marker, s=22, facecolors="none", edgecolors="gray", lw=0.6)
                elif not grid:  # exactly solvable problems (L* = 0) drawn at the right edge
                    axis.scatter(*points, marker=marker, s=22, label=f"depth {n}", alpha=0.8)
        for value, style in ((1, "-"), (2, "--"), (10, ":")):
            axis.axhline(value, color="gray", lw=0.8, ls=style)
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xlim(1, 3e8)
        if not axis.collections or all(len(c.get_offsets()) == 0 for c in axis.collections):
            axis.set_ylim(1e-2, 1e2)  # nothing reached at this level: keep a readable empty panel
        axis.set_xlabel("L(0) / L*  (1e8: exactly solvable)")
        axis.set_title(f"level e = {level:g}", fontsize=9)
        axis.grid(alpha=0.3, which="both", lw=0.5)
    axes[0].set_ylabel("speed-up over the linear model")
    figure.legend(*axes[-1].get_legend_handles_labels(), loc="outside lower center", ncol=3, fontsize=8)
    figure.suptitle(
        f"Acceleration map: {len(measured)} settings, {config.steps:,} iterations, best rate per level (filled: "
        "both rates tuned; grey hollow: the paper's grid alone; bounds drawn as points)",
        fontsize=10,
    )
    save(figure, path_stem)


def _points(measured, depth, j, x_of, grid=False):
    """(xs, ys) of the map: S of `depth` over depth 1 at level index `j` per setting (the
    grid's S if `grid`, only where the families were tuned), skipping no-data settings."""
    xs, ys = [], []
    for m in measured:
        c = m.comparisons[depth]
        if grid and not c.tuned:
            continue
        s = (c.grid_speedups if grid else c.speedups)[j]
        if s.value is None or m.all_diverged[1] or m.all_diverged[depth]:
            continue
        xs.append(x_of(m))
        ys.append(s.value)
    return xs, ys


def _theory_figure(measured, config, index, path_stem):
    """Tuned S against the theory's variables: the span of the optimum's components along
    the data's principal directions (top) and L(0)/L* (bottom), one column per level."""
    from matplotlib.figure import Figure

    from reproduce.study.plotting import save

    figure = Figure(figsize=(13, 8), layout="constrained")
    axes = figure.subplots(2, len(SUMMARY_LEVELS), sharey=True)
    variables = (  # (axis label, x of a setting, x range)
        ("span of W*: max/min |v_i . W*| (v_i: principal dirs of X)", lambda m: min(m.span, 1e12), (0.5, 3e12)),
        ("L(0) / L*  (1e8: exactly solvable)", lambda m: min(m.ratio, 1e8), (1, 3e8)),
    )
    for row, (name, x_of, limits) in zip(axes, variables):
        for axis, level in zip(row, SUMMARY_LEVELS):
            for n, marker in zip(DEPTHS[1:], "os^"):
                axis.scatter(*_points(measured, n, index[round(level, 12)], x_of), marker=marker, s=22,
                             label=f"depth {n}", alpha=0.8)  # fmt: skip
            for m in measured:  # name the settings of the depth-2 points
                point = _points([m], 2, index[round(level, 12)], x_of)
                if point[0]:
                    axis.annotate(m.setting.name, (point[0][0], point[1][0]), fontsize=5, alpha=0.7)
            for value, style in ((1, "-"), (2, "--"), (10, ":")):
                axis.axhline(value, color="gray", lw=0.8, ls=style)
            axis.set(xscale="log", yscale="log", xlim=limits)
            axis.set_xlabel(name, fontsize=8)
            axis.set_title(f"level e = {level:g}, both rates tuned", fontsize=9)
            axis.grid(alpha=0.3, which="both", lw=0.5)
        row[0].set_ylabel("speed-up over the linear model")
    figure.legend(*axes[0, 0].get_legend_handles_labels(), loc="outside lower center", ncol=3, fontsize=8)
    figure.suptitle(
        f"When depth accelerates: {len(measured)} settings, {config.steps:,} iterations, rates tuned", fontsize=10
    )
    save(figure, path_stem)


def _profiles_figure(measured, config, index, path_stem):
    """Data profiles (fraction of settings settled by k iterations) and performance
    profiles (fraction within alpha of the fastest depth) at the summary levels."""
    from matplotlib.figure import Figure

    from reproduce.study.plotting import save

    figure = Figure(figsize=(13, 7.4), layout="constrained")
    axes = figure.subplots(2, len(SUMMARY_LEVELS))
    for col, level in enumerate(SUMMARY_LEVELS):
        data, performance = profiles(measured, index[round(level, 12)])
        count = len(measured)
        for n in DEPTHS:
            reached = data[n][np.isfinite(data[n])]
            axes[0, col].step(
                np.r_[1, np.maximum(reached, 1), config.steps],
                np.r_[0, np.arange(1, reached.size + 1), reached.size] / count,
                where="post",
                label=f"depth {n}",
            )
            finite = performance[n][np.isfinite(performance[n])]
            axes[1, col].step(
                np.r_[1, finite, 1e4],
                np.r_[0, np.arange(1, finite.size + 1), finite.size] / count,
                where="post",
                label=f"depth {n}",
            )
        axes[0, col].set_xscale("log")
        axes[0, col].set_xlim(1, config.steps)
        axes[1, col].set_xlim(1, 1e4)
        axes[0, col].set_xlabel("iterations k")
        axes[0, col].set_title(f"data profile, e = {level:g}", fontsize=9)
        axes[1, col].set_xscale("log")
        axes[1, col].set_xlabel("alpha (times the fastest depth's iterations)")
        axes[1, col].set_title(f"performance profile, e = {level:g}", fontsize=9)
        for axis in axes[:, col]:
            axis.set_ylim(-0.02, 1.02)
            axis.grid(alpha=0.3, which="both", lw=0.5)
    axes[0, 0].set_ylabel("fraction of settings settled by k")
    axes[1, 0].set_ylabel("fraction within alpha of the fastest")
    figure.legend(*axes[0, -1].get_legend_handles_labels(), loc="outside lower center", ncol=4, fontsize=8)
    save(figure, path_stem)


def run(config, workdir, job=None):
    with job_scope(job, config.name) as job:
        started, out = time.time(), pathlib.Path(workdir)
        chosen = [SETTINGS[name] for name in config.settings]
        job.plan(
            config.name,
            len(chosen) * len(DEPTHS),
            sum(sweep_work(len(config.lrs), config.steps, s.p, config.tuning_ratio is not None) for s in chosen)
            * len(DEPTHS),
        )
        runners = {setting.name: runner(setting, config, out, job) for setting in chosen}
        if config.cluster_target() is not None:  # every family of every setting at once
            units = [u for s in chosen for u in runners[s.name].units(s.specs(), context=s.name)]
            run_units(units, config.cluster_target(), job)
        measured = []
        for setting in chosen:
            job.write(f"setting {setting.name}")
            measured.append(measure(setting, runners[setting.name]))
        import pandas as pd

        outputs.write_csv(out / f"{config.name}.csv", pd.DataFrame(rows(measured)))
        if config.budgets:
            table = [row for b in sorted(set(config.budgets)) for row in rows(measured, b)]
            outputs.write_csv(out / f"{config.name}_budgets.csv", pd.DataFrame(table))
        _figures(measured, config, out)
        summary = RunSummary.now(
            config.name, job.command, config, started, sum(m.training_seconds for m in measured)
        ).to_json(
            settings={
                m.setting.name: {
                    "setting": dataclasses.asdict(m.setting),
                    "initial_loss": m.initial_loss,
                    "optimum": m.optimum,
                    "initial_over_optimum": m.ratio,
                    "optimum_span": m.span,
                    **_read_off(m),
                    "training_seconds": round(m.training_seconds, 1),
                    **(
                        {
                            "budgets": {
                                str(b): {**_read_off(mb), "tuned_within": mb.tuned_within}
                                for b, mb in m.at_budgets.items()
                            }
                        }
                        if m.at_budgets
                        else {}
                    ),
                }
                for m in measured
            },
        )
        outputs.write_json(out / f"{config.name}.json", summary)
        return summary


def _read_off(measured):
    """The JSON of what one budget of a setting shows (the tuned rates are in the CSV)."""
    return {
        "crossovers": measured.crossovers,
        "comparisons": {n: c.to_json(rates=False) for n, c in measured.comparisons.items()},
        "all_diverged": measured.all_diverged,
        "non_monotone_divergence": measured.non_monotone,
    }


def main(argv=None):
    return cli.main(run, Config, __doc__, argv, prog="python -m reproduce.acceleration")


if __name__ == "__main__":
    main()
