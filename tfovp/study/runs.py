"""Curves of the paper's linear experiments: one `CurveSpec` swept over learning rates
and seeds with `tfovp.sweep.sweep` (`train_family`), and a runner that keeps finished
families in a store so that an interrupted command loses nothing (`FamilyRunner`).

Learning-rate grid edges: when the best rate of a seed is the smallest or largest of
the grid, the family is trained again on the grid extended by one decade on that side
(`extended_spec`), and both are kept.
"""

import dataclasses

import numpy as np

from tfovp.study import convergence, speedup
from tfovp.study.claims import fmt_iterations
from tfovp.study.progress import Job, copy_step_work, sweep_work
from tfovp.study.records import CurveFamily

PAPER_GRID = (1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 5e-3, 1e-2, 5e-2, 1e-1, 5e-1)


def record_steps(steps, points=160):
    """Recorded steps: every step up to 100, then log-spaced, plus 100 linear points."""
    dense = np.arange(min(steps, 100) + 1)
    logs = np.geomspace(1, max(steps, 1), points).astype(int)
    linear = np.linspace(0, steps, 101).astype(int)
    return np.unique(np.concatenate([dense, logs, linear, [steps]]))


def train_family(spec, problem, *, steps, grid, seeds, dtype="float32", progress=None, levels=speedup.LEVELS):
    """Sweep `spec` on `problem` (a `tfovp.study.problem.Problem`) over its learning rates
    (the spec's, else `grid`) x `seeds` for `steps` iterations; returns a CurveFamily.
    For the speed-up measures, the loss thresholds of `levels` and the largest loss
    between recorded steps are tracked at every step."""
    from tfovp.sweep import sweep  # TensorFlow is imported only when something trains

    rates = list(spec.learning_rates or grid)
    recorded = record_steps(steps)
    levels = np.asarray(levels, dtype=np.float64)
    result = sweep(
        problem.x,
        problem.y,
        rates,
        steps,
        depth=spec.depth,
        hidden_widths=spec.hidden_widths,
        update=spec.update,
        initializer=spec.make_initializer(),
        seeds=seeds,
        loss=spec.loss,
        reduction=problem.reduction,
        record_steps=recorded,
        record_end_to_end=spec.record_end_to_end,
        record_balancedness=spec.depth > 1 and spec.update != "end_to_end",
        record_window_max=True,
        thresholds=problem.thresholds(spec.loss, levels),
        dtype=dtype,
        progress=progress,
    )
    return CurveFamily(
        spec=spec,
        optimum=problem.optimum(spec.loss),
        steps=recorded,
        learning_rates=result.learning_rates,
        seeds=result.seeds,
        losses=result.losses,
        diverged_at=result.diverged_at,
        end_to_end_norm=result.end_to_end_norm,
        end_to_end=None if result.end_to_end is None else result.end_to_end.astype(np.float64),
        balancedness=None if result.balancedness is None else result.balancedness.max(axis=-1).astype(np.float64),
        relative_balancedness=(
            None if result.balancedness is None else result.relative_balancedness().max(axis=-1).astype(np.float64)
        ),
        elapsed_seconds=result.elapsed,
        seconds_per_step=result.seconds_per_step,
        reference_loss=problem.reference_loss(spec.loss),
        levels=levels,
        last_above=result.last_above,
        window_max=result.window_max,
    )


def train_unit(spec, problem, steps, grid, seeds, dtype, level):
    """One family as a cluster unit (`tfovp.study.cluster`): `train_family`, and the grid
    extended past its edges when `level` is given (as `FamilyRunner.family` does)."""
    family = train_family(spec, problem, steps=steps, grid=grid, seeds=seeds, dtype=dtype)
    extension = None if level is None else extended_spec(family, level)
    if extension is not None:
        family.extended = train_family(extension, problem, steps=steps, grid=grid, seeds=seeds, dtype=dtype)
    return family


def extended_spec(family, level):
    """The spec on a grid extended past the edges where a seed's best rate sits, or None
    (no edge, or the spec has its own learning rates)."""
    edges = {family.summary(level, seed).at_edge for seed in family.seed_list} - {None}
    if family.spec.learning_rates is not None or not edges:
        return None
    wider = list(family.learning_rates[family.columns()])
    for side in sorted(edges):
        wider = convergence.extend_grid(wider, side)
    return dataclasses.replace(family.spec, learning_rates=tuple(wider))


