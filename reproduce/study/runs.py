"""Curves of the paper's linear experiments: families (`tfovp.families`: one `CurveSpec`
swept over learning rates and seeds, tuned) trained as cluster units or by a runner that
keeps finished families in a store so that an interrupted command loses nothing
(`FamilyRunner`).

Tuning (`tfovp.tuning`): a family on a grid is trained on the grid, then at the rates
the protocol adds (grid ends extended x5, the best rate's bracket refined to a ratio
rho, at every tracked level); the grid's copies stay the family, the added ones are kept
beside them (`CurveFamily.tuned`). Threshold verdicts read the grid; speed-ups are
reported on both.
"""

import numpy as np

from reproduce.study.claims import fmt_iterations
from reproduce.study.criteria import fmt_time
from reproduce.study.progress import Job, copy_step_work, sweep_work
from tfovp import speedup, tuning
from tfovp.families import at_rates, train_family, tune_family

PAPER_GRID = tuning.PAPER_GRID


def train_unit(spec, problem, steps, grid, seeds, dtype, rho, budgets=()):
    """One family as a cluster unit (`reproduce.study.cluster`): `train_family`, tuned when
    `rho` is given (as `FamilyRunner.family` does)."""

    def train(rates, stage="grid"):
        return train_family(
            at_rates(spec, rates, grid), problem, steps=steps, grid=grid, seeds=seeds, dtype=dtype, budgets=budgets
        )

    if rho is None or spec.learning_rates is not None:
        return train(grid)
    return tune_family(train, grid, speedup.LEVELS, rho, budgets)


