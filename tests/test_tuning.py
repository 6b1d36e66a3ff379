"""`tfovp.tuning`: the protocol against a float64 brute-force minimiser on a problem with a
known answer, and its bookkeeping (brackets, the edge flag, grid-end extensions, one-sided
brackets) on hand-made times."""

import math

import numpy as np
import pytest

from tfovp import tuning
from tfovp.tuning import FINAL, RateResults, TunedRate

# ------------------------------------------------------------------ a diagonal l2 quadratic

# Mean l2 loss with (1/m) X^T X = diag(LAMBDAS) and targets y = X w*, so that from W(0) = 0
# gradient descent gives exactly L(t) - L* = 1/2 sum_i lambda_i w*_i^2 (1 - eta lambda_i)^(2t):
# error on every eigendirection, divergence from eta = 2 / lambda_max on.
LAMBDAS = np.array([1.0, 0.3, 0.05])
OPTIMUM = np.array([1.0, -1.0, 1.0])
BUDGET = 600
LEVELS = np.array([0.5, 0.1, 0.01])


def _closed_form_times(rate):
    """T(e; eta) for every level from the closed form, float64; inf where not reached."""
    steps = np.arange(BUDGET + 1)[:, None]
    with np.errstate(over="ignore"):
        excess = 0.5 * np.sum(LAMBDAS * OPTIMUM**2 * (1 - rate * LAMBDAS) ** (2 * steps), axis=1)
    reference = 0.5 * np.sum(LAMBDAS * OPTIMUM**2)
    times = []
    for level in LEVELS:
        above = np.flatnonzero(~(excess <= level * reference))
        last = above[-1] if above.size else -1
        times.append(math.inf if last >= BUDGET else last + 1.0)
    return np.array(times)


def test_tuned_rate_matches_a_float64_brute_force_minimiser_and_brackets_the_edge():
    from tfovp.sweep import sweep

    d = len(LAMBDAS)
    x = np.diag(np.sqrt(d * LAMBDAS))
    y = x @ OPTIMUM
    reference = 0.5 * np.sum(LAMBDAS * OPTIMUM**2)

    def train(rates, stage):
        result = sweep(x, y, rates, BUDGET, initializer="zeros", loss=2, dtype="float64", thresholds=LEVELS * reference)
        times = result.last_above.astype(np.float64) + 1.0
        times[result.last_above >= BUDGET] = np.inf
        final = (result.losses[-1]) / reference
        return RateResults.of(rates, times, final, result.diverged)

    tuned = tuning.tune(train, LEVELS)  # the paper's grid (top 0.5, below the edge 2), rho = 1.2
    assert [s.name for s in tuned.stages][:2] == ["grid", "extend up"]
    brute = np.geomspace(1e-3, 3.0, int(np.log(3e3) / np.log(1.01)) + 1)  # consecutive rates 1.01 apart
    brute_times = np.array([_closed_form_times(r) for r in brute])  # (rates, levels)
    for j in range(len(LEVELS)):
        found = tuned.at(j)
        fastest = brute_times[:, j].min()
        minimisers = brute[brute_times[:, j] == fastest]
        # The tuned rate is within rho of a brute-force minimiser and no slower than it
        # allows: T changes by at most a step or two across a 1.2x interval here.
        assert min(max(m / found.learning_rate, found.learning_rate / m) for m in minimisers) <= tuning.RHO, j
        assert fastest <= found.time <= fastest + 2, j
        assert found.precision <= tuning.RHO * (1 + 1e-9)
        assert found.grid_time >= found.time  # the grid alone is never faster
    low, high = tuned.edge()
    assert low < 2 / LAMBDAS.max() < high and high / low <= tuning.RHO * (1 + 1e-9)


# ------------------------------------------------------------------ hand-made times


