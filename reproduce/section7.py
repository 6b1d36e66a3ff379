"""Section 7 / Appendix B checked: the two-coordinate l4 problem where the end-to-end rule
provably accelerates gradient descent (PAPER Sec. 4).

L(w) = 1/4 [(w1 - y1)^4 + (w2 - y2)^4] with y1 >> y2 >> eps1 >> eps2, w(0) = (eps1, eps2).
Plain GD is stable only for eta < 2 / y1^2 (the appendix's bound), so the small
coordinate w2 crawls at that rate. The single-output rule of Eq. 12 with N = 2 at
eta = 1 / (2 eps1 y1^2) moves w1 to y1 in one step and then drives w2 at the effective
rate 1 / (2 eps1 y1): the appendix's speed-up is > y1 / (4 eps1). Speed is the number
of iterations until |w2 - y2| <= y2 / 2 (first reached).

Run as a regression with the sweep trainer: inputs the identity (two examples, e1 and
e2, targets y1 and y2), l4 loss summed over examples, float64. GD runs at fractions of
its bound 2 / y1^2 (the fastest that does not diverge counts); the rule at the
appendix's eta; a real depth-2 net (hidden width 1, the balanced factorization of
w(0), Eq. 7) under GD at that eta and smaller ones (the fastest that does not diverge
counts). Defaults: y1 = 100, y2 = 1, eps1 = 0.01, eps2 = 1e-4, which also satisfy what the
rule's stability on w2 needs after the first step, 3 y2^2 / (2 eps1 y1) < 2.

    python -m reproduce.section7 [--y1 100] [--y2 1] [--eps1 0.01] [--eps2 1e-4] [--steps 20000]
"""

import dataclasses
import math
import pathlib
import time

import numpy as np

from reproduce import cli
from reproduce.study import criteria, outputs
from reproduce.study.claims import ClaimsFile
from reproduce.study.progress import job_scope, sweep_work
from reproduce.study.provenance import RunSummary


@dataclasses.dataclass
class Config:
    y1: float = cli.setting(100.0, "target of the large coordinate (> 10 y2)")
    y2: float = cli.setting(1.0, "target of the small coordinate (> 10 eps1)")
    eps1: float = cli.setting(0.01, "|w1(0)| (> 10 eps2)")
    eps2: float = cli.setting(1e-4, "|w2(0)| (> 0)")
    steps: int = cli.setting(20_000, "iterations per run (>= 10)")
    gd_fractions: tuple[float, ...] = cli.setting((1.0, 0.99, 0.9, 0.5), "GD rates as fractions of 2 / y1^2 (> 0)")
    net_fractions: tuple[float, ...] = cli.setting(
        (1.0, 0.3, 0.1, 0.03, 0.01, 3e-3, 1e-3, 3e-4, 1e-4),
        "depth-2 net rates as fractions of 1 / (2 eps1 y1^2) (> 0; half-decades down to 1e-4)",
    )
    quick: bool = cli.setting(False, "smoke run in seconds: {preset} (flags given win)")

    tag: str = cli.setting("", "suffix of the output files, e.g. y1e3: section7-y1e3.* (letters, digits, . _ -)")

    QUICK = {"y1": 40.0, "y2": 0.5, "eps1": 0.01, "eps2": 1e-4, "steps": 8000}

    def validate(self):
        cli.check(self.y1 > 10 * self.y2, f"--y1 {self.y1:g}: expected > 10 y2 = {10 * self.y2:g}")
        cli.check(self.y2 > 10 * self.eps1, f"--y2 {self.y2:g}: expected > 10 eps1 = {10 * self.eps1:g}")
        cli.check(self.eps1 > 10 * self.eps2, f"--eps1 {self.eps1:g}: expected > 10 eps2 = {10 * self.eps2:g}")
        cli.check(self.eps2 > 0, f"--eps2 {self.eps2:g}: expected a number > 0")
        cli.check(
            3 * self.y2**2 / (2 * self.eps1 * self.y1) < 2,
            f"--y2 {self.y2:g}: the rule is unstable on w2 after its first step unless 3 y2^2 / (2 eps1 y1) < 2",
        )
        cli.check(10 <= self.steps <= cli.MAX_STEPS, f"--steps {self.steps}: expected an integer from 10")
        cli.check_values("gd-fractions", self.gd_fractions, lambda f: math.isfinite(f) and f > 0, "numbers > 0")
        cli.check_values("net-fractions", self.net_fractions, lambda f: math.isfinite(f) and f > 0, "numbers > 0")
        cli.check_tag(self.tag)

    @property
    def name(self):
        return "section7" + (f"-{self.tag}" if self.tag else "")

    @property
    def gd_bound(self):
        return 2 / self.y1**2

    @property
    def rule_rate(self):
        return 1 / (2 * self.eps1 * self.y1**2)

    @property
    def speedup_bound(self):
        return self.y1 / (4 * self.eps1)


