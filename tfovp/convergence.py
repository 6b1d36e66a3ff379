"""Convergence measures for learning-rate sweeps (used to pick "best" rates and to judge
"faster"). The paper gives none, so they are explicit here:

* relative excess loss  e(t) = (L(t) - L*) / (L(0) - L*), L* the convex optimum;
* iterations to a level  the first recorded step from which e(t) stays <= level until
  the end of the budget (a curve that dips below and comes back up has not converged);
* best learning rate     the fewest iterations to the level; if no rate gets there, the
  lowest final excess loss; diverged rates are excluded;
* stalled                not diverged but never reaching the level within the budget.
"""

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


def summarize_rates(steps, losses, optimum, learning_rates, diverged, level):
    """Per-rate measures and the best rate for one curve (one seed).

    Args: steps (R,), losses (R, C), learning_rates (C,), diverged (C,) bool.
    Returns a dict: best_index, best_learning_rate, per-rate iterations to every level
    of LEVELS, final relative excess, diverged and stalled rates, and `at_edge`
    ("low"/"high"/None) when the best rate is the smallest or largest of the grid.
    """
    excess = relative_excess(losses, optimum)
    rates = np.asarray(learning_rates, dtype=np.float64)
    per_rate = []
    for c, rate in enumerate(rates):
        finals = excess[:, c]
        per_rate.append({
            "learning_rate": float(rate),
            "diverged": bool(diverged[c]),
            "final_relative_excess": None if diverged[c] else float(finals[-1]),
            "iterations": {str(lv): (None if diverged[c] else iterations_to(steps, finals, lv))
                           for lv in LEVELS + ((level,) if level not in LEVELS else ())},
        })
    alive = [i for i, r in enumerate(per_rate) if not r["diverged"]]
    reached = [i for i in alive if per_rate[i]["iterations"][str(level)] is not None]
    if reached:
        best = min(reached, key=lambda i: (per_rate[i]["iterations"][str(level)],
                                           per_rate[i]["final_relative_excess"]))
    elif alive:
        best = min(alive, key=lambda i: per_rate[i]["final_relative_excess"])
    else:
        best = None
    at_edge = None
    if best is not None and len(rates) > 1:
        if rates[best] == rates.min():
            at_edge = "low"
        elif rates[best] == rates.max():
            at_edge = "high"
    return {
        "best_index": best,
        "best_learning_rate": None if best is None else float(rates[best]),
        "iterations_to_level": None if best is None else per_rate[best]["iterations"][str(level)],
        "level": level,
        "final_relative_excess": None if best is None else per_rate[best]["final_relative_excess"],
        "diverged_rates": [r["learning_rate"] for r in per_rate if r["diverged"]],
        "stalled_rates": [r["learning_rate"] for r in per_rate
                          if not r["diverged"] and r["iterations"][str(level)] is None],
        "at_edge": at_edge,
        "per_rate": per_rate,
    }


def extend_grid(rates, side):
    """The grid plus one decade beyond its `side` ("low" or "high"), same mantissas."""
    rates = sorted(float(r) for r in rates)
    if side == "high":
        extra = [r * 10 for r in rates if r * 10 > rates[-1]][: max(1, len(rates) // 5)]
    else:
        extra = [r / 10 for r in rates if r / 10 < rates[0]][-max(1, len(rates) // 5):]
    return sorted(set(rates) | set(extra))