def _times_of(model, levels=(0.5, 0.1)):
    """A `train` whose T(e; eta) = model(eta) * (1 / e) (inf where model gives inf), a
    rate diverging where model(eta) is None, and a log of the rates asked for."""
    asked = []

    def train(rates, stage):
        asked.append((stage, list(rates)))
        times, diverged = [], []
        for rate in rates:
            value = model(rate)
            diverged.append(value is None)
            times.append([math.inf if value is None else value / e for e in levels])
        final = [math.inf if d else 1.0 / r for d, r in zip(diverged, rates)]
        return RateResults.of(rates, times, final, diverged)

    return train, asked


def test_the_rate_above_a_tuned_one_says_when_it_diverged_and_the_record_keeps_it():
    levels = (0.5, 0.1)
    found = tuning.tune(
        lambda rates, stage: RateResults.of(
            rates,
            [[1.0 / r / e for e in levels] for r in rates],
            [1.0 for _ in rates],
            [r > 0.0037 for r in rates],
            [int(100 / r) if r > 0.0037 else -1 for r in rates],  # larger rates diverge sooner
        ),
        levels,
    ).at(0.1)
    assert found.upper_diverged and found.upper_diverged_at == int(100 / found.upper)
    assert TunedRate.from_json(found.to_json()) == found
    # Records written before the step was kept read back without it.
    old = {k: v for k, v in found.to_json().items() if k != "upper_diverged_at"}
    assert TunedRate.from_json(old).upper_diverged_at is None


def test_the_fastest_rate_next_to_the_divergence_edge_is_flagged_and_bracketed():
    # T falls like 1/eta up to the edge 0.0037 (inside the grid's 5x gap from 1e-3 to 5e-3).
    train, asked = _times_of(lambda r: None if r > 0.0037 else 1.0 / r)
    tuned = tuning.tune(train, [0.5, 0.1])
    assert [stage for stage, _ in asked] == ["grid", "refine to 1.2"]  # best 1e-3 is inside the grid
    found = tuned.at(0.1)
    assert found.grid_learning_rate == 1e-3 and found.near_edge and found.upper_diverged
    assert found.lower < found.learning_rate <= 0.0037 < found.upper <= found.learning_rate * 1.2 * (1 + 1e-9)
    assert found.gain == pytest.approx(found.learning_rate / 1e-3, rel=1e-9)
    refined = sorted(asked[1][1] + [1e-3, 5e-3, 5e-4])
    ratios = np.diff(np.log(refined))
    assert ratios.max() <= math.log(1.2) + 1e-12  # consecutive rates at most rho apart
    assert tuned.edge()[1] == found.upper


def test_an_optimum_inside_the_grid_is_refined_on_both_sides():
    # T has its minimum at eta = 0.02, none diverge: the bracket holds slower rates on both sides.
    train, _ = _times_of(lambda r: 10 + abs(math.log(r / 0.02)) * 100)
    found = tuning.tune(train, [0.5, 0.1]).at(0.5)
    assert found.learning_rate == pytest.approx(0.02, rel=0.1) and not found.near_edge
    assert found.precision <= 1.2 * (1 + 1e-9)


def test_a_best_rate_at_the_top_of_the_grid_is_extended_up_until_a_rate_diverges():
    train, asked = _times_of(lambda r: None if r > 3.0 else 1.0 / r)
    found = tuning.tune(train, [0.5, 0.1]).at(0.1)
    assert [(stage, rates) for stage, rates in asked[:3]] == [
        ("grid", list(tuning.PAPER_GRID)),
        ("extend up", [2.5]),
        ("extend up", [12.5]),  # 2.5 was stable and fastest; 12.5 diverges: the edge is bracketed
    ]
    assert asked[3][0] == "refine to 1.2" and 2.5 < found.learning_rate <= 3.0 and found.near_edge


