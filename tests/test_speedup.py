"""Speed-up curves on hand-made loss curves whose answers are known: times to levels,
one-sided bounds, a late-diverging rate, the crossover, and the claim rule."""

import json

import numpy as np
import pytest

from reproduce.study import criteria
from tfovp import speedup
from tfovp.families import CurveFamily, CurveSpec

LEVELS = np.array([0.5, 0.1, 0.01])


def _family(curves, seeds=None, rates=None, record=None, label="x"):
    """A CurveFamily from relative-excess curves given at every step (optimum 0, L_ref 1):
    columns are copies; NaN from a copy's divergence on. Tracked quantities are computed
    here from the full curves, as the sweep does in its loop."""
    curves = np.asarray(curves, dtype=np.float64)
    steps_all = np.arange(curves.shape[0])
    copies = curves.shape[1]
    seeds = np.zeros(copies, np.int64) if seeds is None else np.asarray(seeds)
    rates = np.arange(1, copies + 1) * 1e-3 if rates is None else np.asarray(rates, np.float64)
    diverged_at = np.array([np.flatnonzero(np.isnan(c))[0] if np.isnan(c).any() else -1 for c in curves.T])
    record = steps_all if record is None else np.asarray(record)
    bounds = [*record, len(steps_all)]
    finite = np.where(np.isnan(curves), np.inf, curves)
    window = np.array([finite[a:b].max(axis=0) for a, b in zip(bounds[:-1], bounds[1:])])
    last = np.full((copies, LEVELS.size), -1)
    for c in range(copies):
        for j, level in enumerate(LEVELS):
            above = np.flatnonzero(np.isfinite(curves[:, c]) & (curves[:, c] > level))
            last[c, j] = above[-1] if above.size else -1
    return CurveFamily(
        CurveSpec(label),
        0.0,
        record,
        rates,
        seeds,
        curves[record],
        diverged_at,
        np.zeros((record.size, copies)),
        reference_loss=1.0,
        levels=LEVELS,
        last_above=last,
        window_max=window,
    )


def _decay(rate, steps=101, floor=0.0):
    return floor + (1 - floor) * np.exp(-rate * np.arange(steps))


def test_times_are_the_first_step_from_which_the_curve_stays_below():
    bumpy = _decay(0.1)
    bumpy[30] = 0.6  # back above 0.5 once: the 0.5 level is settled only at step 31
    family = _family(np.column_stack([bumpy]))
    expected = [31, 31, np.ceil(np.log(100) / 0.1)]  # the bump also unsettles 0.1
    np.testing.assert_array_equal(speedup.family_times(family), expected)
    slow_floor = _family(np.column_stack([_decay(0.1, floor=0.05)]))  # never below 0.01
    assert np.isinf(speedup.family_times(slow_floor)[2])


def test_best_rate_per_level_median_over_seeds_and_divergence():
    fast, slow = _decay(0.2), _decay(0.05)
    late = _decay(0.4)
    late[90:] = np.nan  # the fastest rate diverges late: it counts as never reaching any level
    family = _family(
        np.column_stack([slow, fast, late, slow, fast, late]), seeds=[0, 0, 0, 1, 1, 1], rates=[1e-3, 1e-2, 1e-1] * 2
    )
    np.testing.assert_array_equal(speedup.family_times(family), _family(np.column_stack([fast])).last_above[0] + 1)
    per_seed, rates = speedup.rate_times(family)
    assert per_seed.shape == (3, 2, 3) and np.isinf(per_seed[2]).all() and list(rates) == [1e-3, 1e-2, 1e-1]