class FamilyRunner:
    """Trains the curve families of a figure on one problem, or reuses them: a family
    finished by an earlier command is reloaded with `resume`, and one finished by this
    command (`job.written`; e.g. Figure 3's curves reused by Figure 2 in
    `reproduce.all`) always. Each family is stored as soon as it is finished.

    Args:
        problem: the data and optima.
        store: a `RecordStore` of CurveFamily records.
        steps, grid, seed, level, dtype: the training budget, default learning-rate grid,
            default seed, convergence level (for best rates), precision.
        rho: the refinement ratio of `tfovp.tuning` for families trained on the grid, or
            None to take the grid as given.
        budgets: shorter budgets each family also records exactly (`train_family`).
        resume: reuse families stored by earlier commands.
        job: the command's `Job` (announcements and progress).
    """

    def __init__(
        self,
        problem,
        store,
        *,
        steps,
        grid,
        seed,
        level,
        dtype="float32",
        rho=tuning.RHO,
        resume=False,
        job=None,
        budgets=(),
    ):
        self.problem, self.store = problem, store
        self.steps, self.grid, self.seed, self.level, self.dtype = steps, tuple(grid), seed, level, dtype
        self.rho, self.resume, self.budgets = rho, resume, tuple(budgets)
        self.job = job or Job("curves")

    def tunes(self, spec, tune=True):
        """Whether `family(spec, tune=tune)` tunes: a grid family, and tuning on."""
        return tune and self.rho is not None and spec.learning_rates is None

    def planned_work(self, spec, seeds=None, tune=True):
        rates = len(spec.learning_rates or self.grid)
        return sweep_work(rates * len(seeds or [self.seed]), self.steps, spec.loss, self.tunes(spec, tune))

    def key(self, spec, seeds, tune=True):
        """The store key of a family: the spec's, its seeds unless they are [0] (so that
        runs of other seeds never share a key, even in a store whose folder does not name
        the seed), and the tuning ratio where it tunes."""
        seeds_part = "" if list(seeds) == [0] else "-s" + "-".join(map(str, seeds))
        return spec.key() + seeds_part + (f"-rho{self.rho:g}" if self.tunes(spec, tune) else "")

    def _reusable(self, key):
        return self.resume or self.store.path(key) in self.job.written

    def _missing_budgets(self, family, spec, tune):
        """The budgets within which a stored tuned family has not been tuned yet (a store
        written before `tune_family(budgets=...)` searched within them): `family` goes on
        from its rates."""
        if not self.tunes(spec, tune) or tuple(family.budgets) != self.budgets:
            return ()
        return tuple(b for b in self.budgets if b not in family.tuned_within)

    def _stored(self, spec, seeds, tune):
        """The stored family of `spec` that `family` may reuse as it is, or None."""
        key = self.key(spec, seeds, tune)
        family = self.store.get(key) if self._reusable(key) else None
        return None if family is None or self._missing_budgets(family, spec, tune) else family

    def units(self, specs, seeds=None, tune=True, context=None):
        """The `reproduce.study.cluster.Unit`s of the families of `specs` that `family` would
        train (those it would reuse are left out), named after `context` (default: the
        dataset and preprocessing)."""
        from reproduce.study.cluster import Unit

        seeds = [int(s) for s in (seeds or [self.seed])]
        for spec in specs:  # solved here and sent along: LAPACK's last bits depend on the process
            self.problem.solution(spec.loss, spec.bias)
        context = context or f"{self.problem.dataset}, {self.problem.preprocessing}"
        return [
            Unit(
                f"{spec.label} (l{spec.loss:g}), {context}",
                self.store,
                self.key(spec, seeds, tune),
                train_unit,
                (
                    spec,
                    self.problem,
                    self.steps,
                    self.grid,
                    seeds,
                    self.dtype,
                    self.rho if tune else None,
                    self.budgets,
                ),
                self.planned_work(spec, seeds, tune),
            )
            for spec in specs
            if self._stored(spec, seeds, tune) is None
        ]

    def family(self, spec, seeds=None, tune=True):
        """The trained (or reused) family of `spec`, tuned if `tune` and the runner tunes;
        prints one line about it."""
        seeds = [int(s) for s in (seeds or [self.seed])]
        key = self.key(spec, seeds, tune)
        name = f"{spec.label} (l{spec.loss:g})"
        family = self.store.get(key) if self._reusable(key) else None
        earlier = family if family is not None and self._missing_budgets(family, spec, tune) else None
        if family is not None and earlier is None:
            if not self.job.counted_on_arrival(self.store.path(key)):
                self.job.reuse(f"{name}: finished earlier, reused", self.planned_work(spec, seeds, tune))
        else:
            family = self._trained(spec, seeds, name, self.tunes(spec, tune), earlier)
            self.job.written.add(self.store.put(key, family))
        self._report(name, family)
        return family

    def _trained(self, spec, seeds, name, tune, earlier=None):
        """Train (and tune) one family under the job's progress: the grid is the unit
        announced, the tuning stages are announced beneath it. `earlier`: a stored family
        that lacks some budgets' search (`_missing_budgets`), which the tuning goes on from."""
        planned = self.planned_work(spec, seeds, tune)
        done = []

        def train(rates, stage="grid"):
            first = not done
            copies = len(rates) * len(seeds)
            what = f"{len(rates)} learning rate{'s' * (len(rates) > 1)} x {len(seeds)} seed{'s' * (len(seeds) > 1)}"
            text = f"{name}: {what} x {self.steps:,} iterations" if first else f"    {name}, tuning ({stage}): {what}"
            task = self.job.start(text, self.steps + 1, copies * copy_step_work(spec.loss), unit=first)
            family = train_family(
                at_rates(spec, rates, self.grid),
                self.problem,
                steps=self.steps,
                grid=self.grid,
                seeds=seeds,
                dtype=self.dtype,
                progress=task.advance,
                budgets=self.budgets,
            )
            task.done(name if first else None)
            done.append(task.work)
            return family

        if tune:
            if earlier is not None:
                within = ", ".join(f"{b:,}" for b in self.budgets)
                self.job.write(f"    {name}: finished earlier; tuning within {within} added")
            family = tune_family(train, self.grid, speedup.LEVELS, self.rho, self.budgets, earlier=earlier)
        else:
            family = train(self.grid)
        self.job.settle(planned, sum(done))
        return family

    def _report(self, name, family):
        summary = family.summary(self.level)
        rate = "none (all diverged)" if summary.best_learning_rate is None else f"{summary.best_learning_rate:g}"
        diverged = ", ".join(f"{r:g}" for r in summary.diverged_rates) or "none"
        self.job.write(
            f"    {name}: best lr {rate}; iterations to {self.level:g}: "
            f"{fmt_iterations(summary.iterations_to_level)}; diverged lrs: {diverged}; "
            f"{family.training_seconds:.1f} s of training"
        )
        tuned = family.tuning()
        if tuned is not None:
            self.job.write(f"    {name}: {describe_tuning(tuned, self.level)}")


def describe_tuning(result, level):
    """One line: the tuned rate at `level` (or the tightest level reached), its bracket
    and distance to the divergence edge, against the grid's."""
    rates = [r for r in result.per_level() if r.learning_rate is not None]
    if not rates:
        return f"tuned to rho {result.rho[-1]:g}: no rate reaches any level"
    chosen = next((r for r in rates if np.isclose(r.level, level)), min(rates, key=lambda r: r.level))
    low, high = result.edge()
    edge = "no rate diverged" if high is None else f"divergence edge between {low:.3g} and {high:.3g}"
    return (
        f"tuned to rho {result.rho[-1]:g} ({sum(len(s.learning_rates) for s in result.stages[1:])} rates added): "
        f"at e = {chosen.level:g} lr {chosen.learning_rate:.3g} (T {fmt_time(chosen.time)}; bracket "
        f"{_rate(chosen.lower)}-{_rate(chosen.upper)}{'; within rho of the edge' if chosen.near_edge else ''}), "
        f"grid: lr {_rate(chosen.grid_learning_rate)} (T {fmt_time(chosen.grid_time)}); {edge}"
    )


def _rate(value):
    return "none" if value is None else f"{value:.3g}"
