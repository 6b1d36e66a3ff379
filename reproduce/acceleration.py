"""When does depth accelerate? The speed-up of depth-2, 3, 4 nets over the linear model
(`tfovp.study.speedup`), measured over the variables the paper's theory says control it
(Sec. 7, App. B): the loss exponent p, the depth, the initialization scale, identity and
exactly balanced starts, the feature scaling, the target's transform and centering, a
synthetic problem the linear model solves exactly, and another dataset. One factor is
varied at a time around the default (Ethanol, z-scored features and target, l4, mean
loss, near-zero init N(0, 0.01^2)), plus a few crossed pairs.

Per setting: the four families (depth 1 to 4, hidden width 1, GD, the paper's grid, one
seed) for the budget; S(e) of each depth over depth 1 at every level; L(0)/L* (L(0) =
L(W = 0), L* the float64 optimum; infinite for an exactly solvable problem). Summaries
across settings as the optimization community compares solvers (STYLE.md): data
profiles (Moré & Wild 2009: the fraction of settings a depth settles below a level
within k iterations) and performance profiles (Dolan & Moré 2002: the fraction of
settings a depth settles within a factor alpha of the fastest depth), each at three
levels.

Exactly balanced init needs a target: it is the linear model's near-zero W(0) (the same
seed), factored exactly (Eq. 7). The synthetic problem is the Sec. 7 problem in d
dimensions: inputs the identity, targets spanning several decades.

    python -m reproduce.acceleration [--quick] [--steps 100000] [--settings default,p2,...] [--tag 1e6]
        [--cluster ray [--address HOST:6379]]
"""

import dataclasses
import math
import pathlib
import time

import numpy as np

from reproduce import cli
from tfovp.study import outputs, speedup
from tfovp.study.cluster import run_units
from tfovp.study.progress import job_scope, sweep_work
from tfovp.study.provenance import digest, machine, versions
from tfovp.study.records import CurveFamily, CurveSpec
from tfovp.study.runs import PAPER_GRID, FamilyRunner
from tfovp.study.store import RecordStore

DEPTHS = (1, 2, 3, 4)
SUMMARY_LEVELS = (0.1, 0.01, 0.001)  # the three levels of the tables and profiles


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

    def problem(self, data_dir):
        from tfovp.study.problem import Problem

        if self.dataset == "synthetic":  # Sec. 7 in d dimensions: y_i from 1 down to 10^-decades
            targets = np.logspace(0.0, -self.decades, self.dimension)[:, None]
            return Problem(np.eye(self.dimension), targets, f"synthetic-{self.decades:g}dec", "none", "mean")
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
    tag: str = cli.setting("", "suffix of the output files, e.g. 1e6: acceleration-1e6.*")
    data_dir: str | None = cli.setting(None, "folder with the datasets, searched before $TFOVP_DATA_DIR")
    resume: bool = cli.setting(False, "reuse families finished by an earlier (interrupted) run")
    quick: bool = cli.setting(False, "smoke run in seconds: {preset} (flags given win)")

    QUICK = {"settings": ("default", "p2", "synthetic-2dec"), "steps": 300, "lrs": (1e-3, 1e-2, 1e-1)}

    def validate(self):
        cli.check_values(
            "settings",
            self.settings,
            lambda s: s in SETTINGS,
            ", ".join(SETTINGS),
        )
        cli.check(1 <= self.steps <= cli.MAX_STEPS, f"--steps {self.steps}: expected an integer from 1")
        cli.check_values("lrs", self.lrs, lambda r: math.isfinite(r) and r > 0, "finite numbers > 0")
        cli.check(self.seed >= 0, f"--seed {self.seed}: expected an integer >= 0")
        cli.check_tag(self.tag)
        cli.check(
            self.data_dir is None or pathlib.Path(self.data_dir).is_dir(), f"--data-dir {self.data_dir}: no such folder"
        )
        self.check_cluster()

    @property
    def name(self):
        return "acceleration" + (f"-{self.tag}" if self.tag else "")


@dataclasses.dataclass
class Measured:
    """One setting's families and what the map reads off them."""

    setting: Setting
    initial_loss: float  # L(0) = L(W = 0)
    optimum: float  # L*
    times: dict  # depth -> (J,) T at every level
    speedups: dict  # depth (2..4) -> list of SpeedUp over depth 1
    crossovers: dict  # depth -> t_x or None
    all_diverged: dict  # depth -> bool
    training_seconds: float  # of the setting's families, XLA compilation included

    @property
    def ratio(self):
        return self.initial_loss / self.optimum if self.optimum > 0 else float("inf")


def runner(setting, config, workdir, job):
    """The FamilyRunner of one setting's families."""
    problem = setting.problem(config.data_dir)
    folder = digest({"setting": dataclasses.asdict(setting), "lrs": config.lrs, "steps": config.steps})
    store = RecordStore(pathlib.Path(workdir) / ".curves" / "acceleration" / folder, CurveFamily.from_json)
    return FamilyRunner(
        problem, store, steps=config.steps, grid=config.lrs, seed=config.seed, level=0.2, resume=config.resume, job=job
    )


