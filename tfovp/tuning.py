"""Learning rates tuned to a stated precision before two training procedures are compared.

A coarse grid can make or unmake a speed-up: the paper's grid {1e-5, 5e-5, 1e-4, ...,
5e-1} has neighbours 2x and 5x apart, and for gradient descent the time to a loss level
scales roughly like 1/eta, so a model whose stability edge falls just above a grid point
runs up to 5x below its usable rate. The protocol below tunes each contender's rate to
within a factor rho before any "X is faster than Y" (Choi et al., "On Empirical
Comparisons of Optimizers for Deep Learning", 2019; Sivaprasad et al., ICML 2020;
Schmidt et al., ICML 2021).

Measure. For a learning rate eta, T(e; eta) is the number of iterations after which the
loss stays below level e of relative excess loss (see `tfovp.speedup`), the upper
median over seeds, infinite if not within the budget or diverged. The best rate at e is
the one with the smallest T(e; eta) (ties: the lower final loss, then the smaller rate);
for the target FINAL it is the rate with the lowest final loss (used where no rate
reaches a level). A rate diverged when the upper median over seeds did.

Protocol, per family (one model under one update rule), for the judged levels (default:
every level plus FINAL):

1. Coarse grid (default the paper's): train every rate.
2. Grid ends. If the best rate at a judged level is the largest rate trained (so no
   larger rate diverged), train 5x it, until a rate diverges or the best rate is no
   longer the largest; if it is the smallest, train 1/5 of it, until the smallest rate is
   at least 2x slower than the best (or does not reach the level). At most
   MAX_EXTENSIONS = 8 extensions per side (5^8 ~ 3.9e5 beyond the grid's end: the paper's
   grid reaches 1.95e5 up and 2.6e-11 down; 3 before 2026-12-06); a rate still at an end
   after them has a one-sided bracket and is `capped`: its T is only an upper bound on
   the tuned time, since an untried rate beyond it may be faster.
3. Refinement. For every judged level, the interval between the best rate's two
   neighbours among the rates trained (the upper one may diverge: the interval then
   reaches the divergence edge) is filled geometrically, so that consecutive rates are
   at most rho apart (default rho = 1.2); the new rates of every level are trained in
   one call. Further rounds with smaller ratios are optional (`rho=(1.2, 1.05)`).

Per level the result (`TunedRate`) is the tuned rate, its T, its bracket (the trained
rates just below and above it: the optimum of T over the rates lies between them, to
within rho if T is unimodal there), whether the rate above it diverged (the fastest rate
is within rho of the divergence edge) and, beside it, the coarse grid's best rate and T.
Cost: the coarse sweep, up to 3 single-rate sweeps per grid end (a diverging one stops
within steps), and about 12-17 rates per refinement round on the paper's grid (a 10x
bracket at rho = 1.2): about 2.5x the coarse sweep.

`tune` only orchestrates: the caller's `train(learning_rates, stage)` trains and measures,
e.g. with `tfovp.sweep.sweep`; this module imports neither TensorFlow nor Keras.
"""

import dataclasses
import math
from collections.abc import Callable, Sequence

import numpy as np

PAPER_GRID = (1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 5e-3, 1e-2, 5e-2, 1e-1, 5e-1)
RHO = 1.2  # default precision: consecutive rates of a refined bracket at most this far apart
EXTENSION_FACTOR = 5.0  # a grid end is extended by this factor per step
MAX_EXTENSIONS = 8  # per side: a hard limit (a best rate still at an end after it is `capped`)
SLOWER_FACTOR = 2.0  # a downward extension stops at a rate at least this many times slower
FINAL = "final"  # the judged target "lowest final loss"
_SAME_RATE = 1e-9  # relative difference below which two rates are the same