def test_speedups_exact_and_one_sided():
    baseline = np.array([10.0, 100.0, np.inf, np.inf])
    contender = np.array([5.0, 10.0, 50.0, np.inf])
    result = speedup.speedups(baseline, contender, budget=1000, levels=[0.5, 0.1, 0.01, 0.001])
    assert [(s.value, s.kind) for s in result] == [
        (2.0, "exact"),
        (10.0, "exact"),
        (20.0, "lower bound"),
        (None, "no data"),
    ]
    assert speedup.tightest(result).level == 0.01
    reverse = speedup.speedups(contender, baseline, budget=1000, levels=[0.5, 0.1, 0.01, 0.001])
    assert (reverse[2].value, reverse[2].kind) == (0.05, "upper bound")
    assert result[2].at_least(10) is True and reverse[2].at_least(2) is False and result[0].at_least(3) is False
    weak_lower = speedup.SpeedUp(0.01, np.inf, 800.0, 1.25, "lower bound")
    assert weak_lower.at_least(2) is None and weak_lower.at_most(1.1) is False


def test_crossover_and_speedup_at_least_one_below_it():
    # The contender starts slower (a plateau) and overtakes the baseline at step 40.
    baseline = _decay(0.05)
    contender = np.where(np.arange(101) < 30, 1.0, np.exp(-0.3 * (np.arange(101) - 30)))
    families = [_family(np.column_stack([c])) for c in (baseline, contender)]
    envelopes = [speedup.envelope(f) for f in families]
    cross = speedup.crossover(families[0].steps, *envelopes)
    assert 30 < cross < 40
    times = [speedup.family_times(f) for f in families]
    result = speedup.speedups(*times, budget=100, levels=LEVELS)
    below = envelopes[1][cross]  # every level the contender reaches after the crossover
    assert all(s.value >= 1 for s in result if s.level < below and s.kind != "no data")
    assert result[0].value < 1  # above the crossover the baseline is ahead
    assert speedup.crossover(families[0].steps, envelopes[1], envelopes[0]) is None


def test_envelope_is_exact_at_recorded_steps_of_a_sparse_grid():
    curve = _decay(0.1)
    curve[55] = 0.9  # a spike between recorded steps
    sparse = _family(np.column_stack([curve]), record=[0, 10, 50, 60, 100])
    np.testing.assert_allclose(speedup.envelope(sparse), [1.0, 0.9, 0.9, np.exp(-6.0), np.exp(-10.0)])


@pytest.mark.parametrize(
    "baseline, contender, expected",
    [
        ([100, 1000, np.inf], [50, 100, 400], "PASS"),  # at 0.01 only the contender: S > 1000/400 = 2.5
        ([100, 1000, 5000], [80, 900, 4000], "FAIL"),  # S = 1.25 at the tightest level
        ([100, 1000, np.inf], [80, 900, 800], "INCONCLUSIVE"),  # only a lower bound of 1.25
        ([np.inf] * 3, [np.inf] * 3, "INCONCLUSIVE"),
    ],
)
def test_speedup_claim_rule(baseline, contender, expected):
    result = speedup.speedups(np.array(baseline, float), np.array(contender, float), budget=1000, levels=LEVELS)
    assert (
        criteria.speedup_holds(result, criteria.FASTER_FACTOR)
        == {"PASS": True, "FAIL": False, "INCONCLUSIVE": None}[expected]
    )


@pytest.mark.parametrize(
    "kind, baseline_capped, contender_capped, expected",
    [
        (speedup.EXACT, None, None, speedup.EXACT),
        (speedup.EXACT, None, "high", speedup.LOWER),  # the contender could be faster still
        (speedup.EXACT, "high", None, speedup.UPPER),  # the baseline could be faster still
        (speedup.EXACT, "low", "high", speedup.INDEFINITE),
        (speedup.LOWER, None, "high", speedup.LOWER),
        (speedup.UPPER, "high", None, speedup.UPPER),
        (speedup.NO_DATA, "high", "high", speedup.NO_DATA),
    ],
)
def test_a_capped_tuned_time_makes_the_speedup_a_bound_on_the_honest_side(
    kind, baseline_capped, contender_capped, expected
):
    s = speedup.SpeedUp(0.01, 100.0, 40.0, 2.5, kind)
    capped = speedup.with_caps(s, baseline_capped, contender_capped)
    assert capped.kind == expected and capped.value == 2.5
    assert speedup.with_caps(capped, baseline_capped, contender_capped) == capped  # idempotent
    assert (capped.at_least(2.0) is True) == (expected in (speedup.EXACT, speedup.LOWER))