def measure(setting, runner):
    problem = runner.problem
    families = {spec.depth: runner.family(spec, extend_edges=False) for spec in setting.specs()}
    times = {n: speedup.family_times(f) for n, f in families.items()}
    base = families[1]
    return Measured(
        setting,
        problem.reference_loss(setting.p),
        problem.optimum(setting.p),
        times,
        {n: speedup.speedups(times[1], times[n], runner.steps, base.levels) for n in DEPTHS[1:]},
        {n: speedup.crossover(base.steps, speedup.envelope(base), speedup.envelope(families[n])) for n in DEPTHS[1:]},
        {n: speedup.all_diverged(f) for n, f in families.items()},
        sum(f.training_seconds for f in families.values()),
    )


def rows(measured):
    """One CSV row per setting, depth > 1 and level."""
    out = []
    for m in measured:
        for n, values in m.speedups.items():
            for s in values:
                out.append(
                    {
                        "setting": m.setting.name,
                        "factor": m.setting.factor,
                        "depth": n,
                        "level": s.level,
                        "T_linear": s.baseline_time,
                        "T_depth": s.contender_time,
                        "speedup": s.value,
                        "kind": s.kind,
                        "crossover": m.crossovers[n],
                        "initial_loss": m.initial_loss,
                        "optimum": m.optimum,
                        "initial_over_optimum": m.ratio,
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
    _profiles_figure(measured, config, index, out / f"{config.name}_profiles")


def _map_figure(measured, config, index, path_stem):
    """Speed-up over the linear model against L(0)/L*, one panel per summary level."""
    from matplotlib.figure import Figure

    from tfovp.study.plotting import save

    figure = Figure(figsize=(13, 4.8), layout="constrained")
    axes = figure.subplots(1, len(SUMMARY_LEVELS), sharey=True)
    for axis, level in zip(axes, SUMMARY_LEVELS):
        for n, marker in zip(DEPTHS[1:], "os^"):
            xs, ys, kinds = [], [], []
            for m in measured:
                s = m.speedups[n][index[round(level, 12)]]
                if s.value is None or m.all_diverged[1] or m.all_diverged[n]:
                    continue
                xs.append(min(m.ratio, 1e8))  # exactly solvable problems (L* = 0) drawn at the right edge
                ys.append(s.value)
                kinds.append(s.kind)
            axis.scatter(xs, ys, marker=marker, s=22, label=f"depth {n}", alpha=0.8)
        for value, style in ((1, "-"), (2, "--"), (10, ":")):
            axis.axhline(value, color="gray", lw=0.8, ls=style)
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xlim(1, 3e8)
        if not axis.collections or all(len(c.get_offsets()) == 0 for c in axis.collections):
            axis.set_ylim(1e-2, 1e2)  # nothing reached at this level: keep a readable empty panel
        axis.set_xlabel("L(0) / L*  (1e8: exactly solvable)")
        axis.set_title(f"level e = {level:g} (bounds included as points)", fontsize=9)
        axis.grid(alpha=0.3, which="both", lw=0.5)
    axes[0].set_ylabel("speed-up over the linear model")
    figure.legend(*axes[-1].get_legend_handles_labels(), loc="outside lower center", ncol=3, fontsize=8)
    figure.suptitle(
        f"Acceleration map: {len(measured)} settings, {config.steps:,} iterations, best rate per level", fontsize=10
    )
    save(figure, path_stem)


def _profiles_figure(measured, config, index, path_stem):
    """Data profiles (fraction of settings settled by k iterations) and performance
    profiles (fraction within alpha of the fastest depth) at the summary levels."""
    from matplotlib.figure import Figure

    from tfovp.study.plotting import save

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
            sum(sweep_work(len(config.lrs), config.steps, s.p) * len(DEPTHS) for s in chosen),
        )
        runners = {setting.name: runner(setting, config, out, job) for setting in chosen}
        if config.cluster_target() is not None:  # every family of every setting at once
            units = [u for s in chosen for u in runners[s.name].units(s.specs(), extend_edges=False, context=s.name)]
            run_units(units, config.cluster_target(), job)
        measured = []
        for setting in chosen:
            job.write(f"setting {setting.name}")
            measured.append(measure(setting, runners[setting.name]))
        import pandas as pd

        outputs.write_csv(out / f"{config.name}.csv", pd.DataFrame(rows(measured)))
        _figures(measured, config, out)
        summary = {
            "figure": config.name,
            "command": job.command,
            "config": dataclasses.asdict(config),
            "versions": versions(),
            "machine": machine(),
            "elapsed_seconds": round(time.time() - started, 1),
            "training_seconds": round(sum(m.training_seconds for m in measured), 1),
            "settings": {
                m.setting.name: {
                    "setting": dataclasses.asdict(m.setting),
                    "initial_loss": m.initial_loss,
                    "optimum": m.optimum,
                    "initial_over_optimum": m.ratio,
                    "crossovers": m.crossovers,
                    "all_diverged": m.all_diverged,
                    "training_seconds": round(m.training_seconds, 1),
                }
                for m in measured
            },
        }
        outputs.write_json(out / f"{config.name}.json", summary)
        return summary


def main(argv=None):
    return cli.main(run, Config, __doc__, argv, prog="python -m reproduce.acceleration")


if __name__ == "__main__":
    main()
