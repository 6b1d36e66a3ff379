"""Speed-up verdicts (`tfovp.speedup`): S = T_baseline / T_contender at every level, with
both families' rates tuned and on the grid alone, judged at the tightest level either
family reaches."""

import dataclasses

from reproduce.study.criteria.rules import all_hold, fmt_speedup, setting_row
from reproduce.study.criteria.thresholds import NOT_FASTER_SPEEDUP
from tfovp import speedup as speedup_module

SPEED_UP = " (speed-up)"  # the suffix of a claim judged by the tuned speed-up, beside its threshold claim


def speedup_holds(speedups, factor):
    """S >= factor at the tightest level either family reaches: True, False, or None
    (no level reached, or only a bound that does not decide)."""
    tightest = speedup_module.tightest(speedups)
    return None if tightest is None else tightest.at_least(factor)


def speedup_not_faster(speedups, limit=None):
    """S <= limit (default NOT_FASTER_SPEEDUP) at the tightest level: True/False/None."""
    tightest = speedup_module.tightest(speedups)
    return None if tightest is None else tightest.at_most(NOT_FASTER_SPEEDUP if limit is None else limit)


@dataclasses.dataclass(frozen=True)
class Comparison:
    """One contender family against one baseline family: the speed-ups at every level
    with both families' learning rates tuned (`tfovp.tuning`), the same on the grid
    alone, the budget they were measured with, and whether either diverged at every
    rate. Without tuning, `speedups` are the grid's and `grid_speedups` is None.

    `baseline_rates` / `contender_rates`: the `tfovp.tuning.TunedRate` of each family
    at every level (None without tuning)."""

    contender: str
    baseline: str
    speedups: tuple
    budget: int
    any_all_diverged: bool
    grid_speedups: tuple | None = None
    rho: float | None = None
    baseline_rates: tuple | None = None
    contender_rates: tuple | None = None

    @property
    def tuned(self):
        return self.grid_speedups is not None

    def to_json(self, rates=True):
        """A JSON-ready dict (inf times as null; without the tuned rates per level unless
        `rates`, e.g. where a CSV holds them); `from_json` reads it back."""
        out = {
            "contender": self.contender,
            "baseline": self.baseline,
            "budget": self.budget,
            "any_all_diverged": self.any_all_diverged,
            "levels": [s.level for s in self.speedups],
            "tuned": self.tuned,
            "rho": self.rho,
            **_speedup_lists(self.speedups),
        }
        if self.tuned:
            out["grid"] = _speedup_lists(self.grid_speedups)
        if self.tuned and rates:
            out["baseline_rates"] = [r.to_json() for r in self.baseline_rates]
            out["contender_rates"] = [r.to_json() for r in self.contender_rates]
        return out

    @classmethod
    def from_json(cls, data, name=None):
        """The inverse of `to_json`; `name` ("<contender> vs <baseline> (lp)", the key of a
        figure's JSON) names the families of records written before they held them."""
        from tfovp.tuning import TunedRate

        def rates(key):
            return None if data.get(key) is None else tuple(TunedRate.from_json(r) for r in data[key])

        if "contender" in data:
            contender, baseline = data["contender"], data["baseline"]
        else:
            contender, baseline = name.rsplit(" (l", 1)[0].split(" vs ")
        return cls(
            contender,
            baseline,
            _speedups_from(data["levels"], data),
            int(data["budget"]),
            bool(data["any_all_diverged"]),
            grid_speedups=_speedups_from(data["levels"], data["grid"]) if data.get("grid") else None,
            rho=data.get("rho"),
            baseline_rates=rates("baseline_rates"),
            contender_rates=rates("contender_rates"),
        )

    def on_grid(self):
        """The same comparison judged on the grid alone (the paper's protocol)."""
        if not self.tuned:
            return self
        return dataclasses.replace(
            self, speedups=self.grid_speedups, grid_speedups=None, rho=None, baseline_rates=None, contender_rates=None
        )