def test_noise_leaves_a_speedup_near_its_threshold_undecided():
    s = speedup.SpeedUp(0.01, 210.0, 100.0, 2.1, speedup.EXACT)
    assert s.at_least(2.0) is True and s.at_least(2.0, noise=1.2) is None  # 1.75 .. 2.52 straddles 2
    assert speedup.SpeedUp(0.01, 250.0, 100.0, 2.5, speedup.EXACT).at_least(2.0, noise=1.2) is True
    assert speedup.SpeedUp(0.01, 160.0, 100.0, 1.6, speedup.EXACT).at_least(2.0, noise=1.2) is False
    assert speedup.SpeedUp(0.01, 100.0, 100.0, 1.0, speedup.EXACT).at_most(1.11, noise=1.2) is None
    assert speedup.SpeedUp(0.01, 90.0, 100.0, 0.9, speedup.EXACT).at_most(1.11, noise=1.2) is True
    assert speedup.SpeedUp(0.01, 100.0, 1e9, 1.5, speedup.UPPER).at_least(2.0, noise=1.2) is False  # S < 1.8


def _comparison(baseline, contender, any_all_diverged=False):
    result = speedup.speedups(np.array(baseline, float), np.array(contender, float), budget=1000, levels=LEVELS)
    return criteria.Comparison("deep", "linear", tuple(result), 1000, any_all_diverged)


def test_speedup_claim_over_comparisons_fails_on_one_refuted_part():
    refuted = _comparison([100, 1000, 5000], [80, 900, 4000])  # S = 1.25 < 2 exactly
    undecided = _comparison([100, 1000, np.inf], [80, 900, 800])  # only S > 1.25
    diverged = _comparison([100, 1000, 5000], [np.inf] * 3, any_all_diverged=True)
    holds = _comparison([100, 1000, np.inf], [50, 100, 400])

    def verdict(*comparisons):
        return criteria.speedup_claim("f", "c", list(comparisons), factor=criteria.FASTER_FACTOR).verdict

    assert verdict(refuted, undecided) == "FAIL"
    assert verdict(refuted, diverged) == "FAIL"
    assert verdict(holds, undecided) == "INCONCLUSIVE"
    assert verdict(holds, holds) == "PASS"


def test_a_tuned_speedup_within_its_noise_is_inconclusive_and_says_so():
    result = speedup.speedups(np.array([100, 1000, 2100.0]), np.array([50, 500, 1000.0]), budget=5000, levels=LEVELS)
    tuned = criteria.Comparison("deep", "linear", tuple(result), 5000, False, grid_speedups=tuple(result), rho=1.2)
    grid = criteria.Comparison("deep", "linear", tuple(result), 5000, False)
    row = criteria.speedup_claim("f", "c", [tuned], factor=2.0)
    assert row.verdict == "INCONCLUSIVE" and "within noise (1.75 to 2.52)" in row.measured
    assert "1.05x the threshold 2 (noise x/÷ 1.2)" in row.measured
    assert criteria.speedup_claim("f", "c", [grid], factor=2.0).verdict == "PASS"  # the grid: no band


