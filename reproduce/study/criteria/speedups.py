"""Speed-up verdicts (`tfovp.speedup`): S = T_baseline / T_contender at every level, with
both families' rates tuned and on the grid alone, judged at the tightest level either
family reaches. Two protocols of tuned rates: the per-level oracle (each level its own
best rate) and, the one claims are judged on, one rate per family for the whole run
(`OneRate`); both are written to the CSVs and JSON."""

import dataclasses

import numpy as np

from reproduce.study.criteria.rules import all_hold, fmt_speedup, setting_row
from reproduce.study.criteria.thresholds import NOT_FASTER_SPEEDUP
from tfovp import speedup as speedup_module
from tfovp.tuning import FINAL

SPEED_UP = " (speed-up)"  # the suffix of a claim judged by the tuned speed-up, beside its threshold claim


def speedup_holds(speedups, factor, noise=1.0):
    """S >= factor at the tightest level either family reaches: True, False, or None
    (no level reached, only a bound that does not decide, or S within `noise` of it)."""
    tightest = speedup_module.tightest(speedups)
    return None if tightest is None else tightest.at_least(factor, noise)


def speedup_not_faster(speedups, limit=None, noise=1.0):
    """S <= limit (default NOT_FASTER_SPEEDUP) at the tightest level: True/False/None."""
    tightest = speedup_module.tightest(speedups)
    return None if tightest is None else tightest.at_most(NOT_FASTER_SPEEDUP if limit is None else limit, noise)


@dataclasses.dataclass(frozen=True)
class Comparison:
    """One contender family against one baseline family: the speed-ups at every level
    with both families' learning rates tuned (`tfovp.tuning`), the same on the grid
    alone, the budget they were measured with, and whether either diverged at every
    rate. Without tuning, `speedups` are the grid's and `grid_speedups` is None.

    `baseline_rates` / `contender_rates`: the `tfovp.tuning.TunedRate` of each family
    at every level (None without tuning): the per-level oracle, each level its own rate.
    `one_rate`: the `OneRate` protocol beside it (None without tuning, and in records
    written before it existed): one rate per family for the whole run."""

    contender: str
    baseline: str
    speedups: tuple
    budget: int
    any_all_diverged: bool
    grid_speedups: tuple | None = None
    rho: float | None = None
    baseline_rates: tuple | None = None
    contender_rates: tuple | None = None
    one_rate: "OneRate | None" = None

    @property
    def tuned(self):
        return self.grid_speedups is not None

    @property
    def one_rate_speedups(self):
        """The one-rate protocol's SpeedUp at every level, aligned with `speedups` (None
        per level where the comparison has no one-rate record)."""
        return self.one_rate.speedups if self.one_rate is not None else (None,) * len(self.speedups)

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
            out["baseline_capped"] = [r.capped for r in self.baseline_rates]
            out["contender_capped"] = [r.capped for r in self.contender_rates]
            # where the rate above each tuned one diverged (the step; None: it did not)
            out["contender_lr"] = [r.learning_rate for r in self.contender_rates]
            out["contender_above"] = [r.upper for r in self.contender_rates]
            out["contender_above_diverged_at"] = [r.upper_diverged_at for r in self.contender_rates]
        if self.one_rate is not None:
            out["one_rate"] = self.one_rate.to_json()
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
        baseline_rates, contender_rates = rates("baseline_rates"), rates("contender_rates")

        def caps(key, tuned_rates):  # the rates' own, or the caps alone (the map's JSON holds no rates)
            return [r.capped for r in tuned_rates] if tuned_rates is not None else data.get(key)

        return cls(
            contender,
            baseline,
            _with_caps(
                _speedups_from(data["levels"], data),
                caps("baseline_capped", baseline_rates),
                caps("contender_capped", contender_rates),
            ),
            int(data["budget"]),
            bool(data["any_all_diverged"]),
            grid_speedups=_speedups_from(data["levels"], data["grid"]) if data.get("grid") else None,
            rho=data.get("rho"),
            baseline_rates=baseline_rates,
            contender_rates=contender_rates,
            one_rate=OneRate.from_json(data["levels"], data["one_rate"]) if data.get("one_rate") else None,
        )

    @property
    def noise(self):
        """The factor within which a speed-up of this comparison is known: the tuning ratio
        rho of tuned rates (thresholds: "Noise of a tuned speed-up"), 1 on the grid."""
        return self.rho if self.tuned and self.rho else 1.0

    def on_grid(self):
        """The same comparison judged on the grid alone (the paper's protocol)."""
        if not self.tuned:
            return self
        return dataclasses.replace(
            self,
            speedups=self.grid_speedups,
            grid_speedups=None,
            rho=None,
            baseline_rates=None,
            contender_rates=None,
            one_rate=None,
        )

    @property
    def judged(self):
        """The speed-ups a claim is judged on: the one-rate protocol's where there is one
        (at the tightest level it is the oracle's S by construction), else `speedups`."""
        return self.speedups if self.one_rate is None else self.one_rate.speedups