@dataclasses.dataclass(frozen=True)
class Trajectories:
    """w1(t), w2(t) of every copy of one sweep (recorded at every step)."""

    name: str
    learning_rates: np.ndarray
    w: np.ndarray  # (steps + 1, copies, 2)
    diverged: np.ndarray

    def time_to_half(self, config, coordinate=1):
        """Per copy, the first step with |w_i - y_i| <= y_i / 2 (inf if never or diverged)."""
        target = (config.y1, config.y2)[coordinate]
        close = np.abs(self.w[:, :, coordinate] - target) <= target / 2
        times = np.where(close.any(axis=0), close.argmax(axis=0), np.inf).astype(float)
        return np.where(self.diverged, np.inf, times)

    def fastest(self, config):
        """(index of the fastest copy for w2, its time), None if every copy diverged."""
        times = self.time_to_half(config)
        alive = ~self.diverged
        if not alive.any():
            return None
        best = int(np.argmin(np.where(alive, times, np.inf)))
        return best, float(times[best])


def _train(config, name, rates, **kwargs):
    from tfovp import initializers
    from tfovp.sweep import sweep

    start = initializers.Balanced(np.array([[config.eps1], [config.eps2]]), seed=0)
    result = sweep(
        np.eye(2),
        np.array([config.y1, config.y2]),
        rates,
        config.steps,
        loss=4,
        reduction="sum",
        dtype="float64",
        initializer=start,
        record_end_to_end=True,
        **kwargs,
    )
    return Trajectories(name, np.asarray(rates, dtype=float), result.end_to_end[..., 0], result.diverged)


def _figure(config, runs, out):
    from matplotlib.figure import Figure

    from reproduce.study.plotting import save

    figure = Figure(figsize=(11, 4.8), layout="constrained")
    axes = figure.subplots(1, 2)
    steps = np.arange(config.steps + 1)
    for run in runs.values():
        best = run.fastest(config)
        if best is None:
            continue
        index, _ = best
        label = f"{run.name} (eta {run.learning_rates[index]:.3g})"
        for coordinate, axis in enumerate(axes):
            target = (config.y1, config.y2)[coordinate]
            axis.plot(steps + 1, run.w[:, index, coordinate] / target, lw=1.4, label=label)
    for coordinate, axis in enumerate(axes):
        axis.axhline(1.0, color="black", ls=":", lw=1)
        axis.axhline(0.5, color="gray", ls="--", lw=0.8)
        axis.set_xscale("log")
        axis.set_xlabel("iteration + 1")
        axis.set_ylabel(f"w{coordinate + 1} / y{coordinate + 1}")
        axis.set_title(
            f"coordinate {coordinate + 1} (target y{coordinate + 1} = {(config.y1, config.y2)[coordinate]:g})",
            fontsize=10,
        )
        axis.grid(alpha=0.3, which="both", lw=0.5)
    figure.legend(*axes[1].get_legend_handles_labels(), loc="outside lower center", ncol=3, fontsize=8)
    figure.suptitle(
        f"Section 7 / App. B: l4, y1 = {config.y1:g}, y2 = {config.y2:g}, eps1 = {config.eps1:g}, "
        f"eps2 = {config.eps2:g}; dashed: half-way, the speed measure",
        fontsize=10,
    )
    save(figure, out / config.name)