@dataclasses.dataclass(frozen=True)
class RateResults:
    """What training showed at some learning rates, sorted by rate.

    Attributes:
        learning_rates: (R,) ascending, distinct.
        times: (R, J) T(e_j; eta) per tracked level (inf: not within the budget, or diverged).
        final: (R,) final relative excess loss (inf if diverged).
        diverged: (R,) bool.
        diverged_at: (R,) the step at which a diverged rate diverged (-1: it did not), or
            None where unknown.
    """

    learning_rates: np.ndarray
    times: np.ndarray
    final: np.ndarray
    diverged: np.ndarray
    diverged_at: np.ndarray | None = None

    @classmethod
    def of(cls, learning_rates, times, final, diverged, diverged_at=None):
        """Checked and sorted arrays; a rate given twice keeps its first entry."""
        rates = np.asarray(learning_rates, dtype=np.float64).ravel()
        times = np.asarray(times, dtype=np.float64).reshape(rates.size, -1)
        final = np.asarray(final, dtype=np.float64).ravel()
        diverged = np.asarray(diverged, dtype=bool).ravel()
        if not (rates.size == final.size == diverged.size) or rates.size == 0:
            raise ValueError(
                "`learning_rates`, `times`, `final` and `diverged` must describe the same non-empty set of rates. "
                f"Received: {rates.size} rates, times {times.shape}, {final.size} finals, {diverged.size} flags"
            )
        if not np.all(np.isfinite(rates) & (rates > 0)):
            raise ValueError(f"`learning_rates` must be finite and > 0. Received: {rates.tolist()}")
        keep = _first_of_each(rates)
        order = keep[np.argsort(rates[keep], kind="stable")]
        times, final = times[order].copy(), final[order].copy()
        times[diverged[order]] = np.inf
        final[diverged[order]] = np.inf
        if diverged_at is not None:
            diverged_at = np.asarray(diverged_at, dtype=np.int64).ravel()[order]
        return cls(rates[order], times, final, diverged[order], diverged_at)

    def merged(self, other):
        """These rates and `other`'s (a rate in both keeps this entry)."""
        steps = None
        if self.diverged_at is not None and other.diverged_at is not None:
            steps = np.r_[self.diverged_at, other.diverged_at]
        return RateResults.of(
            np.r_[self.learning_rates, other.learning_rates],
            np.r_[self.times, other.times],
            np.r_[self.final, other.final],
            np.r_[self.diverged, other.diverged],
            steps,
        )

    def subset(self, learning_rates):
        """The entries of the given rates (those trained)."""
        keep = [i for i, r in enumerate(self.learning_rates) if _contains(learning_rates, r)]
        steps = None if self.diverged_at is None else self.diverged_at[keep]
        return RateResults(self.learning_rates[keep], self.times[keep], self.final[keep], self.diverged[keep], steps)

    def diverged_step(self, index):
        """The step at which rate `index` diverged (None: it did not, or unknown)."""
        if self.diverged_at is None or not self.diverged[index] or self.diverged_at[index] < 0:
            return None
        return int(self.diverged_at[index])

    def score(self, target):
        """(R,) the quantity minimized at `target`: T at level index `target`, or the
        final relative excess for FINAL."""
        return self.final if target == FINAL else self.times[:, target]

    def best(self, target):
        """Index of the best rate at `target` (level index or FINAL), None if no rate has
        a finite score (every rate diverged, or none reaches the level)."""
        score = self.score(target)
        finite = np.flatnonzero(np.isfinite(score))
        if finite.size == 0:
            return None
        # lexicographic: score, then final loss, then the smaller rate (rates are sorted)
        return int(min(finite, key=lambda i: (score[i], self.final[i], i)))


def _contains(rates, rate):
    return any(abs(r - rate) <= _SAME_RATE * rate for r in rates)


def _first_of_each(rates):
    """Indices of the first occurrence of every distinct rate."""
    kept = []
    for i, rate in enumerate(rates):
        if not _contains(rates[kept], rate):
            kept.append(i)
    return np.asarray(kept, dtype=np.int64)