class FamilyRunner:
    """Trains the curve families of a figure on one problem, or reuses them: a family
    finished by an earlier command is reloaded with `resume`, and one finished by this
    command (`job.written`; e.g. Figure 3's curves reused by Figure 2 in
    `reproduce.all`) always. Each family is stored as soon as it is finished.

    Args:
        problem: the data and optima.
        store: a `RecordStore` of CurveFamily records.
        steps, grid, seed, level, dtype: the training budget, default learning-rate grid,
            default seed, convergence level (for best rates and grid edges), precision.
        resume: reuse families stored by earlier commands.
        job: the command's `Job` (announcements and progress).
    """

    def __init__(self, problem, store, *, steps, grid, seed, level, dtype="float32", resume=False, job=None):
        self.problem, self.store = problem, store
        self.steps, self.grid, self.seed, self.level, self.dtype = steps, tuple(grid), seed, level, dtype
        self.resume = resume
        self.job = job or Job("curves")

    def planned_work(self, spec, seeds=None):
        rates = len(spec.learning_rates or self.grid)
        return sweep_work(rates * len(seeds or [self.seed]), self.steps, spec.loss)

    def key(self, spec, seeds):
        return spec.key() + ("" if seeds == [self.seed] else "-s" + "-".join(map(str, seeds)))

    def _reusable(self, key):
        return self.resume or self.store.path(key) in self.job.written

    def units(self, specs, seeds=None, extend_edges=True, context=None):
        """The `tfovp.study.cluster.Unit`s of the families of `specs` that `family` would
        train (those it would reuse are left out), named after `context` (default: the
        dataset and preprocessing)."""
        from tfovp.study.cluster import Unit

        seeds = [int(s) for s in (seeds or [self.seed])]
        level = self.level if extend_edges else None
        for spec in specs:  # solved here and sent along: LAPACK's last bits depend on the process
            self.problem.solution(spec.loss)
        context = context or f"{self.problem.dataset}, {self.problem.preprocessing}"
        return [
            Unit(
                f"{spec.label} (l{spec.loss:g}), {context}",
                self.store,
                self.key(spec, seeds),
                train_unit,
                (spec, self.problem, self.steps, self.grid, seeds, self.dtype, level),
                self.planned_work(spec, seeds),
            )
            for spec in specs
            if not (self._reusable(self.key(spec, seeds)) and self.store.get(self.key(spec, seeds)) is not None)
        ]

    def family(self, spec, seeds=None, extend_edges=True):
        """The trained (or reused) family of `spec`; prints one line about it."""
        seeds = [int(s) for s in (seeds or [self.seed])]
        key = self.key(spec, seeds)
        name = f"{spec.label} (l{spec.loss:g})"
        family = self.store.get(key) if self._reusable(key) else None
        if family is not None:
            if not self.job.counted_on_arrival(self.store.path(key)):
                self.job.reuse(f"{name}: finished earlier, reused", self.planned_work(spec, seeds))
        else:
            family = self._train(spec, seeds, name)
            extension = extended_spec(family, self.level) if extend_edges else None
            if extension is not None:
                family.extended = self._train(extension, seeds, f"{name}, grid extended past its edge", False)
            self.job.written.add(self.store.put(key, family))
        self._report(name, family)
        return family

    def _train(self, spec, seeds, name, planned=True):
        rates = len(spec.learning_rates or self.grid)
        copies = rates * len(seeds)
        task = self.job.start(
            f"{name}: {rates} learning rate{'s' * (rates > 1)} x {len(seeds)} seed{'s' * (len(seeds) > 1)} x "
            f"{self.steps:,} iterations",
            self.steps + 1,
            copies * copy_step_work(spec.loss),
            planned,
        )
        family = train_family(
            spec, self.problem, steps=self.steps, grid=self.grid, seeds=seeds, dtype=self.dtype, progress=task.advance
        )
        task.done(name)
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
