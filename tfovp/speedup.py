"""Speed-up curves: how many times fewer iterations one family of curves (the contender,
e.g. a deeper net) needs than another (the baseline) to reach each level of loss, over
a whole range of levels instead of one threshold.

Definitions, for a family X (one model under one optimizer, swept over learning rates
eta and seeds) trained for a budget of K iterations:

* relative excess   r_eta(t) = (L_eta(t) - L*) / (L_ref - L*), with one reference
  L_ref = L^1(W = 0) shared by every family compared (each family's own L(0) differs,
  e.g. under identity init);
* settled excess    u_eta(t) = max_{t <= s <= K} r_eta(s)  (+inf if eta diverges by K):
  from t on the curve never rises above u_eta(t);
* family envelope   U_X(t) = min_eta median_seeds u_eta(t);
* time to a level   T_X(e) = min{t : U_X(t) <= e}, computed exactly from the last step
  each copy's loss exceeded e's threshold (tracked at every step by the sweep): per
  rate the (upper) median over seeds of that step + 1, then the minimum over rates;
  infinite if no rate gets there within K;
* speed-up          S(e) = T_B(e) / T_C(e) of contender C over baseline B; if only C
  reaches e, S > K / T_C(e) (a lower bound); if only B, S < T_B(e) / K (an upper
  bound); if neither, no data. T depends on K: a 10^5 run is not a prefix of a 10^6 run
  (the best learning rate can differ), so every S is stated with its K;
* capped rates      where T comes from a tuned rate that is the largest or smallest rate
  tried (`tfovp.tuning.TunedRate.capped`), T is only an upper bound on the tuned time:
  a capped contender makes S a lower bound, a capped baseline an upper bound, both
  together leave S INDEFINITE (`with_caps`);
* crossover         t_x = the first recorded step after which U_C(s) < U_B(s) at every
  later recorded step s <= K (None if C ends at or above B); U is exact at the recorded
  steps (the sweep keeps the largest loss between them), so t_x has the resolution of
  the recorded grid.

LEVELS are 0.9, 0.5, 0.2, 0.1, 0.05 and 10^(-k/4) for k = 5 ... 16 (down to 1e-4).
"""

import dataclasses

import numpy as np

LEVELS = (0.9, 0.5, 0.2, 0.1, 0.05, *(10 ** (-k / 4) for k in range(5, 17)))
EXACT, LOWER, UPPER, NO_DATA = "exact", "lower bound", "upper bound", "no data"
INDEFINITE = "indefinite"  # both times reached the level but from capped rates: no side of S is known


