"""Convergence measures and the convex optimum, on hand-made curves and problems."""

import numpy as np
import pytest

from tfovp import convergence
from tfovp.optimum import lp_objective, optimal_loss


def test_iterations_to_requires_staying_below():
    steps = np.array([0, 10, 20, 30, 40])
    dips_and_returns = np.array([1.0, 0.1, 0.5, 0.1, 0.05])
    assert convergence.iterations_to(steps, dips_and_returns, 0.2) == 30
    assert convergence.iterations_to(steps, dips_and_returns, 0.01) is None
    assert convergence.iterations_to(steps, np.array([1.0, 0.1, np.nan, 0.1, 0.1]), 0.2) == 30


def test_summarize_rates_best_edges_diverged_and_stalled():
    steps = np.arange(5)
    optimum = 1.0
    # Excess 1 at step 0; rate A reaches 0.2 at step 3, B at step 1, C never, D diverged.
    losses = optimum + np.array(
        [
            [1.0, 1.0, 1.0, 1.0],
            [0.5, 0.1, 0.9, 2.0],
            [0.3, 0.1, 0.8, np.nan],
            [0.2, 0.1, 0.7, np.nan],
            [0.1, 0.1, 0.6, np.nan],
        ]
    )
    rates = [1e-3, 1e-2, 1e-4, 1e-1]
    summary = convergence.summarize_rates(steps, losses, optimum, rates, np.array([0, 0, 0, 1], bool), 0.2)
    assert summary.best_learning_rate == 1e-2 and summary.iterations_to_level == 1
    assert summary.diverged_rates == [1e-1] and summary.stalled_rates == [1e-4]
    assert summary.at_edge is None and not summary.all_diverged
    # Without B and D the best (A, 1e-3) is the largest remaining rate: a high edge.
    edge = convergence.summarize_rates(steps, losses[:, [0, 2]], optimum, [1e-3, 1e-4], np.zeros(2, bool), 0.2)
    assert edge.best_learning_rate == 1e-3 and edge.at_edge == "high"
    # Nobody converges: the lowest final excess wins.
    none = convergence.summarize_rates(steps, losses[:, [2]], optimum, [1e-4], np.zeros(1, bool), 0.2)
    assert none.best_learning_rate == 1e-4 and none.iterations_to_level is None
    # Every rate diverged: no best rate.
    gone = convergence.summarize_rates(steps, losses[:, [3]], optimum, [1e-1], np.ones(1, bool), 0.2)
    assert gone.all_diverged and gone.best_learning_rate is None and gone.final_relative_excess is None


def test_extend_grid_by_one_decade():
    grid = [1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 5e-3, 1e-2, 5e-2, 1e-1, 5e-1]
    np.testing.assert_allclose(convergence.extend_grid(grid, "high")[-2:], [1.0, 5.0])
    np.testing.assert_allclose(convergence.extend_grid(grid, "low")[:2], [1e-6, 5e-6])


def test_l2_optimum_is_least_squares():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(50, 4)), rng.normal(size=(50, 1))
    value, w = optimal_loss(x, y, 2)
    np.testing.assert_allclose(w, np.linalg.lstsq(x, y, rcond=None)[0], rtol=1e-12)
    np.testing.assert_allclose(value, np.mean((x @ w - y) ** 2) / 2, rtol=1e-12)
    summed, _ = optimal_loss(x, y, 2, reduction="sum")
    np.testing.assert_allclose(summed, 50 * value, rtol=1e-12)


@pytest.mark.parametrize("p", [3.0, 4.0])
def test_lp_optimum_is_stationary_and_minimal(p):
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(80, 5)), rng.normal(size=(80, 1)) ** 3
    value, w = optimal_loss(x, y, p)
    r = x @ w - y
    gradient = x.T @ (np.sign(r) * np.abs(r) ** (p - 1)) / len(x)
    # Stationary to float64 resolution: once a Newton step would lower f by less than
    # f * eps, the iteration stops, leaving |gradient| ~ sqrt(f * eps * curvature) (about
    # 4e-8 here for p = 3) against terms of size |X|^T |r|^(p-1) / m (about 10): require
    # 1e-6 of that scale, far below the least-squares start's gradient (2 to 20 here).
    scale = np.linalg.norm(np.abs(x).T @ np.abs(r) ** (p - 1)) / len(x)
    start = np.linalg.lstsq(x, y, rcond=None)[0]
    r0 = x @ start - y
    assert np.linalg.norm(x.T @ (np.sign(r0) * np.abs(r0) ** (p - 1)) / len(x)) > 1e-2 * scale
    assert np.linalg.norm(gradient) < 1e-6 * scale
    for _ in range(20):
        assert lp_objective(x, y, w + 1e-3 * rng.normal(size=w.shape), p) > value
    with pytest.raises(ValueError, match="p=0.5"):
        optimal_loss(x, y, 0.5)


def test_an_exactly_solvable_problem_has_optimum_zero_for_every_p():
    x, y = np.eye(4), np.logspace(0, -3, 4)[:, None]
    for p in (2.0, 4.0, 6.0):
        value, w = optimal_loss(x, y, p)
        assert value == 0.0 and np.allclose(w, y)


def test_a_thinned_csv_keeps_every_time_to_a_level():
    """The CSV's rows (log-spaced steps plus `crossing_steps`), values carried forward
    between them, give the same `iterations_to` at every level as the full record."""
    from reproduce.study.outputs import crossing_steps, csv_steps

    rng = np.random.default_rng(3)
    steps = np.arange(20_001)
    excess = np.exp(-steps / 3000) * (1 + 0.3 * np.sin(steps / 50)) + rng.uniform(0, 1e-3, steps.size)
    levels = (*convergence.LEVELS, 0.3)

    def times(kept):
        rows = np.flatnonzero(kept)
        carried = excess[rows[np.searchsorted(rows, steps, side="right") - 1]]
        return [convergence.iterations_to(steps, carried, level) for level in levels]

    kept = csv_steps(steps) | crossing_steps(excess, levels)
    assert kept.sum() < 250
    assert times(kept) == [convergence.iterations_to(steps, excess, level) for level in levels]
    assert times(csv_steps(steps)) != times(kept)  # the log-spaced rows alone would not do
    diverging = np.r_[excess[:1234], 50.0, np.full(steps.size - 1235, np.nan)]
    assert np.flatnonzero(crossing_steps(diverging, levels))[-1] == 1234  # where it stops