def test_rate_results_take_the_upper_median_over_seeds_and_a_tuned_family_joins_its_rates():
    # Two seeds x two rates; seed 1 of the faster rate diverges at step 5 (NaN on).
    slow, fast = _decay(0.05), _decay(0.2)
    broken = fast.copy()
    broken[5:] = np.nan
    family = _family(np.column_stack([slow, fast, slow, broken]), seeds=[0, 0, 1, 1], rates=[1e-3, 2e-3] * 2)
    results = speedup.rate_results(family)
    assert results.learning_rates.tolist() == [1e-3, 2e-3]
    assert results.diverged.tolist() == [False, True]  # the upper median of (no, yes) is yes
    assert results.diverged_step(1) == family.diverged_at[3] > 0 and results.diverged_step(0) is None
    assert np.isinf(results.times[1]).all() and results.times[0, 0] == speedup.family_times(family)[0]
    # Tuning adds rates as further copies: joined, the family has every rate of every seed.
    extra = _family(np.column_stack([_decay(0.1)] * 2), seeds=[0, 1], rates=[1.5e-3, 1.5e-3])
    family.tuned, family.tuning_stages, family.rho = extra, (), (1.2,)
    joined = family.with_tuned()
    assert joined.learning_rates[joined.columns(1)].tolist() == [1e-3, 2e-3, 1.5e-3]
    assert speedup.rate_results(joined).learning_rates.tolist() == [1e-3, 1.5e-3, 2e-3]
    assert speedup.family_times(joined)[0] < speedup.family_times(family)[0]  # the added rate is faster
    one = joined.of_seed(1)
    assert one.seed_list == [1] and one.losses.shape == (101, 3) and one.last_above.shape == (3, LEVELS.size)
    # The record round-trips through JSON with its tuning.
    again = CurveFamily.from_json(family.to_json())
    np.testing.assert_array_equal(again.with_tuned().losses, joined.losses)
    assert again.tuning().grid == (1e-3, 2e-3) and again.tuning().results.learning_rates.size == 3


def test_one_rate_protocol_judges_at_the_oracles_tightest_level_from_single_runs():
    from reproduce.study.criteria import speedups as speedup_criteria
    from tfovp import tuning

    def model(scale):
        def train(rates, stage):  # T = scale / eta at 0.5; only rates <= 0.01 settle at 0.1 (T = 10 scale / eta)
            times = [[scale / r, 10 * scale / r if r <= 0.01 else np.inf] if r <= 0.05 else [np.inf] * 2 for r in rates]
            diverged = [r > 0.05 for r in rates]
            final = [np.inf if d else (0.05 if r <= 0.01 else 0.2) for d, r in zip(diverged, rates)]
            return tuning.RateResults.of(rates, times, final, diverged)

        return tuning.tune(train, [0.5, 0.1], extend=False)

    baseline, contender = model(4.0), model(1.0)
    oracle = tuple(speedup.speedups(baseline.times(), contender.times(), 10**6, [0.5, 0.1]))
    one = speedup_criteria.one_rate(baseline, contender, oracle, 10**6)
    assert one.level == 0.1 and one.baseline_rate == pytest.approx(0.01) and one.contender_rate == pytest.approx(0.01)
    assert one.speedups[1].value == pytest.approx(oracle[1].value) == pytest.approx(4.0)  # the same S at the level
    assert one.speedups[0].value == pytest.approx(4.0) and one.speedups[0].baseline_time == pytest.approx(400.0)
    assert oracle[0].baseline_time < 84.0  # the oracle's level-0.5 time comes from another, faster rate
    assert speedup_criteria.OneRate.from_json([0.5, 0.1], one.to_json()) == one