@dataclasses.dataclass(frozen=True)
class OneRate:
    """The one-rate protocol of a tuned comparison: each family trained at the single rate
    that reaches `level` first (the tightest level either family reaches with tuned rates;
    ties by final loss; the lowest final loss where a family does not reach it), and S(e)
    at every level from those two runs (`tfovp.tuning.Tuning.single_rate`), caps applied."""

    level: float | None  # None: no level reached, rates chosen by final loss
    baseline_rate: float | None
    contender_rate: float | None
    baseline_capped: str | None
    contender_capped: str | None
    speedups: tuple

    def to_json(self):
        return {
            "level": self.level,
            "baseline_lr": self.baseline_rate,
            "contender_lr": self.contender_rate,
            "baseline_capped": self.baseline_capped,
            "contender_capped": self.contender_capped,
            **_speedup_lists(self.speedups),
        }

    @classmethod
    def from_json(cls, levels, data):
        return cls(
            data["level"],
            data["baseline_lr"],
            data["contender_lr"],
            data["baseline_capped"],
            data["contender_capped"],
            _speedups_from(levels, data),
        )


def _with_caps(speedups, baseline_caps, contender_caps):
    """`speedups` with each level's kind read through the caps of its tuned rates ("high",
    "low" or None per level; `tfovp.speedup.with_caps`); as given without them."""
    if baseline_caps is None or contender_caps is None:
        return tuple(speedups)
    return tuple(speedup_module.with_caps(s, b, c) for s, b, c in zip(speedups, baseline_caps, contender_caps))


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


def _rate(value):
    return "none" if value is None else f"{value:.3g}"


def _margin(s, threshold, noise, within_noise):
    """ ", 0.44x the threshold 2 (noise x/÷ 1.2)", and "within noise" with the band where
    the noise alone leaves the part undecided: the margin of a tuned speed-up as a claim
    row states it."""
    if s is None or s.value is None or s.kind == speedup_module.NO_DATA:
        return ""
    text = f", {s.value / threshold:.3g}x the threshold {threshold:.3g} (noise x/÷ {noise:g})"
    if within_noise:
        text += f": within noise ({s.value / noise:.3g} to {s.value * noise:.3g})"
    return text


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
    baseline_rates, contender_rates = tuple(tuned_b.per_level()), tuple(tuned_c.per_level())
    oracle = _with_caps(
        values(fc.with_tuned(), fb.with_tuned()),
        [r.capped for r in baseline_rates],
        [r.capped for r in contender_rates],
    )
    return Comparison(
        contender,
        baseline,
        oracle,
        budget,
        either,
        grid_speedups=grid,
        rho=tuned_b.rho[-1],
        baseline_rates=baseline_rates,
        contender_rates=contender_rates,
        one_rate=one_rate(tuned_b, tuned_c, oracle, budget),
    )


