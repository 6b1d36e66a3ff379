"""Convergence measures for learning-rate sweeps (used to pick "best" rates and to judge
"faster"). The paper gives none, so they are explicit here:

* relative excess loss  e(t) = (L(t) - L*) / (L(0) - L*), L* the convex optimum;
* iterations to a level  the first recorded step from which e(t) stays <= level until
  the end of the budget (a curve that dips below and comes back up has not converged);
* best learning rate     the fewest iterations to the level; if no rate gets there, the
  lowest final excess loss; diverged rates are excluded;
* stalled                not diverged but never reaching the level within the budget.
"""

import dataclasses

import numpy as np

LEVELS = (0.9, 0.5, 0.2, 0.1, 0.05, 0.01, 0.001)


def relative_excess(losses, optimum):
    """(L - L*) / (L(0) - L*) for losses of shape (steps, ...) (first row = L(0))."""
    losses = np.asarray(losses, dtype=np.float64)
    return (losses - optimum) / np.maximum(losses[0] - optimum, np.finfo(float).tiny)


def iterations_to(steps, excess, level):
    """First recorded step from which `excess` (1-D) stays <= level; None if never."""
    ok = np.isfinite(excess) & (excess <= level)
    if not ok[-1]:
        return None
    bad = np.flatnonzero(~ok)
    first = 0 if bad.size == 0 else bad[-1] + 1
    return int(steps[first])


@dataclasses.dataclass(frozen=True)
class RateSummary:
    """One learning rate of one seed: diverged or not, the final relative excess (None if
    diverged) and the iterations to every level (None: diverged or not reached)."""

    learning_rate: float
    diverged: bool
    final_relative_excess: float | None
    iterations: dict  # level (float) -> int | None

    def iterations_to(self, level):
        return self.iterations[float(level)]


@dataclasses.dataclass(frozen=True)
class SeedSummary:
    """Every learning rate of one seed at one convergence level, and the best of them."""

    level: float
    rates: tuple  # of RateSummary, in grid order
    best_index: int | None  # None: every rate diverged
    at_edge: str | None  # "low" / "high" when the best rate is the grid's smallest / largest

    @property
    def best(self):
        return None if self.best_index is None else self.rates[self.best_index]

    @property
    def all_diverged(self):
        return self.best_index is None

    @property
    def best_learning_rate(self):
        return None if self.best is None else self.best.learning_rate

    @property
    def iterations_to_level(self):
        """Iterations of the best rate to `level` (None: all diverged or not reached)."""
        return None if self.best is None else self.best.iterations_to(self.level)

    def best_iterations_to(self, level):
        """Iterations of the best rate (chosen at `self.level`) to another `level`."""
        return None if self.best is None else self.best.iterations_to(level)

    @property
    def final_relative_excess(self):
        return None if self.best is None else self.best.final_relative_excess

    @property
    def diverged_rates(self):
        return [r.learning_rate for r in self.rates if r.diverged]

    @property
    def stalled_rates(self):
        return [r.learning_rate for r in self.rates if not r.diverged and r.iterations_to(self.level) is None]

    def to_json(self):
        """The summary as the figures' JSON files hold it."""
        return {
            "best_learning_rate": self.best_learning_rate,
            "iterations_to_level": self.iterations_to_level,
            "level": self.level,
            "final_relative_excess": self.final_relative_excess,
            "diverged_rates": self.diverged_rates,
            "stalled_rates": self.stalled_rates,
            "at_edge": self.at_edge,
            "iterations_to_levels": None
            if self.best is None
            else {str(level): value for level, value in self.best.iterations.items()},
            # every rate of the grid: [rate, final relative excess (None: diverged)]
            "rates": [[r.learning_rate, r.final_relative_excess] for r in self.rates],
        }


def summarize_rates(steps, losses, optimum, learning_rates, diverged, level):
    """`SeedSummary` of one seed's curves.

    Args: steps (R,), losses (R, C), learning_rates (C,), diverged (C,) bool, level.
    Iterations are measured to every level of LEVELS and to `level`.
    """
    excess = relative_excess(losses, optimum)
    rates = np.asarray(learning_rates, dtype=np.float64)
    levels = LEVELS + ((float(level),) if float(level) not in LEVELS else ())
    summaries = []
    for c, rate in enumerate(rates):
        curve = excess[:, c]
        summaries.append(
            RateSummary(
                learning_rate=float(rate),
                diverged=bool(diverged[c]),
                final_relative_excess=None if diverged[c] else float(curve[-1]),
                iterations={lv: (None if diverged[c] else iterations_to(steps, curve, lv)) for lv in levels},
            )
        )
    alive = [i for i, r in enumerate(summaries) if not r.diverged]
    reached = [i for i in alive if summaries[i].iterations_to(level) is not None]
    if reached:
        best = min(reached, key=lambda i: (summaries[i].iterations_to(level), summaries[i].final_relative_excess))
    elif alive:
        best = min(alive, key=lambda i: summaries[i].final_relative_excess)
    else:
        best = None
    at_edge = None
    if best is not None and len(rates) > 1:
        if rates[best] == rates.min():
            at_edge = "low"
        elif rates[best] == rates.max():
            at_edge = "high"
    return SeedSummary(level=float(level), rates=tuple(summaries), best_index=best, at_edge=at_edge)


def extend_grid(rates, side):
    """The grid plus one decade beyond its `side` ("low" or "high"), same mantissas."""
    rates = sorted(float(r) for r in rates)
    if side == "high":
        extra = [r * 10 for r in rates if r * 10 > rates[-1]][: max(1, len(rates) // 5)]
    else:
        extra = [r / 10 for r in rates if r / 10 < rates[0]][-max(1, len(rates) // 5) :]
    return sorted(set(rates) | set(extra))