def test_a_family_cut_at_a_budget_it_kept_is_the_record_of_a_run_of_that_budget():
    # Trained for 60 steps keeping the budget 6, then cut there: the times to every level,
    # the final losses, the divergences, the envelope and the tuning's rates must be those of
    # the same family trained for 6 steps (the trajectories are the same). l4, depth 2,
    # width 3, on a random regression where lr 3.2 settles below some levels by step 6 and
    # diverges at step 8: only the tracking kept at step 6 knows it had settled there.
    from tfovp.families import train_family, tune_family
    from tfovp.problem import Problem

    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 4))
    problem = Problem(x, x @ rng.normal(size=(4, 1)) + 0.3 * rng.normal(size=(40, 1)), "random", "none", "mean")

    def spec(rates=None):
        return CurveSpec("depth 2", depth=2, hidden_widths=3, loss=4.0, learning_rates=rates)

    def train(rates, stage="grid"):
        return train_family(spec(tuple(rates)), problem, steps=60, grid=rates, seeds=[0], budgets=(6,))

    long = tune_family(train, (0.01, 0.5, 3.0, 3.2), speedup.LEVELS, 2.0)
    cut = long.truncated(6)
    rates = tuple(long.with_tuned().learning_rates)  # the short run trains exactly the rates the long one tried
    short = train_family(spec(rates), problem, steps=6, grid=rates, seeds=[0])
    ours, theirs = speedup.rate_results(cut.with_tuned()), speedup.rate_results(short)
    late = long.with_tuned().learning_rates[long.with_tuned().diverged_at > 6]
    assert late.size and np.isfinite(ours.times[np.isin(ours.learning_rates, late)]).any()
    np.testing.assert_array_equal(ours.times, theirs.times)
    np.testing.assert_array_equal(ours.final, theirs.final)
    np.testing.assert_array_equal(ours.diverged, theirs.diverged)
    shared = np.intersect1d(cut.steps, short.steps)  # the two runs may record other steps; U is exact at each
    assert shared[-1] == 6
    np.testing.assert_array_equal(
        speedup.envelope(cut.with_tuned())[np.isin(cut.steps, shared)],
        speedup.envelope(short)[np.isin(short.steps, shared)],
    )
    best = [theirs.best(j) for j in range(len(speedup.LEVELS))]
    assert [r.learning_rate for r in cut.tuning().per_level()] == [
        None if b is None else float(theirs.learning_rates[b]) for b in best
    ]
    stored = CurveFamily.from_json(json.loads(json.dumps(long.to_json())))  # a stored run keeps its budgets
    np.testing.assert_array_equal(speedup.rate_results(stored.truncated(6).with_tuned()).times, ours.times)
    # A budget it did not keep cannot be cut exactly: the tracking is dropped, not guessed.
    assert long.truncated(5).last_above is None and cut.last_above is not None


def test_a_family_tuned_within_a_budget_is_tuned_to_rho_when_cut_there_and_a_stored_one_goes_on():
    # The grid 0.01, 0.1, 3.2 on the problem above (lr 3.2 settles by step 6 and diverges at
    # step 8): tuned for the 60-step run only, the cut at 6 has its best rate 3.2 at the top
    # of what was tried (capped); tuned within 6 as well, every level the cut reaches is
    # bracketed to rho = 2 (the search went up to 16, which diverges at once, and refined),
    # and the 60-step tuning is unchanged. A family stored without that search goes on from
    # its rates: only the stages "within 6" train, and it ends with the same rates.
    from tfovp.families import train_family, tune_family
    from tfovp.problem import Problem

    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 4))
    problem = Problem(x, x @ rng.normal(size=(4, 1)) + 0.3 * rng.normal(size=(40, 1)), "random", "none", "mean")
    stages = []

    def train(rates, stage="grid"):
        stages.append(stage)
        spec = CurveSpec("depth 2", depth=2, hidden_widths=3, loss=4.0, learning_rates=tuple(rates))
        return train_family(spec, problem, steps=60, grid=rates, seeds=[0], budgets=(6,))

    grid = (0.01, 0.1, 3.2)
    plain = tune_family(train, grid, speedup.LEVELS, 2.0)
    within = tune_family(train, grid, speedup.LEVELS, 2.0, budgets=(6,))

    def reached(family):
        return [r for r in family.tuning().per_level() if r.learning_rate is not None]

    assert any(r.capped == "high" for r in reached(plain.truncated(6)))
    assert reached(within.truncated(6)) and all(r.precision <= 2.0 * (1 + 1e-9) for r in reached(within.truncated(6)))
    assert [r.learning_rate for r in within.tuning().per_level()] == [
        r.learning_rate for r in plain.tuning().per_level()
    ]
    assert within.tuned_within == (6,) and plain.tuned_within == () and within.truncated(6).tuned_within == ()
    stored = CurveFamily.from_json(json.loads(json.dumps(plain.to_json())))
    del stages[:]
    going_on = tune_family(train, grid, speedup.LEVELS, 2.0, budgets=(6,), earlier=stored)
    assert stages and all(stage.endswith("within 6") for stage in stages)
    np.testing.assert_allclose(
        np.sort(going_on.with_tuned().learning_rates), np.sort(within.with_tuned().learning_rates), rtol=1e-12
    )
    assert CurveFamily.from_json(json.loads(json.dumps(going_on.to_json()))).tuned_within == (6,)