@dataclasses.dataclass(frozen=True)
class TunedRate:
    """The tuned learning rate at one level (or FINAL) and what brackets it."""

    level: float | str  # e, or FINAL
    learning_rate: float | None  # None: no trained rate reaches the level
    time: float  # T at it (inf: not reached)
    lower: float | None  # the trained rate just below (None: it is the smallest: one-sided)
    upper: float | None  # the trained rate just above (None: it is the largest: one-sided)
    upper_diverged: bool  # the rate just above diverged
    rho: float  # the precision aimed at
    grid_learning_rate: float | None  # the coarse grid's best rate
    grid_time: float  # T at it
    upper_diverged_at: int | None = None  # the step at which the rate above diverged (None: did not, or unknown)

    @property
    def precision(self):
        """The largest ratio between the tuned rate and a bracket end (inf: one-sided)."""
        if self.learning_rate is None:
            return math.inf
        if self.lower is None or self.upper is None:
            return math.inf
        return max(self.upper / self.learning_rate, self.learning_rate / self.lower)

    @property
    def capped(self):
        """ "high" / "low" when the tuned rate is the largest / smallest rate trained (no
        diverging or slower rate beyond it brackets it: its time is an upper bound on the
        tuned time), else None (also where no rate reaches the level)."""
        if self.learning_rate is None or not math.isfinite(self.time):
            return None
        if self.upper is None:
            return "high"
        return "low" if self.lower is None else None

    @property
    def near_edge(self):
        """The tuned rate is within rho of the divergence edge: the rate above it, at most
        rho larger, diverged."""
        return (
            self.learning_rate is not None
            and self.upper is not None
            and self.upper_diverged
            and self.upper <= self.rho * self.learning_rate * (1 + _SAME_RATE)
        )

    @property
    def gain(self):
        """T on the coarse grid over the tuned T (>= 1; inf if only the tuned rate reaches
        the level; None if neither does)."""
        if not math.isfinite(self.time):
            return None
        return math.inf if not math.isfinite(self.grid_time) else max(self.grid_time, 1.0) / max(self.time, 1.0)

    def to_json(self):
        def number(value):
            return None if value is None or not math.isfinite(value) else value

        return {
            "level": self.level,
            "learning_rate": self.learning_rate,
            "iterations": number(self.time),
            "bracket": [self.lower, self.upper],
            "upper_diverged": self.upper_diverged,
            "upper_diverged_at": self.upper_diverged_at,
            "near_edge": self.near_edge,
            "capped": self.capped,
            "rho": self.rho,
            "grid_learning_rate": self.grid_learning_rate,
            "grid_iterations": number(self.grid_time),
        }

    @classmethod
    def from_json(cls, data):
        def time(value):
            return math.inf if value is None else float(value)

        lower, upper = data["bracket"]
        return cls(
            data["level"],
            data["learning_rate"],
            time(data["iterations"]),
            lower,
            upper,
            bool(data["upper_diverged"]),
            float(data["rho"]),
            data["grid_learning_rate"],
            time(data["grid_iterations"]),
            data.get("upper_diverged_at"),  # absent from records written before it was kept
        )


@dataclasses.dataclass(frozen=True)
class Stage:
    """One training call of the protocol: what it was for and the rates it trained."""

    name: str  # "grid", "extend up", "extend down", "refine to 1.2"
    learning_rates: tuple

    def to_json(self):
        return {"name": self.name, "learning_rates": list(self.learning_rates)}

    @classmethod
    def from_json(cls, data):
        return cls(data["name"], tuple(float(r) for r in data["learning_rates"]))