def run(config, workdir, job=None):
    with job_scope(job, "section7") as job:
        started, out = time.time(), pathlib.Path(workdir)
        claims_file = ClaimsFile(out)
        claims_file.read()
        runs = _train_all(config, job)
        claims = _claims(config, runs)
        claims_file.replace(config.name, claims, job.command)
        outputs.write_csv(out / f"{config.name}.csv", _trajectories(config, runs), float_format="%.10g")
        _figure(config, runs, out)
        summary = RunSummary.now(config.name, job.command, config, started).to_json(
            gd_bound=config.gd_bound,
            rule_rate=config.rule_rate,
            speedup_bound=config.speedup_bound,
            runs={
                name: {
                    "learning_rates": run.learning_rates.tolist(),
                    "diverged": run.diverged.tolist(),
                    "time_to_half_w2": [None if not np.isfinite(t) else int(t) for t in run.time_to_half(config)],
                    "time_to_half_w1": [None if not np.isfinite(t) else int(t) for t in run.time_to_half(config, 0)],
                }
                for name, run in runs.items()
            },
            claims=[dataclasses.asdict(c) for c in claims],
        )
        outputs.write_json(out / f"{config.name}.json", summary)
        return summary


def _train_all(config, job):
    """{name: run} of plain GD over its rates, the rule at its rate and the depth-2 net."""
    plan = {
        "GD on w": [config.gd_bound * f for f in config.gd_fractions],
        "end-to-end rule, N = 2": [config.rule_rate],
        "depth-2 net, GD": [config.rule_rate * f for f in config.net_fractions],
    }
    job.plan("section7", len(plan), sum(sweep_work(len(r), config.steps, 4) for r in plan.values()))
    runs = {}
    for name, rates in plan.items():
        task = job.start(
            f"{name}: {len(rates)} learning rate(s) x {config.steps:,} iterations", config.steps + 1, len(rates)
        )
        options = (
            {"depth": 2, "update": "end_to_end"}
            if name.startswith("end")
            else ({"depth": 2, "hidden_widths": 1} if name.startswith("depth") else {})
        )
        runs[name] = _train(config, name, rates, progress=task.advance, **options)
        task.done(name)
    return runs


def _claims(config, runs):
    """App. B's claims from the fastest rate of each run."""
    fastest = {name: run.fastest(config) for name, run in runs.items()}
    times = {name: None if best is None else best[1] for name, best in fastest.items()}
    setting = (
        f"y1 = {config.y1:g}, y2 = {config.y2:g}, eps1 = {config.eps1:g}, eps2 = {config.eps2:g}, "
        f"{config.steps:,} iterations, float64"
    )
    claims = criteria.appendix_b(
        times["GD on w"],
        times["end-to-end rule, N = 2"],
        times["depth-2 net, GD"],
        config.speedup_bound,
        config.steps,
        setting,
    )
    return [dataclasses.replace(c, figure=config.name) for c in claims]


def _trajectories(config, runs):
    """w1 and w2 of every run and rate on the first 100 steps and a log-spaced grid."""
    import pandas as pd

    keep = np.unique(
        np.concatenate(
            [np.arange(min(config.steps, 100) + 1), np.geomspace(1, config.steps, 300).astype(int), [config.steps]]
        )
    )
    rows = [
        pd.DataFrame(
            {
                "run": name,
                "learning_rate": rate,
                "step": keep,
                "w1": run.w[keep, c, 0],
                "w2": run.w[keep, c, 1],
                "diverged": bool(run.diverged[c]),
            }
        )
        for name, run in runs.items()
        for c, rate in enumerate(run.learning_rates)
    ]
    return pd.concat(rows, ignore_index=True)


def main(argv=None):
    return cli.main(run, Config, __doc__, argv, prog="python -m reproduce.section7")


if __name__ == "__main__":
    main()