def _upper_median(values, axis=0):
    """The median, taking the upper middle value for an even count (conservative for times)."""
    values = np.sort(np.asarray(values, dtype=np.float64), axis=axis)
    return np.take(values, values.shape[axis] // 2, axis=axis)


def rate_times(family):
    """(rates, seeds, J) times to each tracked level per learning rate and seed (inf: not
    within the budget, or diverged), and the rates in grid order."""
    if family.last_above is None:
        raise ValueError(f"curve family {family.spec.label!r} has no tracked levels (trained before they existed)")
    budget = int(family.steps[-1])
    times = family.last_above.astype(np.float64) + 1.0
    times[family.last_above >= budget] = np.inf  # above the level at the very end: never settled there
    times[family.diverged] = np.inf
    seeds = family.seed_list
    per_seed = np.stack([times[family.columns(seed)] for seed in seeds], axis=1)  # (rates, seeds, J)
    return per_seed, family.learning_rates[family.columns(seeds[0])]


def rate_results(family):
    """`tfovp.tuning.RateResults` of a family: per learning rate the upper median over
    seeds of T at every tracked level and of the final relative excess (against the
    shared reference; inf if diverged), and whether the upper median diverged."""
    from tfovp.tuning import RateResults

    per_seed, rates = rate_times(family)
    reference = family.reference_loss if family.reference_loss is not None else np.nanmax(family.losses[0])
    scale = max(reference - family.optimum, np.finfo(float).tiny)
    excess = np.where(family.diverged, np.inf, (family.losses[-1] - family.optimum) / scale)
    seeds = family.seed_list
    per_seed_final = np.stack([excess[family.columns(seed)] for seed in seeds], axis=1)
    per_seed_diverged = np.stack([family.diverged[family.columns(seed)] for seed in seeds], axis=1)
    # The divergence step of the same conservative middle seed (earlier is worse; a stable
    # seed counts as never): finite exactly where the upper median of the flags is set.
    steps = np.where(family.diverged, family.diverged_at, np.inf).astype(np.float64)
    per_seed_steps = np.sort(np.stack([steps[family.columns(seed)] for seed in seeds], axis=1), axis=1)
    per_seed_step = per_seed_steps[:, (len(seeds) - 1) // 2]
    return RateResults.of(
        rates,
        _upper_median(per_seed, axis=1),
        _upper_median(per_seed_final, axis=1),
        _upper_median(per_seed_diverged, axis=1) > 0.5,
        np.where(np.isfinite(per_seed_step), per_seed_step, -1).astype(np.int64),
    )


def family_times(family):
    """(J,) T_X at every tracked level: min over rates of the median over seeds."""
    per_seed, _ = rate_times(family)
    return _upper_median(per_seed, axis=1).min(axis=0)


def envelope(family):
    """(R,) U_X at the recorded steps, from the largest loss between recorded steps."""
    if family.window_max is None or family.reference_loss is None:
        raise ValueError(f"curve family {family.spec.label!r} has no window maxima (trained before they existed)")
    window = np.where(np.isnan(family.window_max), np.inf, family.window_max)  # NaN in JSON stands for +inf
    settled = np.maximum.accumulate(window[::-1], axis=0)[::-1]  # max over the recorded step and all later ones
    excess = (settled - family.optimum) / (family.reference_loss - family.optimum)
    per_seed = np.stack([excess[:, family.columns(seed)] for seed in family.seed_list], axis=2)  # (R, rates, seeds)
    return _upper_median(per_seed, axis=2).min(axis=1)


@dataclasses.dataclass(frozen=True)
class SpeedUp:
    """S at one level: the two times, the value, and whether it is exact or a bound."""

    level: float
    baseline_time: float  # T_B (inf: not reached within the budget)
    contender_time: float  # T_C
    value: float | None  # S, or the bound; None without data
    kind: str  # EXACT, LOWER, UPPER, NO_DATA or INDEFINITE

    def at_least(self, factor, noise=1.0):
        """True if S >= factor is established, False if S < factor is, else None; with
        `noise`, S is known only to within that factor either way, so S / noise must
        clear the threshold to establish it and S * noise stay below it to refute it."""
        if self.kind in (EXACT, LOWER) and self.value / noise >= factor:
            return True
        if self.kind in (EXACT, UPPER) and self.value * noise < factor:
            return False
        return None

    def at_most(self, factor, noise=1.0):
        """True if S <= factor is established, False if S > factor is, else None (with
        `noise` as in `at_least`)."""
        if self.kind in (EXACT, UPPER) and self.value * noise <= factor:
            return True
        if self.kind in (EXACT, LOWER) and self.value / noise > factor:
            return False
        return None


def speedups(baseline_times, contender_times, budget, levels=LEVELS):
    """A SpeedUp per level from the families' times (see the module docstring)."""
    out = []
    for level, tb, tc in zip(levels, baseline_times, contender_times):
        tb_ok, tc_ok = np.isfinite(tb), np.isfinite(tc)
        if tb_ok and tc_ok:  # times below one iteration count as one (a tie at step 0 is 1)
            value, kind = max(tb, 1.0) / max(tc, 1.0), EXACT
        elif tc_ok:
            value, kind = budget / max(tc, 1.0), LOWER
        elif tb_ok:
            value, kind = max(tb, 1.0) / budget, UPPER
        else:
            value, kind = None, NO_DATA
        out.append(SpeedUp(float(level), float(tb), float(tc), None if value is None else float(value), kind))
    return out


def with_caps(s, baseline_capped, contender_capped):
    """`s` read as what the tuning established: a capped time (the tuned rate at the end
    of what was tried) is an upper bound on the tuned time, so a capped contender takes
    away S's upper side (S can only be larger) and a capped baseline its lower side."""
    if s.kind in (NO_DATA, INDEFINITE) or not (baseline_capped or contender_capped):
        return s
    has_lower = s.kind in (EXACT, LOWER) and not baseline_capped
    has_upper = s.kind in (EXACT, UPPER) and not contender_capped
    kind = {(True, True): EXACT, (True, False): LOWER, (False, True): UPPER, (False, False): INDEFINITE}
    return dataclasses.replace(s, kind=kind[(has_lower, has_upper)])


def tightest(speedup_list):
    """The SpeedUp at the smallest level that either family reaches (None if neither
    reaches any)."""
    reached = [s for s in speedup_list if s.kind != NO_DATA]
    return min(reached, key=lambda s: s.level) if reached else None


def crossover(steps, baseline_envelope, contender_envelope):
    """First recorded step after which the contender stays strictly below the baseline
    (None if it does not end below)."""
    below = np.asarray(contender_envelope) < np.asarray(baseline_envelope)
    if not below[-1]:
        return None
    not_below = np.flatnonzero(~below)
    return int(steps[0 if not_below.size == 0 else not_below[-1] + 1])


def all_diverged(family):
    """Every learning rate of every seed diverged."""
    return bool(family.diverged.all())