def test_extensions_stop_at_the_hard_limit_and_leave_a_capped_one_sided_bracket():
    train, asked = _times_of(lambda r: 1.0 / r)  # faster at every larger rate, never diverging
    found = tuning.tune(train, [0.5, 0.1]).at(0.1)
    assert [stage for stage, _ in asked].count("extend up") == tuning.MAX_EXTENSIONS == 8
    top = 0.5 * 5**tuning.MAX_EXTENSIONS
    assert found.learning_rate == pytest.approx(top) and found.upper is None and math.isinf(found.precision)
    assert not found.near_edge and found.capped == "high" and found.to_json()["capped"] == "high"
    # A limit of 3 (the protocol before 2026-12-06) stops at 62.5, capped just the same.
    assert tuning.tune(train, [0.5, 0.1], max_extensions=3).at(0.1).capped == "high"


def test_a_rate_bracketed_by_a_diverging_one_is_not_capped_and_a_bottom_one_is():
    train, _ = _times_of(lambda r: None if r > 3.0 else 1.0 / r)
    assert tuning.tune(train, [0.5, 0.1]).at(0.1).capped is None
    slowest_wins, _ = _times_of(lambda r: r)  # faster at every smaller rate
    assert tuning.tune(slowest_wins, [0.5, 0.1], max_extensions=1).at(0.1).capped == "low"


def test_a_best_rate_at_the_bottom_is_extended_down_until_a_rate_is_twice_as_slow():
    # T is smallest at eta = 3e-6, below the grid's smallest rate 1e-5.
    train, asked = _times_of(lambda r: 10 + abs(math.log(r / 3e-6)) * 100)
    found = tuning.tune(train, [0.5, 0.1]).at(0.5)
    downs = [rates[0] for stage, rates in asked if stage == "extend down"]
    # 2e-6 is faster than 1e-5 (the new best, at the bottom again); 4e-7 is over 2x slower: stop.
    assert downs == [pytest.approx(2e-6), pytest.approx(4e-7)]
    assert found.learning_rate == pytest.approx(3e-6, rel=0.2) and found.precision <= 1.2 * (1 + 1e-9)


def test_taking_the_grid_as_given_trains_nothing_beyond_it_but_the_refinement():
    train, asked = _times_of(lambda r: 1.0 / r)
    tuning.tune(train, [0.5, 0.1], max_extensions=0)
    assert [stage for stage, _ in asked] == ["grid", "refine to 1.2"]
    train, asked = _times_of(lambda r: 1.0 / r)
    tuning.tune(train, [0.5, 0.1], extend=False, rho=(1.5, 1.1))
    assert [stage for stage, _ in asked] == ["grid", "refine to 1.5", "refine to 1.1"]


def test_levels_no_rate_reaches_and_every_rate_diverging():
    train, asked = _times_of(lambda r: math.inf)  # stalls everywhere: no level is reached
    tuned = tuning.tune(train, [0.5, 0.1])
    assert tuned.at(0.1).learning_rate is None and math.isinf(tuned.at(0.1).time)
    assert tuned.at(FINAL).learning_rate is not None  # the lowest final loss still has a best rate
    train, asked = _times_of(lambda r: None)
    tuned = tuning.tune(train, [0.5, 0.1])
    assert [stage for stage, _ in asked] == ["grid"] and tuned.at(FINAL).learning_rate is None
    assert tuned.edge() == (None, 1e-5)


def test_results_are_sorted_deduplicated_and_diverged_rates_never_count():
    results = RateResults.of([0.1, 0.01, 0.1], [[5.0], [7.0], [1.0]], [0.1, 0.2, 0.0], [True, False, False])
    assert results.learning_rates.tolist() == [0.01, 0.1] and results.diverged.tolist() == [False, True]
    assert math.isinf(results.times[1, 0]) and results.best(0) == 0


@pytest.mark.parametrize(
    "kwargs, match",
    [({"rho": 1.0}, "rho"), ({"rho": ()}, "rho"), ({"grid": [0.1, -1.0]}, "grid"), ({"max_extensions": -1}, "max_ext")],
)
def test_bad_arguments(kwargs, match):
    train, _ = _times_of(lambda r: 1.0)
    with pytest.raises(ValueError, match=match):
        tuning.tune(train, [0.5], **kwargs)