@dataclasses.dataclass(frozen=True)
class Tuning:
    """Everything the protocol trained and what it found.

    Attributes:
        levels: (J,) the tracked levels e.
        grid: the coarse grid.
        rho: the ratio of each refinement round.
        results: RateResults of every rate trained.
        stages: the training calls, in order.
    """

    levels: np.ndarray
    grid: tuple
    rho: tuple
    results: RateResults
    stages: tuple

    def grid_results(self):
        return self.results.subset(self.grid)

    def at(self, target):
        """TunedRate at a level index (or level value) or FINAL."""
        target = _target_index(self.levels, target)
        results, coarse = self.results, self.grid_results()
        best, grid_best = results.best(target), coarse.best(target)
        level = FINAL if target == FINAL else float(self.levels[target])
        grid_rate = None if grid_best is None else float(coarse.learning_rates[grid_best])
        grid_time = math.inf if grid_best is None or target == FINAL else float(coarse.times[grid_best, target])
        if best is None:
            return TunedRate(level, None, math.inf, None, None, False, self.rho[-1], grid_rate, grid_time)
        rates = results.learning_rates
        upper = best + 1 if best + 1 < rates.size else None
        return TunedRate(
            level,
            float(rates[best]),
            math.inf if target == FINAL else float(results.times[best, target]),
            None if best == 0 else float(rates[best - 1]),
            None if upper is None else float(rates[upper]),
            bool(upper is not None and results.diverged[upper]),
            self.rho[-1],
            grid_rate,
            grid_time,
            None if upper is None else results.diverged_step(upper),
        )

    def non_monotone_divergence(self):
        """The rates tried that diverged although a larger rate tried did not, ascending:
        there divergence is not monotone in the rate, and "the rate above diverged" does not
        mark the edge of the stable range (empty where it is monotone)."""
        results = self.results
        stable = results.learning_rates[~results.diverged]
        if stable.size == 0:
            return []
        return [float(r) for r in results.learning_rates[results.diverged] if r < stable.max()]

    def per_level(self):
        """[TunedRate] at every tracked level (the per-level oracle: each level its own
        best rate, so that no single run need achieve the times of all levels)."""
        return [self.at(j) for j in range(len(self.levels))]

    def single_rate(self, target):
        """The one-rate protocol: (TunedRate, (J,) T at every level) of the one rate a
        whole run is trained with when it is chosen at `target` (a level index or value:
        the rate that reaches it first, ties by the lower final loss; where no rate
        reaches it, the lowest final loss). T is inf everywhere if every rate diverged."""
        chosen = self.at(target)
        if chosen.learning_rate is None:
            chosen = self.at(FINAL)
        if chosen.learning_rate is None:
            return chosen, np.full(len(self.levels), np.inf)
        index = int(np.flatnonzero(self.results.learning_rates == chosen.learning_rate)[0])
        return chosen, self.results.times[index].copy()

    def times(self):
        """(J,) tuned T at every level: the minimum over every rate trained."""
        return _min_times(self.results)

    def grid_times(self):
        """(J,) T on the coarse grid alone."""
        return _min_times(self.grid_results())

    def edge(self):
        """(largest stable rate below the smallest diverged one, smallest diverged rate):
        the divergence edge's bracket; (largest rate, None) if no rate diverged."""
        rates, diverged = self.results.learning_rates, self.results.diverged
        hits = np.flatnonzero(diverged)
        if hits.size == 0:
            return float(rates[-1]), None
        first = hits[0]
        return (None if first == 0 else float(rates[first - 1])), float(rates[first])

    def to_json(self):
        low, high = self.edge()
        return {
            "rho": list(self.rho),
            "grid": list(self.grid),
            "stages": [s.to_json() for s in self.stages],
            "edge": [low, high],
            "non_monotone_divergence": self.non_monotone_divergence(),
            "levels": [t.to_json() for t in [*self.per_level(), self.at(FINAL)]],
        }


def _min_times(results):
    return results.times.min(axis=0) if results.learning_rates.size else np.full(results.times.shape[1], np.inf)


def _target_index(levels, target):
    if target == FINAL:
        return FINAL
    if isinstance(target, (int, np.integer)):
        return int(target)
    hits = np.flatnonzero(np.isclose(levels, float(target), rtol=1e-9, atol=0.0))
    if hits.size == 0:
        raise ValueError(f"`target` must be a tracked level or {FINAL!r}. Received: target={target!r}")
    return int(hits[0])


def _targets(levels, judged):
    if judged is None:
        return [*range(len(levels)), FINAL]
    return [_target_index(levels, t) for t in judged]


def _check_rho(rho):
    ratios = (rho,) if isinstance(rho, (int, float)) else tuple(rho)
    if not ratios or not all(isinstance(r, (int, float)) and math.isfinite(r) and r > 1 for r in ratios):
        raise ValueError(f"`rho` must be a ratio > 1 or a non-empty list of them. Received: rho={rho!r}")
    return tuple(float(r) for r in ratios)


def refinement(results, targets, rho):
    """New rates so that, between the two neighbours of every target's best rate, trained
    rates are at most `rho` apart (sorted; empty if nothing is missing)."""
    rates = results.learning_rates
    intervals = []
    for target in targets:
        best = results.best(target)
        if best is not None:
            intervals.append((max(best - 1, 0), min(best + 1, rates.size - 1)))
    new = []
    for low, high in intervals:
        for a, c in zip(rates[low:high], rates[low + 1 : high + 1]):
            gaps = math.ceil(math.log(c / a) / math.log(rho) - 1e-9)
            new += [float(a * (c / a) ** (i / gaps)) for i in range(1, gaps)]
    out = []
    for rate in sorted(new):
        if not _contains(out, rate):
            out.append(rate)
    return out