def _speedup_lists(speedups):
    def time(value):
        return None if value == float("inf") else value

    return {
        "speedup": [s.value for s in speedups],
        "kind": [s.kind for s in speedups],
        "baseline_time": [time(s.baseline_time) for s in speedups],
        "contender_time": [time(s.contender_time) for s in speedups],
    }


def _speedups_from(levels, data):
    def time(value):
        return float("inf") if value is None else float(value)

    return tuple(
        speedup_module.SpeedUp(float(level), time(tb), time(tc), v, k)
        for level, tb, tc, v, k in zip(
            levels, data["baseline_time"], data["contender_time"], data["speedup"], data["kind"]
        )
    )


def compare(contender, contender_family, baseline, baseline_family, budget):
    """The Comparison of two trained CurveFamily records (tuned where they were)."""
    fc, fb = contender_family, baseline_family

    def values(c, b):
        return tuple(
            speedup_module.speedups(speedup_module.family_times(b), speedup_module.family_times(c), budget, b.levels)
        )

    either = speedup_module.all_diverged(fb) or speedup_module.all_diverged(fc)
    grid = values(fc, fb)
    tuned_c, tuned_b = fc.tuning(), fb.tuning()
    if tuned_c is None or tuned_b is None:
        return Comparison(contender, baseline, grid, budget, either)
    return Comparison(
        contender,
        baseline,
        values(fc.with_tuned(), fb.with_tuned()),
        budget,
        either,
        grid_speedups=grid,
        rho=tuned_b.rho[-1],
        baseline_rates=tuple(tuned_b.per_level()),
        contender_rates=tuple(tuned_c.per_level()),
    )


def speedup_claim(figure, claim, comparisons, factor=None, setting="", not_faster=False):
    """One claim row over several comparisons: every contender faster than its baseline
    by `factor` (or, with `not_faster`, none faster than NOT_FASTER_SPEEDUP) at the
    tightest level either reaches; INCONCLUSIVE where a family diverged at every rate.
    Judged on the comparisons' `speedups`: with both families tuned where they were
    (`Comparison.on_grid()` gives the paper's grid); the grid's S is reported beside."""
    holds = []
    for c in comparisons:
        if c.any_all_diverged:
            holds.append(None)
        elif not_faster:
            holds.append(speedup_not_faster(c.speedups))
        else:
            holds.append(speedup_holds(c.speedups, factor))
    rule = f"S <= {NOT_FASTER_SPEEDUP:.3g}" if not_faster else f"S >= {factor:g}"
    budget = comparisons[0].budget if comparisons else 0
    tuned = [c for c in comparisons if c.tuned]
    rates = (
        f"each family's learning rate tuned to within a factor {tuned[0].rho:g} at every level (tfovp.tuning: the "
        "paper's grid, its ends extended x5, the best rate's bracket refined geometrically)"
        if tuned
        else "best rate of the grid per level"
    )
    criterion = (
        f"speed-up S = T_baseline / T_contender at the tightest level e of relative excess "
        f"(L - L*)/(L(W=0) - L*) either family settles below within {budget:,} iterations, {rates}: {rule} "
        "(a bound counts when it decides; INCONCLUSIVE if no level is reached or a family diverged at every rate)"
    )

    def measured(c):
        if c.any_all_diverged:
            return f"{c.contender} vs {c.baseline}: a family diverged at every rate"
        text = f"{c.contender} vs {c.baseline}: {fmt_speedup(speedup_module.tightest(c.speedups))}"
        if c.tuned:
            text += f" tuned; paper's grid: {fmt_speedup(speedup_module.tightest(c.grid_speedups))}"
        return text

    return setting_row(
        figure,
        claim,
        criterion,
        "; ".join(measured(c) for c in comparisons),
        all_hold(holds) if comparisons else None,
        setting,
    )