def one_rate(tuned_baseline, tuned_contender, oracle, budget):
    """The `OneRate` of two `tfovp.tuning.Tuning`s, the rates chosen at the tightest level
    of the per-level `oracle` speed-ups."""
    tightest = speedup_module.tightest(oracle)
    levels = tuned_baseline.levels
    target = FINAL if tightest is None else int(np.argmin(np.abs(np.asarray(levels) - tightest.level)))
    rb, tb = tuned_baseline.single_rate(target)
    rc, tc = tuned_contender.single_rate(target)
    values = speedup_module.speedups(tb, tc, budget, levels)
    return OneRate(
        None if tightest is None else tightest.level,
        rb.learning_rate,
        rc.learning_rate,
        rb.capped,
        rc.capped,
        tuple(speedup_module.with_caps(s, rb.capped, rc.capped) for s in values),
    )


def speedup_claim(figure, claim, comparisons, factor=None, setting="", not_faster=False):
    """One claim row over several comparisons: every contender faster than its baseline
    by `factor` (or, with `not_faster`, none faster than NOT_FASTER_SPEEDUP) at the
    tightest level either reaches; INCONCLUSIVE where a family diverged at every rate,
    and where a tuned S is within its noise (x/÷ rho) of the threshold. The parts are
    combined by `all_hold` (one refuted part refutes the claim). Judged on each
    comparison's `judged` speed-ups: one rate per model where the families were tuned
    (`Comparison.on_grid()` gives the paper's grid, no noise band); the grid's S is
    reported beside."""
    threshold = NOT_FASTER_SPEEDUP if not_faster else factor

    def judge(c, noise):
        if c.any_all_diverged:
            return None
        if not_faster:
            return speedup_not_faster(c.judged, noise=noise)
        return speedup_holds(c.judged, factor, noise=noise)

    holds = [judge(c, c.noise) for c in comparisons]
    noisy = [h is None and judge(c, 1.0) is not None for c, h in zip(comparisons, holds)]
    rule = f"S <= {NOT_FASTER_SPEEDUP:.3g}" if not_faster else f"S >= {factor:g}"
    budget = comparisons[0].budget if comparisons else 0
    tuned = [c for c in comparisons if c.tuned]
    rates = (
        f"each family's learning rate tuned to within a factor {tuned[0].rho:g} at every level (tfovp.tuning: the "
        "paper's grid, its ends extended x5, the best rate's bracket refined geometrically; a best rate at the end "
        "of what was tried is capped and its time a bound), S known to within that factor: decided only where "
        f"S / {tuned[0].rho:g} and S x {tuned[0].rho:g} fall on the same side of the threshold"
        if tuned
        else "best rate of the grid per level"
    )
    criterion = (
        f"speed-up S = T_baseline / T_contender at the tightest level e of relative excess "
        f"(L - L*)/(L(W=0) - L*) either family settles below within {budget:,} iterations, {rates}: {rule} "
        "(a bound counts when it decides; INCONCLUSIVE if no level is reached, S is within noise of the threshold "
        "or a family diverged at every rate)"
    )

    def measured(c, within_noise):
        if c.any_all_diverged:
            return f"{c.contender} vs {c.baseline}: a family diverged at every rate"
        tightest = speedup_module.tightest(c.judged)
        text = f"{c.contender} vs {c.baseline}: {fmt_speedup(tightest)}"
        if c.one_rate is not None:
            one = c.one_rate
            text += f" with one rate per model (lr {_rate(one.baseline_rate)} and {_rate(one.contender_rate)})"
        if c.tuned:
            text += f" tuned{_margin(tightest, threshold, c.noise, within_noise)}; paper's grid: "
            text += fmt_speedup(speedup_module.tightest(c.grid_speedups))
        return text

    return setting_row(
        figure,
        claim,
        criterion,
        "; ".join(measured(c, n) for c, n in zip(comparisons, noisy)),
        all_hold(holds) if comparisons else None,
        setting,
    )