def test_json_round_trip_of_a_tuned_rate():
    train, _ = _times_of(lambda r: None if r > 0.0037 else 1.0 / r)
    found = tuning.tune(train, [0.5, 0.1]).at(0.1)
    assert tuning.TunedRate.from_json(found.to_json()) == found


def _late_trouble(rates, stage):
    """T = 1/eta to level 0.5 for every rate below the edge 0.05; to level 0.1 only the
    rates up to 0.01 settle (T = 10/eta), the larger ones never stay below it."""
    times = [[1.0 / r, 10.0 / r if r <= 0.01 else math.inf] if r <= 0.05 else [math.inf] * 2 for r in rates]
    diverged = [r > 0.05 for r in rates]
    final = [math.inf if d else (0.05 if r <= 0.01 else 0.2) for d, r in zip(diverged, rates)]
    return RateResults.of(rates, times, final, diverged)


def test_one_rate_per_run_differs_from_the_per_level_oracle():
    found = tuning.tune(_late_trouble, [0.5, 0.1], extend=False, rho=(1.2,))
    oracle = found.times()
    chosen, times = found.single_rate(1)  # the rate chosen at level 0.1
    assert chosen.learning_rate == pytest.approx(0.01, rel=1e-9)
    assert times.tolist() == pytest.approx([100.0, 1000.0])
    # The oracle takes a rate near the edge 0.05 for level 0.5: about 5x faster than the run at 0.01.
    assert oracle[0] < 21.0 and oracle[1] == pytest.approx(1000.0)
    # Chosen at level 0.5, the run never gets below 0.1; where nothing reaches the level, the lowest final loss.
    assert math.isinf(found.single_rate(0)[1][1])
    nothing = tuning.tune(
        lambda rates, stage: RateResults.of(
            rates, [[math.inf]] * len(rates), [1.0 / r for r in rates], [False] * len(rates)
        ),
        [0.5],
        extend=False,
    )
    assert nothing.single_rate(0)[0].level == FINAL


def test_non_monotone_divergence_is_reported():
    # 0.05 diverges although 0.1 and 0.5 do not (as depth 2 on the noisy problems: 52.3 diverged, 62.5 stable).
    train, _ = _times_of(lambda r: None if (0.04 < r < 0.06 or r > 0.6) else 1.0 / r)
    found = tuning.tune(train, [0.5, 0.1], extend=False)
    assert found.non_monotone_divergence() == [pytest.approx(0.05)]
    assert found.to_json()["non_monotone_divergence"] == found.non_monotone_divergence()
    monotone, _ = _times_of(lambda r: None if r > 0.3 else 1.0 / r)
    assert tuning.tune(monotone, [0.5, 0.1], extend=False).non_monotone_divergence() == []


def test_a_search_that_starts_from_rates_already_trained_trains_only_what_is_missing():
    # The edge case tuning goes on from: the same protocol, given a first search's rates.
    model = lambda r: None if r > 0.0037 else 1.0 / r  # noqa: E731
    train, asked = _times_of(model)
    first = tuning.tune(train, [0.5, 0.1])
    again, asked_again = _times_of(model)
    redone = tuning.tune(again, [0.5, 0.1], trained=first.results)
    assert redone.stages == () and not asked_again  # nothing missing: nothing trained
    assert redone.at(0.1) == first.at(0.1)
    # From the grid's results alone it trains the refinement, not the grid again.
    grid_only, asked_grid = _times_of(model)
    resumed = tuning.tune(grid_only, [0.5, 0.1], trained=first.results.subset(tuning.PAPER_GRID))
    assert [stage for stage, _ in asked_grid] == ["refine to 1.2"] and resumed.at(0.1) == first.at(0.1)
    with pytest.raises(ValueError, match="`trained` has times for 2 levels; expected 3"):
        tuning.tune(train, [0.5, 0.1, 0.01], trained=first.results)