def tune(
    train: Callable[[list, str], RateResults],
    levels: Sequence[float],
    grid: Sequence[float] = PAPER_GRID,
    *,
    judged=None,
    rho=RHO,
    max_extensions: int = MAX_EXTENSIONS,
    extend: bool = True,
    trained: RateResults | None = None,
):
    """Tune the learning rate of one family by the protocol of the module docstring.

    Args:
        train: `train(learning_rates, stage) -> RateResults` trains the family at those
            rates and measures T at `levels`; one call per stage, `stage` naming it
            ("grid", "extend up", "extend down", "refine to 1.2").
        levels: the tracked levels e (the columns of `RateResults.times`).
        grid: the coarse grid (default: the paper's).
        judged: the level values (or indices) and/or FINAL whose best rates are tuned
            (default: every level and FINAL).
        rho: the ratio of the refinement round, or a list of ratios (one round each).
        max_extensions: grid-end extensions per side (0: take the grid's ends as given).
        extend: False switches grid-end extension off (as `max_extensions=0`).
        trained: rates already trained and measured at `levels` (e.g. a longer run cut at
            a shorter budget): the search goes on from them, the grid stage trains only
            the grid's rates not among them, and `stages` lists only what this call trained.

    Returns:
        Tuning.
    """
    levels = np.asarray(levels, dtype=np.float64).ravel()
    ratios = _check_rho(rho)
    grid = tuple(sorted({float(r) for r in grid}))
    if not grid or not all(math.isfinite(r) and r > 0 for r in grid):
        raise ValueError(f"`grid` must hold learning rates > 0. Received: grid={list(grid)!r}")
    if isinstance(max_extensions, bool) or not isinstance(max_extensions, int) or max_extensions < 0:
        raise ValueError(f"`max_extensions` must be an integer >= 0. Received: max_extensions={max_extensions!r}")
    targets = _targets(levels, judged)
    if trained is not None and trained.times.shape[1] != levels.size:
        raise ValueError(f"`trained` has times for {trained.times.shape[1]} levels; expected {levels.size}")

    def train_stage(name, rates):
        found = train(list(rates), name)
        if found.times.shape[1] != levels.size:
            raise ValueError(f"`train` returned times for {found.times.shape[1]} levels; expected {levels.size}")
        stages.append(Stage(name, tuple(float(r) for r in rates)))
        return found

    stages = []
    missing = [r for r in grid if trained is None or not _contains(trained.learning_rates, r)]
    results = trained
    if missing:
        results = train_stage("grid", missing) if results is None else results.merged(train_stage("grid", missing))
    for side in ("up", "down") if extend else ():
        results = _extend(results, targets, side, max_extensions, train_stage)
    for ratio in ratios:
        new = refinement(results, targets, ratio)
        if new:
            results = results.merged(train_stage(f"refine to {ratio:g}", new))
    return Tuning(levels, grid, ratios, results, tuple(stages))


def _extend(results, targets, side, limit, trained):
    """Grid-end extension on one side (see the module docstring): up while some judged
    best rate is the largest trained; down, once some judged best rate is the smallest,
    until the smallest rate is clearly slower than those levels' best rates."""
    at_bottom = [t for t in targets if results.best(t) == 0]
    if side == "down" and not at_bottom:
        return results
    for _ in range(limit):
        rates = results.learning_rates
        if side == "up":
            if not any(results.best(t) == rates.size - 1 for t in targets):
                return results
            rate = rates[-1] * EXTENSION_FACTOR
        else:
            rate = rates[0] / EXTENSION_FACTOR
        results = results.merged(trained(f"extend {side}", [float(rate)]))
        if side == "down" and _slower_enough(results, at_bottom):
            return results
    return results


def _slower_enough(results, targets):
    """No best rate of `targets` is the smallest rate, and the smallest rate is at least
    SLOWER_FACTOR times slower than each of them (the stop of a downward extension)."""
    for target in targets:
        best = results.best(target)
        if best is None:
            continue
        if best == 0:
            return False
        score = results.score(target)
        if target != FINAL and not score[0] >= SLOWER_FACTOR * score[best]:
            return False
    return True
